/* gemm_thin.h: C = op(A) op(B), row-major, for products with a thin side (convolutions), by
 * gmc's own micro-kernel; returns 0 without touching C when the shape or the CPU is not one
 * it covers (the caller then uses OpenBLAS). */
#ifndef GMC_GEMM_THIN_H
#define GMC_GEMM_THIN_H
#include <stdint.h>

int gemm_thin(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a,
              const float *b, float *c);
/* AVX-512 present and GMC_NO_THIN_GEMM unset: gmc's micro-kernels may run */
int gemm_thin_enabled(void);
#endif
