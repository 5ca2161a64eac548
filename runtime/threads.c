/* threads.c: a persistent pool with dynamic, deterministic scheduling. A job is cut into
 * chunks fixed by its size (parallel_chunk); the caller publishes it under a new generation
 * number, and every thread, the caller included, takes chunks from one atomic counter until
 * none are left, then counts down. A chunk's bounds never depend on who runs it, so results
 * are the same for any thread count, and a thread that starts late or runs slowly takes
 * fewer chunks instead of holding up a fixed share.
 *
 * Waiting is the old pool's, kept because it measured best under load (docs/performance.md,
 * "Threads under load"): workers spin briefly, then sleep on a condition variable; the caller
 * spins until every worker has checked in, so no worker can still be reading a job when the
 * next one is published. A futex pool that let the caller return without the late workers,
 * spun 20 us with pause and then yielded, was 2-3x slower on DCGAN with a CPU hog here. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "threads.h"

enum { MAX_THREADS = 64, SPIN = 2000 };

static struct {
    int n;
    pthread_t tid[MAX_THREADS];
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint generation;
    atomic_int pending;
    atomic_int stop;
    RangeFn fn;
    void *ctx;
    int64_t total, chunk, nchunks;
    atomic_llong next;                  /* the next unclaimed chunk of the current job */
} pool = { .n = 1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static _Thread_local int inside;        /* this thread is running a chunk */

int64_t parallel_chunk(int64_t n, int64_t min_chunk) {
    if (min_chunk < 1) min_chunk = 1;
    int64_t chunk = (n + PARALLEL_MAX_CHUNKS - 1) / PARALLEL_MAX_CHUNKS;
    return chunk > min_chunk ? chunk : min_chunk;
}

/* claim and run chunks of the current job until none are left */
static void run_chunks(void) {
    inside = 1;
    for (;;) {
        int64_t i = atomic_fetch_add(&pool.next, 1);
        if (i >= pool.nchunks) break;
        int64_t begin = i * pool.chunk, end = begin + pool.chunk;
        pool.fn(pool.ctx, begin, end < pool.total ? end : pool.total);
    }
    inside = 0;
}

typedef struct WorkerStart { unsigned generation; } WorkerStart;
static WorkerStart starts[MAX_THREADS];

static void *worker(void *arg) {
    unsigned seen = ((const WorkerStart *)arg)->generation;   /* earlier jobs are not its own */
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&pool.generation)) == seen && !atomic_load(&pool.stop)) {
            if (++spins < SPIN) continue;
            pthread_mutex_lock(&pool.lock);
            while (atomic_load(&pool.generation) == seen && !atomic_load(&pool.stop))
                pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
        if (atomic_load(&pool.stop)) return NULL;
        seen = g;
        run_chunks();
        atomic_fetch_sub(&pool.pending, 1);
    }
}

void threads_start(int n) {
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    threads_stop();
    pool.n = n;
    atomic_store(&pool.stop, 0);
    for (int k = 1; k < n; k++) {
        starts[k] = (WorkerStart){ atomic_load(&pool.generation) };
        if (pthread_create(&pool.tid[k], NULL, worker, &starts[k]) != 0) { pool.n = k; break; }
    }
}

int threads_count(void) { return pool.n; }

void parallel_for(int64_t n, int64_t min_chunk, RangeFn fn, void *ctx) {
    if (n <= 0) return;
    int64_t chunk = parallel_chunk(n, min_chunk), nchunks = (n + chunk - 1) / chunk;
    if (pool.n <= 1 || nchunks == 1 || inside) {
        /* the same chunks, in order, on this thread */
        int was = inside;
        inside = 1;
        for (int64_t b = 0; b < n; b += chunk) fn(ctx, b, b + chunk < n ? b + chunk : n);
        inside = was;
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.total = n;
    pool.chunk = chunk;
    pool.nchunks = nchunks;
    atomic_store(&pool.next, 0);
    atomic_store(&pool.pending, pool.n - 1);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.generation, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    run_chunks();
    while (atomic_load(&pool.pending) > 0) { }
}

void threads_stop(void) {
    if (pool.n <= 1) return;
    pthread_mutex_lock(&pool.lock);
    atomic_store(&pool.stop, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int k = 1; k < pool.n; k++) pthread_join(pool.tid[k], NULL);
    pool.n = 1;
}
