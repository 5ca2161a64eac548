/* gemm.h: row-major matrix products C = op(A) op(B) (C [m, n], inner dimension k) on gmc's
 * thread pool, cut into blocks fixed by the shape alone, so the results do not depend on the
 * thread count (OpenBLAS itself runs single-threaded inside each block). */
#ifndef GMC_GEMM_H
#define GMC_GEMM_H
#include <stdint.h>

void gemm_product(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, const float *a, const float *b, float *c);
/* the same, plus bias [n] added to every row of C as each block is stored (bias may be NULL) */
void gemm_product_bias(int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, const float *a,
                       const float *b, const float *bias, float *c);
/* `batch` products of consecutive matrices */
void gemm_batched(int64_t batch, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                  const float *a, const float *b, float *c);
#endif
