/* sim_threads.c: runtime/threads.c's interface, simulated for timing on a loaded machine.
 * parallel_for runs the N chunks it would hand to N threads one after another on the calling
 * thread, each timed by the thread's CPU time, and adds the longest to sim_critical: what N
 * free cores would take, less what they share (memory bandwidth, L3). Linked before libgmc.a
 * into build/conv_products_sim, whose implicit products are then timed by sim_critical: an
 * uneven cut between threads shows, other processes' load does not. Not part of make test. */
#include <time.h>
#include "threads.h"

double sim_critical;
static int nthreads = 1;

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

void threads_start(int n) { nthreads = n < 1 ? 1 : n; }
int threads_count(void) { return nthreads; }
void threads_stop(void) { nthreads = 1; }

/* the chunking of threads.c's parallel_for */
void parallel_for(int64_t n, int64_t min_chunk, RangeFn fn, void *ctx) {
    int parts = nthreads;
    if (min_chunk < 1) min_chunk = 1;
    if (n / min_chunk < parts) parts = (int)(n / min_chunk);
    if (parts < 1) parts = 1;
    int64_t chunk = (n + parts - 1) / parts;
    double longest = 0;
    for (int k = 0; k < parts; k++) {
        int64_t begin = k * chunk, end = begin + chunk < n ? begin + chunk : n;
        double t0 = thread_seconds();
        if (begin < end) fn(ctx, begin, end);
        double d = thread_seconds() - t0;
        if (d > longest) longest = d;
    }
    sim_critical += longest;
}
