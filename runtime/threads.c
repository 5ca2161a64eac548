/* threads.c: a persistent pool. The caller publishes a job (function, context, range) and a
 * new generation number; workers wake, take their fixed chunk, and count down. Workers spin
 * only briefly before sleeping: on two cores a spinning worker takes the core OpenBLAS's
 * threads need (measured: a quarter of a VAE step lost to scheduling with long spins). */
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
    int64_t total, chunk;
} pool = { .n = 1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static void run_chunk(int k) {
    int64_t begin = k * pool.chunk, end = begin + pool.chunk;
    if (end > pool.total) end = pool.total;
    if (begin < end) pool.fn(pool.ctx, begin, end);
}

typedef struct WorkerStart { int k; unsigned generation; } WorkerStart;
static WorkerStart starts[MAX_THREADS];

static void *worker(void *arg) {
    const WorkerStart *w = arg;
    int k = w->k;
    unsigned seen = w->generation;     /* jobs published before this worker existed are not its */
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
        run_chunk(k);
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
        starts[k] = (WorkerStart){ k, atomic_load(&pool.generation) };
        if (pthread_create(&pool.tid[k], NULL, worker, &starts[k]) != 0) { pool.n = k; break; }
    }
}

int threads_count(void) { return pool.n; }

void parallel_for(int64_t n, int64_t min_chunk, RangeFn fn, void *ctx) {
    int parts = pool.n;
    if (min_chunk < 1) min_chunk = 1;
    if (n / min_chunk < parts) parts = (int)(n / min_chunk);
    if (parts <= 1) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    /* chunk bounds depend on n and the pool size only; idle workers get empty ranges */
    pool.fn = fn;
    pool.ctx = ctx;
    pool.total = n;
    pool.chunk = (n + parts - 1) / parts;
    atomic_store(&pool.pending, pool.n - 1);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.generation, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    run_chunk(0);
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
