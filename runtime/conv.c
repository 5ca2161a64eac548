/* conv.c: window geometry and im2col / col2im over channels-last images. The channels of one
 * pixel are contiguous, and so are the taps of one window row when the dilation is 1, so both
 * directions move whole runs of kw*C floats at a time (memcpy, or an add loop the compiler
 * vectorises) and only the window rows that straddle the border are split. Both run on the
 * thread pool: im2col by rows of windows, col2im by whole images (windows of one image
 * overlap, so one thread owns each image and the sums keep their order). */
#include <string.h>
#include "conv.h"
#include "threads.h"

enum { CHUNK_FLOATS = 1 << 16 };   /* the least work worth a thread */

int64_t conv_out_size(int64_t in, int k, int s, int d, int before, int after) {
    int64_t room = in + before + after - conv_span(k, d);
    return room < 0 ? 0 : room / s + 1;
}

void conv_same_padding(int64_t in, int k, int s, int d, int *before, int *after) {
    int64_t out = (in + s - 1) / s;
    int64_t total = (out - 1) * s + conv_span(k, d) - in;
    if (total < 0) total = 0;
    *before = (int)(total / 2);
    *after = (int)(total - total / 2);
}

int64_t conv_transpose_out_size(int64_t in, int k, int s, int d, int same, int output_padding) {
    int64_t span = conv_span(k, d);
    if (output_padding < 0) return same ? in * s : in * s + (span > s ? span - s : 0);
    int64_t pad = same ? span / 2 : 0;
    return (in - 1) * s + span - 2 * pad + output_padding;
}

ConvGeom conv_geom(const ConvWindow *win, int64_t n, int64_t h, int64_t w, int64_t c) {
    ConvGeom g = { .n = n, .h = h, .w = w, .c = c, .win = *win };
    g.ho = conv_out_size(h, win->kh, win->sy, win->dy, win->pt, win->pb);
    g.wo = conv_out_size(w, win->kw, win->sx, win->dx, win->pl, win->pr);
    return g;
}

/* The taps kx in [*lo, *hi) of a window row starting at column ix0 fall inside the image. */
static void inside(int64_t ix0, int64_t width, int kw, int dx, int64_t *lo, int64_t *hi) {
    *lo = ix0 >= 0 ? 0 : (-ix0 + dx - 1) / dx;
    *hi = width > ix0 ? (width - ix0 + dx - 1) / dx : 0;
    if (*hi > kw) *hi = kw;
    if (*lo > *hi) *lo = *hi;
}

typedef struct Job { const ConvGeom *g; const float *src; float *dst; } Job;

/* windows (n, oy) for rows in [begin, end): row = n * ho + oy */
static void im2col_rows(void *ctx, int64_t begin, int64_t end) {
    const Job *job = ctx;
    const ConvGeom *g = job->g;
    const ConvWindow *w = &g->win;
    const int64_t C = g->c, row_len = w->kw * C, K = w->kh * row_len;
    for (int64_t row = begin; row < end; row++) {
        int64_t n = row / g->ho, oy = row % g->ho;
        for (int64_t ox = 0; ox < g->wo; ox++) {
            float *dst = job->dst + (row * g->wo + ox) * K;
            int64_t iy0 = oy * w->sy - w->pt, ix0 = ox * w->sx - w->pl, lo, hi;
            inside(ix0, g->w, w->kw, w->dx, &lo, &hi);
            for (int ky = 0; ky < w->kh; ky++, dst += row_len) {
                int64_t iy = iy0 + (int64_t)ky * w->dy;
                if (iy < 0 || iy >= g->h || lo == hi) {
                    memset(dst, 0, row_len * sizeof *dst);
                    continue;
                }
                /* the first tap inside the image */
                const float *src = job->src + ((n * g->h + iy) * g->w + ix0 + lo * w->dx) * C;
                memset(dst, 0, lo * C * sizeof *dst);
                if (w->dx == 1)
                    memcpy(dst + lo * C, src, (hi - lo) * C * sizeof *dst);
                else
                    for (int64_t kx = lo; kx < hi; kx++)
                        memcpy(dst + kx * C, src + (kx - lo) * w->dx * C, C * sizeof *dst);
                memset(dst + hi * C, 0, (w->kw - hi) * C * sizeof *dst);
            }
        }
    }
}

void im2col(const ConvGeom *g, const float *image, float *cols) {
    Job job = { g, image, cols };
    int64_t row_floats = g->wo * g->win.kh * g->win.kw * g->c;
    parallel_for(g->n * g->ho, CHUNK_FLOATS / (row_floats ? row_floats : 1) + 1, im2col_rows, &job);
}

static void add_run(float *restrict dst, const float *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* images [begin, end) */
static void col2im_images(void *ctx, int64_t begin, int64_t end) {
    const Job *job = ctx;
    const ConvGeom *g = job->g;
    const ConvWindow *w = &g->win;
    const int64_t C = g->c, row_len = w->kw * C, K = w->kh * row_len, image = g->h * g->w * C;
    memset(job->dst + begin * image, 0, (end - begin) * image * sizeof *job->dst);
    for (int64_t n = begin; n < end; n++)
        for (int64_t oy = 0; oy < g->ho; oy++)
            for (int64_t ox = 0; ox < g->wo; ox++) {
                const float *src = job->src + ((n * g->ho + oy) * g->wo + ox) * K;
                int64_t iy0 = oy * w->sy - w->pt, ix0 = ox * w->sx - w->pl, lo, hi;
                inside(ix0, g->w, w->kw, w->dx, &lo, &hi);
                for (int ky = 0; ky < w->kh; ky++, src += row_len) {
                    int64_t iy = iy0 + (int64_t)ky * w->dy;
                    if (iy < 0 || iy >= g->h || lo == hi) continue;
                    float *dst = job->dst + ((n * g->h + iy) * g->w + ix0 + lo * w->dx) * C;
                    if (w->dx == 1)
                        add_run(dst, src + lo * C, (hi - lo) * C);
                    else
                        for (int64_t kx = lo; kx < hi; kx++)
                            add_run(dst + (kx - lo) * w->dx * C, src + kx * C, C);
                }
            }
}

void col2im(const ConvGeom *g, const float *cols, float *image) {
    Job job = { g, cols, image };
    int64_t image_floats = g->ho * g->wo * g->win.kh * g->win.kw * g->c;
    parallel_for(g->n, CHUNK_FLOATS / (image_floats ? image_floats : 1) + 1, col2im_images, &job);
}
