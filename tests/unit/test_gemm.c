/* test_gemm.c: runtime/gemm.c's products against a plain triple loop (in double), and bit for
 * bit the same with 1, 2 and 3 threads and run after run: the blocks are fixed by the shape,
 * only which thread takes which block varies. Shapes: the MLP VAE's (cut into blocks of
 * columns, of rows, transposed), an uneven one, a matrix-vector product, an outer product, a
 * thin product (gemm_thin) and a batch of small ones; each with and without a bias added to
 * every row as the blocks are stored (and B's column sums, a bias gradient, computed with it:
 * bit for bit the double-precision sum in row order, rounded once, as a reduction kernel). */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "gemm.h"
#include "threads.h"

typedef struct Shape { int64_t batch, m, n, k; int ta, tb; } Shape;

static float *colsum;               /* with the bias (B not transposed): B's column sums too */

static void run(const Shape *s, const float *a, const float *b, const float *bias, float *c) {
    if (bias) gemm_product_ep(s->m, s->n, s->k, s->ta, s->tb, a, b, bias, s->tb ? NULL : colsum, c);
    else gemm_batched(s->batch, s->m, s->n, s->k, s->ta, s->tb, a, b, c);
}

int main(void) {
    openblas_set_num_threads(1);               /* as compiler/main.c does */
    static const Shape shapes[] = {
        { 1, 128, 512, 784, 0, 0 }, { 1, 128, 784, 512, 0, 0 }, { 1, 512, 784, 128, 1, 0 },
        { 1, 784, 512, 128, 1, 0 }, { 1, 128, 512, 784, 0, 1 }, { 1, 1000, 333, 257, 0, 1 },
        { 1, 3000, 1, 700, 1, 0 }, { 1, 2000, 600, 1, 0, 0 }, { 1, 4096, 64, 300, 0, 0 },
        { 37, 20, 30, 40, 1, 1 },
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const Shape *s = &shapes[i];
        int64_t na = s->batch * s->m * s->k, nb = s->batch * s->k * s->n, nc = s->batch * s->m * s->n;
        float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *bias = malloc(s->n * sizeof *bias);
        float *c[4], *plain = malloc(nc * sizeof *plain);
        colsum = malloc(s->n * sizeof *colsum);
        for (int t = 0; t < 4; t++) c[t] = malloc(nc * sizeof *c[t]);
        srand(1);
        for (int64_t j = 0; j < na; j++) a[j] = (float)rand() / RAND_MAX - 0.5f;
        for (int64_t j = 0; j < nb; j++) b[j] = (float)rand() / RAND_MAX - 0.5f;
        for (int64_t j = 0; j < s->n; j++) bias[j] = (float)j / s->n;
        for (int with_bias = 0; with_bias < 2 && (!with_bias || s->batch == 1); with_bias++) {
            const float *bi = with_bias ? bias : NULL;
            for (int t = 1; t <= 3; t++) {
                threads_start(t);
                run(s, a, b, bi, c[t]);
                if (t == 2) run(s, a, b, bi, c[0]);  /* run after run */
            }
            threads_stop();
            int same = !memcmp(c[1], c[2], nc * sizeof *c[1]) && !memcmp(c[1], c[3], nc * sizeof *c[1]) &&
                       !memcmp(c[0], c[2], nc * sizeof *c[1]);
            double worst = 0;
            for (int64_t p = 0; p < s->batch; p++)
                for (int64_t r = 0; r < s->m; r++)
                    for (int64_t j = 0; j < s->n; j++) {
                        double want = bi ? bi[j] : 0;
                        for (int64_t q = 0; q < s->k; q++) {
                            float x = s->ta ? a[p * s->m * s->k + q * s->m + r] : a[p * s->m * s->k + r * s->k + q];
                            float y = s->tb ? b[p * s->k * s->n + j * s->k + q] : b[p * s->k * s->n + q * s->n + j];
                            want += (double)x * y;
                        }
                        double err = fabs(c[1][(p * s->m + r) * s->n + j] - want) / (1 + fabs(want));
                        if (err > worst) worst = err;
                    }
            int sums = 1;
            for (int64_t j = 0; bi && !s->tb && j < s->n; j++) {
                double acc = 0;
                for (int64_t q = 0; q < s->k; q++) acc += b[q * s->n + j];
                sums &= colsum[j] == (float)acc;
            }
            if (bi && !s->tb)
                CHECK(sums, "%lldx [%lld x %lld x %lld]%s: B's column sums with the product, bit for bit the "
                      "double sum in row order", (long long)s->batch, (long long)s->m, (long long)s->k,
                      (long long)s->n, s->ta ? " A^T" : "");
            int as_kernel = 1;       /* with the bias: the product's floats plus the bias, as a kernel adds it */
            if (!bi) memcpy(plain, c[1], nc * sizeof *plain);
            else for (int64_t p = 0; p < nc; p++) as_kernel &= c[1][p] == plain[p] + bi[p % s->n];
            CHECK(same && worst < 1e-5 && as_kernel, "%lldx [%lld x %lld x %lld]%s%s%s: 1, 2, 3 threads and a second run bit-identical "
                  "(%s), within %.1e of the double-precision sum (1e-5)%s", (long long)s->batch, (long long)s->m,
                  (long long)s->k, (long long)s->n, s->ta ? " A^T" : "", s->tb ? " B^T" : "", bi ? " + bias" : "",
                  same ? "yes" : "no", worst, !bi ? "" : as_kernel ? ", and the product's floats plus the bias bit for bit" : ", NOT the product plus the bias");
        }
        free(a); free(b); free(bias); free(plain); free(colsum);
        for (int t = 0; t < 4; t++) free(c[t]);
    }
    CHECK_DONE();
}
