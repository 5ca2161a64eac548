/* test_blas_threads.c: OpenBLAS's own threads stay idle while gmc's pool runs matrix
 * products, so the two never compete for the cores (--threads is the one budget). OpenBLAS
 * starts its threads when it loads, before main: they are the tasks of /proc/self/task that
 * exist at the start; the pool's workers are the ones threads_start adds. Each thread's CPU
 * time (clock ticks, /proc/self/task/TID/stat) is read before and after products run by the
 * pool: the pool's threads must gain time, OpenBLAS's none. A control runs one product with
 * OpenBLAS's own threads on, to show that the measure sees them when they work. */
#include <cblas.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "check.h"
#include "gemm.h"
#include "threads.h"

enum { MAXT = 256 };

static int tasks(int *tid) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && n < MAXT) tid[n++] = atoi(e->d_name);
    if (d) closedir(d);
    return n;
}

/* utime + stime of one thread, in clock ticks */
static long ticks(int tid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *p = strrchr(buf, ')');        /* the name may hold spaces; fields 3.. follow it */
    long ut = 0, st = 0;
    if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st);
    return ut + st;
}

static long sum_ticks(const int *tid, int n) {
    long s = 0;
    for (int i = 0; i < n; i++) s += ticks(tid[i]);
    return s;
}

static int contains(const int *tid, int n, int t) {
    for (int i = 0; i < n; i++) if (tid[i] == t) return 1;
    return 0;
}

int main(void) {
    int self = (int)getpid(), at_start[MAXT], all[MAXT], blas[MAXT], pool[MAXT], nblas = 0, npool = 0;
    int n0 = tasks(at_start);
    for (int i = 0; i < n0; i++) if (at_start[i] != self) blas[nblas++] = at_start[i];
    if (nblas == 0) {
        printf("ok - skipped: OpenBLAS started no threads of its own here (one core, or OPENBLAS_NUM_THREADS=1)\n");
        return 0;
    }
    openblas_set_num_threads(1);          /* as compiler/main.c does */
    threads_start(3);
    int n1 = tasks(all);
    for (int i = 0; i < n1; i++) if (!contains(at_start, n0, all[i])) pool[npool++] = all[i];
    CHECK(npool == 2, "the pool of 3 added 2 workers (%d tasks: %d of OpenBLAS, %d of the pool, the caller)", n1, nblas, npool);

    int n = 512;
    float *a = malloc((size_t)n * n * sizeof *a), *b = malloc((size_t)n * n * sizeof *b), *c = malloc((size_t)n * n * sizeof *c);
    for (int i = 0; i < n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    /* OpenBLAS's threads spin for a while after they start: wait until their time stops moving */
    long before = sum_ticks(blas, nblas);
    for (int i = 0; i < 100; i++) {
        nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
        long now = sum_ticks(blas, nblas);
        if (now == before && i >= 2) break;
        before = now;
    }
    long pool_before = sum_ticks(pool, npool);
    /* products until the workers have 10 ticks (a few tenths of a second), or 400 of them */
    for (int rep = 0; rep < 400 && sum_ticks(pool, npool) - pool_before < 10; rep++)
        gemm_product(n, n, n, rep & 1, rep & 1, a, b, c);
    long blas_gain = sum_ticks(blas, nblas) - before, pool_gain = sum_ticks(pool, npool) - pool_before;
    CHECK(pool_gain >= 5, "the pool's workers ran products: %ld ticks", pool_gain);
    CHECK(blas_gain <= 1, "OpenBLAS's own threads stayed idle meanwhile: %ld ticks", blas_gain);

    /* the control: OpenBLAS's own threads on, one big product outside the pool */
    threads_stop();
    openblas_set_num_threads(nblas + 1);
    before = sum_ticks(blas, nblas);
    for (int rep = 0; rep < 400 && sum_ticks(blas, nblas) - before < 10; rep++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    long control = sum_ticks(blas, nblas) - before;
    openblas_set_num_threads(1);
    CHECK(control >= 5, "control: with its threads on, OpenBLAS's threads gain time (%ld ticks)", control);
    free(a); free(b); free(c);
    CHECK_DONE();
}
