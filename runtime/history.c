/* history.c: the pools of history.h. */
#include <stdlib.h>
#include <string.h>
#include "history.h"

typedef struct Pool { int capacity; int64_t count, n; float *data; } Pool;
static Pool pools[16];
static int npools;

static Pool *pool_of(int id, int capacity, int64_t n) {
    if (id < 0 || id >= 16) return NULL;
    Pool *p = &pools[id];
    if (!p->data || p->n != n || p->capacity != capacity) {
        free(p->data);
        p->data = calloc((size_t)capacity * n, sizeof *p->data);
        p->capacity = capacity;
        p->count = 0;
        p->n = n;
    }
    if (id >= npools) npools = id + 1;
    return p;
}

void history_query(int id, int capacity, const float *x, float *out, int64_t m, int64_t n, Rng *rng) {
    Pool *p = pool_of(id, capacity, n);
    if (!p) { memcpy(out, x, m * n * sizeof *out); return; }
    for (int64_t i = 0; i < m; i++) {
        const float *xi = x + i * n;
        float *oi = out + i * n;
        if (p->count < p->capacity) {               /* filling: keep it, answer with it */
            memcpy(p->data + p->count++ * n, xi, n * sizeof *xi);
            memcpy(oi, xi, n * sizeof *oi);
            continue;
        }
        float u;
        rng_uniform(rng, &u, 1);
        if (u < 0.5f) {                             /* an old image, replaced by the new one */
            float *slot = p->data + rng_below(rng, (uint64_t)p->capacity) * n;
            memcpy(oi, slot, n * sizeof *oi);
            memcpy(slot, xi, n * sizeof *xi);
        } else {
            memcpy(oi, xi, n * sizeof *oi);
        }
    }
}

const float *history_contents(int id, int64_t *count, int64_t *n) {
    if (id < 0 || id >= npools || !pools[id].data) return NULL;
    *count = pools[id].count;
    *n = pools[id].n;
    return pools[id].data;
}

int history_restore(int id, int capacity, const float *data, int64_t count, int64_t n) {
    if (count > capacity) return -1;
    Pool *p = pool_of(id, capacity, n);
    if (!p) return -1;
    memcpy(p->data, data, count * n * sizeof *data);
    p->count = count;
    return 0;
}

int history_pools(void) { return npools; }
int history_capacity(int id) { return id >= 0 && id < npools ? pools[id].capacity : 0; }

void history_reset(void) {
    for (int i = 0; i < 16; i++) { free(pools[i].data); pools[i] = (Pool){ 0 }; }
    npools = 0;
}
