/* threads.c: a persistent pool with dynamic, deterministic scheduling. A job is cut into
 * chunks fixed by its size (parallel_chunk); the caller publishes it under a new generation
 * number and every thread, the caller included, claims chunks from one counter until none are
 * left. A chunk's bounds never depend on who runs it, so results are the same for any thread
 * count, while a thread that another process has pushed off its core delays only the chunk it
 * holds (with one contiguous share per thread, the step waited for the slowest share).
 *
 * Waiting: a worker spins briefly for the next job, then sleeps on a futex; so does the
 * caller waiting for the last chunks. Spinning while another process wants the core takes
 * the core from it (or from our own descheduled thread), and a thread that sleeps is
 * favoured by the scheduler when it wakes. A late worker is harmless: the caller does not
 * wait for workers to wake, only for chunks to finish. GMC_SPIN_US sets the spin (default
 * SPIN_US, microseconds), for measuring. */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "threads.h"

enum { MAX_THREADS = 64, SPIN_US = 20 };

static struct {
    int n;
    pthread_t tid[MAX_THREADS];
    /* generation << 32 | index of the next unclaimed chunk: a claim succeeds only for the
     * generation the claimer joined, so a late worker never takes a chunk of a newer job */
    _Alignas(64) _Atomic uint64_t ticket;
    _Alignas(64) atomic_uint done;         /* chunks of the current job finished (futex word) */
    atomic_int caller_sleeps;
    _Alignas(64) atomic_uint generation;   /* the latest job (futex word the workers sleep on) */
    atomic_int sleepers;
    atomic_int stop;
    atomic_uint nchunks;                   /* read before a claim, so atomic; the rest after */
    RangeFn fn;
    void *ctx;
    int64_t total, chunk;
    long spin_ns;
} pool = { .n = 1 };

static _Thread_local int inside;           /* this thread is running a chunk */

static void futex_wait(atomic_uint *word, unsigned value) {
    syscall(SYS_futex, (void *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}
static void futex_wake(atomic_uint *word) {
    syscall(SYS_futex, (void *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* spin until (*word == value) == equal or the spin time is up; 1 if it came true */
static int spin_until(atomic_uint *word, unsigned value, int equal) {
    long until = 0;
    for (int i = 1;; i++) {
        if ((atomic_load_explicit(word, memory_order_acquire) == value) == equal) return 1;
        relax();
        if (i % 32 == 0) {
            long t = now_ns();
            if (!until) until = t + pool.spin_ns;
            else if (t >= until) return 0;
        }
    }
}

int64_t parallel_chunk(int64_t n, int64_t min_chunk) {
    if (min_chunk < 1) min_chunk = 1;
    int64_t chunk = (n + PARALLEL_MAX_CHUNKS - 1) / PARALLEL_MAX_CHUNKS;
    return chunk > min_chunk ? chunk : min_chunk;
}

static void run_chunk(uint32_t i) {
    int64_t begin = i * pool.chunk, end = begin + pool.chunk;
    if (end > pool.total) end = pool.total;
    inside = 1;
    pool.fn(pool.ctx, begin, end);
    inside = 0;
}

/* claim and run chunks of generation g until none are left */
static void work(uint32_t g) {
    uint64_t t = atomic_load(&pool.ticket);
    for (;;) {
        if ((uint32_t)(t >> 32) != g) return;
        uint32_t i = (uint32_t)t, n = atomic_load_explicit(&pool.nchunks, memory_order_relaxed);
        if (i >= n) return;
        /* success means job g is still running (chunk i is not done), so its fields hold */
        if (!atomic_compare_exchange_weak(&pool.ticket, &t, t + 1)) continue;
        run_chunk(i);
        if (atomic_fetch_add(&pool.done, 1) + 1 == n && atomic_load(&pool.caller_sleeps))
            futex_wake(&pool.done);
        t = atomic_load(&pool.ticket);
    }
}

typedef struct WorkerStart { unsigned generation; } WorkerStart;
static WorkerStart starts[MAX_THREADS];

static void *worker(void *arg) {
    unsigned seen = ((const WorkerStart *)arg)->generation;   /* earlier jobs are not its own */
    for (;;) {
        if (!spin_until(&pool.generation, seen, 0)) {
            atomic_fetch_add(&pool.sleepers, 1);
            while (atomic_load(&pool.generation) == seen) futex_wait(&pool.generation, seen);
            atomic_fetch_sub(&pool.sleepers, 1);
        }
        if (atomic_load(&pool.stop)) return NULL;
        seen = atomic_load(&pool.generation);
        work(seen);
    }
}

void threads_start(int n) {
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    threads_stop();
    const char *spin = getenv("GMC_SPIN_US");
    pool.spin_ns = (spin && *spin ? atol(spin) : SPIN_US) * 1000L;
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
    atomic_store(&pool.nchunks, (unsigned)nchunks);
    atomic_store(&pool.done, 0);
    unsigned g = atomic_load(&pool.generation) + 1;
    atomic_store(&pool.ticket, (uint64_t)g << 32);         /* the job is open for claims */
    atomic_store(&pool.generation, g);
    if (atomic_load(&pool.sleepers)) futex_wake(&pool.generation);
    work(g);
    if (!spin_until(&pool.done, (unsigned)nchunks, 1)) {
        atomic_store(&pool.caller_sleeps, 1);
        unsigned d;
        while ((d = atomic_load(&pool.done)) != nchunks) futex_wait(&pool.done, d);
        atomic_store(&pool.caller_sleeps, 0);
    }
}

void threads_stop(void) {
    if (pool.n <= 1) return;
    atomic_store(&pool.stop, 1);
    atomic_fetch_add(&pool.generation, 1);
    futex_wake(&pool.generation);
    for (int k = 1; k < pool.n; k++) pthread_join(pool.tid[k], NULL);
    pool.n = 1;
}
