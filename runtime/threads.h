/* threads.h: one pool of worker threads for gmc's own kernels and optimiser updates. Work is
 * split into contiguous ranges whose bounds depend only on the size and the thread count,
 * and every output element is computed by exactly one thread, so results do not depend on
 * scheduling. OpenBLAS runs between our parallel regions, never inside them, so the two
 * share one thread budget without oversubscribing the cores. */
#ifndef GMC_THREADS_H
#define GMC_THREADS_H
#include <stdint.h>

typedef void (*RangeFn)(void *ctx, int64_t begin, int64_t end);

void threads_start(int n);          /* n threads in all, the caller included; 1 = serial */
int threads_count(void);
/* Runs fn over [0, n) in up to threads_count() contiguous chunks (never smaller than
 * min_chunk) and returns when all are done. */
void parallel_for(int64_t n, int64_t min_chunk, RangeFn fn, void *ctx);
void threads_stop(void);
#endif
