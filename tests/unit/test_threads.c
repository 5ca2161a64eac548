/* test_threads.c: the pool covers every index exactly once, for many sizes and many short
 * regions in a row (the pattern of a training loop), and runs serially with one thread; the
 * chunks are the same for every thread count; a stalled thread does not hold up the others'
 * chunks; a parallel_for inside a chunk runs serially.
 * Build it with -fsanitize=thread to check the hand-off (clean when this was written). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "check.h"
#include "threads.h"

static void mark(void *ctx, int64_t b, int64_t e) {
    int *hits = ctx;
    for (int64_t i = b; i < e; i++) __atomic_fetch_add(&hits[i], 1, __ATOMIC_RELAXED);
}

/* the chunks a parallel_for made, as a bitmap of (begin, end) pairs over [0, n] */
typedef struct Calls { int64_t n; unsigned char *seen; int count; } Calls;
static void record(void *ctx, int64_t b, int64_t e) {
    Calls *c = ctx;
    __atomic_fetch_add(&c->seen[b * (c->n + 1) + e], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->count, 1, __ATOMIC_RELAXED);
}

/* the first chunk a worker (not the caller) takes stalls for 50 ms; the caller's first chunk
 * waits (up to a second) for a worker to be in one, so that the stall really happens */
static pthread_t caller;
static int stalled, by_caller, total_chunks;
static void stall_once(void *ctx, int64_t b, int64_t e) {
    (void)ctx; (void)b; (void)e;
    __atomic_fetch_add(&total_chunks, 1, __ATOMIC_RELAXED);
    if (pthread_equal(pthread_self(), caller)) {
        for (int ms = 0; ms < 1000 && !__atomic_load_n(&by_caller, __ATOMIC_RELAXED) &&
                         !__atomic_load_n(&stalled, __ATOMIC_RELAXED); ms++)
            nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
        __atomic_fetch_add(&by_caller, 1, __ATOMIC_RELAXED);
        return;
    }
    if (!__atomic_exchange_n(&stalled, 1, __ATOMIC_RELAXED)) nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
}

static int nested_ok = 1;
static void inner_mark(void *ctx, int64_t b, int64_t e) { mark(ctx, b, e); }
static void outer(void *ctx, int64_t b, int64_t e) {
    int (*rows)[64] = ctx;
    for (int64_t i = b; i < e; i++) parallel_for(64, 1, inner_mark, rows[i]);
}

int main(void) {
    threads_start(4);
    CHECK(threads_count() == 4, "a pool of 4 threads");
    int ok = 1;
    for (int64_t n = 0; n < 300 && ok; n++)
        for (int rep = 0; rep < 3 && ok; rep++) {
            int *hits = calloc(n + 1, sizeof *hits);
            parallel_for(n, 1, mark, hits);
            for (int64_t i = 0; i < n; i++) ok &= hits[i] == 1;
            free(hits);
        }
    CHECK(ok, "every index of [0, n) is visited exactly once, n = 0..299, 3 rounds each");
    int *hits = calloc(1 << 20, sizeof *hits);
    for (int rep = 0; rep < 2000; rep++) parallel_for(1 << 10, 16, mark, hits);
    int64_t total = 0;
    for (int i = 0; i < 1 << 10; i++) total += hits[i];
    CHECK(total == 2000 * 1024, "2000 short regions in a row complete (%lld marks)", (long long)total);
    free(hits);
    /* a restarted pool must not re-run the last job of the previous one */
    threads_stop();
    threads_start(3);
    int fresh[64] = { 0 };
    parallel_for(64, 1, mark, fresh);
    int exact = 1;
    for (int i = 0; i < 64; i++) exact &= fresh[i] == 1;
    CHECK(exact, "after a restart the pool runs only the new job");

    /* the chunks depend on the size alone: the same (begin, end) pairs for 1 to 4 threads */
    int same = 1, sizes[] = { 1, 7, 16, 17, 100, 1000, 4099 }, mins[] = { 1, 3, 64 };
    for (int si = 0; si < 7; si++)
        for (int mi = 0; mi < 3; mi++) {
            int64_t n = sizes[si];
            unsigned char *ref = NULL;
            for (int t = 1; t <= 4; t++) {
                threads_start(t);
                Calls c = { n, calloc((size_t)((n + 1) * (n + 1)), 1), 0 };
                parallel_for(n, mins[mi], record, &c);
                int64_t chunk = parallel_chunk(n, mins[mi]);
                same &= c.count == (n + chunk - 1) / chunk && c.count <= (n < PARALLEL_MAX_CHUNKS ? n : PARALLEL_MAX_CHUNKS);
                for (int64_t b = 0; b < n; b += chunk) same &= c.seen[b * (n + 1) + (b + chunk < n ? b + chunk : n)] == 1;
                if (!ref) ref = c.seen;
                else { same &= !memcmp(ref, c.seen, (size_t)((n + 1) * (n + 1))); free(c.seen); }
            }
            free(ref);
        }
    CHECK(same, "the same chunks, each run once, with 1, 2, 3 and 4 threads (sizes 1..4099, min chunks 1, 3, 64)");

    /* dynamic: while a worker is stalled in its chunk, the caller runs all the others (with one
     * share per thread it would have waited for half of them) */
    threads_start(2);
    caller = pthread_self();
    parallel_for(PARALLEL_MAX_CHUNKS, 1, stall_once, NULL);
    CHECK(total_chunks == PARALLEL_MAX_CHUNKS && stalled && by_caller == PARALLEL_MAX_CHUNKS - 1,
          "a stalled worker holds up one chunk: the caller ran %d of %d", by_caller, total_chunks);

    /* a parallel_for inside a chunk runs serially on that thread, and completes */
    static int rows[32][64];
    parallel_for(32, 1, outer, rows);
    for (int i = 0; i < 32; i++)
        for (int j = 0; j < 64; j++) nested_ok &= rows[i][j] == 1;
    CHECK(nested_ok, "a parallel_for inside a chunk covers its range once");

    threads_stop();
    threads_start(1);
    int one[8] = { 0 };
    parallel_for(8, 1, mark, one);
    CHECK(one[0] == 1 && one[7] == 1, "a pool of 1 runs serially");
    threads_stop();
    CHECK_DONE();
}
