/* conv_gemm.c: convolutions as implicit matrix products. The product of a convolution reads
 * its im2col matrix (9x the image for 3x3 windows) once forward and once for the weight
 * gradient, and the input gradient writes a matrix as large for col2im to add back; on this
 * machine those streams through memory cost more than the arithmetic. Here the micro-kernel
 * reads the image itself: a table gives, for each output pixel and tap, the pixel's C
 * channels in the image (or a row of zeros outside it), and nothing of im2col's size is
 * written. Three products (g = the window geometry, P pixels of output, K = taps * C):
 *   CONV_FWD:   y [P, F] = im2col(x) @ w [K, F]
 *   CONV_WGRAD: dw [K, F] = im2col(x)^T @ dy [P, F]
 *   CONV_DGRAD: dx = col2im(dy @ w^T), stride 1 and dilation 1 only: dx[i, c] = sum over taps
 *               t of dy[i + pad - t] . w[t, c, :] (a convolution of dy with w turned around)
 * Each output element is summed by one thread in a fixed order, so the results do not depend
 * on the thread count. Without AVX-512 (or with GMC_NO_THIN_GEMM=1) the same steps run as
 * im2col / col2im and OpenBLAS on a temporary matrix. */
#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "conv_gemm.h"
#include "gemm_thin.h"
#include "threads.h"

#define TARGET __attribute__((target("avx512f,fma")))

/* MR output pixels per micro-kernel call (24 accumulators of 32 columns); WR channels per
 * weight-gradient tile; PB pixels, WB for the weight gradient, share one table of sources */
enum { MR = 12, PB = 48, WB = 256, MAXTAPS = 64, WR = 8 };

typedef struct ConvJob {
    const ConvGeom *g;
    int mode;
    const float *src;            /* the image the table points into: x, or dy for CONV_DGRAD */
    int64_t sc;                  /* its channels */
    const float *b;              /* FWD/DGRAD: B rows (tap, channel) of ldb floats; WGRAD: dy */
    int64_t ldb, n;              /* columns of the output */
    float *c;
    const float *zero;           /* sc zeros */
    int taps;
    const float *bias;           /* CONV_FWD: added to each output row as it is stored, or NULL */
} ConvJob;

/* the source row of pixel p for tap t: CONV_FWD / WGRAD: output pixel p reads x; DGRAD:
 * input pixel p reads dy at p + pad - t */
static void fill_table(const ConvJob *j, int64_t p0, int64_t np, const float **tab, int64_t ld) {
    const ConvGeom *g = j->g;
    const ConvWindow *w = &g->win;
    for (int64_t q = 0; q < np; q++) {
        int64_t p = p0 + q, n, y, x, sh, sw;
        if (j->mode == CONV_DGRAD) { n = p / (g->h * g->w); y = p / g->w % g->h; x = p % g->w; sh = g->ho; sw = g->wo; }
        else { n = p / (g->ho * g->wo); y = p / g->wo % g->ho; x = p % g->wo; sh = g->h; sw = g->w; }
        for (int t = 0; t < j->taps; t++) {
            int ky = t / w->kw, kx = t % w->kw;
            int64_t sy, sx;
            if (j->mode == CONV_DGRAD) { sy = y + w->pt - ky; sx = x + w->pl - kx; }
            else { sy = y * w->sy - w->pt + ky * w->dy; sx = x * w->sx - w->pl + kx * w->dx; }
            tab[t * ld + q] = sy < 0 || sy >= sh || sx < 0 || sx >= sw ? j->zero
                              : j->src + ((n * sh + sy) * sw + sx) * j->sc;
        }
    }
}

/* C[mr rows, 16 nv] = sum over taps t and kk < len of tab[t][r][kk] * b[(t * len + kk) * ldb] */
static inline __attribute__((always_inline)) TARGET void
tile_rows(const int mr, const int nv, int taps, int64_t len, const float *const *tab, int64_t ld,
          const float *b, int64_t ldb, float *c, int64_t ldc, const float *bias) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();
    for (int t = 0; t < taps; t++) {
        const float *ap[MR];
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++) ap[r] = tab[t * ld + r];
        const float *bt = b + t * len * ldb;
        for (int64_t kk = 0; kk < len; kk++) {
            __m512 bv[2];
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(bt + kk * ldb + 16 * v);
#pragma GCC unroll 12
            for (int r = 0; r < mr; r++) {
                __m512 av = _mm512_set1_ps(ap[r][kk]);
#pragma GCC unroll 2
                for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
            }
        }
    }
    if (bias) {                   /* the sum first, then the bias: the bits of a separate add */
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            __m512 bv = _mm512_loadu_ps(bias + 16 * v);
#pragma GCC unroll 12
            for (int r = 0; r < mr; r++) acc[r][v] = _mm512_add_ps(acc[r][v], bv);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

#define ROWS(MRV, NV) static TARGET void rows_##MRV##x##NV(int taps, int64_t len, const float *const *tab, \
    int64_t ld, const float *b, int64_t ldb, float *c, int64_t ldc, const float *bias) { \
    tile_rows(MRV, NV, taps, len, tab, ld, b, ldb, c, ldc, bias); }
ROWS(12, 2) ROWS(12, 1) ROWS(1, 2) ROWS(1, 1)

/* FWD and DGRAD: output pixels [p0, p1) in blocks of PB */
static TARGET void pixels_range(void *ctx, int64_t p0, int64_t p1) {
    const ConvJob *j = ctx;
    const float *tab[MAXTAPS * PB];
    int64_t seg = j->sc;                                        /* floats of one tap's row */
    for (int64_t pb = p0; pb < p1; pb += PB) {
        int64_t np = p1 - pb < PB ? p1 - pb : PB;
        fill_table(j, pb, np, tab, PB);
        for (int64_t col = 0; col < j->n; col += 32) {
            int two = j->n - col >= 32;
            int64_t q = 0;
            for (; q + MR <= np; q += MR) {
                float *c = j->c + (pb + q) * j->n + col;
                if (two) rows_12x2(j->taps, seg, tab + q, PB, j->b + col, j->ldb, c, j->n, j->bias ? j->bias + col : NULL);
                else rows_12x1(j->taps, seg, tab + q, PB, j->b + col, j->ldb, c, j->n, j->bias ? j->bias + col : NULL);
            }
            for (; q < np; q++) {
                float *c = j->c + (pb + q) * j->n + col;
                if (two) rows_1x2(j->taps, seg, tab + q, PB, j->b + col, j->ldb, c, j->n, j->bias ? j->bias + col : NULL);
                else rows_1x1(j->taps, seg, tab + q, PB, j->b + col, j->ldb, c, j->n, j->bias ? j->bias + col : NULL);
            }
        }
    }
}

/* WGRAD: C[8 channels of one tap, 16 nv] (+)= sum over pixels q of tab[q][coff + r] dy[q] */
static inline __attribute__((always_inline)) TARGET void
tile_w(const int nv, int64_t np, const float *const *tab, int64_t coff, const float *dy, int64_t ldy,
       float *c, int64_t ldc, int accumulate) {
    __m512 acc[WR][2];
#pragma GCC unroll 8
    for (int r = 0; r < WR; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
    for (int64_t q = 0; q < np; q++) {
        const float *a = tab[q] + coff;
        __m512 bv[2];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(dy + q * ldy + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < WR; r++) {
            __m512 av = _mm512_set1_ps(a[r]);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < WR; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

static TARGET void w_2(int64_t np, const float *const *tab, int64_t coff, const float *dy, int64_t ldy,
                       float *c, int64_t ldc, int acc) { tile_w(2, np, tab, coff, dy, ldy, c, ldc, acc); }
static TARGET void w_1(int64_t np, const float *const *tab, int64_t coff, const float *dy, int64_t ldy,
                       float *c, int64_t ldc, int acc) { tile_w(1, np, tab, coff, dy, ldy, c, ldc, acc); }

/* WGRAD: row tiles [t0, t1) of dw, each 8 channels of one tap, over all pixels in blocks */
static TARGET void wgrad_range(void *ctx, int64_t t0, int64_t t1) {
    const ConvJob *j = ctx;
    const ConvGeom *g = j->g;
    int64_t C = g->c, groups = C / WR, P = g->n * g->ho * g->wo;
    const float **tab = malloc((size_t)j->taps * WB * sizeof *tab);
    if (!tab) abort();
    for (int64_t p0 = 0; p0 < P; p0 += WB) {
        int64_t np = P - p0 < WB ? P - p0 : WB;
        fill_table(j, p0, np, tab, WB);
        for (int64_t tile = t0; tile < t1; tile++) {
            int64_t t = tile / groups, coff = tile % groups * WR;
            float *c = j->c + (t * C + coff) * j->n;
            for (int64_t col = 0; col < j->n; col += 32) {
                if (j->n - col >= 32) w_2(np, tab + t * WB, coff, j->b + p0 * j->n + col, j->n, c + col, j->n, p0 > 0);
                else w_1(np, tab + t * WB, coff, j->b + p0 * j->n + col, j->n, c + col, j->n, p0 > 0);
            }
        }
    }
    free(tab);
}

int conv_gemm_implicit(const ConvGeom *g, int mode, int64_t f) {
    int taps = g->win.kh * g->win.kw;
    if (!gemm_thin_enabled() || f % 16 || taps > MAXTAPS) return 0;
    if (mode == CONV_WGRAD) return g->c % WR == 0;
    if (mode == CONV_DGRAD)
        return g->c % 16 == 0 && g->win.sy == 1 && g->win.sx == 1 && g->win.dy == 1 && g->win.dx == 1;
    return 1;
}

/* the fallback: the same product through a temporary im2col matrix and OpenBLAS */
static void explicit_conv(const ConvGeom *g, int mode, const float *a, const float *b, float *c,
                          int64_t f, int trans_b, const float *bias) {
    int64_t P = g->n * g->ho * g->wo, K = (int64_t)g->win.kh * g->win.kw * g->c;
    float *cols = malloc((size_t)(P * K) * sizeof *cols);
    if (!cols) abort();
    if (mode == CONV_DGRAD) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, P, K, f, 1.0f, a, f,
                    b, trans_b ? f : K, 0.0f, cols, K);
        col2im(g, cols, c);
    } else {
        im2col(g, a, cols);
        if (mode == CONV_FWD) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, f, K, 1.0f, cols, K, b, f, 0.0f, c, f);
            for (int64_t p = 0; p < P && bias; p++)
                for (int64_t j = 0; j < f; j++) c[p * f + j] += bias[j];
        }
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, f, P, 1.0f, cols, K, b, f, 0.0f, c, f);
    }
    free(cols);
}

void conv_gemm(const ConvGeom *g, int mode, const float *a, const float *b, float *c, int64_t f,
               int trans_b, const float *bias) {
    if (mode != CONV_FWD) bias = NULL;
    if (!conv_gemm_implicit(g, mode, f)) {
        explicit_conv(g, mode, a, b, c, f, trans_b, bias);
        return;
    }
    int taps = g->win.kh * g->win.kw;
    int64_t C = g->c;
    int64_t zn = mode == CONV_DGRAD ? f : C;
    float *zero = calloc((size_t)zn + 16, sizeof *zero);
    if (!zero) abort();
    ConvJob j = { g, mode, a, C, b, f, f, c, zero, taps, bias };
    float *packed = NULL;
    if (mode == CONV_FWD) {
        parallel_for(g->n * g->ho * g->wo, 32, pixels_range, &j);
    } else if (mode == CONV_WGRAD) {
        parallel_for(taps * (C / WR), (taps * (C / WR) + 1) / 2, wgrad_range, &j);   /* 2 chunks: each streams all pixels */
    } else {
        /* a: dy [P, f]; b: w [K, f] (trans_b) or [f, K]; rows (t, j) of the turned kernel hold
         * w[t, :, j] over the C input channels */
        int64_t K = taps * C;
        packed = malloc((size_t)(K * f) * sizeof *packed);
        if (!packed) abort();
        for (int t = 0; t < taps; t++)
            for (int64_t jj = 0; jj < f; jj++)
                for (int64_t ch = 0; ch < C; ch++)
                    packed[(t * f + jj) * C + ch] = trans_b ? b[(t * C + ch) * f + jj] : b[jj * K + t * C + ch];
        j.sc = f;
        j.b = packed;
        j.ldb = C;
        j.n = C;
        parallel_for(g->n * g->h * g->w, 32, pixels_range, &j);
    }
    free(packed);
    free(zero);
}
