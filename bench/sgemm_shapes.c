/* sgemm_shapes.c: OpenBLAS sgemm's GFLOP/s on given product shapes, the reference that
 * bench/bench.py sets gmc's large products against (the "large GEMM-bound layers at
 * 85 % or more of OpenBLAS sgemm throughput"). One single sgemm call per shape, OpenBLAS's own
 * threads (THREADS of them), row-major C[m x n] = op(A)[m x k] @ op(B)[k x n]; one call to
 * warm up, then the fastest of REPS or more timed calls (more while under 0.2 s in all, at
 * most 64): the best the library does, which a loaded machine pulls down the least.
 * A separate process, so the operands (an
 * implicit convolution's A is its im2col matrix, hundreds of MB) do not count in gmc's peak
 * memory. Usage: sgemm_shapes THREADS REPS m k n trans_a trans_b [m k n trans_a trans_b ...];
 * prints "m k n trans_a trans_b GFLOP/s" per shape. Debian's OpenBLAS 0.3.21 needs
 * OPENBLAS_CORETYPE=SkylakeX in the environment on AVX-512 CPUs (bench.py sets it). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 8 || (argc - 3) % 5) {
        fprintf(stderr, "usage: sgemm_shapes THREADS REPS m k n trans_a trans_b [...]\n");
        return 2;
    }
    int threads = atoi(argv[1]), reps = atoi(argv[2]);
    if (reps < 1) reps = 1;
    openblas_set_num_threads(threads > 0 ? threads : 1);
    for (int s = 3; s + 4 < argc; s += 5) {
        long m = atol(argv[s]), k = atol(argv[s + 1]), n = atol(argv[s + 2]);
        int ta = atoi(argv[s + 3]), tb = atoi(argv[s + 4]);
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
        if (m <= 0 || k <= 0 || n <= 0 || !a || !b || !c) {
            fprintf(stderr, "sgemm_shapes: cannot run %ld x %ld x %ld\n", m, k, n);
            return 1;
        }
        for (long i = 0; i < m * k; i++) a[i] = (float)(i % 7) * 0.1f;
        for (long i = 0; i < k * n; i++) b[i] = (float)(i % 5) * 0.1f;
        double best = 1e30, start = now();
        for (int r = -1; r < 64 && (r < reps || now() - start < 0.2); r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m,
                        (int)n, (int)k, 1.0f, a, ta ? (int)m : (int)k, b, tb ? (int)k : (int)n, 0.0f, c, (int)n);
            double t = now() - t0;
            if (r >= 0 && t < best) best = t;
        }
        printf("%ld %ld %ld %d %d %.1f\n", m, k, n, ta, tb, 2.0 * m * n * k / best / 1e9);
        fflush(stdout);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
