/* test_conv_gemm.c: the implicit-GEMM convolutions (runtime/conv_gemm.c) and the thin matrix
 * products (runtime/gemm_thin.c) against im2col / col2im and products summed in double, for
 * window shapes with padding, strides (the input gradient by sub-pixel classes), dilation,
 * odd image sizes, every pixel count below the micro-kernel's 12 rows, filters and channels
 * that are not multiples of 16 (masked columns), few pixels against large weights; and the
 * same bits with 1 and 2 threads. On a CPU without AVX-512 the same calls take the OpenBLAS
 * fallback, which is checked the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "conv.h"
#include "conv_gemm.h"
#include "gemm_thin.h"
#include "threads.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static float urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 16777216.0)) - 0.5f;
}
static float *rand_buf(int64_t n) {
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = urand();
    return p;
}
/* largest |a - b| relative to the largest |b| */
static double rel_err(const float *a, const double *b, int64_t n) {
    double d = 0, s = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return d / s;
}

/* the epilogues (conv_gemm.h) against the plain products (ref: forward, weight gradient,
 * input gradient) and separate passes: relu after the bias, the relu-gradient mask, the bias
 * gradient; the same bits with 1, 2 and 3 threads */
static void check_epilogue(const char *what, const ConvGeom *g, const float *x, const float *wt, const float *dy,
                           int64_t f, float *const *ref) {
    int64_t P = g->n * g->ho * g->wo, K = (int64_t)g->win.kh * g->win.kw * g->c, X = g->n * g->h * g->w * g->c;
    float *bias = rand_buf(f), *mask = rand_buf(X), *cbias = rand_buf(g->c);
    float *o[3][5];                 /* relu(y + bias), dw, bias gradient, dx masked, relu(dx + bias) */
    int64_t sizes[5] = { P * f, K * f, f, X, X };
    for (int t = 0; t < 3; t++) {
        threads_start(t + 1);
        for (int m = 0; m < 5; m++) o[t][m] = malloc((size_t)sizes[m] * sizeof *o[t][m]);
        conv_gemm_ep(g, CONV_FWD, x, wt, o[t][0], f, 0, &(ConvEpilogue){ .bias = bias, .relu = 1 });
        conv_gemm_ep(g, CONV_WGRAD, x, dy, o[t][1], f, 0, &(ConvEpilogue){ .bias_grad = o[t][2] });
        conv_gemm_ep(g, CONV_DGRAD, dy, wt, o[t][3], f, 1, &(ConvEpilogue){ .mask = mask });
        conv_gemm_ep(g, CONV_DGRAD, dy, wt, o[t][4], f, 1, &(ConvEpilogue){ .bias = cbias, .relu = 1 });
    }
    threads_stop();
    int fwd = 1, bwd = 1, same = 1;
    for (int64_t i = 0; i < P * f; i++) {
        float v = ref[0][i] + bias[i % f];
        fwd &= o[0][0][i] == (v > 0 ? v : 0.0f);
    }
    int tfwd = 1;                   /* a transposed convolution's forward pass: bias and relu */
    for (int64_t i = 0; i < X; i++) {
        float v = ref[2][i] + cbias[i % g->c];
        bwd &= o[0][3][i] == ref[2][i] * (mask[i] > 0 ? 1.0f : 0.0f);
        tfwd &= o[0][4][i] == (v > 0 ? v : 0.0f);
    }
    double *bsum = calloc((size_t)f, sizeof *bsum);
    for (int64_t i = 0; i < P * f; i++) bsum[i % f] += dy[i];
    for (int t = 0; t < 3; t++)
        for (int m = 0; m < 5; m++) same &= memcmp(o[0][m], o[t][m], (size_t)sizes[m] * sizeof *o[0][m]) == 0;
    CHECK(fwd, "%s: forward with bias and relu = the product, then the bias added, then relu (same bits)", what);
    CHECK(memcmp(o[0][1], ref[1], (size_t)(K * f) * sizeof *ref[1]) == 0 && rel_err(o[0][2], bsum, f) < 1e-6,
          "%s: weight gradient with the bias gradient: the same weight gradient, and dy's column sums", what);
    CHECK(bwd, "%s: input gradient with the relu-gradient mask = dx * (mask > 0) (same bits)", what);
    CHECK(tfwd, "%s: input gradient with a bias and relu (a transposed convolution) = dx, then the bias, then relu (same bits)", what);
    CHECK(same, "%s: the epilogues give the same bits with 1, 2 and 3 threads", what);
    for (int t = 0; t < 3; t++) for (int m = 0; m < 5; m++) free(o[t][m]);
    free(bias); free(mask); free(cbias); free(bsum);
}

static void check_conv(const char *what, ConvWindow win, int64_t n, int64_t h, int64_t w, int64_t c, int64_t f) {
    ConvGeom g = conv_geom(&win, n, h, w, c);
    int64_t P = n * g.ho * g.wo, K = (int64_t)win.kh * win.kw * c, X = n * h * w * c;
    float *x = rand_buf(X), *wt = rand_buf(K * f), *dy = rand_buf(P * f), *cols = malloc((size_t)(P * K) * sizeof *cols);
    im2col(&g, x, cols);
    /* the references in double: y = cols w, dw = cols^T dy, dcols = dy w^T then col2im */
    double *y = calloc((size_t)(P * f), sizeof *y), *dw = calloc((size_t)(K * f), sizeof *dw), *dx = calloc((size_t)X, sizeof *dx);
    for (int64_t p = 0; p < P; p++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < f; j++) {
                y[p * f + j] += (double)cols[p * K + k] * wt[k * f + j];
                dw[k * f + j] += (double)cols[p * K + k] * dy[p * f + j];
            }
    float *dcols = malloc((size_t)(P * K) * sizeof *dcols), *dxf = malloc((size_t)X * sizeof *dxf);
    for (int64_t p = 0; p < P; p++)
        for (int64_t k = 0; k < K; k++) {
            double s = 0;
            for (int64_t j = 0; j < f; j++) s += (double)dy[p * f + j] * wt[k * f + j];
            dcols[p * K + k] = (float)s;
        }
    col2im(&g, dcols, dxf);
    for (int64_t i = 0; i < X; i++) dx[i] = dxf[i];
    float *wtt = malloc((size_t)(K * f) * sizeof *wtt);          /* w as [f, K] */
    for (int64_t k = 0; k < K; k++) for (int64_t j = 0; j < f; j++) wtt[j * K + k] = wt[k * f + j];

    float *out1[3], *out2[3], *out3[3];
    int64_t sizes[3] = { P * f, K * f, X };
    for (int t = 0; t < 3; t++) {          /* 3 threads: ranges that start inside a tap's tiles */
        threads_start(t + 1);
        float **out = t == 2 ? out3 : t ? out2 : out1;
        for (int m = 0; m < 3; m++) out[m] = malloc((size_t)sizes[m] * sizeof *out[m]);
        conv_gemm(&g, CONV_FWD, x, wt, out[0], f, 0, NULL);
        conv_gemm(&g, CONV_WGRAD, x, dy, out[1], f, 0, NULL);
        conv_gemm(&g, CONV_DGRAD, dy, wt, out[2], f, 1, NULL);
    }
    threads_stop();
    float *dx2 = malloc((size_t)X * sizeof *dx2);
    conv_gemm(&g, CONV_DGRAD, dy, wtt, dx2, f, 0, NULL);
    /* the forward product with a bias: the bits of the product, then a separate add */
    float *bias = rand_buf(f), *yb = malloc((size_t)(P * f) * sizeof *yb);
    conv_gemm(&g, CONV_FWD, x, wt, yb, f, 0, bias);
    int biased = 1;
    for (int64_t i = 0; i < P * f; i++) biased &= yb[i] == out1[0][i] + bias[i % f];
    CHECK(biased, "%s: forward with a bias = forward, then the bias added (same bits)", what);
    free(bias); free(yb);
    CHECK(rel_err(out1[0], y, P * f) < 1e-5, "%s: forward (%s) matches im2col @ w", what,
          conv_gemm_implicit(&g, CONV_FWD, f) ? "implicit" : "im2col + sgemm");
    CHECK(rel_err(out1[1], dw, K * f) < 1e-5, "%s: weight gradient (%s) matches im2col^T @ dy", what,
          conv_gemm_implicit(&g, CONV_WGRAD, f) ? "implicit" : "im2col + sgemm");
    CHECK(rel_err(out1[2], dx, X) < 1e-5 && rel_err(dx2, dx, X) < 1e-5,
          "%s: input gradient (%s) matches col2im(dy @ w^T), w given either way round", what,
          conv_gemm_implicit(&g, CONV_DGRAD, f) ? "implicit" : "sgemm + col2im");
    int same = 1;
    for (int m = 0; m < 3; m++)
        same &= memcmp(out1[m], out2[m], (size_t)sizes[m] * sizeof *out1[m]) == 0 &&
                memcmp(out1[m], out3[m], (size_t)sizes[m] * sizeof *out1[m]) == 0;
    CHECK(same, "%s: 1, 2 and 3 threads give the same bits", what);
    check_epilogue(what, &g, x, wt, dy, f, out1);
    for (int m = 0; m < 3; m++) { free(out1[m]); free(out2[m]); free(out3[m]); }
    free(x); free(wt); free(dy); free(cols); free(y); free(dw); free(dx); free(dcols); free(dxf); free(wtt); free(dx2);
}

static void check_thin(int ta, int tb, int64_t m, int64_t n, int64_t k) {
    float *a = rand_buf(m * k), *b = rand_buf(k * n), *c1 = malloc((size_t)(m * n) * sizeof *c1), *c2 = malloc((size_t)(m * n) * sizeof *c2);
    double *ref = calloc((size_t)(m * n), sizeof *ref);
    for (int64_t i = 0; i < m; i++)
        for (int64_t kk = 0; kk < k; kk++) {
            double av = ta ? a[kk * m + i] : a[i * k + kk];
            for (int64_t j = 0; j < n; j++) ref[i * n + j] += av * (tb ? b[j * k + kk] : b[kk * n + j]);
        }
    threads_start(1);
    int used = gemm_thin(ta, tb, m, n, k, a, b, c1);
    threads_start(2);
    gemm_thin(ta, tb, m, n, k, a, b, c2);
    threads_stop();
    if (!used) printf("ok - thin product %lldx%lldx%lld%s%s: not covered here (OpenBLAS runs it)\n",
                      (long long)m, (long long)k, (long long)n, ta ? " A^T" : "", tb ? " B^T" : "");
    else {
        CHECK(rel_err(c1, ref, m * n) < 1e-5, "thin product %lldx%lldx%lld%s%s matches the product in double",
              (long long)m, (long long)k, (long long)n, ta ? " A^T" : "", tb ? " B^T" : "");
        CHECK(memcmp(c1, c2, (size_t)(m * n) * sizeof *c1) == 0, "thin product %lldx%lldx%lld: 1 and 2 threads give the same bits",
              (long long)m, (long long)k, (long long)n);
    }
    free(a); free(b); free(c1); free(c2); free(ref);
}

int main(void) {
    /* kh kw sy sx dy dx pt pb pl pr */
    check_conv("3x3 same, 8 -> 16", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 2, 7, 5, 8, 16);
    check_conv("3x3 same, 16 -> 48", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 3, 6, 6, 16, 48);
    check_conv("3x3 same, 1 -> 32", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 2, 5, 5, 1, 32);
    check_conv("4x4 stride 2, 16 -> 32", (ConvWindow){ 4, 4, 2, 2, 1, 1, 1, 1, 1, 1 }, 2, 8, 9, 16, 32);
    check_conv("3x2 dilated, asymmetric padding, 8 -> 16", (ConvWindow){ 3, 2, 1, 1, 2, 2, 2, 1, 0, 1 }, 1, 6, 7, 8, 16);
    check_conv("1x1, 32 -> 16", (ConvWindow){ 1, 1, 1, 1, 1, 1, 0, 0, 0, 0 }, 2, 4, 3, 32, 16);
    check_conv("3x3 valid, 24 -> 20 (masked columns)", (ConvWindow){ 3, 3, 1, 1, 1, 1, 0, 0, 0, 0 }, 2, 6, 6, 24, 20);
    /* filters that are not a multiple of 16 (the last columns under a mask) */
    check_conv("4x4 stride 2 pad 1, 16 -> 1", (ConvWindow){ 4, 4, 2, 2, 1, 1, 1, 1, 1, 1 }, 2, 9, 7, 16, 1);
    /* one or two filters: along the channels (channels a multiple of 16), pixel counts not a
     * multiple of 4, channel groups of 64 with a remainder of 16, 32 or 48 */
    check_conv("3x3 same, 64 -> 1", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 2, 5, 7, 64, 1);
    check_conv("3x3 same, 48 -> 2", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 1, 7, 7, 48, 2);
    check_conv("4x4 same, 80 -> 1", (ConvWindow){ 4, 4, 1, 1, 1, 1, 1, 2, 1, 2 }, 1, 3, 5, 80, 1);
    check_conv("4x4 stride 2 pad 1, 96 -> 2", (ConvWindow){ 4, 4, 2, 2, 1, 1, 1, 1, 1, 1 }, 3, 6, 5, 96, 2);
    check_conv("3x3 same, 8 -> 1 (masked columns)", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 2, 5, 5, 8, 1);
    check_conv("3x3 same, 16 -> 3", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 2, 7, 5, 16, 3);
    check_conv("3x3 same, 8 -> 3", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 2, 7, 5, 8, 3);
    check_conv("3x3 same, 16 -> 17", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 1, 5, 6, 16, 17);
    check_conv("3x3 same, 8 -> 40", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 1, 5, 5, 8, 40);
    /* strided input gradients by sub-pixel classes, odd image sizes, any channel count */
    check_conv("3x3 stride 2 pad 1, odd sizes, 24 -> 16", (ConvWindow){ 3, 3, 2, 2, 1, 1, 1, 1, 1, 1 }, 2, 7, 9, 24, 16);
    check_conv("4x4 stride 2 pad 1, 3 -> 32", (ConvWindow){ 4, 4, 2, 2, 1, 1, 1, 1, 1, 1 }, 2, 8, 7, 3, 32);
    check_conv("4x4 stride 2 pad 1, 16 -> 16, one image of 5x5", (ConvWindow){ 4, 4, 2, 2, 1, 1, 1, 1, 1, 1 }, 1, 5, 5, 16, 16);
    check_conv("3x3 stride 2 dilation 2 pad 2, 16 -> 17", (ConvWindow){ 3, 3, 2, 2, 2, 2, 2, 2, 2, 2 }, 2, 9, 8, 16, 17);
    check_conv("4x3 strides 3x2, asymmetric padding, 24 -> 16", (ConvWindow){ 4, 3, 3, 2, 1, 1, 2, 0, 1, 0 }, 2, 10, 7, 24, 16);
    check_conv("1x1 stride 2 (classes without taps), 16 -> 16", (ConvWindow){ 1, 1, 2, 2, 1, 1, 0, 0, 0, 0 }, 2, 5, 6, 16, 16);
    check_conv("3x3 dilation 2, stride 1, 16 -> 16", (ConvWindow){ 3, 3, 1, 1, 2, 2, 2, 2, 2, 2 }, 1, 6, 7, 16, 16);
    /* stride-2 input gradients large enough for 2 and 3 threads to split them: the ranges are
     * cut by work across classes of 4, 2, 2, 1 taps (k3 "same": padding 0 before, 1 after)
     * and 4, 6, 6, 9 (k5), so the cuts fall inside classes and between unequal ones */
    check_conv("3x3 stride 2 pad 0/1, 32 -> 16, 3 images of 16x16", (ConvWindow){ 3, 3, 2, 2, 1, 1, 0, 1, 0, 1 }, 3, 16, 16, 32, 16);
    check_conv("5x5 stride 2 pad 1/2, 32 -> 16, 2 images of 14x14", (ConvWindow){ 5, 5, 2, 2, 1, 1, 1, 2, 1, 2 }, 2, 14, 14, 32, 16);
    check_conv("3x3 stride 2 pad 0/1, 48 -> 24, 2 images of 13x11", (ConvWindow){ 3, 3, 2, 2, 1, 1, 0, 1, 0, 1 }, 2, 13, 11, 48, 24);
    /* few pixels against large weights (panel-by-panel order), and every leftover row count */
    check_conv("4x4 stride 2 pad 1, 64 -> 512, 128 pixels", (ConvWindow){ 4, 4, 2, 2, 1, 1, 1, 1, 1, 1 }, 32, 4, 4, 64, 512);
    check_conv("4x4 stride 2 pad 1, 64 -> 400, 11 pixels", (ConvWindow){ 4, 4, 2, 2, 1, 1, 1, 1, 1, 1 }, 11, 2, 2, 64, 400);
    /* every class one block against a kernel of over 1 MB (thin_range): rows in chunks of
     * 128 of one tap with a remainder (160 channels forward, 144 filters for the input
     * gradient), three tiles of 12 rows, a masked last panel; and 1x1 stride 2, whose input
     * gradient has three classes without taps */
    check_conv("4x4 stride 2 pad 1, 160 -> 144, 36 pixels", (ConvWindow){ 4, 4, 2, 2, 1, 1, 1, 1, 1, 1 }, 9, 4, 4, 160, 144);
    check_conv("1x1 stride 2, 520 -> 512, 18 pixels", (ConvWindow){ 1, 1, 2, 2, 1, 1, 0, 0, 0, 0 }, 2, 5, 6, 520, 512);
    for (int n = 1; n <= 12; n++) {
        char what[64];
        snprintf(what, sizeof what, "3x3 same, 16 -> 48, %d pixels", n);
        check_conv(what, (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, n, 1, 1, 16, 48);
    }
    /* weight-gradient tiles: 8 channels below 96, from 96 on C split into ceil(C / 14) even
     * tiles of 8-14 (96: 13-14, 104: 8 x 13, 112: 8 x 14, 120: 13-14, 200: 13-14), full,
     * masked and half column panels, pixel counts across the 256-pixel blocks */
    check_conv("3x3 same, 24 -> 32 (wgrad tiles of 8)", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 2, 7, 5, 24, 32);
    check_conv("3x3 same, 96 -> 32 (wgrad tiles of 13-14)", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 3, 11, 9, 96, 32);
    check_conv("3x3 same, 104 -> 48 (wgrad tiles of 13)", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 2, 6, 7, 104, 48);
    check_conv("3x3 stride 2, 112 -> 20 (wgrad tiles of 14, masked)", (ConvWindow){ 3, 3, 2, 2, 1, 1, 1, 1, 1, 1 }, 2, 9, 8, 112, 20);
    check_conv("2x2 valid, 120 -> 64 (wgrad tiles of 13-14)", (ConvWindow){ 2, 2, 1, 1, 1, 1, 0, 0, 0, 0 }, 1, 5, 4, 120, 64);
    check_conv("1x1, 200 -> 40 (wgrad tiles of 13-14, 300 pixels)", (ConvWindow){ 1, 1, 1, 1, 1, 1, 0, 0, 0, 0 }, 3, 10, 10, 200, 40);
    /* filters a multiple of 64 below 96 channels: tiles of 4-7 channels x 64 filters (8: 4 + 4,
     * 16: 5 + 5 + 6, 24: 6 x 4, 40: 6-7, 88: 6-7), across 256-pixel blocks */
    check_conv("3x3 same, 8 -> 64 (wgrad tiles 4 x 64)", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 2, 7, 5, 8, 64);
    check_conv("3x3 same, 16 -> 128 (wgrad tiles of 5-6 x 64)", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 3, 11, 9, 16, 128);
    check_conv("3x3 stride 2, 24 -> 64 (wgrad tiles 6 x 64)", (ConvWindow){ 3, 3, 2, 2, 1, 1, 1, 1, 1, 1 }, 2, 9, 8, 24, 64);
    check_conv("1x1, 40 -> 192 (wgrad tiles of 6-7 x 64, 300 pixels)", (ConvWindow){ 1, 1, 1, 1, 1, 1, 0, 0, 0, 0 }, 3, 10, 10, 40, 192);
    check_conv("2x2 valid, 88 -> 64 (wgrad tiles of 6-7 x 64)", (ConvWindow){ 2, 2, 1, 1, 1, 1, 0, 0, 0, 0 }, 1, 5, 4, 88, 64);
    check_conv("3x3 same, 16 -> 16, 109 pixels (two blocks and a remainder)", (ConvWindow){ 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 }, 1, 1, 109, 16, 16);
    check_thin(0, 0, 1000, 48, 300);
    check_thin(0, 1, 600, 96, 40);
    check_thin(1, 0, 200, 32, 1500);
    check_thin(1, 0, 9, 32, 1100);      /* a 3x3 one-channel convolution's weight gradient */
    check_thin(0, 0, 1003, 16, 9);      /* its forward product: 8-row tiles and a remainder */
    check_thin(0, 0, 100, 48, 30);
    CHECK_DONE();
}
