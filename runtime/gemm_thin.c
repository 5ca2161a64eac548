/* gemm_thin.c: matrix products with a thin side, done by gmc's own AVX-512 micro-kernel.
 * A convolution's products are [N*H*W x k*k*C] @ [k*k*C x F] with F = 16..128 filters, and
 * their gradients the same shapes transposed: OpenBLAS runs those at a third of its large-
 * square speed (it packs the tall operand, whose elements are each used only F times). Here
 * the tall operand is read in place, 8 rows at a time, against a panel of 16 or 32 columns of
 * the small one held in cache, so nothing is packed. Threads split the output rows in fixed
 * contiguous chunks and each output element is summed in one fixed order by one thread, so
 * results do not depend on the thread count. Shapes it does not cover, and CPUs without
 * AVX-512, go to OpenBLAS (gemm_thin returns 0); GMC_NO_THIN_GEMM=1 sends everything there. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "gemm_thin.h"
#include "threads.h"

#define TARGET __attribute__((target("avx512f,fma")))

enum { MR = 8 };                  /* rows of C per micro-kernel call */

typedef struct Thin {
    int64_t m, n, k;
    const float *a;
    int64_t sar, sak;             /* A(r, kk) = a[r * sar + kk * sak] */
    const float *b;               /* B(kk, j) = b[kk * ldb + j] */
    int64_t ldb;
    float *c;                     /* C(r, j) = c[r * n + j] */
    int64_t kblock;               /* reduction split into blocks of this many (accumulating) */
} Thin;

/* C[0..mr) x [0..16*nv) (+)= sum over kk < kn of A(r, kk) B(kk, j). mr and nv are constants
 * after inlining, so the accumulators live in registers. */
static inline __attribute__((always_inline)) TARGET void
tile(const int mr, const int nv, int64_t kn, const float *a, int64_t sar, int64_t sak,
     const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    __m512 acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
    const float *ap[MR];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) ap[r] = a + r * sar;
    for (int64_t kk = 0; kk < kn; kk++) {
        __m512 bv[2];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(b + kk * ldb + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512 av = _mm512_set1_ps(ap[r][kk * sak]);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

static TARGET void tile8x2(int64_t kn, const float *a, int64_t sar, int64_t sak, const float *b,
                           int64_t ldb, float *c, int64_t ldc, int acc) {
    tile(MR, 2, kn, a, sar, sak, b, ldb, c, ldc, acc);
}
static TARGET void tile8x1(int64_t kn, const float *a, int64_t sar, int64_t sak, const float *b,
                           int64_t ldb, float *c, int64_t ldc, int acc) {
    tile(MR, 1, kn, a, sar, sak, b, ldb, c, ldc, acc);
}
static TARGET void tile1x2(int64_t kn, const float *a, int64_t sar, int64_t sak, const float *b,
                           int64_t ldb, float *c, int64_t ldc, int acc) {
    tile(1, 2, kn, a, sar, sak, b, ldb, c, ldc, acc);
}
static TARGET void tile1x1(int64_t kn, const float *a, int64_t sar, int64_t sak, const float *b,
                           int64_t ldb, float *c, int64_t ldc, int acc) {
    tile(1, 1, kn, a, sar, sak, b, ldb, c, ldc, acc);
}

/* rows [r0, r1) of C in blocks of 64 rows (their A rows stay in L2 across the column panels);
 * the reduction in blocks of t->kblock, each added to C in order */
static TARGET void rows(void *ctx, int64_t r0, int64_t r1) {
    const Thin *t = ctx;
    int64_t n = t->n;
    for (int64_t k0 = 0; k0 < t->k; k0 += t->kblock) {
        int64_t kn = t->k - k0 < t->kblock ? t->k - k0 : t->kblock;
        int acc = k0 > 0;
        for (int64_t rb = r0; rb < r1; rb += 64) {
            int64_t re = rb + 64 < r1 ? rb + 64 : r1;
            for (int64_t j = 0; j < n; j += 32) {
                int two = n - j >= 32;
                const float *b = t->b + k0 * t->ldb + j;
                int64_t r = rb;
                for (; r + MR <= re; r += MR) {
                    const float *a = t->a + r * t->sar + k0 * t->sak;
                    if (two) tile8x2(kn, a, t->sar, t->sak, b, t->ldb, t->c + r * n + j, n, acc);
                    else tile8x1(kn, a, t->sar, t->sak, b, t->ldb, t->c + r * n + j, n, acc);
                }
                for (; r < re; r++) {
                    const float *a = t->a + r * t->sar + k0 * t->sak;
                    if (two) tile1x2(kn, a, t->sar, t->sak, b, t->ldb, t->c + r * n + j, n, acc);
                    else tile1x1(kn, a, t->sar, t->sak, b, t->ldb, t->c + r * n + j, n, acc);
                }
            }
        }
    }
}

static void tiles_range(void *ctx, int64_t t0, int64_t t1) {
    const Thin *t = ctx;
    rows(ctx, t0 * MR, t1 * MR < t->m ? t1 * MR : t->m);
}

int gemm_thin_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *env = getenv("GMC_NO_THIN_GEMM");
        on = !(env && *env && *env != '0') && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("fma");
    }
    return on;
}

int gemm_thin(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a,
              const float *b, float *c) {
    if (!gemm_thin_enabled() || n % 16 || (trans_a && trans_b)) return 0;
    Thin t = { m, n, k, a, trans_a ? 1 : k, trans_a ? m : 1, b, n, c, k };
    if (!trans_a) {
        /* tall A against a small B: rows of C split across threads */
        if (m < 512 || k > 4096 || (n > 256 && k > 256)) return 0;
    } else {
        /* C = A^T B with a long reduction (a convolution's weight gradient): C is small, each
         * thread owns rows of it; the reduction runs in blocks whose A strip stays in L2 */
        if (m > 4096 || n > 256 || k < 1024) return 0;
        t.kblock = 512;
    }
    float *bt = NULL;
    if (trans_b) {                 /* B is [n, k]: a transposed copy, small by the tests above */
        if (n * k > (1 << 22)) return 0;
        bt = malloc((size_t)(n * k) * sizeof *bt);
        if (!bt) return 0;
        for (int64_t j = 0; j < n; j++)
            for (int64_t kk = 0; kk < k; kk++) bt[kk * n + j] = b[j * k + kk];
        t.b = bt;
    }
    /* chunks of whole 8-row tiles */
    int64_t tiles = (m + MR - 1) / MR;
    parallel_for(tiles, 8, tiles_range, &t);
    free(bt);
    return 1;
}
