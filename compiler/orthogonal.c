/* orthogonal.c: the orthogonal initialiser's matrix (Keras's Orthogonal): the Q of a QR
 * decomposition of a normal matrix, with the signs that make R's diagonal positive. Gram-Schmidt
 * with the columns orthogonalised twice, in double, gives exactly that Q (QR with a positive
 * diagonal is unique) without needing LAPACK. */
#include <math.h>
#include <stdlib.h>
#include "ir.h"

void orthogonal_matrix(float *a, int64_t rows, int64_t cols) {
    int64_t r = rows > cols ? rows : cols, c = rows > cols ? cols : rows;   /* tall: r x c */
    double *q = malloc((size_t)(r * c) * sizeof *q);
    if (!q) return;
    for (int64_t i = 0; i < r * c; i++) q[i] = a[i];               /* a holds r x c draws */
    for (int64_t j = 0; j < c; j++) {
        for (int pass = 0; pass < 2; pass++)
            for (int64_t k = 0; k < j; k++) {
                double dot = 0;
                for (int64_t i = 0; i < r; i++) dot += q[i * c + k] * q[i * c + j];
                for (int64_t i = 0; i < r; i++) q[i * c + j] -= dot * q[i * c + k];
            }
        double norm = 0;
        for (int64_t i = 0; i < r; i++) norm += q[i * c + j] * q[i * c + j];
        norm = sqrt(norm);
        for (int64_t i = 0; i < r; i++) q[i * c + j] = norm > 0 ? q[i * c + j] / norm : 0;
    }
    /* a wide matrix is the transpose of the tall one */
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++)
            if (rows >= cols) a[i * c + j] = (float)q[i * c + j];
            else a[j * r + i] = (float)q[i * c + j];
    free(q);
}
