/* history.h: pools of past examples, as CycleGAN's discriminators see generated images
 * (Shrivastava et al. 2017): each new image is stored while the pool fills; once full, half
 * the time an image is swapped for a random stored one. Pools live for the whole run and are
 * saved in checkpoints. */
#ifndef GMC_HISTORY_H
#define GMC_HISTORY_H
#include <stdint.h>
#include "rng.h"

/* out = the pool's answer for the m examples (n floats each) of x; draws come from rng */
void history_query(int pool, int capacity, const float *x, float *out, int64_t m, int64_t n, Rng *rng);
/* access for checkpoints: the stored examples (count * n floats) of pool id, or NULL */
const float *history_contents(int pool, int64_t *count, int64_t *n);
int history_restore(int pool, int capacity, const float *data, int64_t count, int64_t n);
int history_pools(void);          /* pool ids are 0 .. history_pools() - 1 */
int history_capacity(int pool);
void history_reset(void);
#endif
