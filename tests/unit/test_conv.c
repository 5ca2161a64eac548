/* test_conv.c: the convolution family. The window geometry against hand-computed sizes
 * (TensorFlow's "same" padding included); im2col and col2im against each other (adjoint:
 * <col2im(u), v> = <u, im2col(v)>); every op's forward value against a direct loop in double
 * and its gradient against central finite differences, through fused JIT kernels, unfused
 * kernels and the reference interpreter: im2col, col2im, conv2d (strides, dilation, odd sizes
 * with asymmetric padding, groups), conv2d_transpose, max and average pooling, nearest and
 * bilinear upsampling, pad, slice, concat. */
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "plan.h"
#include "threads.h"

/* ---- geometry ------------------------------------------------------------------------ */

static void check_geometry(void) {
    /* in, k, s, d -> TF "same" padding (before, after) and the number of windows */
    static const struct { int64_t in; int k, s, d, before, after; int64_t out; } same[] = {
        { 28, 3, 2, 1, 0, 1, 14 }, { 32, 3, 2, 1, 0, 1, 16 }, { 7, 5, 1, 1, 2, 2, 7 },
        { 8, 4, 2, 1, 1, 1, 4 },   { 5, 3, 1, 2, 2, 2, 5 },   { 6, 1, 2, 1, 0, 0, 3 },
        { 9, 4, 3, 1, 0, 1, 3 },   { 7, 3, 2, 1, 1, 1, 4 },   { 10, 2, 1, 1, 0, 1, 10 },
        { 3, 5, 1, 1, 2, 2, 3 },   { 1, 3, 2, 1, 1, 1, 1 },
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        int b, a;
        conv_same_padding(same[i].in, same[i].k, same[i].s, same[i].d, &b, &a);
        int64_t out = conv_out_size(same[i].in, same[i].k, same[i].s, same[i].d, b, a);
        CHECK(b == same[i].before && a == same[i].after && out == same[i].out,
              "\"same\" on %lld, k %d, s %d, d %d: padding (%d, %d) and %lld windows (want (%d, %d), %lld)",
              (long long)same[i].in, same[i].k, same[i].s, same[i].d, b, a, (long long)out,
              same[i].before, same[i].after, (long long)same[i].out);
    }
    CHECK(conv_out_size(28, 2, 2, 1, 0, 0) == 14 && conv_out_size(7, 2, 2, 1, 0, 0) == 3 &&
          conv_out_size(7, 3, 1, 2, 0, 0) == 3 && conv_out_size(4, 5, 1, 1, 0, 0) == 0 &&
          conv_out_size(4, 5, 1, 1, 1, 0) == 1 && conv_out_size(4, 5, 1, 1, 1, 1) == 2,
          "\"valid\" and explicit window counts (floor; 0 when none fits)");
    /* Keras's deconv_output_length */
    CHECK(conv_transpose_out_size(4, 3, 2, 1, 1, -1) == 8 && conv_transpose_out_size(7, 5, 2, 1, 1, -1) == 14 &&
          conv_transpose_out_size(3, 3, 2, 1, 0, -1) == 7 && conv_transpose_out_size(3, 2, 3, 1, 0, -1) == 9 &&
          conv_transpose_out_size(7, 3, 2, 1, 1, 0) == 13 && conv_transpose_out_size(7, 3, 2, 1, 1, 1) == 14 &&
          conv_transpose_out_size(3, 3, 2, 1, 0, 1) == 8 && conv_transpose_out_size(4, 3, 1, 2, 1, -1) == 4,
          "transposed output sizes follow Keras (same: in*s, valid: in*s + max(k - s, 0), output_padding)");
}

/* ---- im2col / col2im ------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float urand(float lo, float hi) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

static const ConvWindow windows[] = {
    { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, { 3, 3, 2, 2, 1, 1, 0, 1, 1, 1 }, { 3, 2, 1, 2, 2, 1, 2, 2, 0, 1 },
    { 1, 1, 2, 3, 1, 1, 0, 0, 0, 0 }, { 4, 3, 3, 2, 1, 3, 2, 1, 3, 2 }, { 2, 2, 2, 2, 1, 1, 0, 0, 0, 0 },
};

/* the tap (ky, kx) of window (oy, ox), by definition; -1 outside the image */
static int64_t tap_at(const ConvGeom *g, int64_t n, int64_t oy, int64_t ox, int ky, int kx) {
    const ConvWindow *w = &g->win;
    int64_t iy = oy * w->sy - w->pt + (int64_t)ky * w->dy, ix = ox * w->sx - w->pl + (int64_t)kx * w->dx;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) return -1;
    return ((n * g->h + iy) * g->w + ix) * g->c;
}

static void check_im2col(void) {
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        ConvGeom g = conv_geom(&windows[i], 2, 7, 6, 3);
        int64_t ni = g.n * g.h * g.w * g.c, K = (int64_t)g.win.kh * g.win.kw * g.c;
        int64_t nc = g.n * g.ho * g.wo * K;
        float *img = malloc(ni * sizeof *img), *cols = malloc(nc * sizeof *cols);
        float *u = malloc(nc * sizeof *u), *back = malloc(ni * sizeof *back);
        for (int64_t k = 0; k < ni; k++) img[k] = urand(-1, 1);
        for (int64_t k = 0; k < nc; k++) { u[k] = urand(-1, 1); cols[k] = 12345; }
        im2col(&g, img, cols);
        int bad = 0;
        for (int64_t n = 0; n < g.n; n++)
            for (int64_t oy = 0; oy < g.ho; oy++)
                for (int64_t ox = 0; ox < g.wo; ox++)
                    for (int ky = 0; ky < g.win.kh; ky++)
                        for (int kx = 0; kx < g.win.kw; kx++)
                            for (int64_t c = 0; c < g.c; c++) {
                                int64_t at = tap_at(&g, n, oy, ox, ky, kx);
                                float want = at < 0 ? 0 : img[at + c];
                                bad += cols[(((n * g.ho + oy) * g.wo + ox) * g.win.kh + ky) * g.win.kw * g.c + kx * g.c + c] != want;
                            }
        for (int64_t k = 0; k < ni; k++) back[k] = 777;   /* col2im must overwrite */
        col2im(&g, u, back);
        double lhs = 0, rhs = 0, scale = 0;
        for (int64_t k = 0; k < ni; k++) { lhs += (double)back[k] * img[k]; scale += fabs((double)back[k] * img[k]); }
        for (int64_t k = 0; k < nc; k++) rhs += (double)u[k] * cols[k];
        CHECK(!bad && fabs(lhs - rhs) <= 1e-5 * scale,
              "im2col window %zu (k %dx%d s %d,%d d %d,%d pad %d,%d,%d,%d over 7x6 -> %lldx%lld): "
              "taps exact (%d wrong), <col2im(u), v> = <u, im2col(v)> (%.9g vs %.9g)", i,
              g.win.kh, g.win.kw, g.win.sy, g.win.sx, g.win.dy, g.win.dx, g.win.pt, g.win.pb,
              g.win.pl, g.win.pr, (long long)g.ho, (long long)g.wo, bad, lhs, rhs);
        free(img); free(cols); free(u); free(back);
    }
}

/* on the thread pool, bit for bit what one thread computes */
static void check_threads(void) {
    enum { NWIN = sizeof windows / sizeof windows[0] };
    ConvGeom gs[NWIN];
    float *c1[NWIN], *b1[NWIN], *img[NWIN], *u[NWIN];
    for (int i = 0; i < NWIN; i++) {
        ConvGeom g = gs[i] = conv_geom(&windows[i], 64, 17, 15, 8);
        int64_t ni = g.n * g.h * g.w * g.c, nc = g.n * g.ho * g.wo * g.win.kh * g.win.kw * g.c;
        img[i] = malloc(ni * sizeof *img[i]);
        u[i] = malloc(nc * sizeof *u[i]);
        c1[i] = malloc(nc * sizeof *c1[i]);
        b1[i] = malloc(ni * sizeof *b1[i]);
        for (int64_t k = 0; k < ni; k++) img[i][k] = urand(-1, 1);
        for (int64_t k = 0; k < nc; k++) u[i][k] = urand(-1, 1);
        im2col(&g, img[i], c1[i]);
        col2im(&g, u[i], b1[i]);
    }
    threads_start(3);
    for (int i = 0; i < NWIN; i++) {
        ConvGeom g = gs[i];
        int64_t ni = g.n * g.h * g.w * g.c, nc = g.n * g.ho * g.wo * g.win.kh * g.win.kw * g.c;
        float *c3 = malloc(nc * sizeof *c3), *b3 = malloc(ni * sizeof *b3);
        im2col(&g, img[i], c3);
        col2im(&g, u[i], b3);
        CHECK(!memcmp(c1[i], c3, nc * sizeof *c3) && !memcmp(b1[i], b3, ni * sizeof *b3),
              "im2col and col2im window %d: 3 threads give the same bits as 1", i);
        free(img[i]); free(u[i]); free(c1[i]); free(b1[i]); free(c3); free(b3);
    }
    threads_stop();
}

/* ---- forward values and gradients through the whole lowering ---------------------------- */

static ParamTable params;
static Jit *jit;

typedef struct Input { int ndim; int64_t shape[5]; } Input;
typedef struct Case Case;
struct Case {
    const char *name;
    int nin;
    Input in[2];
    ConvWindow win;
    int groups;                 /* conv2d; also the pool kind (1 max) and upsampling mode */
    int64_t ho, wo;             /* conv2d_transpose and col2im: the image size */
    int distinct;               /* 1: inputs spread apart (max pooling has kinks at ties);
                                   2: a nonlinear op inside (a small step) */
    int (*build)(IrGraph *g, const Case *c, const int *x);
    void (*reference)(const Case *c, float *const *x, const IrNode *y, double *out);
};

static ConvGeom geom_of(const Case *c, const int64_t *image) {
    return conv_geom(&c->win, image[0], image[1], image[2], image[3]);
}

static int b_im2col(IrGraph *g, const Case *c, const int *x) { return ir_im2col(g, x[0], &c->win); }
static int b_col2im(IrGraph *g, const Case *c, const int *x) { return ir_col2im(g, x[0], &c->win, c->ho, c->wo); }
static int b_conv(IrGraph *g, const Case *c, const int *x) { return ir_conv2d(g, x[0], x[1], &c->win, c->groups); }
static int b_deconv(IrGraph *g, const Case *c, const int *x) { return ir_conv2d_transpose(g, x[0], x[1], &c->win, c->ho, c->wo); }
static int b_pool(IrGraph *g, const Case *c, const int *x) { return ir_pool2d(g, x[0], &c->win, c->groups); }
static int b_upsample(IrGraph *g, const Case *c, const int *x) { return ir_upsample2d(g, x[0], c->win.sy, c->win.sx, c->groups); }
static int b_pad(IrGraph *g, const Case *c, const int *x) {
    (void)c;
    int64_t lo[4] = { 0, 1, 2, 0 }, hi[4] = { 1, 0, 3, 2 };
    return ir_pad(g, x[0], lo, hi);
}
static int b_slice(IrGraph *g, const Case *c, const int *x) {
    (void)c;
    int64_t at[4] = { 1, 2, 1, 1 }, shape[4] = { 1, 3, 4, 2 };
    return ir_slice(g, x[0], at, shape);
}
static int b_slice_exp(IrGraph *g, const Case *c, const int *x) {   /* a slice of an inlined op */
    (void)c;
    int64_t at[2] = { 1, 2 }, shape[2] = { 2, 3 };
    return ir_slice(g, ir_unary(g, IR_TANH, x[0]), at, shape);
}
static int b_concat_last(IrGraph *g, const Case *c, const int *x) {
    (void)c;
    return ir_concat(g, ir_unary(g, IR_TANH, x[0]), x[1], 3);
}
static int b_concat_h(IrGraph *g, const Case *c, const int *x) { (void)c; return ir_concat(g, x[0], x[1], 1); }

/* direct loops in double */
static void r_im2col(const Case *c, float *const *x, const IrNode *y, double *out) {
    ConvGeom g = geom_of(c, c->in[0].shape);
    (void)y;
    int64_t i = 0;
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t oy = 0; oy < g.ho; oy++)
            for (int64_t ox = 0; ox < g.wo; ox++)
                for (int ky = 0; ky < g.win.kh; ky++)
                    for (int kx = 0; kx < g.win.kw; kx++)
                        for (int64_t ch = 0; ch < g.c; ch++) {
                            int64_t at = tap_at(&g, n, oy, ox, ky, kx);
                            out[i++] = at < 0 ? 0 : x[0][at + ch];
                        }
}

static void r_conv(const Case *c, float *const *x, const IrNode *y, double *out) {
    const int64_t *s = c->in[0].shape, *ws = c->in[1].shape;
    ConvGeom g = geom_of(c, s);
    int64_t O = ws[3], cg = s[3] / c->groups, og = O / c->groups;
    memset(out, 0, ir_numel(y) * sizeof *out);
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t oy = 0; oy < g.ho; oy++)
            for (int64_t ox = 0; ox < g.wo; ox++)
                for (int64_t o = 0; o < O; o++) {
                    double acc = 0;
                    int64_t grp = o / og;
                    for (int ky = 0; ky < g.win.kh; ky++)
                        for (int kx = 0; kx < g.win.kw; kx++) {
                            int64_t at = tap_at(&g, n, oy, ox, ky, kx);
                            if (at < 0) continue;
                            for (int64_t ci = 0; ci < cg; ci++)
                                acc += (double)x[0][at + grp * cg + ci] * x[1][((ky * ws[1] + kx) * ws[2] + ci) * O + o];
                        }
                    out[((n * g.ho + oy) * g.wo + ox) * O + o] = acc;
                }
}

/* the transposed convolution scatters every input pixel through the kernel */
static void r_deconv(const Case *c, float *const *x, const IrNode *y, double *out) {
    const int64_t *s = c->in[0].shape, *ws = c->in[1].shape;
    ConvGeom g = conv_geom(&c->win, s[0], c->ho, c->wo, ws[2]);   /* over the output image */
    int64_t O = ws[2], C = ws[3];
    memset(out, 0, ir_numel(y) * sizeof *out);
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t iy = 0; iy < s[1]; iy++)
            for (int64_t ix = 0; ix < s[2]; ix++)
                for (int ky = 0; ky < g.win.kh; ky++)
                    for (int kx = 0; kx < g.win.kw; kx++) {
                        int64_t at = tap_at(&g, n, iy, ix, ky, kx);
                        if (at < 0) continue;
                        for (int64_t o = 0; o < O; o++)
                            for (int64_t ci = 0; ci < C; ci++)
                                out[at + o] += (double)x[0][((n * s[1] + iy) * s[2] + ix) * C + ci] *
                                               x[1][((ky * ws[1] + kx) * O + o) * C + ci];
                    }
}

static void r_pool(const Case *c, float *const *x, const IrNode *y, double *out) {
    ConvGeom g = geom_of(c, c->in[0].shape);
    (void)y;
    for (int64_t n = 0; n < g.n; n++)
        for (int64_t oy = 0; oy < g.ho; oy++)
            for (int64_t ox = 0; ox < g.wo; ox++)
                for (int64_t ch = 0; ch < g.c; ch++) {
                    double best = -DBL_MAX, sum = 0;
                    int count = 0;
                    for (int ky = 0; ky < g.win.kh; ky++)
                        for (int kx = 0; kx < g.win.kw; kx++) {
                            int64_t at = tap_at(&g, n, oy, ox, ky, kx);
                            if (at < 0) continue;
                            best = fmax(best, x[0][at + ch]);
                            sum += x[0][at + ch];
                            count++;
                        }
                    out[((n * g.ho + oy) * g.wo + ox) * g.c + ch] = c->groups ? best : sum / count;
                }
}

/* tf.image.resize(bilinear, half_pixel_centers) along one axis: source index and weight */
static void source(int64_t o, int f, int64_t n_in, int64_t *lo, int64_t *hi, double *frac) {
    double s = fmax((o + 0.5) / f - 0.5, 0);
    *lo = (int64_t)floor(s);
    *hi = *lo + 1 < n_in ? *lo + 1 : n_in - 1;
    *frac = s - (double)*lo;
}

static void r_upsample(const Case *c, float *const *x, const IrNode *y, double *out) {
    const int64_t *s = c->in[0].shape;
    int64_t H = s[1], W = s[2], C = s[3], fy = c->win.sy, fx = c->win.sx;
    (void)y;
    for (int64_t n = 0; n < s[0]; n++)
        for (int64_t oy = 0; oy < H * fy; oy++)
            for (int64_t ox = 0; ox < W * fx; ox++)
                for (int64_t ch = 0; ch < C; ch++) {
                    double v;
                    if (!c->groups) v = x[0][((n * H + oy / fy) * W + ox / fx) * C + ch];
                    else {
                        int64_t y0, y1, x0, x1;
                        double ty, tx;
                        source(oy, (int)fy, H, &y0, &y1, &ty);
                        source(ox, (int)fx, W, &x0, &x1, &tx);
#define PX(yy, xx) (double)x[0][((n * H + (yy)) * W + (xx)) * C + ch]
                        v = (1 - ty) * ((1 - tx) * PX(y0, x0) + tx * PX(y0, x1)) +
                            ty * ((1 - tx) * PX(y1, x0) + tx * PX(y1, x1));
#undef PX
                    }
                    out[((n * H * fy + oy) * W * fx + ox) * C + ch] = v;
                }
}

static int add_input(IrGraph *g, const Input *in, int distinct) {
    char name[32];
    snprintf(name, sizeof name, "in%d", params.n);
    int idx = params_add(&params, strdup(name), "t", in->ndim, in->shape, INIT_ZEROS, 0, 0, 1, (Loc){ 0 });
    Param *p = &params.items[idx];
    for (int64_t i = 0; i < p->size; i++) p->data[i] = urand(-2, 2);
    if (distinct == 1) {     /* a shuffled ladder of values 0.05 apart: no two within 2h */
        for (int64_t i = 0; i < p->size; i++) p->data[i] = 0.05f * (float)(i - p->size / 2);
        for (int64_t i = p->size - 1; i > 0; i--) {
            int64_t j = (int64_t)(urand(0, 1) * (float)(i + 1));
            if (j > i) j = i;
            float t = p->data[i];
            p->data[i] = p->data[j];
            p->data[j] = t;
        }
    }
    return ir_leaf(g, IR_PARAM, in->ndim, in->shape, idx);
}

static double run_loss(Plan *p, int loss) {
    Rng rng = { 0, 0 };
    plan_run(p, &rng);
    return *plan_node(p, loss);
}

static void check_case(const Case *c, int fuse, int interpret) {
    const char *mode = interpret ? "interpreted" : fuse ? "fused JIT" : "unfused JIT";
    IrGraph g;
    ir_init(&g);
    for (int i = 0; i < params.n; i++) free(params.items[i].data), free((char *)params.items[i].name);
    params.n = 0;
    rng_state = 0x9E3779B97F4A7C15ull;
    int x[2];
    for (int i = 0; i < c->nin; i++) x[i] = add_input(&g, &c->in[i], c->distinct);
    int y = c->build(&g, c, x);
    if (y < 0) { CHECK(0, "%s: could not build", c->name); ir_free(&g); return; }
    IrNode yn = g.nodes[y];
    float *w = malloc(ir_numel(&yn) * sizeof *w);
    for (int64_t i = 0; i < ir_numel(&yn); i++) w[i] = urand(-1, 1);
    int wn = ir_data(&g, w, yn.ndim, yn.shape);
    int loss = ir_reduce(&g, IR_SUM, ir_binary(&g, IR_MUL, y, wn), (1u << yn.ndim) - 1);
    int grads[2], roots[4];
    ir_grad(&g, loss, x, c->nin, grads);
    roots[0] = loss;
    roots[1] = y;
    for (int i = 0; i < c->nin; i++) roots[i + 2] = grads[i];
    LowerOptions lo = { .fuse = fuse, .interpret = interpret };
    char err[256];
    Plan *p = plan_build(&g, &params, roots, c->nin + 2, 0, &lo, jit, err, sizeof err);
    if (!p) { CHECK(0, "%s: plan failed: %s", c->name, err); ir_free(&g); return; }
    run_loss(p, loss);
    if (c->reference) {
        double *want = malloc(ir_numel(&yn) * sizeof *want), worst = 0;
        float *ins[2];
        for (int i = 0; i < c->nin; i++) ins[i] = params.items[g.nodes[x[i]].slot].data;
        c->reference(c, ins, &yn, want);
        const float *got = plan_node(p, y);
        for (int64_t i = 0; i < ir_numel(&yn); i++)
            worst = fmax(worst, fabs(got[i] - want[i]) / fmax(1.0, fabs(want[i])));
        CHECK(worst < 1e-5, "%-22s %-11s forward equals the direct loop (max error %.1e)", c->name, mode, worst);
        free(want);
    }
    /* every gradient is taken before finite differences run the plan at other points */
    float *analytic[2];
    for (int i = 0; i < c->nin; i++) {
        int64_t size = params.items[g.nodes[x[i]].slot].size;
        analytic[i] = malloc(size * sizeof *analytic[i]);
        memcpy(analytic[i], plan_node(p, grads[i]), size * sizeof *analytic[i]);
    }
    double worst = 0;
    for (int i = 0; i < c->nin; i++) {
        Param *pr = &params.items[g.nodes[x[i]].slot];
        for (int64_t k = 0; k < pr->size; k++) {
            /* every op here but max pooling is linear in each input: a wide step keeps float
             * rounding of the loss out of the difference quotient */
            float saved = pr->data[k], h = c->distinct ? 1e-2f : 0.25f;
            if (c->distinct == 2) h = 1e-3f;
            pr->data[k] = saved + h;
            double up = run_loss(p, loss);
            pr->data[k] = saved - h;
            double down = run_loss(p, loss);
            pr->data[k] = saved;
            double fd = (up - down) / (2 * (double)h);
            worst = fmax(worst, fabs(fd - analytic[i][k]) / fmax(1.0, fabs(fd)));
        }
        free(analytic[i]);
    }
    CHECK(worst < 2e-3, "%-22s %-11s gradient: max error %.1e vs finite differences", c->name, mode, worst);
    plan_free(p);
    ir_free(&g);
}

#define IMG(n, h, w, c) { 4, { n, h, w, c } }
#define WIN(kh, kw, sy, sx, dy, dx, pt, pb, pl, pr) { kh, kw, sy, sx, dy, dx, pt, pb, pl, pr }

int main(void) {
    check_geometry();
    check_im2col();
    check_threads();
    jit = jit_create();
    CHECK(jit != NULL, "LLVM JIT created");
    Case cases[] = {
        /* im2col 5x6 k3 s2 "same" (padding 1,1 / 0,1), then col2im back onto it */
        { "im2col", 1, { IMG(2, 5, 6, 3) }, WIN(3, 3, 2, 2, 1, 1, 1, 1, 0, 1), 0, 0, 0, 0, b_im2col, r_im2col },
        { "col2im", 1, { IMG(2, 3, 3, 27) }, WIN(3, 3, 2, 2, 1, 1, 1, 1, 0, 1), 0, 5, 6, 0, b_col2im, NULL },
        { "col2im_dilated", 1, { IMG(1, 3, 2, 8) }, WIN(2, 2, 1, 2, 2, 2, 0, 1, 1, 0), 0, 4, 4, 0, b_col2im, NULL },
        /* conv2d: "same" at stride 1 (1,1) and 2 on 8x9 (0,1 / 1,1), k4 s2 "same" on odd 7x9
         * (1,2 / 1,2), "valid" with dilation 2, explicit padding, groups, 1x1 */
        { "conv_same_s1", 2, { IMG(2, 5, 6, 3), IMG(3, 3, 3, 4) }, WIN(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 1, 0, 0, 0, b_conv, r_conv },
        { "conv_same_s2", 2, { IMG(2, 8, 9, 3), IMG(3, 3, 3, 4) }, WIN(3, 3, 2, 2, 1, 1, 0, 1, 1, 1), 1, 0, 0, 0, b_conv, r_conv },
        { "conv_same_k4s2_odd", 2, { IMG(1, 7, 9, 2), IMG(4, 4, 2, 3) }, WIN(4, 4, 2, 2, 1, 1, 1, 2, 1, 2), 1, 0, 0, 0, b_conv, r_conv },
        { "conv_valid_dilated", 2, { IMG(2, 7, 8, 2), IMG(3, 3, 2, 3) }, WIN(3, 3, 1, 1, 2, 2, 0, 0, 0, 0), 1, 0, 0, 0, b_conv, r_conv },
        { "conv_explicit_pad", 2, { IMG(1, 6, 5, 2), IMG(3, 2, 2, 3) }, WIN(3, 2, 2, 1, 1, 1, 1, 2, 0, 1), 1, 0, 0, 0, b_conv, r_conv },
        { "conv_groups2", 2, { IMG(2, 5, 5, 4), IMG(3, 3, 2, 6) }, WIN(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 2, 0, 0, 0, b_conv, r_conv },
        /* few channels per group take one fused reduction (ir_conv.c), many a product per group */
        { "conv_depthwise", 2, { IMG(2, 5, 5, 3), IMG(3, 3, 1, 3) }, WIN(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 3, 0, 0, 0, b_conv, r_conv },
        { "conv_depthwise_x2_s2", 2, { IMG(2, 6, 5, 3), IMG(3, 3, 1, 6) }, WIN(3, 3, 2, 2, 1, 1, 0, 1, 1, 1), 3, 0, 0, 0, b_conv, r_conv },
        { "conv_groups2_wide", 2, { IMG(1, 4, 4, 10), IMG(3, 3, 5, 8) }, WIN(3, 3, 1, 1, 1, 1, 1, 1, 1, 1), 2, 0, 0, 0, b_conv, r_conv },
        { "conv_1x1", 2, { IMG(2, 3, 4, 5), IMG(1, 1, 5, 3) }, WIN(1, 1, 1, 1, 1, 1, 0, 0, 0, 0), 1, 0, 0, 0, b_conv, r_conv },
        /* conv2d_transpose: k3 s2 "same" 3x4 -> 6x8 (TF padding 0,1), "valid" -> 7x9, k2 s3
         * "valid" (k < s: rows no tap reaches) -> 9x12, k4 s2 "same" -> 6x8 (1,1) */
        { "deconv_same_s2", 2, { IMG(2, 3, 4, 3), IMG(3, 3, 2, 3) }, WIN(3, 3, 2, 2, 1, 1, 0, 1, 0, 1), 0, 6, 8, 0, b_deconv, r_deconv },
        { "deconv_valid_s2", 2, { IMG(2, 3, 4, 3), IMG(3, 3, 2, 3) }, WIN(3, 3, 2, 2, 1, 1, 0, 0, 0, 0), 0, 7, 9, 0, b_deconv, r_deconv },
        { "deconv_valid_k2s3", 2, { IMG(1, 3, 4, 2), IMG(2, 2, 3, 2) }, WIN(2, 2, 3, 3, 1, 1, 0, 0, 0, 0), 0, 9, 12, 0, b_deconv, r_deconv },
        { "deconv_same_k4s2", 2, { IMG(1, 3, 3, 2), IMG(4, 4, 2, 2) }, WIN(4, 4, 2, 2, 1, 1, 1, 1, 1, 1), 0, 6, 6, 0, b_deconv, r_deconv },
        /* pooling: Keras's default (2, "valid", floor: 5x7 -> 2x3) and 3 s2 "same" (1,1 / 0,1) */
        { "maxpool_valid", 1, { IMG(2, 5, 7, 3) }, WIN(2, 2, 2, 2, 1, 1, 0, 0, 0, 0), 1, 0, 0, 1, b_pool, r_pool },
        { "maxpool_same_k3s2", 1, { IMG(2, 5, 6, 2) }, WIN(3, 3, 2, 2, 1, 1, 1, 1, 0, 1), 1, 0, 0, 1, b_pool, r_pool },
        { "avgpool_valid", 1, { IMG(2, 5, 7, 3) }, WIN(2, 2, 2, 2, 1, 1, 0, 0, 0, 0), 0, 0, 0, 0, b_pool, r_pool },
        { "avgpool_same_k3s2", 1, { IMG(2, 5, 6, 2) }, WIN(3, 3, 2, 2, 1, 1, 1, 1, 0, 1), 0, 0, 0, 0, b_pool, r_pool },
        /* upsampling by (2, 3): nearest, bilinear */
        { "upsample_nearest", 1, { IMG(2, 3, 4, 2) }, WIN(1, 1, 2, 3, 1, 1, 0, 0, 0, 0), 0, 0, 0, 0, b_upsample, r_upsample },
        { "upsample_bilinear", 1, { IMG(2, 3, 4, 2) }, WIN(1, 1, 2, 3, 1, 1, 0, 0, 0, 0), 1, 0, 0, 0, b_upsample, r_upsample },
        { "upsample_bilinear_1px", 1, { IMG(1, 1, 3, 2) }, WIN(1, 1, 2, 2, 1, 1, 0, 0, 0, 0), 1, 0, 0, 0, b_upsample, r_upsample },
        /* regions */
        { "pad", 1, { IMG(2, 3, 4, 2) }, { 0 }, 0, 0, 0, 0, b_pad, NULL },
        { "slice", 1, { IMG(3, 5, 6, 3) }, { 0 }, 0, 0, 0, 0, b_slice, NULL },
        { "slice_of_tanh", 1, { { 2, { 4, 6 } } }, { 0 }, 0, 0, 0, 2, b_slice_exp, NULL },
        { "concat_channels", 2, { IMG(2, 3, 4, 2), IMG(2, 3, 4, 3) }, { 0 }, 0, 0, 0, 2, b_concat_last, NULL },
        { "concat_height", 2, { IMG(2, 3, 4, 2), IMG(2, 2, 4, 2) }, { 0 }, 0, 0, 0, 0, b_concat_h, NULL },
    };
    int n = sizeof cases / sizeof cases[0];
    for (int i = 0; i < n; i++) {
        check_case(&cases[i], 1, 0);
        check_case(&cases[i], 0, 0);
        check_case(&cases[i], 1, 1);
    }
    for (int i = 0; i < params.n; i++) free(params.items[i].data), free((char *)params.items[i].name);
    free(params.items);
    jit_destroy(jit);
    CHECK_DONE();
}
