/* conv_gemm.c: convolutions as implicit matrix products. The product of a convolution reads
 * its im2col matrix (9x the image for 3x3 windows) once forward and once for the weight
 * gradient, and the input gradient writes a matrix as large for col2im to add back; on this
 * machine those streams through memory cost more than the arithmetic. Here the micro-kernel
 * reads the image itself: a table gives, for each output pixel and tap, the pixel's C
 * channels in the image (or a row of zeros outside it), and nothing of im2col's size is
 * written. Three products (g = the window geometry, P pixels of output, K = taps * C):
 *   CONV_FWD:   y [P, F] = im2col(x) @ w [K, F]
 *   CONV_WGRAD: dw [K, F] = im2col(x)^T @ dy [P, F]
 *   CONV_DGRAD: dx = col2im(dy @ w^T): dx[i, c] = sum over taps t whose window covers i of
 *               dy[(i + pad - t * dil) / stride] . w[t, c, :] (a convolution of dy with w
 *               turned around). With strides, the input pixels fall into sub-pixel classes
 *               (y mod sy, x mod sx); only the taps of matching parity reach a class, so
 *               each class is a product over its own taps, no zero taps multiplied.
 * F need not be a multiple of 16: the last 16 columns are loaded and stored under a mask.
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

/* MR output pixels per micro-kernel call (24 accumulators of 32 columns); pixels in blocks of
 * PB (a multiple of MR) sharing one table of sources, or one block of up to PBMAX when a
 * class has no more; WR channels per weight-gradient tile, WB pixels per its table; KT rows of
 * B per chunk of thin_range (16 KB of panel) */
enum { MR = 12, PB = 48, PBMAX = 96, WB = 256, MAXTAPS = 64, WR = 8, WRMAX = 14, NR = 32,
       KT = 128 };

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* a set of output rows computed over the same taps: all output pixels (FWD, WGRAD), or the input
 * pixels (n, ry + sy i, rx + sx j) of one sub-pixel class (DGRAD) */
typedef struct PixClass {
    int ry, rx;
    int64_t hc, wc;               /* the class's grid: rows and columns */
    int ntaps;
    int tap[MAXTAPS];
    int64_t row0;                 /* the first B row of these taps (tap after tap) */
} PixClass;

typedef struct PixBlock {
    int cls;
    int64_t q0, np;               /* pixels [q0, q0 + np) of the class */
} PixBlock;

typedef struct ConvJob {
    const ConvGeom *g;
    int mode;
    const float *src;            /* the image the table points into: x, or dy for CONV_DGRAD */
    int64_t sc;                  /* its channels */
    const float *b;              /* FWD, DGRAD: B [rows, n] (ldb); WGRAD: dy */
    int64_t ldb, n;              /* n: columns of the output */
    int64_t rows;                /* FWD, DGRAD: B's rows */
    float *c;
    const float *zero;           /* sc zeros */
    int taps;
    const float *bias;           /* CONV_FWD: added to each output row as it is stored, or NULL */
    const PixClass *cls;
    const PixBlock *blocks;
    int64_t nblocks, ncp;        /* pixel blocks, column panels of NR */
    int thin;                    /* colmajor, every class one block: see thin_range */
    int colmajor;                /* items panel by panel (each weight panel read once), each
                                  * panel copied to contiguous rows of NR first */
    int ncls;
    const int64_t *cost;         /* FWD, DGRAD: work before item i, in pixel-taps of 16 columns */
    const float *w;              /* DGRAD: the kernel as given, [K, f] (trans_b) or [f, K] */
    int trans_b;
    int64_t f;
    float *packed;               /* not colmajor: B's panels, rows NR apart, panel after panel */
    int dot;                     /* f (1 or 2) when the products run along the channels */
    const float *wt;             /* FWD with dot: the kernel as [f, K] */
    const ConvEpilogue *ep;      /* what is done to the rows as they are stored (conv_gemm.h) */
} ConvJob;

/* r[c] = column c of the 16 x 16 block of rows r[0..16): unpacks and lane shuffles, 64 on the
 * shuffle port for 256 floats, where 16 gathers of 16 cost about twice the time */
static inline __attribute__((always_inline)) TARGET void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* r[4 i + k], 128-bit lane l: column 4 l + k of rows 4 i .. 4 i + 3 */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        t[k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
        t[4 + k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
        t[8 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xDD);
        r[4 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0x88);
        r[12 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0xDD);
    }
}

/* dst[jj * NR + x] = src[x * f + jj] for 32 rows x, jj < n: 16 x 16 blocks through registers,
 * the last n % 16 a gather of 16 rows per column */
static TARGET void transpose32(const float *src, int64_t f, int64_t n, float *dst) {
    int64_t jj = 0;
    for (; jj + 16 <= n; jj += 16)
        for (int x0 = 0; x0 < 32; x0 += 16) {
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (x0 + i) * f + jj);
            transpose16(r);
#pragma GCC unroll 16
            for (int c = 0; c < 16; c++) _mm512_storeu_ps(dst + (jj + c) * NR + x0, r[c]);
        }
    __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                     _mm512_set1_epi32((int)f));
    const float *hi = src + 16 * f;
    for (; jj < n; jj++) {
        _mm512_storeu_ps(dst + jj * NR, _mm512_i32gather_ps(idx, src + jj, 4));
        _mm512_storeu_ps(dst + jj * NR + 16, _mm512_i32gather_ps(idx, hi + jj, 4));
    }
}

/* rows [r0, r0 + n) of tap s of class k of B, columns [col, col + w), into dst, rows NR apart,
 * zeros past w. DGRAD reads the kernel as given: row (tap t, filter jj) of the turned kernel
 * is w[t, col.., jj]. */
static void pack_rows(const ConvJob *j, int k, int s, int64_t r0, int64_t n, int64_t col, int64_t w, float *dst) {
    const PixClass *cl = &j->cls[k];
    if (w < NR)
        for (int64_t r = 0; r < n; r++) memset(dst + r * NR + w, 0, (size_t)(NR - w) * sizeof *dst);
    if (j->mode != CONV_DGRAD || !j->w) {
        const float *src = j->b + (cl->row0 + s * j->sc + r0) * j->ldb + col;
        for (int64_t r = 0; r < n; r++) memcpy(dst + r * NR, src + r * j->ldb, (size_t)w * sizeof *dst);
        return;
    }
    int64_t C = j->g->c, f = j->f, K = (int64_t)j->taps * C, t = cl->tap[s];
    if (j->trans_b && w == NR && f * NR < (1 << 30))
        transpose32(j->w + (t * C + col) * f + r0, f, n, dst);
    else if (j->trans_b)         /* 16 filters of 32 kernel rows at a time: both sides in L1 */
        for (int64_t j0 = r0; j0 < r0 + n; j0 += 16)
            for (int64_t x = 0; x < w; x++) {
                const float *src = j->w + (t * C + col + x) * f;
                for (int64_t jj = j0; jj < r0 + n && jj < j0 + 16; jj++) dst[(jj - r0) * NR + x] = src[jj];
            }
    else
        for (int64_t jj = r0; jj < r0 + n; jj++)
            memcpy(dst + (jj - r0) * NR, j->w + jj * K + t * C + col, (size_t)w * sizeof *dst);
}

/* columns [col, col + w) of B's rows into panel, rows NR apart, every class's taps */
static void pack_panel(const ConvJob *j, int64_t col, int64_t w, float *panel) {
    for (int k = 0; k < j->ncls; k++)
        for (int s = 0; s < j->cls[k].ntaps; s++)
            pack_rows(j, k, s, 0, j->sc, col, w, panel + (j->cls[k].row0 + s * j->sc) * NR);
}

/* the sources of pixels [q0, q0 + np) of class cl for its taps [s0, s1), tab[s * stride + q],
 * and their output rows crow[q] (unless crow is NULL: WGRAD). Source row and column are
 * affine in the pixel's (i, j) on its class's grid: FWD, WGRAD: i * s + k * d - pad; DGRAD:
 * i + (r + pad - k * d) / s, exact for the class's taps. No division per entry: this runs for
 * every block, and a division per tap costs as much as the block's arithmetic for small
 * channel counts. */
static void fill_table(const ConvJob *j, const PixClass *cl, int64_t q0, int64_t np, int s0, int s1,
                       int64_t stride, const float **tab, float **crow) {
    const ConvGeom *g = j->g;
    const ConvWindow *w = &g->win;
    int dgrad = j->mode == CONV_DGRAD;
    int64_t offy[MAXTAPS], offx[MAXTAPS], my = dgrad ? 1 : w->sy, mx = dgrad ? 1 : w->sx;
    int64_t sh = dgrad ? g->ho : g->h, sw = dgrad ? g->wo : g->w;
    for (int s = s0; s < s1; s++) {
        int64_t ky = cl->tap[s] / w->kw, kx = cl->tap[s] % w->kw;
        offy[s] = dgrad ? (cl->ry + w->pt - ky * w->dy) / w->sy : ky * w->dy - w->pt;
        offx[s] = dgrad ? (cl->rx + w->pl - kx * w->dx) / w->sx : kx * w->dx - w->pl;
    }
    int64_t n = q0 / (cl->hc * cl->wc), i = q0 / cl->wc % cl->hc, jx = q0 % cl->wc;
    for (int64_t q = 0; q < np; q++) {
        for (int s = s0; s < s1; s++) {
            int64_t sy = i * my + offy[s], sx = jx * mx + offx[s];
            tab[s * stride + q] = sy < 0 || sy >= sh || sx < 0 || sx >= sw ? j->zero
                                  : j->src + ((n * sh + sy) * sw + sx) * j->sc;
        }
        if (crow)
            crow[q] = j->c + (dgrad ? (n * g->h + cl->ry + i * w->sy) * g->w + cl->rx + jx * w->sx
                                    : q0 + q) * j->n;
        if (++jx == cl->wc) {
            jx = 0;
            if (++i == cl->hc) i = 0, n++;
        }
    }
}

/* C rows crow[0..mr) + col, 16 nv columns (the last vector under mask m) = sum over taps t
 * and kk < len of tab[t][r][kk] * b[(t * len + kk) * ldb] (+ bias); with accumulate, added
 * on to what the rows hold (the sum goes on in the same order: the same bits as one call) */
static inline __attribute__((always_inline)) TARGET void
tile_rows(const int mr, const int nv, const int masked, int taps, int64_t len, const float *const *tab,
          const float *b, int64_t ldb, float *const *crow, int64_t col, const float *bias, __mmask16 m,
          int accumulate) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            acc[r][v] = !accumulate ? _mm512_setzero_ps()
                        : v < nv - 1 || !masked ? _mm512_loadu_ps(crow[r] + col + 16 * v)
                                                : _mm512_maskz_loadu_ps(m, crow[r] + col + 16 * v);
    for (int t = 0; t < taps; t++) {
        const float *ap[MR];
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++) ap[r] = tab[t * PBMAX + r];
        const float *bt = b + t * len * ldb;
        for (int64_t kk = 0; kk < len; kk++) {
            __m512 bv[2];
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++)
                bv[v] = v < nv - 1 || !masked ? _mm512_loadu_ps(bt + kk * ldb + 16 * v)
                                              : _mm512_maskz_loadu_ps(m, bt + kk * ldb + 16 * v);
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
            __m512 bv = v < nv - 1 || !masked ? _mm512_loadu_ps(bias + 16 * v) : _mm512_maskz_loadu_ps(m, bias + 16 * v);
#pragma GCC unroll 12
            for (int r = 0; r < mr; r++) acc[r][v] = _mm512_add_ps(acc[r][v], bv);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            if (v < nv - 1 || !masked) _mm512_storeu_ps(crow[r] + col + 16 * v, acc[r][v]);
            else _mm512_mask_storeu_ps(crow[r] + col + 16 * v, m, acc[r][v]);
}

typedef void (*RowsFn)(int taps, int64_t len, const float *const *tab, const float *b, int64_t ldb,
                       float *const *crow, int64_t col, const float *bias, __mmask16 m, int accumulate);
#define ROWS(MRV, NV, MK) static TARGET void rows_##MRV##x##NV##MK(int taps, int64_t len, const float *const *tab, \
    const float *b, int64_t ldb, float *const *crow, int64_t col, const float *bias, __mmask16 m, int accumulate) { \
    tile_rows(MRV, NV, MK, taps, len, tab, b, ldb, crow, col, bias, m, accumulate); }
#define ROWS_ALL(NV, MK) ROWS(1, NV, MK) ROWS(2, NV, MK) ROWS(3, NV, MK) ROWS(4, NV, MK) ROWS(5, NV, MK) \
    ROWS(6, NV, MK) ROWS(7, NV, MK) ROWS(8, NV, MK) ROWS(9, NV, MK) ROWS(10, NV, MK) ROWS(11, NV, MK) ROWS(12, NV, MK)
ROWS_ALL(1, 1) ROWS_ALL(2, 1) ROWS_ALL(2, 0)
/* every row count, so a block's last rows are one call, not one call per row; masked columns
 * (the last panel of a count not a multiple of 32) and full panels of 32 */
static const RowsFn rows_fn[3][MR + 1] = {
    { NULL, rows_1x11, rows_2x11, rows_3x11, rows_4x11, rows_5x11, rows_6x11, rows_7x11, rows_8x11,
      rows_9x11, rows_10x11, rows_11x11, rows_12x11 },
    { NULL, rows_1x21, rows_2x21, rows_3x21, rows_4x21, rows_5x21, rows_6x21, rows_7x21, rows_8x21,
      rows_9x21, rows_10x21, rows_11x21, rows_12x21 },
    { NULL, rows_1x20, rows_2x20, rows_3x20, rows_4x20, rows_5x20, rows_6x20, rows_7x20, rows_8x20,
      rows_9x20, rows_10x20, rows_11x20, rows_12x20 },
};

/* Few filters (f <= 2, C a multiple of 16): a 16-wide column panel would leave 15 of 16 lanes
 * idle, so these run along the channels instead. FWD: y[p, jj] = the dot product of pixel p's
 * window with the kernel's column jj (wt: the kernel as [f, K]), 4 pixels at a time, each in
 * two accumulators (even and odd 16 channels), summed in that fixed order. */
static inline __attribute__((always_inline)) TARGET void
dot_rows(const int nf, int taps, int64_t C, const float *const *tab, int np, const float *wt, int64_t K,
         float *const *crow, const float *bias) {
    __m512 acc[4][2][2];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
        for (int jj = 0; jj < nf; jj++) acc[r][jj][0] = acc[r][jj][1] = _mm512_setzero_ps();
    for (int t = 0; t < taps; t++) {
        const float *ap[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) ap[r] = tab[t * PBMAX + (r < np ? r : 0)];
        const float *wp = wt + t * C;
        int64_t c = 0;
        for (; c + 32 <= C; c += 32) {
            __m512 w0[2], w1[2];
#pragma GCC unroll 2
            for (int jj = 0; jj < nf; jj++) {
                w0[jj] = _mm512_loadu_ps(wp + jj * K + c);
                w1[jj] = _mm512_loadu_ps(wp + jj * K + c + 16);
            }
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                __m512 x0 = _mm512_loadu_ps(ap[r] + c), x1 = _mm512_loadu_ps(ap[r] + c + 16);
#pragma GCC unroll 2
                for (int jj = 0; jj < nf; jj++) {
                    acc[r][jj][0] = _mm512_fmadd_ps(x0, w0[jj], acc[r][jj][0]);
                    acc[r][jj][1] = _mm512_fmadd_ps(x1, w1[jj], acc[r][jj][1]);
                }
            }
        }
        if (c < C) {                               /* C = 32 k + 16 */
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                __m512 x0 = _mm512_loadu_ps(ap[r] + c);
#pragma GCC unroll 2
                for (int jj = 0; jj < nf; jj++)
                    acc[r][jj][0] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(wp + jj * K + c), acc[r][jj][0]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
        for (int jj = 0; jj < nf; jj++) {
            float s = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][jj][0], acc[r][jj][1]));
            if (bias) s += bias[jj];
            if (r < np) crow[r][jj] = s;
        }
}

static TARGET void dot_rows1(int taps, int64_t C, const float *const *tab, int np, const float *wt, int64_t K,
                             float *const *crow, const float *bias) { dot_rows(1, taps, C, tab, np, wt, K, crow, bias); }
static TARGET void dot_rows2(int taps, int64_t C, const float *const *tab, int np, const float *wt, int64_t K,
                             float *const *crow, const float *bias) { dot_rows(2, taps, C, tab, np, wt, K, crow, bias); }

/* WGRAD with f <= 2: dw[t, c.., jj] = sum over pixels of x[pixel's tap t, c..] dy[pixel, jj],
 * 64 channels of one tap at a time, even and odd pixels in separate accumulators */
static inline __attribute__((always_inline)) TARGET void
dot_w(const int nf, const int nv, int64_t np, const float *const *tab, int64_t coff, const float *dy,
      float *out /* [nv * 16][nf] */, int accumulate) {
    __m512 acc[2][4][2];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
#pragma GCC unroll 2
            for (int jj = 0; jj < nf; jj++) acc[h][v][jj] = _mm512_setzero_ps();
    int64_t q = 0;
    for (; q + 2 <= np; q += 2)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const float *a = tab[q + h] + coff;
            __m512 d[2];
#pragma GCC unroll 2
            for (int jj = 0; jj < nf; jj++) d[jj] = _mm512_set1_ps(dy[(q + h) * nf + jj]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) {
                __m512 x = _mm512_loadu_ps(a + 16 * v);
#pragma GCC unroll 2
                for (int jj = 0; jj < nf; jj++) acc[h][v][jj] = _mm512_fmadd_ps(x, d[jj], acc[h][v][jj]);
            }
        }
    if (q < np) {
        const float *a = tab[q] + coff;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            __m512 x = _mm512_loadu_ps(a + 16 * v);
#pragma GCC unroll 2
            for (int jj = 0; jj < nf; jj++)
                acc[0][v][jj] = _mm512_fmadd_ps(x, _mm512_set1_ps(dy[q * nf + jj]), acc[0][v][jj]);
        }
    }
    float s[16];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
#pragma GCC unroll 2
        for (int jj = 0; jj < nf; jj++) {
            _mm512_storeu_ps(s, _mm512_add_ps(acc[0][v][jj], acc[1][v][jj]));
            for (int l = 0; l < 16; l++) {
                float *o = out + (16 * v + l) * nf + jj;
                *o = accumulate ? *o + s[l] : s[l];
            }
        }
}

typedef void (*DotWFn)(int64_t np, const float *const *tab, int64_t coff, const float *dy, float *out, int acc);
#define DOTW(NF, NV) static TARGET void dot_w##NF##_##NV(int64_t np, const float *const *tab, int64_t coff, \
    const float *dy, float *out, int acc) { dot_w(NF, NV, np, tab, coff, dy, out, acc); }
DOTW(1, 1) DOTW(1, 2) DOTW(1, 3) DOTW(1, 4) DOTW(2, 1) DOTW(2, 2) DOTW(2, 3) DOTW(2, 4)
static const DotWFn dot_w_fn[2][5] = { { NULL, dot_w1_1, dot_w1_2, dot_w1_3, dot_w1_4 },
                                       { NULL, dot_w2_1, dot_w2_2, dot_w2_3, dot_w2_4 } };

/* the epilogue of conv_gemm.h on columns [col, col + w) of the np rows crow[] just stored
 * (still in L1): relu (FWD), or the relu-gradient mask dx * (mask > 0) (DGRAD), the bits of
 * the separate kernels */
static TARGET void finish_rows(const ConvJob *j, int64_t np, float *const *crow, int64_t col, int64_t w) {
    const ConvEpilogue *ep = j->ep;
    __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    for (int64_t q = 0; q < np; q++) {
        float *y = crow[q] + col;
        const float *m = ep->mask ? ep->mask + (crow[q] - j->c) + col : NULL;
        for (int64_t x = 0; x < w; x += 16) {
            __mmask16 k = w - x >= 16 ? 0xFFFF : (__mmask16)((1u << (w - x)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(k, y + x);
            if (ep->relu) v = _mm512_max_ps(v, zero);
            if (m) {
                __mmask16 pos = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(k, m + x), zero, _CMP_GT_OQ);
                v = _mm512_mul_ps(v, _mm512_maskz_mov_ps(pos, one));
            }
            _mm512_mask_storeu_ps(y + x, k, v);
        }
    }
}

/* WGRAD's bias gradient: sums[j] += dy[q, j] over np rows of n, in double: 64 columns at a
 * time in 8 registers, the rows in order */
static TARGET void sum_rows(int64_t np, const float *dy, int64_t n, double *sums) {
    for (int64_t x0 = 0; x0 < n; x0 += 64) {
        int nv = n - x0 >= 64 ? 8 : (int)((n - x0 + 7) / 8);
        __m512d acc[8];
        __mmask16 k[8];
        for (int v = 0; v < nv; v++) {
            int64_t left = n - x0 - 8 * v;
            k[v] = left >= 8 ? 0xFF : (__mmask16)((1u << left) - 1);
            acc[v] = _mm512_maskz_loadu_pd((__mmask8)k[v], sums + x0 + 8 * v);
        }
        for (int64_t q = 0; q < np; q++) {
            const float *row = dy + q * n + x0;
            for (int v = 0; v < nv; v++)
                acc[v] = _mm512_add_pd(acc[v], _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(k[v], row + 8 * v))));
        }
        for (int v = 0; v < nv; v++) _mm512_mask_storeu_pd(sums + x0 + 8 * v, (__mmask8)k[v], acc[v]);
    }
}

/* the mask's lines for these rows, requested before the rows are computed: fetched while
 * the micro-kernel runs instead of one miss after another after it */
static void prefetch_rows(const ConvJob *j, int64_t np, float *const *crow, int64_t col, int64_t w) {
    for (int64_t q = 0; q < np && j->ep->mask; q++)
        for (int64_t x = 0; x < w; x += 16) _mm_prefetch((const char *)(j->ep->mask + (crow[q] - j->c) + col + x), _MM_HINT_T0);
}

static void pack_range(void *ctx, int64_t c0, int64_t c1) {
    const ConvJob *j = ctx;
    for (int64_t cp = c0; cp < c1; cp++) {
        int64_t col = cp * NR, w = j->n - col < NR ? j->n - col : NR;
        pack_panel(j, col, w, j->packed + cp * j->rows * NR);
    }
}

/* a chunk of thin_range: item i's rows [r0, r0 + n) of its class's tap s */
typedef struct Chunk { int64_t i; int s; int64_t r0, n; } Chunk;

/* the chunk after c among items [.., i1) (items of classes without taps skipped), or 0 */
static int chunk_next(const ConvJob *j, int64_t i1, Chunk *c) {
    c->r0 += KT;
    if (c->r0 >= j->sc) c->r0 = 0, c->s++;
    while (c->i < i1 && c->s >= j->cls[j->blocks[c->i % j->nblocks].cls].ntaps) c->i++, c->s = 0;
    c->n = j->sc - c->r0 < KT ? j->sc - c->r0 : KT;
    return c->i < i1;
}

/* colmajor with every class one block (few pixels against a large kernel: CycleGAN's 64
 * pixels of 4x4x256 against its 4096 x 512 kernel): items [i0, i1) in chunks of KT rows of
 * one tap, each packed into a buffer that stays in L1 while all the block's rows run over it,
 * going on from the chunk before (the same order of sums: the same bits). A whole panel packed
 * first (512 KB there) went out to L2 and was read back from it by every 12 rows. */
static void thin_range(const ConvJob *j, int64_t i0, int64_t i1) {
    const float *tab[MAXTAPS * PBMAX], *ctab[PBMAX];
    float *crow[PBMAX];
    float buf[KT * NR] __attribute__((aligned(64)));
    int64_t cur = -1;
    for (int64_t i = i0; i < i1; i++) {          /* classes without taps: zeros */
        const PixBlock *bl = &j->blocks[i % j->nblocks];
        if (j->cls[bl->cls].ntaps) continue;
        int64_t col = i / j->nblocks * NR, w = j->n - col < NR ? j->n - col : NR;
        fill_table(j, &j->cls[bl->cls], bl->q0, bl->np, 0, 0, PBMAX, tab, crow);
        for (int64_t q = 0; q < bl->np; q += MR)
            rows_fn[w == NR ? 2 : w > 16][bl->np - q < MR ? bl->np - q : MR](0, 0, tab, NULL, NR, crow + q, col,
                    j->bias ? j->bias + col : NULL, (__mmask16)((1u << (w > 16 ? w - 16 : w)) - 1), 0);
        if (j->ep) finish_rows(j, bl->np, crow, col, w);
    }
    Chunk c = { i0, 0, -KT, 0 };
    for (int more = chunk_next(j, i1, &c); more; more = chunk_next(j, i1, &c)) {
        const PixBlock *bl = &j->blocks[c.i % j->nblocks];
        const PixClass *cl = &j->cls[bl->cls];
        int64_t col = c.i / j->nblocks * NR, w = j->n - col < NR ? j->n - col : NR;
        int nv = w > 16 ? 2 : 1;
        __mmask16 m = (__mmask16)((1u << (w - 16 * (nv - 1))) - 1);
        if (c.i % j->nblocks != cur) fill_table(j, cl, bl->q0, bl->np, 0, cl->ntaps, PBMAX, tab, crow), cur = c.i % j->nblocks;
        pack_rows(j, bl->cls, c.s, c.r0, c.n, col, w, buf);
        for (int64_t q = 0; q < bl->np; q++) ctab[q] = tab[c.s * PBMAX + q] + c.r0;
        /* the rows start from zero with the first chunk; the bias (and whatever else is done to
         * the finished sums as they are stored) only with the last */
        int first = c.s == 0 && c.r0 == 0, last = c.s == cl->ntaps - 1 && c.r0 + c.n == j->sc;
        for (int64_t q = 0; q < bl->np; q += MR) {
            int mr = bl->np - q < MR ? (int)(bl->np - q) : MR;
            rows_fn[w == NR ? 2 : nv - 1][mr](1, c.n, ctab + q, buf, NR, crow + q, col,
                                              j->bias && last ? j->bias + col : NULL, m, !first);
        }
        if (last && j->ep) finish_rows(j, bl->np, crow, col, w);      /* the rows are complete */
    }
}

/* the first item whose work starts at or after u (items' work in j->cost, ascending) */
static int64_t item_at(const ConvJob *j, int64_t u) {
    int64_t lo = 0, hi = j->nblocks * j->ncp;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (j->cost[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* FWD and DGRAD: the work items that start in [u0, u1) of the work, each a pixel block
 * against a column panel of NR. The thread ranges are cut by work, not by items: DGRAD's
 * classes have different tap counts (k3 s2: 4, 2, 2 and 1), and an even split of the
 * items, class after class, left one of 2 threads twice the other's work. */
static void pixels_range(void *ctx, int64_t u0, int64_t u1) {
    const ConvJob *j = ctx;
    int64_t i0 = item_at(j, u0), i1 = item_at(j, u1);
    if (j->thin) {
        thin_range(j, i0, i1);
        return;
    }
    const float *tab[MAXTAPS * PBMAX];
    float *crow[PBMAX];
    float *panel = NULL;
    if (j->colmajor && !(panel = malloc((size_t)(j->rows * NR) * sizeof *panel))) abort();
    int64_t cur = -1, curp = -1;
    for (int64_t i = i0; i < i1; i++) {
        int64_t bi = j->colmajor ? i % j->nblocks : i / j->ncp, cp = j->colmajor ? i / j->nblocks : i % j->ncp;
        const PixBlock *bl = &j->blocks[bi];
        const PixClass *cl = &j->cls[bl->cls];
        if (bi != cur) fill_table(j, cl, bl->q0, bl->np, 0, cl->ntaps, PBMAX, tab, crow), cur = bi;
        if (j->dot) {
            for (int64_t q = 0; q < bl->np; q += 4)
                (j->dot == 1 ? dot_rows1 : dot_rows2)(cl->ntaps, j->sc, tab + q, bl->np - q < 4 ? (int)(bl->np - q) : 4,
                                                      j->wt, j->rows, crow + q, j->bias);
            if (j->ep) finish_rows(j, bl->np, crow, 0, j->n);
            continue;
        }
        int64_t col = cp * NR, w = j->n - col < NR ? j->n - col : NR;
        int nv = w > 16 ? 2 : 1;
        __mmask16 m = (__mmask16)((1u << (w - 16 * (nv - 1))) - 1);
        const float *b = NULL;
        int64_t ldb = NR;
        if (panel) {
            /* the panel's rows 2 KB or more apart would fight over the same cache sets */
            if (cp != curp) pack_panel(j, col, w, panel), curp = cp;
            b = panel + cl->row0 * NR;
        }
        else if (j->packed) b = j->packed + (cp * j->rows + cl->row0) * NR;
        else b = j->b + cl->row0 * j->ldb + col, ldb = j->ldb;
        if (j->ep) prefetch_rows(j, bl->np, crow, col, w);
        for (int64_t q = 0; q < bl->np; q += MR) {
            int mr = bl->np - q < MR ? (int)(bl->np - q) : MR;
            rows_fn[w == NR ? 2 : nv - 1][mr](cl->ntaps, j->sc, tab + q, b, ldb, crow + q, col,
                                j->bias ? j->bias + col : NULL, m, 0);
        }
        if (j->ep) finish_rows(j, bl->np, crow, col, w);
    }
    free(panel);
}

/* WGRAD: C[mr channels of one tap, 16 nv] (+)= sum over pixels q of tab[q][coff + r] dy[q];
 * the last vector of columns under mask m. Up to WRMAX = 14 channels: 28 accumulators for 32
 * filters, so the 2 loads of dy per pixel serve up to 28 FMAs, not 16 (see w_groups). */
static inline __attribute__((always_inline)) TARGET void
tile_w(const int mr, const int nv, int64_t np, const float *const *tab, int64_t coff, const float *dy, int64_t ldy,
       float *c, int64_t ldc, int accumulate, __mmask16 m) {
    __m512 acc[WRMAX][2];
#pragma GCC unroll 14
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            acc[r][v] = accumulate ? _mm512_maskz_loadu_ps(v < nv - 1 ? 0xFFFF : m, c + r * ldc + 16 * v)
                                   : _mm512_setzero_ps();
    for (int64_t q = 0; q < np; q++) {
        const float *a = tab[q] + coff;
        __m512 bv[2];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            bv[v] = v < nv - 1 ? _mm512_loadu_ps(dy + q * ldy + 16 * v) : _mm512_maskz_loadu_ps(m, dy + q * ldy + 16 * v);
#pragma GCC unroll 14
        for (int r = 0; r < mr; r++) {
            __m512 av = _mm512_set1_ps(a[r]);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 14
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) _mm512_mask_storeu_ps(c + r * ldc + 16 * v, v < nv - 1 ? 0xFFFF : m, acc[r][v]);
}

typedef void (*WFn)(int64_t np, const float *const *tab, int64_t coff, const float *dy, int64_t ldy,
                    float *c, int64_t ldc, int acc, __mmask16 m);
#define WT(MRV, NV) static TARGET void w_##MRV##x##NV(int64_t np, const float *const *tab, int64_t coff, \
    const float *dy, int64_t ldy, float *c, int64_t ldc, int acc, __mmask16 m) { \
    tile_w(MRV, NV, np, tab, coff, dy, ldy, c, ldc, acc, m); }
#define WT_ALL(NV) WT(8, NV) WT(9, NV) WT(10, NV) WT(11, NV) WT(12, NV) WT(13, NV) WT(14, NV)
WT_ALL(1) WT_ALL(2)
/* WGRAD with filters a multiple of 64 and fewer than 96 channels: C[4-7 channels of one tap,
 * 64 filters] (+)= sum over pixels q of tab[q][coff + r] dy[q]; per pixel 4 loads of dy and mr
 * broadcasts for 4 mr FMAs (up to 28 accumulators). One thread, GFLOP per CPU-second
 * (bench/conv_products): DDPM's 16x16x32 -> 64, 16x16x64 -> 64 and 8x8x64 -> 128 from
 * 119-133 with the 8 x 32 tile to 133-148. */
static inline __attribute__((always_inline)) TARGET void
tile_w4(const int mr, int64_t np, const float *const *tab, int64_t coff, const float *dy, int64_t ldy,
        float *c, int64_t ldc, int accumulate) {
    __m512 acc[7][4];
#pragma GCC unroll 7
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
    for (int64_t q = 0; q < np; q++) {
        const float *a = tab[q] + coff;
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) bv[v] = _mm512_loadu_ps(dy + q * ldy + 16 * v);
#pragma GCC unroll 7
        for (int r = 0; r < mr; r++) {
            __m512 av = _mm512_set1_ps(a[r]);
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 7
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}
typedef void (*W4Fn)(int64_t np, const float *const *tab, int64_t coff, const float *dy, int64_t ldy,
                     float *c, int64_t ldc, int acc);
#define W4(MRV) static TARGET void w4_##MRV(int64_t np, const float *const *tab, int64_t coff, \
    const float *dy, int64_t ldy, float *c, int64_t ldc, int acc) { tile_w4(MRV, np, tab, coff, dy, ldy, c, ldc, acc); }
W4(4) W4(5) W4(6) W4(7)
static const W4Fn w4_fn[8] = { [4] = w4_4, w4_5, w4_6, w4_7 };
static int w_wide(const ConvJob *j) { return j->n % 64 == 0 && j->g->c < 96; }

/* WGRAD's channel tiles: C (a multiple of 8) in tiles of 8, or from 96 channels on in ceil(C /
 * 14) tiles of 8-14 as even as they go. Measured one thread, GFLOP per CPU-second
 * (bench/conv_products): 14 won on 128-192 channels (109 -> 122, 106 -> 121) and lost on
 * 32-64 (111 -> 103, 125 -> 115, 131 -> 120); 96 channels were even. */
static int64_t w_groups(int64_t C) { return C >= 96 ? ceil_div(C, WRMAX) : C / WR; }

/* a tap's channel tiles: groups of 64 along the channels (dot), 4-7 x 64 filters (w_wide), or
 * 8-14 x 32 filters */
static int64_t w_tiles(const ConvJob *j) {
    int64_t C = j->g->c;
    return j->dot ? ceil_div(C, 64) : w_wide(j) ? ceil_div(C, 7) : w_groups(C);
}
static const WFn w_fn[2][WRMAX + 1] = {
    { [8] = w_8x1, w_9x1, w_10x1, w_11x1, w_12x1, w_13x1, w_14x1 },
    { [8] = w_8x2, w_9x2, w_10x2, w_11x2, w_12x2, w_13x2, w_14x2 },
};

/* WGRAD: row tiles [t0, t1) of dw, each 4-14 channels of one tap (tile k of groups: channels
 * [C k / groups, C (k + 1) / groups)), over all pixels in blocks; only the taps of these
 * tiles in the table */
static void wgrad_range(void *ctx, int64_t t0, int64_t t1) {
    const ConvJob *j = ctx;
    const ConvGeom *g = j->g;
    int64_t C = g->c, groups = w_tiles(j), P = g->n * g->ho * g->wo;
    int ta = (int)(t0 / groups), tb = (int)((t1 - 1) / groups) + 1;
    const float **tab = malloc((size_t)j->taps * WB * sizeof *tab);
    /* the bias gradient: by the thread of the first tile, as it reads dy for it anyway */
    double *bsum = t0 == 0 && j->ep && j->ep->bias_grad ? calloc((size_t)j->n, sizeof *bsum) : NULL;
    if (!tab || (t0 == 0 && j->ep && j->ep->bias_grad && !bsum)) abort();
    for (int64_t p0 = 0; p0 < P; p0 += WB) {
        int64_t np = P - p0 < WB ? P - p0 : WB;
        fill_table(j, j->cls, p0, np, ta, tb, WB, tab, NULL);
        for (int64_t tile = t0; tile < t1 && j->dot; tile++) {       /* 64 channels x f */
            int64_t t = tile / groups, coff = tile % groups * 64, nv = C - coff < 64 ? (C - coff) / 16 : 4;
            dot_w_fn[j->dot - 1][nv](np, tab + t * WB, coff, j->b + p0 * j->n, j->c + (t * C + coff) * j->n, p0 > 0);
        }
        for (int64_t tile = t0; tile < t1 && !j->dot; tile++) {
            int64_t t = tile / groups, k = tile % groups, coff = C * k / groups, mr = C * (k + 1) / groups - coff;
            float *c = j->c + (t * C + coff) * j->n;
            if (w_wide(j)) {
                for (int64_t col = 0; col < j->n; col += 64)
                    w4_fn[mr](np, tab + t * WB, coff, j->b + p0 * j->n + col, j->n, c + col, j->n, p0 > 0);
                continue;
            }
            for (int64_t col = 0; col < j->n; col += NR) {
                int64_t w = j->n - col < NR ? j->n - col : NR;
                __mmask16 m = (__mmask16)((1u << (w > 16 ? w - 16 : w)) - 1);
                w_fn[w > 16][mr](np, tab + t * WB, coff, j->b + p0 * j->n + col, j->n, c + col, j->n, p0 > 0, m);
            }
        }
        if (bsum) sum_rows(np, j->b + p0 * j->n, j->n, bsum);    /* dy's rows still in cache */
    }
    for (int64_t x = 0; bsum && x < j->n; x++) j->ep->bias_grad[x] = (float)bsum[x];
    free(bsum);
    free(tab);
}

int conv_gemm_implicit(const ConvGeom *g, int mode, int64_t f) {
    int taps = g->win.kh * g->win.kw;
    if (!gemm_thin_enabled() || f < 1 || taps > MAXTAPS) return 0;
    if (mode == CONV_WGRAD) return g->c % WR == 0;
    /* DGRAD's columns are the C input channels: fewer than 16 would leave most lanes idle,
     * and sgemm + col2im runs those (an image's gradient) faster */
    if (mode == CONV_DGRAD) return g->c >= 16;
    return 1;
}

/* the epilogue of conv_gemm.h after the fallback, in plain loops (c: rows of n) */
static void explicit_epilogue(const ConvGeom *g, int mode, const float *b, float *c, int64_t f, const ConvEpilogue *ep) {
    int64_t P = g->n * g->ho * g->wo, rows = mode == CONV_DGRAD ? g->n * g->h * g->w : P, n = mode == CONV_DGRAD ? g->c : f;
    if (mode == CONV_WGRAD && ep->bias_grad)
        for (int64_t j = 0; j < f; j++) {
            double s = 0;
            for (int64_t p = 0; p < P; p++) s += b[p * f + j];
            ep->bias_grad[j] = (float)s;
        }
    if (mode == CONV_WGRAD) return;
    for (int64_t i = 0; i < rows * n; i++) {     /* FWD: explicit_conv added the bias */
        float v = c[i];
        if (mode == CONV_DGRAD && ep->bias) v += ep->bias[i % n];
        if (ep->relu) v = v > 0 ? v : 0.0f;
        if (ep->mask) v = v * (ep->mask[i] > 0 ? 1.0f : 0.0f);
        c[i] = v;
    }
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

/* the classes' pixel blocks: PB pixels each, or the whole class when it has at most PBMAX */
static PixBlock *make_blocks(const PixClass *cls, int ncls, int64_t nimg, int64_t *nblocks) {
    int64_t nb = 0;
    for (int c = 0; c < ncls; c++) {
        int64_t count = nimg * cls[c].hc * cls[c].wc;
        nb += count <= PBMAX ? count > 0 : ceil_div(count, PB);
    }
    PixBlock *b = malloc((size_t)(nb ? nb : 1) * sizeof *b);
    if (!b) abort();
    nb = 0;
    for (int c = 0; c < ncls; c++) {
        int64_t count = nimg * cls[c].hc * cls[c].wc, step = count <= PBMAX ? PBMAX : PB;
        for (int64_t q = 0; q < count; q += step)
            b[nb++] = (PixBlock){ c, q, count - q < step ? count - q : step };
    }
    *nblocks = nb;
    return b;
}

void conv_gemm(const ConvGeom *g, int mode, const float *a, const float *b, float *c, int64_t f,
               int trans_b, const float *bias) {
    ConvEpilogue ep = { .bias = bias };
    conv_gemm_ep(g, mode, a, b, c, f, trans_b, &ep);
}

void conv_gemm_ep(const ConvGeom *g, int mode, const float *a, const float *b, float *c, int64_t f,
                  int trans_b, const ConvEpilogue *ep) {
    const float *bias = mode != CONV_WGRAD ? ep->bias : NULL;
    int more = mode == CONV_WGRAD ? ep->bias_grad != NULL : ep->relu || ep->mask || (mode == CONV_DGRAD && bias);
    if (!conv_gemm_implicit(g, mode, f)) {
        explicit_conv(g, mode, a, b, c, f, trans_b, bias);
        if (more) explicit_epilogue(g, mode, b, c, f, ep);
        return;
    }
    const ConvWindow *w = &g->win;
    int taps = w->kh * w->kw;
    int64_t C = g->c, K = taps * C;
    int64_t zn = mode == CONV_DGRAD ? f : C;
    float *zero = calloc((size_t)zn + 16, sizeof *zero);
    if (!zero) abort();
    ConvJob j = { .g = g, .mode = mode, .src = a, .sc = C, .b = b, .ldb = f, .n = f, .c = c, .zero = zero,
                  .taps = taps, .bias = bias, .ep = more ? ep : NULL };
    /* one or two filters: along the channels (see dot_rows) */
    j.dot = mode != CONV_DGRAD && f <= 2 && C % 16 == 0 ? (int)f : 0;
    int ncls = mode == CONV_DGRAD ? w->sy * w->sx : 1;
    PixClass *cls = calloc((size_t)ncls, sizeof *cls);
    float *packed = NULL;
    if (!cls) abort();
    j.cls = cls;
    if (mode != CONV_DGRAD) {     /* FWD and WGRAD: all output pixels over all taps */
        cls[0] = (PixClass){ 0, 0, g->ho, g->wo, taps, { 0 }, 0 };
        for (int t = 0; t < taps; t++) cls[0].tap[t] = t;
        j.rows = K;
    }
    if (mode == CONV_WGRAD) {
        parallel_for(taps * w_tiles(&j), 1, wgrad_range, &j);
        free(cls);
        free(zero);
        return;
    }
    if (mode == CONV_DGRAD) {
        /* a: dy [P, f]; b: w [K, f] (trans_b) or [f, K]. The turned kernel B has a row (t, jj)
         * per tap and filter, w[t, :, jj] over the C input channels, the taps of each class
         * together */
        int64_t row = 0;
        for (int k = 0; k < ncls; k++) {
            PixClass *cl = &cls[k];
            cl->ry = k / w->sx;
            cl->rx = k % w->sx;
            cl->hc = cl->ry < g->h ? ceil_div(g->h - cl->ry, w->sy) : 0;
            cl->wc = cl->rx < g->w ? ceil_div(g->w - cl->rx, w->sx) : 0;
            cl->row0 = row;
            for (int t = 0; t < taps; t++) {
                int64_t vy = cl->ry + w->pt - (int64_t)(t / w->kw) * w->dy, vx = cl->rx + w->pl - (int64_t)(t % w->kw) * w->dx;
                if (((vy % w->sy) + w->sy) % w->sy || ((vx % w->sx) + w->sx) % w->sx) continue;
                cl->tap[cl->ntaps++] = t;
                row += f;
            }
        }
        j.sc = f;
        j.ldb = C;
        j.n = C;
        j.rows = taps * f;
        j.w = b;
        j.trans_b = trans_b;
        j.f = f;
    }
    j.ncls = ncls;
    int64_t nblocks;
    PixBlock *blocks = make_blocks(cls, ncls, g->n, &nblocks);
    j.blocks = blocks;
    j.nblocks = nblocks;
    j.ncp = j.dot ? 1 : ceil_div(j.n, NR);
    float *wt = NULL;
    if (j.dot) {
        if (!(wt = malloc((size_t)(K * f) * sizeof *wt))) abort();
        for (int64_t k = 0; k < K; k++)
            for (int64_t jj = 0; jj < f; jj++) wt[jj * K + k] = b[k * f + jj];
        j.wt = wt;
    }
    /* panel by panel when the weights do not stay in cache and re-reading the image per
     * panel costs less than re-reading the weights per pixel block */
    double wbytes = 4.0 * K * f, ibytes = 4.0 * g->n * (mode == CONV_DGRAD ? g->ho * g->wo * f : g->h * g->w * C);
    j.colmajor = wbytes > (1 << 20) && ibytes * j.ncp < wbytes * nblocks;
    if (j.dot) j.colmajor = 0;
    j.thin = j.colmajor;
    for (int64_t bi = 0; bi < nblocks; bi++)
        j.thin &= blocks[bi].q0 == 0 && blocks[bi].np == g->n * cls[blocks[bi].cls].hc * cls[blocks[bi].cls].wc;
    if (!j.dot && !j.colmajor && (mode == CONV_DGRAD || j.n > NR)) {
        /* every panel once, up front (DGRAD: the kernel turned around), for all pixel blocks */
        packed = malloc((size_t)(j.ncp * j.rows * NR) * sizeof *packed);
        if (!packed) abort();
        j.packed = packed;
        parallel_for(j.ncp, 1, pack_range, &j);
    }
    /* an item's work: its pixels times its taps (one more for the stores, so that a class
     * without taps, whose pixels get zeros, still has work) times its 16-column vectors */
    int64_t items = nblocks * j.ncp;
    int64_t *cost = malloc((size_t)(items + 1) * sizeof *cost);
    if (!cost) abort();
    cost[0] = 0;
    for (int64_t i = 0; i < items; i++) {
        int64_t bi = j.colmajor ? i % nblocks : i / j.ncp, cp = j.colmajor ? i / nblocks : i % j.ncp;
        int64_t vecs = j.dot ? 1 : ceil_div(j.n - cp * NR < NR ? j.n - cp * NR : NR, 16);
        cost[i + 1] = cost[i] + blocks[bi].np * (cls[blocks[bi].cls].ntaps + 1) * vecs;
    }
    j.cost = cost;
    parallel_for(cost[items], (int64_t)(5e5 / (32.0 * j.sc)) + 1, pixels_range, &j);
    free(cost);
    free(blocks);
    free(wt);
    free(packed);
    free(cls);
    free(zero);
}
