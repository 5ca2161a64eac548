/* gemm.h: row-major matrix products C = op(A) op(B) (C [m, n], inner dimension k) on gmc's
 * thread pool, cut into blocks fixed by the shape alone, so the results do not depend on the
 * thread count (OpenBLAS itself runs single-threaded inside each block). */
#ifndef GMC_GEMM_H
#define GMC_GEMM_H
#include <stdint.h>

void gemm_product(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, const float *a, const float *b, float *c);
/* the same with an epilogue, each part NULL when absent: bias [n] added to every row of C as
 * each block is stored; colsum [n] = the sums of B's columns over its k rows (B not
 * transposed: the bias gradient next to a dense layer's weight gradient), in double and
 * rounded once, as a reduction kernel sums */
void gemm_product_ep(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, const float *a,
                     const float *b, const float *bias, float *colsum, float *c);
/* `batch` products of consecutive matrices */
void gemm_batched(int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                  const float *a, const float *b, float *c);
#endif
