/* test_orthogonal.c: the orthogonal initialiser's matrix. For draws A (tall, r x c) the result
 * Q must be the Q of A's QR decomposition with a positive diagonal: Q^T Q = I and R = Q^T A
 * upper triangular with a positive diagonal (which makes it unique). Wide shapes get the
 * transpose of the tall one. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ir.h"
#include "rng.h"

static void check_shape(int64_t rows, int64_t cols) {
    int64_t r = rows > cols ? rows : cols, c = rows > cols ? cols : rows;
    float *a = malloc(r * c * sizeof *a), *q = malloc(r * c * sizeof *q);
    Rng rng;
    rng_init(&rng, 7 + rows * 31 + cols);
    rng_normal(&rng, a, r * c);
    memcpy(q, a, r * c * sizeof *a);
    orthogonal_matrix(q, rows, cols);
    /* the tall view t[i][j] (r x c) of the result */
#define T(i, j) (rows >= cols ? q[(i) * c + (j)] : q[(j) * r + (i)])
    double orth = 0, lower = 0, mindiag = 1e9;
    for (int64_t j = 0; j < c; j++)
        for (int64_t k = 0; k < c; k++) {
            double qq = 0, qa = 0;
            for (int64_t i = 0; i < r; i++) {
                qq += (double)T(i, j) * T(i, k);
                qa += (double)T(i, j) * a[i * c + k];      /* R = Q^T A */
            }
            orth = fmax(orth, fabs(qq - (j == k)));
            if (j > k) lower = fmax(lower, fabs(qa));
            if (j == k) mindiag = fmin(mindiag, qa);
        }
#undef T
    CHECK(orth < 1e-5, "orthogonal %lldx%lld: orthonormal (max |Q^T Q - I| %.1e)", (long long)rows, (long long)cols, orth);
    CHECK(lower < 1e-4 && mindiag > 0, "orthogonal %lldx%lld: Q^T A upper triangular (%.1e below) with a positive diagonal (min %.3g)",
          (long long)rows, (long long)cols, lower, mindiag);
    free(a);
    free(q);
}

int main(void) {
    check_shape(6, 6);
    check_shape(40, 7);
    check_shape(7, 40);
    check_shape(128, 512);
    check_shape(1, 5);
    CHECK_DONE();
}
