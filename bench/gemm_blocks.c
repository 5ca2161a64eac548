/* gemm_blocks.c: runtime/gemm.c's fixed blocks (OpenBLAS single-threaded in each) against
 * OpenBLAS's own threads, for the product shapes of the benchmark models (the MLP VAE's five
 * among them), best and median of REPS runs each (default 15), alternating. With SLEEP_US > 0
 * the caller sleeps that long before each of gmc's products, so the pool's worker has gone
 * to sleep as it has in a training step, where other work runs between the products (OpenBLAS
 * keeps its own threads spinning between its back-to-back calls). Build and run:
 * make build/gemm_blocks && OPENBLAS_CORETYPE=SkylakeX build/gemm_blocks [THREADS [REPS
 * [SLEEP_US]]] (the core type only where Debian's OpenBLAS does not recognise an AVX-512 CPU). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "gemm.h"
#include "threads.h"

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 15;
    int sleep_us = argc > 3 ? atoi(argv[3]) : 0;
    if (reps < 1) reps = 1;
    threads_start(threads);
    static const long shapes[][5] = {          /* m, n, k, trans_a, trans_b */
        { 4096, 32, 2048, 0, 1 }, { 4096, 2048, 32, 0, 0 }, { 2048, 32, 4096, 1, 0 },
        { 4096, 64, 1024, 1, 0 }, { 1024, 1024, 1024, 0, 0 }, { 128, 512, 784, 0, 0 },
        { 128, 784, 512, 0, 1 }, { 6400, 128, 576, 0, 0 }, { 16384, 1024, 1, 0, 1 },
        { 128, 784, 512, 0, 0 }, { 512, 784, 128, 1, 0 }, { 784, 512, 128, 1, 0 }, { 128, 512, 784, 0, 1 },
    };
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        long m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        int ta = (int)shapes[s][3], tb = (int)shapes[s][4];
        float *a = malloc(4 * m * k), *b = malloc(4 * k * n), *c = malloc(4 * m * n);
        for (long i = 0; i < m * k; i++) a[i] = (i % 7) * 0.1f;
        for (long i = 0; i < k * n; i++) b[i] = (i % 5) * 0.1f;
        double *t[2] = { malloc(reps * sizeof(double)), malloc(reps * sizeof(double)) };
        for (int rep = 0; rep < reps; rep++)
            for (int mode = 0; mode < 2; mode++) {
                if (mode == 1 && sleep_us > 0) usleep(sleep_us);
                double t0 = now();
                if (mode == 0 && k > 1) {
                    openblas_set_num_threads(threads);
                    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                                m, n, k, 1, a, ta ? m : k, b, tb ? k : n, 0, c, n);
                } else {
                    openblas_set_num_threads(1);
                    gemm_product(m, n, k, ta, tb, a, b, c);
                }
                t[mode][rep] = now() - t0;
            }
        qsort(t[0], reps, sizeof(double), by_value);
        qsort(t[1], reps, sizeof(double), by_value);
        double f = 2.0 * m * n * k / 1e9;
        printf("m %6ld k %6ld n %6ld %s%s  OpenBLAS, %d threads %7.1f GFLOP/s (median %7.1f)   gmc blocks %7.1f "
               "(median %7.1f, %3.0f %% of OpenBLAS's)%s\n", m, k, n, ta ? "A^T" : "   ", tb ? "B^T" : "   ", threads,
               f / t[0][0], f / t[0][reps / 2], f / t[1][0], f / t[1][reps / 2], 100 * t[0][reps / 2] / t[1][reps / 2],
               k > 1 ? "" : " (an outer product: gmc's loop both times)");
        free(t[0]);
        free(t[1]);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
