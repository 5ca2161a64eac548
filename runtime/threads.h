/* threads.h: one pool of worker threads for gmc's own kernels and optimiser updates. Work is
 * cut into chunks whose bounds depend only on the size (never on the thread count or on
 * scheduling); threads take chunks from a shared counter, so a thread that the system
 * deschedules holds up only the chunk it is running. Every index is in exactly one chunk, so
 * results do not depend on which thread ran what. OpenBLAS runs single-threaded inside our
 * chunks (runtime/gemm.c), so the two share one thread budget without oversubscribing. */
#ifndef GMC_THREADS_H
#define GMC_THREADS_H
#include <stdint.h>

typedef void (*RangeFn)(void *ctx, int64_t begin, int64_t end);

void threads_start(int n);          /* n threads in all, the caller included; 1 = serial */
int threads_count(void);
/* Runs fn over [0, n) in chunks and returns when all are done. The chunks are
 * parallel_chunk(n, min_chunk) indices long (the last one shorter), and fn is called once per
 * chunk whatever the thread count, on one thread at a time: fn(ctx, i * chunk, min(n, ...)).
 * The caller runs chunks too. Called from inside a chunk, it runs serially. */
void parallel_for(int64_t n, int64_t min_chunk, RangeFn fn, void *ctx);
/* the chunk length parallel_for uses: at least min_chunk, and at most PARALLEL_MAX_CHUNKS
 * chunks in all */
enum { PARALLEL_MAX_CHUNKS = 16 };
int64_t parallel_chunk(int64_t n, int64_t min_chunk);
void threads_stop(void);
#endif
