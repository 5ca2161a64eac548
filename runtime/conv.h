/* conv.h: sliding windows over channels-last images [N, H, W, C]: their geometry (output
 * sizes, TensorFlow's "same" padding) and the two data movements every convolution, pooling
 * and transposed convolution is built from:
 *   im2col: image [N, H, W, C] -> cols [N, Ho, Wo, kh*kw*C], the window of each output
 *           point, taps in (ky, kx, c) order (a Keras kernel [kh, kw, C, O] reshaped to
 *           [kh*kw*C, O] multiplies it); taps outside the image read 0;
 *   col2im: its adjoint, cols -> image, every tap added back where it was read.
 * The builtins (shape checks) and the runtime (data movement) share these definitions. */
#ifndef GMC_CONV_H
#define GMC_CONV_H
#include <stdint.h>

typedef struct ConvWindow {
    int kh, kw;            /* taps */
    int sy, sx;            /* strides */
    int dy, dx;            /* dilations */
    int pt, pb, pl, pr;    /* zero padding: top, bottom, left, right */
} ConvWindow;

/* A window sliding over one image shape: everything im2col and col2im need. */
typedef struct ConvGeom {
    int64_t n, h, w, c;    /* the image */
    int64_t ho, wo;        /* the grid of windows */
    ConvWindow win;
} ConvGeom;

/* the extent of k taps d apart */
static inline int64_t conv_span(int k, int d) { return (int64_t)(k - 1) * d + 1; }

/* Windows along one axis of length `in` with the given padding: floor((in + before + after
 * - span) / s) + 1, or 0 when not even one window fits. */
int64_t conv_out_size(int64_t in, int k, int s, int d, int before, int after);

/* TensorFlow's "SAME": out = ceil(in / s) windows, and the padding that needs,
 * total = max((out - 1) * s + span - in, 0), split with the odd pixel after. */
void conv_same_padding(int64_t in, int k, int s, int d, int *before, int *after);

/* The output length of a transposed convolution (Keras's deconv_output_length): "same":
 * in * s; "valid": in * s + max(span - s, 0); with output_padding >= 0:
 * (in - 1) * s + span - 2 * pad + output_padding, pad = span / 2 for "same", 0 for "valid". */
int64_t conv_transpose_out_size(int64_t in, int k, int s, int d, int same, int output_padding);

/* The geometry of `win` over an image [n, h, w, c]; ho or wo is 0 if no window fits. */
ConvGeom conv_geom(const ConvWindow *win, int64_t n, int64_t h, int64_t w, int64_t c);

void im2col(const ConvGeom *g, const float *image, float *cols);
void col2im(const ConvGeom *g, const float *cols, float *image);   /* overwrites image */
#endif
