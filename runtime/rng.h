/* rng.h: Philox-4x32-10 counter-based random numbers. A draw depends only on (seed, counter),
 * never on thread count or call order elsewhere, so runs are reproducible and resumable:
 * the whole state is two 64-bit words, saved in checkpoints. */
#ifndef GMC_RNG_H
#define GMC_RNG_H
#include <stdint.h>

typedef struct Rng { uint64_t key; uint64_t counter; } Rng;

void rng_init(Rng *r, uint64_t seed);
void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* Fill n floats; each call consumes ceil(n/4) counters (normal: Box-Muller on pairs). */
void rng_uniform(Rng *r, float *out, int64_t n);          /* [0, 1) */
void rng_normal(Rng *r, float *out, int64_t n);           /* N(0, 1) */
uint64_t rng_below(Rng *r, uint64_t n);                   /* uniform integer in [0, n) */
void rng_shuffle(Rng *r, int64_t *perm, int64_t n);       /* Fisher-Yates in place */
#endif
