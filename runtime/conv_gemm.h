/* conv_gemm.h: the three products of a convolution computed from the image itself, without
 * an im2col matrix (conv_gemm.c says how). g is the window over the input image x [N, H, W, C];
 * f the filters; w the kernel [kh*kw*C, f] (for CONV_DGRAD: [kh*kw*C, f] if trans_b, else
 * [f, kh*kw*C]).
 *   CONV_FWD:   c = y [N*Ho*Wo, f]    from a = x,  b = w, plus bias [f] unless it is NULL
 *   CONV_WGRAD: c = dw [kh*kw*C, f]  from a = x,  b = dy [N*Ho*Wo, f]
 *   CONV_DGRAD: c = dx [N, H, W, C]  from a = dy, b = w */
#ifndef GMC_CONV_GEMM_H
#define GMC_CONV_GEMM_H
#include <stdint.h>
#include "conv.h"

enum { CONV_FWD = 1, CONV_WGRAD, CONV_DGRAD };

/* whether conv_gemm runs the product without a temporary im2col matrix (otherwise it makes
 * one and calls OpenBLAS: same result, im2col's memory) */
int conv_gemm_implicit(const ConvGeom *g, int mode, int64_t f);
void conv_gemm(const ConvGeom *g, int mode, const float *a, const float *b, float *c, int64_t f,
               int trans_b, const float *bias);

/* What the step does as it stores its result (the passes after it folded in), each part
 * NULL / 0 when absent:
 *   CONV_FWD:   c = product + bias, then max(., 0) if relu
 *   CONV_WGRAD: bias_grad[j] = the sum of b's (dy's) column j over all its rows, in double,
 *               rounded once
 *   CONV_DGRAD: c = dx + bias [C] (a transposed convolution's), then max(., 0) if relu, then
 *               times (mask > 0), mask [N, H, W, C] (a relu's gradient)
 * (each step the bits of the separate passes) */
typedef struct ConvEpilogue {
    const float *bias;
    int relu;
    float *bias_grad;
    const float *mask;
} ConvEpilogue;
void conv_gemm_ep(const ConvGeom *g, int mode, const float *a, const float *b, float *c, int64_t f,
                  int trans_b, const ConvEpilogue *ep);
#endif
