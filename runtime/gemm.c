/* gemm.c: matrix products on gmc's thread pool, in chunks fixed by the shape alone.
 * OpenBLAS runs single-threaded (main.c); a product is cut into blocks of rows (or of
 * columns, when it is wider than tall) whose bounds depend only on m, n and k, and the pool
 * hands whole blocks to its threads. Every block is the same single-threaded OpenBLAS call
 * whatever the thread count, so the results are bit-identical for any --threads (OpenBLAS's
 * own threading splits differently for 1 and 2 threads, and its results differed in the last
 * bits). The same holds for the matrix-vector and outer products. Which thread runs which
 * block is decided as they go (each takes the next block when it is free): a worker that
 * wakes late, or is descheduled by another process, leaves its blocks to the others instead
 * of holding up the product, and the results stay the same since the blocks do not change. */
#include <cblas.h>
#include <stdatomic.h>
#include "gemm.h"
#include "gemm_thin.h"
#include "threads.h"

enum { BLOCK_ALIGN = 16 };          /* rows or columns per block: a multiple of the sgemm tiles */
#define BLOCK_FLOPS 2e6             /* the least work per block worth a thread's wake-up */
enum { MAX_BLOCKS = 64 };
/* Each block of an sgemm packs the whole other operand again (OpenBLAS's own threads share
 * one packing): at 256 rows a block does 512 flops per float it packs, so the repacking costs
 * a few per cent. Matrix-vector and outer products pack nothing. */
enum { MIN_GEMM_BLOCK = 256 };

typedef struct Product {
    int64_t m, n, k;
    int trans_a, trans_b;
    const float *a, *b;
    const float *bias;              /* NULL, or [n] added to every row as each block is stored */
    float *colsum;                  /* NULL, or [n]: the sums of B's [k, n] columns (a bias
                                       gradient), by the blocks holding row 0 of C */
    float *c;
    int by_rows;                    /* blocks of rows of C, else of columns */
    int64_t block;                  /* rows or columns per block */
    int64_t blocks;
    atomic_llong next;              /* the next block not yet taken */
} Product;

/* rows [0, m) of c (row stride ldc), columns [0, n): += bias */
static void add_bias(float *c, int64_t ldc, int64_t m, const float *bias, int64_t n) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c[i * ldc + j] += bias[j];
}

/* out[j] = the sum over rows i < k of b[i * ldb + j], j < n: in double, in row order, rounded
 * once (what a reduction kernel computes, bit for bit) */
static void column_sums(const float *b, int64_t ldb, int64_t k, int64_t n, float *out) {
    enum { W = 256 };
    for (int64_t j0 = 0; j0 < n; j0 += W) {
        int64_t w = n - j0 < W ? n - j0 : W;
        double acc[W] = { 0 };
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < w; j++) acc[j] += b[i * ldb + j0 + j];
        for (int64_t j = 0; j < w; j++) out[j0 + j] = (float)acc[j];
    }
}

typedef struct BiasRows { float *c; const float *bias; int64_t n; } BiasRows;

static void bias_rows(void *ctx, int64_t r0, int64_t r1) {
    const BiasRows *q = ctx;
    add_bias(q->c + r0 * q->n, q->n, r1 - r0, q->bias, q->n);
}

/* C[r0:r1, c0:c1] = op(A)[r0:r1, :] op(B)[:, c0:c1] (+ bias[c0:c1]) */
static void product_part(const Product *p, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    int64_t m = r1 - r0, n = c1 - c0, k = p->k;
    if (m <= 0 || n <= 0) return;
    const float *a = p->trans_a ? p->a + r0 : p->a + r0 * k;          /* stored [k, M] or [M, k] */
    const float *b = p->trans_b ? p->b + c0 * k : p->b + c0;          /* stored [N, k] or [k, N] */
    int lda = p->trans_a ? p->m : k, ldb = p->trans_b ? k : p->n;
    float *c = p->c + r0 * p->n + c0;
    if (k == 1) {                   /* an outer product: every operand is a contiguous vector */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * p->n + j] = a[i] * b[j];
    } else if (n == 1 && p->n == 1) {                                 /* c = op(A) b */
        if (p->trans_a) cblas_sgemv(CblasRowMajor, CblasTrans, k, m, 1.0f, a, lda, b, 1, 0.0f, c, 1);
        else cblas_sgemv(CblasRowMajor, CblasNoTrans, m, k, 1.0f, a, lda, b, 1, 0.0f, c, 1);
    } else if (m == 1 && p->m == 1) {                                 /* c = op(B)^T a */
        if (p->trans_b) cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, b, ldb, a, 1, 0.0f, c, 1);
        else cblas_sgemv(CblasRowMajor, CblasTrans, k, n, 1.0f, b, ldb, a, 1, 0.0f, c, 1);
    } else {
        cblas_sgemm(CblasRowMajor, p->trans_a ? CblasTrans : CblasNoTrans,
                    p->trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, p->n);
    }
    /* the bias while the block is still in cache: the same float sum as a kernel after it */
    if (p->bias) add_bias(c, p->n, m, p->bias + c0, n);
    if (p->colsum && r0 == 0) column_sums(p->b + c0, p->n, p->k, n, p->colsum + c0);
}

/* one per thread: takes blocks until none is left */
static void product_blocks(void *ctx, int64_t begin, int64_t end) {
    (void)begin, (void)end;
    Product *p = ctx;
    for (int64_t i; (i = atomic_fetch_add(&p->next, 1)) < p->blocks;) {
        int64_t lo = i * p->block, hi = lo + p->block;
        if (p->by_rows) product_part(p, lo, hi < p->m ? hi : p->m, 0, p->n);
        else product_part(p, 0, p->m, lo, hi < p->n ? hi : p->n);
    }
}

void gemm_product_ep(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, const float *a,
                     const float *b, const float *bias, float *colsum, float *c) {
    if (trans_b) colsum = NULL;     /* (not a case the compiler asks for) */
    /* thin products go to gmc's own micro-kernel, which splits them deterministically itself */
    if (k > 1 && m > 1 && n > 1 && gemm_thin(trans_a, trans_b, m, n, k, a, b, c)) {
        if (bias) {
            BiasRows q = { c, bias, n };
            parallel_for(m, (65536 + n - 1) / n, bias_rows, &q);
        }
        if (colsum) column_sums(b, n, k, n, colsum);
        return;
    }
    Product p = { m, n, k, trans_a, trans_b, a, b, bias, colsum, c, m >= n, 0, 0, 0 };
    int64_t len = p.by_rows ? m : n;
    double flops = 2.0 * m * n * (k > 1 ? k : 1);
    int64_t blocks = (int64_t)(flops / BLOCK_FLOPS);
    if (blocks > MAX_BLOCKS) blocks = MAX_BLOCKS;
    int64_t min_len = k == 1 || m == 1 || n == 1 ? BLOCK_ALIGN : MIN_GEMM_BLOCK;
    if (blocks > len / min_len) blocks = len / min_len;
    if (blocks < 2) { product_part(&p, 0, m, 0, n); return; }
    /* an even count (a multiple of 4 from 4 on), so that 2 or 4 threads get equal shares:
     * 3 blocks on 2 threads left one thread idle a third of the time (70 % of sgemm) */
    blocks = blocks >= 4 ? blocks / 4 * 4 : 2;
    p.block = (len + blocks - 1) / blocks;
    p.block = (p.block + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
    p.blocks = (len + p.block - 1) / p.block;
    atomic_init(&p.next, 0);
    parallel_for(p.blocks < threads_count() ? p.blocks : threads_count(), 1, product_blocks, &p);
}

void gemm_product(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, const float *a, const float *b, float *c) {
    gemm_product_ep(m, n, k, trans_a, trans_b, a, b, NULL, NULL, c);
}

typedef struct Batch {
    int64_t m, n, k;
    int trans_a, trans_b;
    const float *a, *b;
    float *c;
} Batch;

static void batch_items(void *ctx, int64_t begin, int64_t end) {
    const Batch *q = ctx;
    for (int64_t i = begin; i < end; i++) {
        Product p = { q->m, q->n, q->k, q->trans_a, q->trans_b, q->a + i * q->m * q->k,
                      q->b + i * q->k * q->n, NULL, NULL, q->c + i * q->m * q->n, 1, 0, 0, 0 };
        product_part(&p, 0, q->m, 0, q->n);
    }
}

void gemm_batched(int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                  const float *a, const float *b, float *c) {
    double flops = 2.0 * m * n * (k > 1 ? k : 1);
    if (batch <= 1 || flops >= BLOCK_FLOPS) {     /* each product big enough to split itself */
        for (int64_t i = 0; i < (batch > 1 ? batch : 1); i++)
            gemm_product(m, n, k, trans_a, trans_b, a + i * m * k, b + i * k * n, c + i * m * n);
        return;
    }
    Batch q = { m, n, k, trans_a, trans_b, a, b, c };
    int64_t per = (int64_t)(BLOCK_FLOPS / (flops > 1 ? flops : 1)) + 1;   /* products per block */
    parallel_for(batch, per, batch_items, &q);
}
