/* conv_epilogues.c: what runtime/conv_gemm.c's epilogues (conv_gemm.h's ConvEpilogue) cost
 * the convolution, against the separate pass over memory each replaces, on the DDPM U-Net's
 * 3x3 layers at batch 64 (not part of make test):
 *   build/conv_epilogues THREADS REPS
 * For each layer and product: the product alone, the product with its epilogue (forward: bias
 * and relu; weight gradient: the bias gradient; input gradient: the relu-gradient mask), and
 * the pass the epilogue replaces written as a plain loop (relu, the mask, dy's column sums in
 * double), alternating, REPS times each; milliseconds of process CPU time per call, medians. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "conv.h"
#include "conv_gemm.h"
#include "threads.h"

static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static float *buf(int64_t n) {
    float *p = malloc((size_t)n * sizeof *p);
    if (!p) abort();
    for (int64_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return p;
}
static int by_value(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static double median(double *v, int n) { qsort(v, n, sizeof *v, by_value); return v[n / 2]; }

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 7;
    if (reps < 1 || reps > 100) reps = 7;
    static const int layers[][3] = { { 32, 32, 32 }, { 32, 64, 16 }, { 64, 64, 16 }, { 64, 128, 8 }, { 128, 128, 8 }, { 96, 32, 32 } };
    static const char *names[] = { "", "forward + bias + relu", "weight gradient + bias gradient", "input gradient + mask" };
    threads_start(threads);
    printf("| layer (batch 64) | product | alone ms | with epilogue ms | separate pass ms |\n|---|---|---|---|---|\n");
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        int C = layers[l][0], F = layers[l][1], H = layers[l][2];
        ConvWindow win = { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1 };
        ConvGeom g = conv_geom(&win, 64, H, H, C);
        int64_t P = 64LL * H * H, K = 9LL * C, X = P * C;
        float *x = buf(X), *w = buf(K * F), *dy = buf(P * F), *y = buf(P * F), *y2 = buf(P * F), *dw = buf(K * F),
              *dx = buf(X), *dx2 = buf(X), *mask = buf(X), *bias = buf(F), *bg = buf(F);
        double *sums = calloc((size_t)F, sizeof *sums);
        for (int mode = CONV_FWD; mode <= CONV_DGRAD; mode++) {
            double t[3][100];
            for (int r = 0; r < reps; r++) {
                for (int e = 0; e < 2; e++) {
                    ConvEpilogue ep = { .bias = bias, .relu = e && mode == CONV_FWD, .bias_grad = e && mode == CONV_WGRAD ? bg : NULL,
                                        .mask = e && mode == CONV_DGRAD ? mask : NULL };
                    double t0 = cpu();
                    if (mode == CONV_FWD) conv_gemm_ep(&g, mode, x, w, y, F, 0, &ep);
                    else if (mode == CONV_WGRAD) conv_gemm_ep(&g, mode, x, dy, dw, F, 0, &ep);
                    else conv_gemm_ep(&g, mode, dy, w, dx, F, 1, &ep);
                    t[e][r] = cpu() - t0;
                }
                double t0 = cpu();
                if (mode == CONV_FWD) for (int64_t i = 0; i < P * F; i++) y2[i] = y[i] > 0 ? y[i] : 0.0f;
                else if (mode == CONV_DGRAD) for (int64_t i = 0; i < X; i++) dx2[i] = dx[i] * (mask[i] > 0 ? 1.0f : 0.0f);
                else {
                    for (int64_t j = 0; j < F; j++) sums[j] = 0;
                    for (int64_t p = 0; p < P; p++) for (int64_t j = 0; j < F; j++) sums[j] += dy[p * F + j];
                    for (int64_t j = 0; j < F; j++) bg[j] = (float)sums[j];
                }
                t[2][r] = cpu() - t0;
            }
            printf("| %dx%d, %d -> %d | %s | %.2f | %.2f | %.2f |\n", H, H, C, F, names[mode], 1e3 * median(t[0], reps),
                   1e3 * median(t[1], reps), 1e3 * median(t[2], reps));
        }
        free(x); free(w); free(dy); free(y); free(y2); free(dw); free(dx); free(dx2); free(mask); free(bias); free(bg); free(sums);
    }
    threads_stop();
    return 0;
}
