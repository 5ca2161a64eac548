/* ir_conv.c: convolutions, transposed convolutions, pooling and upsampling, channels-last, as
 * compositions of IR ops (im2col / col2im, matmul, reshape, reductions), so autodiff and
 * fusion need to know nothing about them:
 *   conv2d(x, w)           = im2col(x) @ reshape(w, [kh*kw*C, O])
 *   conv2d_transpose(x, w) = col2im(x @ reshape(w, [kh*kw*O, C])^T), its adjoint in x
 *   pool2d(x)              = max or mean over the taps of reshape(im2col(x), [.., kh*kw, C])
 *   upsample2d(x)          = broadcast copies (nearest) or interpolation matrices (bilinear) */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ir.h"

static int reshape2(IrGraph *g, int a, int64_t rows, int64_t cols) {
    int64_t shape[2] = { rows, cols };
    return ir_reshape(g, a, 2, shape);
}

static int is_pointwise(const ConvWindow *w) {   /* a 1x1 window at every pixel */
    return w->kh == 1 && w->kw == 1 && w->sy == 1 && w->sx == 1 &&
           !w->pt && !w->pb && !w->pl && !w->pr;
}

static int conv_group(IrGraph *g, int x, int w, const ConvWindow *win) {
    IrNode wn = g->nodes[w];
    int64_t k = ir_numel(&wn) / wn.shape[3];
    int cols = is_pointwise(win) ? x : ir_im2col(g, x, win);
    if (cols < 0) return -1;
    return ir_matmul(g, cols, reshape2(g, w, k, wn.shape[3]), 0, 0);
}

/* the block [start, start + size) of axis `axis` */
static int slice_axis(IrGraph *g, int a, int axis, int64_t start, int64_t size) {
    IrNode n = g->nodes[a];
    int64_t at[IR_MAXDIM] = { 0 };
    at[axis] = start;
    n.shape[axis] = size;
    return ir_slice(g, a, at, n.shape);
}

/* Groups of few channels (depthwise: one in, one out per group): the taps times the filters,
 * summed over taps and a group's input channels, as one fused reduction. A matrix product
 * per group would be [pixels, taps] @ [taps, 1], plus a slice and a concat per group: with
 * 128 groups, hundreds of tiny steps and distinct kernels (M14's U-Net compiled 2294). */
static int conv_few_channels(IrGraph *g, int x, int w, const ConvWindow *win, int64_t groups) {
    IrNode xn = g->nodes[x], wn = g->nodes[w];
    int64_t cg = xn.shape[3] / groups, og = wn.shape[3] / groups, taps = (int64_t)win->kh * win->kw;
    ConvGeom geo = conv_geom(win, xn.shape[0], xn.shape[1], xn.shape[2], xn.shape[3]);
    int cols = ir_im2col(g, x, win);   /* [n, ho, wo, taps * C], C = groups x cg */
    if (cols < 0) return -1;
    int64_t cs[5] = { geo.n * geo.ho * geo.wo, taps, groups, cg, 1 };
    int64_t ws[4] = { taps, cg, groups, og }, ws5[5] = { 1, taps, groups, cg, og };
    int perm[4] = { 0, 2, 1, 3 };
    int wt = ir_reshape(g, ir_transpose(g, ir_reshape(g, w, 4, ws), perm), 5, ws5);
    int prod = ir_binary(g, IR_MUL, ir_reshape(g, cols, 5, cs), wt);
    if (prod < 0) return -1;
    int64_t out[4] = { geo.n, geo.ho, geo.wo, groups * og };
    return ir_reshape(g, ir_reduce(g, IR_SUM, prod, (1u << 1) | (1u << 3)), 4, out);
}

int ir_conv2d(IrGraph *g, int x, int w, const ConvWindow *win, int groups) {
    if (groups <= 1) return conv_group(g, x, w, win);
    if ((g->nodes[x].shape[3] / groups) * (g->nodes[w].shape[3] / groups) <= 16)
        return conv_few_channels(g, x, w, win, groups);
    /* grouped: each group of C/groups input channels has its own O/groups filters */
    IrNode xn = g->nodes[x], wn = g->nodes[w];
    int64_t cg = xn.shape[3] / groups, og = wn.shape[3] / groups;
    int y = -1;
    for (int k = 0; k < groups; k++) {
        int part = conv_group(g, slice_axis(g, x, 3, k * cg, cg), slice_axis(g, w, 3, k * og, og), win);
        if (part < 0) return -1;
        y = y < 0 ? part : ir_concat(g, y, part, 3);
    }
    return y;
}

int ir_conv2d_transpose(IrGraph *g, int x, int w, const ConvWindow *win, int64_t ho, int64_t wo) {
    IrNode wn = g->nodes[w];
    int64_t c = wn.shape[3];
    int cols = ir_matmul(g, x, reshape2(g, w, ir_numel(&wn) / c, c), 0, 1);
    if (cols < 0) return -1;
    IrNode xn = g->nodes[x];
    if (is_pointwise(win) && ho == xn.shape[1] && wo == xn.shape[2]) return cols;
    return ir_col2im(g, cols, win, ho, wo);
}

/* A constant [1, Ho, Wo, kh, kw, 1] (or [1, Ho, Wo, 1] when per_window) from f(tap inside). */
static int window_table(IrGraph *g, const ConvGeom *geo, int per_window, float inside, float outside) {
    const ConvWindow *w = &geo->win;
    int64_t taps = (int64_t)w->kh * w->kw, size = geo->ho * geo->wo * (per_window ? 1 : taps);
    float *t = malloc(size * sizeof *t);
    for (int64_t oy = 0; oy < geo->ho; oy++)
        for (int64_t ox = 0; ox < geo->wo; ox++) {
            int64_t count = 0, at = (oy * geo->wo + ox) * (per_window ? 1 : taps);
            for (int ky = 0; ky < w->kh; ky++)
                for (int kx = 0; kx < w->kw; kx++) {
                    int64_t iy = oy * w->sy - w->pt + (int64_t)ky * w->dy;
                    int64_t ix = ox * w->sx - w->pl + (int64_t)kx * w->dx;
                    int in = iy >= 0 && iy < geo->h && ix >= 0 && ix < geo->w;
                    count += in;
                    if (!per_window) t[at++] = in ? inside : outside;
                }
            if (per_window) t[at] = 1.0f / (float)(count ? count : 1);
        }
    int64_t shape6[6] = { 1, geo->ho, geo->wo, w->kh, w->kw, 1 }, shape4[4] = { 1, geo->ho, geo->wo, 1 };
    return per_window ? ir_data(g, t, 4, shape4) : ir_data(g, t, 6, shape6);
}

int ir_pool2d(IrGraph *g, int x, const ConvWindow *win, int is_max) {
    IrNode xn = g->nodes[x];
    int cols = ir_im2col(g, x, win);
    if (cols < 0) return -1;
    ConvGeom geo = conv_geom(win, xn.shape[0], xn.shape[1], xn.shape[2], xn.shape[3]);
    int64_t taps = (int64_t)win->kh * win->kw;
    /* the taps as two axes (ky, kx): without padding, lower.c reads the windows straight
     * from the image through this reshape (an affine map), with no im2col step */
    int64_t shape[6] = { geo.n, geo.ho, geo.wo, win->kh, win->kw, geo.c };
    int t = ir_reshape(g, cols, 6, shape);
    int padded = win->pt || win->pb || win->pl || win->pr;
    if (is_max) {
        /* im2col reads 0 outside the image; push those taps below any value instead */
        if (padded) t = ir_binary(g, IR_ADD, t, window_table(g, &geo, 0, 0, -FLT_MAX));
        return ir_reduce(g, IR_MAXR, t, (1u << 3) | (1u << 4));
    }
    int sum = ir_reduce(g, IR_SUM, t, (1u << 3) | (1u << 4));
    int scale = padded ? window_table(g, &geo, 1, 0, 0) : ir_const(g, 1.0f / (float)taps, 0, NULL);
    return ir_binary(g, IR_MUL, sum, scale);
}

/* [n_out, n_in]^T as [n_in, n_out]: bilinear weights with half-pixel centres, edges clamped */
static int interpolation(IrGraph *g, int64_t n_in, int f) {
    int64_t n_out = n_in * f;
    float *m = calloc(n_in * n_out, sizeof *m);
    for (int64_t o = 0; o < n_out; o++) {
        double src = (o + 0.5) / f - 0.5;
        if (src < 0) src = 0;
        int64_t lo = (int64_t)floor(src), hi = lo + 1 < n_in ? lo + 1 : n_in - 1;
        double frac = src - (double)lo;
        m[lo * n_out + o] += (float)(1 - frac);
        m[hi * n_out + o] += (float)frac;
    }
    int64_t shape[2] = { n_in, n_out };
    return ir_data(g, m, 2, shape);
}

int ir_upsample2d(IrGraph *g, int x, int fy, int fx, int bilinear) {
    IrNode xn = g->nodes[x];
    int64_t n = xn.shape[0], h = xn.shape[1], w = xn.shape[2], c = xn.shape[3];
    if (fy == 1 && fx == 1) return x;
    if (!bilinear) {           /* every pixel broadcast to an fy x fx block */
        int64_t s6[6] = { n, h, 1, w, 1, c }, b6[6] = { n, h, fy, w, fx, c };
        int64_t out[4] = { n, h * fy, w * fx, c };
        int b = ir_broadcast(g, ir_reshape(g, x, 6, s6), 6, b6);
        return ir_reshape(g, b, 4, out);
    }
    /* along W: [N, H, C, W] @ [W, Wo]; along H: [N, Wo, C, H] @ [H, Ho]; back to NHWC */
    int to_w[4] = { 0, 1, 3, 2 }, to_h[4] = { 0, 3, 2, 1 }, back[4] = { 0, 3, 1, 2 };
    int t = ir_matmul(g, ir_transpose(g, x, to_w), interpolation(g, w, fx), 0, 0);
    t = ir_matmul(g, ir_transpose(g, t, to_h), interpolation(g, h, fy), 0, 0);
    return ir_transpose(g, t, back);
}
