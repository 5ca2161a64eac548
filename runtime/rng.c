/* rng.c: Philox-4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011). Every draw is a pure function of (key, counter), so a stream can be
 * resumed from a checkpoint or split across threads without changing a single value. */
#include "rng.h"
#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u   /* golden ratio */
#define PHILOX_W1 0xBB67AE85u   /* sqrt(3) - 1 */

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0; c1 = (uint32_t)p1; c2 = n2; c3 = (uint32_t)p0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void rng_init(Rng *r, uint64_t seed) {
    r->key = seed;
    r->counter = 0;
}

/* The next block of 4 outputs; advances the counter by one. */
static void next_block(Rng *r, uint32_t out[4]) {
    uint32_t ctr[4] = { (uint32_t)r->counter, (uint32_t)(r->counter >> 32), 0, 0 };
    uint32_t key[2] = { (uint32_t)r->key, (uint32_t)(r->key >> 32) };
    philox4x32_10(ctr, key, out);
    r->counter++;
}

/* 24 bits is all a float mantissa holds, so every value is exact and < 1. */
static inline float u01_open_hi(uint32_t u) { return (float)(u >> 8) * 0x1p-24f; }   /* [0,1) */
static inline double u01_open_lo(uint32_t u) { return ((u >> 8) + 1) * 0x1p-24; }    /* (0,1] */

void rng_uniform(Rng *r, float *out, int64_t n) {
    uint32_t b[4];
    for (int64_t i = 0; i < n; i += 4) {
        next_block(r, b);
        for (int j = 0; j < 4 && i + j < n; j++) out[i + j] = u01_open_hi(b[j]);
    }
}

void rng_normal(Rng *r, float *out, int64_t n) {
    const double two_pi = 6.283185307179586476925286766559;
    uint32_t b[4];
    float z[4];
    for (int64_t i = 0; i < n; i += 4) {
        next_block(r, b);
        for (int p = 0; p < 2; p++) {
            /* u1 in (0,1] keeps log() finite; u2 in [0,1) covers the full circle */
            double radius = sqrt(-2.0 * log(u01_open_lo(b[2 * p])));
            double angle = two_pi * u01_open_hi(b[2 * p + 1]);
            z[2 * p] = (float)(radius * cos(angle));
            z[2 * p + 1] = (float)(radius * sin(angle));
        }
        for (int j = 0; j < 4 && i + j < n; j++) out[i + j] = z[j];
    }
}

uint64_t rng_below(Rng *r, uint64_t n) {
    if (n <= 1) return 0;
    /* reject the lowest 2^64 mod n values so every residue is equally likely */
    uint64_t threshold = (0 - n) % n;
    uint32_t b[4];
    for (;;) {
        next_block(r, b);
        for (int h = 0; h < 2; h++) {
            uint64_t x = (uint64_t)b[2 * h] | (uint64_t)b[2 * h + 1] << 32;
            if (x >= threshold) return x % n;
        }
    }
}

void rng_shuffle(Rng *r, int64_t *perm, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(r, (uint64_t)i + 1);
        int64_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}
