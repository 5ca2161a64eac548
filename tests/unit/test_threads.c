/* test_threads.c: the pool covers every index exactly once, for many sizes and many short
 * regions in a row (the pattern of a training loop), and runs serially with one thread.
 * Build it with -fsanitize=thread to check the hand-off (clean when this was written). */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "threads.h"

static void mark(void *ctx, int64_t b, int64_t e) {
    int *hits = ctx;
    for (int64_t i = b; i < e; i++) __atomic_fetch_add(&hits[i], 1, __ATOMIC_RELAXED);
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
    threads_stop();
    threads_start(1);
    int one[8] = { 0 };
    parallel_for(8, 1, mark, one);
    CHECK(one[0] == 1 && one[7] == 1, "a pool of 1 runs serially");
    threads_stop();
    CHECK_DONE();
}
