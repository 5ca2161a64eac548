/* conv_products.c: runtime/conv_gemm.c's implicit convolution products against OpenBLAS sgemm
 * on the same [m x k] @ [k x n] (the im2col / col2im copies excluded, so sgemm gets the
 * easier job), for every convolution of CycleGAN at batch 16 and of the DDPM U-Net at batch
 * 64 (the `make bench` models). The two alternate in one process, REPS times each; the
 * medians are printed as GFLOP/s and the implicit product's share of sgemm's speed.
 * Build and run: make build/conv_products && OPENBLAS_CORETYPE=SkylakeX build/conv_products
 * [THREADS] [REPS] [FILTER] [cpu] (FILTER: only the layers whose name, e.g. "4x4x256 k4 s2",
 * or model contains it, "" for all; cpu: GFLOP per CPU-second, steadier than wall-clock time
 * on a loaded machine, mostly with 1 thread; the core type only where Debian's OpenBLAS does not recognise an AVX-512
 * CPU; gmc sets it itself). build/conv_products_sim (same arguments) times the implicit side
 * as THREADS free cores would run it (bench/sim_threads.c): the longest thread's CPU time
 * per parallel step, so an uneven cut shows under load; sgemm's side stays as measured.
 * Not part of make test. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "conv.h"
#include "conv_gemm.h"
#include "threads.h"

static int cpu_clock;           /* time by the process's CPU time (steadier on a loaded machine) */
/* linked in build/conv_products_sim only (bench/sim_threads.c): the implicit products' time as
 * THREADS free cores would take it */
extern double sim_critical __attribute__((weak));
static double now(void) {
    struct timespec t;
    clock_gettime(cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct Layer {
    const char *model;
    int n, h, w, c, f, k, s;      /* "same" padding */
} Layer;

static const Layer layers[] = {
    { "cyclegan16 G", 16, 32, 32, 1, 32, 4, 2 },   { "cyclegan16 G", 16, 16, 16, 32, 64, 4, 2 },
    { "cyclegan16 G", 16, 8, 8, 64, 128, 4, 2 },   { "cyclegan16 G", 16, 4, 4, 128, 256, 4, 2 },
    { "cyclegan16 G", 16, 4, 4, 256, 128, 4, 1 },  { "cyclegan16 G", 16, 8, 8, 256, 64, 4, 1 },
    { "cyclegan16 G", 16, 16, 16, 128, 32, 4, 1 }, { "cyclegan16 G", 16, 32, 32, 64, 1, 4, 1 },
    { "cyclegan16 D", 16, 32, 32, 1, 64, 4, 2 },   { "cyclegan16 D", 16, 16, 16, 64, 128, 4, 2 },
    { "cyclegan16 D", 16, 8, 8, 128, 256, 4, 2 },  { "cyclegan16 D", 16, 4, 4, 256, 512, 4, 2 },
    { "cyclegan16 D", 16, 2, 2, 512, 1, 4, 1 },
    { "ddpm64", 64, 32, 32, 1, 32, 3, 1 },   { "ddpm64", 64, 32, 32, 32, 32, 3, 1 },
    { "ddpm64", 64, 16, 16, 32, 64, 3, 1 },  { "ddpm64", 64, 16, 16, 64, 64, 3, 1 },
    { "ddpm64", 64, 8, 8, 64, 128, 3, 1 },   { "ddpm64", 64, 8, 8, 128, 128, 3, 1 },
    { "ddpm64", 64, 16, 16, 192, 64, 3, 1 }, { "ddpm64", 64, 32, 32, 96, 32, 3, 1 },
    /* conv VAE M17, batch 100: the encoder's convolutions; the decoder's transposed
     * convolutions are the input gradients (dgrad) of the geometries after them */
    { "convvae100", 100, 32, 32, 1, 32, 3, 2 },  { "convvae100", 100, 16, 16, 32, 64, 3, 2 },
    { "convvae100", 100, 8, 8, 64, 128, 3, 2 },  { "convvae100", 100, 8, 8, 128, 128, 3, 2 },
    { "convvae100", 100, 16, 16, 64, 128, 3, 2 }, { "convvae100", 100, 32, 32, 32, 64, 3, 2 },
    { "convvae100", 100, 32, 32, 32, 1, 3, 1 },
    /* DCGAN M11, batch 32: D's convolutions, whose input gradients are also G's transposed ones */
    { "dcgan32", 32, 28, 28, 1, 64, 5, 2 },      { "dcgan32", 32, 14, 14, 64, 128, 5, 2 },
};

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 9;
    cpu_clock = argc > 4 && !strcmp(argv[4], "cpu");
    threads_start(threads);
    static const char *names[] = { "", "forward", "wgrad", "dgrad" };
    double tot[2] = { 0, 0 };
    printf("%-13s %-22s %-8s %-22s %-8s %9s %9s %7s\n", "model", "layer", "product", "[m x k] @ [k x n]",
           "", "implicit", "sgemm", "% sgemm");
    for (size_t l = 0; l < sizeof layers / sizeof *layers; l++) {
        const Layer *ly = &layers[l];
        char lay[64], shape[64];
        snprintf(lay, sizeof lay, "%dx%dx%d k%d s%d -> %d", ly->h, ly->w, ly->c, ly->k, ly->s, ly->f);
        if (argc > 3 && !strstr(lay, argv[3]) && !strstr(ly->model, argv[3])) continue;
        ConvWindow win = { ly->k, ly->k, ly->s, ly->s, 1, 1, 0, 0, 0, 0 };
        conv_same_padding(ly->h, ly->k, ly->s, 1, &win.pt, &win.pb);
        conv_same_padding(ly->w, ly->k, ly->s, 1, &win.pl, &win.pr);
        ConvGeom g = conv_geom(&win, ly->n, ly->h, ly->w, ly->c);
        int64_t P = g.n * g.ho * g.wo, K = (int64_t)ly->k * ly->k * ly->c, F = ly->f, X = g.n * g.h * g.w * g.c;
        float *x = malloc(4 * X), *w = malloc(4 * K * F), *y = malloc(4 * P * F), *dw = malloc(4 * K * F),
              *cols = malloc(4 * P * K);
        for (int64_t i = 0; i < X; i++) x[i] = (i % 7) * 0.1f;
        for (int64_t i = 0; i < K * F; i++) w[i] = (i % 5) * 0.1f;
        for (int64_t i = 0; i < P * F; i++) y[i] = (i % 3) * 0.1f;
        for (int64_t i = 0; i < P * K; i++) cols[i] = (i % 7) * 0.1f;
        for (int mode = CONV_FWD; mode <= CONV_DGRAD; mode++) {
            int64_t m = mode == CONV_WGRAD ? K : P, n = mode == CONV_DGRAD ? K : F, k = mode == CONV_FWD ? K : mode == CONV_WGRAD ? P : F;
            double *ts[2] = { malloc(sizeof(double) * reps), malloc(sizeof(double) * reps) };
            float *out = malloc(4 * (m * n > X ? m * n : X));
            for (int r = -1; r < reps; r++)
                for (int side = 0; side < 2; side++) {
                    double t0 = side == 0 && &sim_critical ? sim_critical : now();
                    if (side == 0) {
                        if (mode == CONV_FWD) conv_gemm(&g, mode, x, w, out, F, 0, NULL);
                        else if (mode == CONV_WGRAD) conv_gemm(&g, mode, x, y, out, F, 0, NULL);
                        else conv_gemm(&g, mode, y, w, out, F, 1, NULL);
                    } else {
                        openblas_set_num_threads(threads);
                        if (mode == CONV_FWD) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, F, K, 1, cols, K, w, F, 0, out, F);
                        else if (mode == CONV_WGRAD) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, F, P, 1, cols, K, y, F, 0, out, F);
                        else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, K, F, 1, y, F, w, F, 0, cols, K);
                        openblas_set_num_threads(1);
                    }
                    if (r >= 0) ts[side][r] = (side == 0 && &sim_critical ? sim_critical : now()) - t0;
                }
            qsort(ts[0], reps, sizeof(double), cmp_double);
            qsort(ts[1], reps, sizeof(double), cmp_double);
            double fl = 2.0 * m * n * k, gi = fl / ts[0][reps / 2] / 1e9, gs = fl / ts[1][reps / 2] / 1e9;
            tot[0] += ts[0][reps / 2];
            tot[1] += ts[1][reps / 2];
            snprintf(shape, sizeof shape, "%lld x %lld x %lld", (long long)m, (long long)k, (long long)n);
            printf("%-13s %-22s %-8s %-22s %-8s %9.1f %9.1f %6.0f%%\n", ly->model, lay, names[mode], shape,
                   mode == CONV_WGRAD ? "A^T" : mode == CONV_DGRAD ? "B^T" : "", gi, gs, 100 * gi / gs);
            free(ts[0]); free(ts[1]); free(out);
        }
        free(x); free(w); free(y); free(dw); free(cols);
    }
    printf("all products: implicit %.1f ms, sgemm %.1f ms (medians summed; threads %d, %s%s)\n", tot[0] * 1e3, tot[1] * 1e3,
           threads, cpu_clock ? "CPU time" : "wall-clock time", &sim_critical ? "; implicit: simulated free cores" : "");
    return 0;
}
