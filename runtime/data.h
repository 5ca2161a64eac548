/* data.h: data sets as the runtime holds them: every example as float32 (or, from bytes,
 * one byte per value into a palette of floats, decoded per batch), load-time
 * transforms (filter, scale, pad, crop, resize, channels, split) already applied. Per-batch
 * transforms (random_flip, add_noise) and the second part of an example (labels, text
 * targets, domain B) are produced when a batch is filled. */
#ifndef GMC_DATA_H
#define GMC_DATA_H
#include <stdint.h>
#include "dataspec.h"
#include "rng.h"

typedef struct Dataset {
    int64_t n;                 /* examples */
    int ndim;
    int64_t shape[IR_MAXDIM];  /* one example (part 0) */
    int64_t example_size;
    float *x;                  /* n * example_size; NULL for text and unpaired sets */
    uint8_t *x8;               /* a cached image source's pixels (then x is NULL), or with
                                  `coded` the examples as codes into `palette` */
    int coded;                 /* example value k is palette[x8[k]]: a byte source whose
                                  load-time transforms left at most 256 distinct values */
    float palette[256];
    float *labels;             /* n class ids, or NULL */
    int64_t nclasses;
    int owned;                 /* x and labels belong to this set (not shared with a cache) */
    /* text: example i is the window ids[i*stride .. i*stride+window), target the next id */
    const uint8_t *ids;
    int64_t nids;
    int window, stride, nvocab;
    const char *vocab;         /* nvocab bytes, sorted: id k is vocab[k] */
    /* unpaired: example i pairs a's example i % a->n with a random example of b */
    const struct Dataset *a, *b;
} Dataset;

/* Compile time: works out what a source yields (spec->ndim/shape, nclasses, vocab, and for
 * folders size and channels when not given), reading only what it must: a folder's listing
 * and first image header, an .npy file, a text file (kept for data_load). IDX sources are not
 * read. Returns 0, or -1 with the file and the problem in err. */
int data_probe(DataSpec *spec, char *err, int errlen);
/* The shape of an example after a load-time or per-batch transform: 0, or -1 with why. */
int data_op_shape(const DataOp *op, int *ndim, int64_t *shape, char *err, int errlen);

/* Loads (once; later calls with an equal pipeline share the data) the examples a spec names.
 * Returns NULL with the file and the problem in err. Loads over a second show progress. */
const Dataset *data_load(const DataSpec *spec, char *err, int errlen);

/* Value k of the examples laid end to end (examples * example_size of them), whether the
 * set holds floats or palette codes. */
float data_value(const Dataset *d, int64_t k);

/* Batches per epoch: ceil(n / batch), or floor(n / batch) with drop_last. */
int64_t data_num_batches(const Dataset *d, const DataSpec *spec);
/* Examples in batch b (0-based) of an epoch: batch, except a smaller last one. */
int data_batch_len(const Dataset *d, const DataSpec *spec, int64_t b);

/* Copies examples idx[start .. start+n) of d (modulo d->n, so a smaller stream read with a
 * larger one's indices cycles) into dst (n * example_size floats), applying the spec's
 * per-batch transforms with draws from rng. Same as data_fill_part(.., 0, ..). */
void data_fill_batch(const Dataset *d, const DataSpec *spec, const int64_t *idx, int64_t start,
                     int n, float *dst, Rng *rng);
/* Fills part `part` (0: x; 1: labels, text targets or domain B, shaped spec->shape2) of
 * examples idx[start .. start+n). For unpaired sets part 1 draws b's examples from rng. */
void data_fill_part(const Dataset *d, const DataSpec *spec, int part, const int64_t *idx,
                    int64_t start, int n, float *dst, Rng *rng);

/* The pipeline as text, `fashion_mnist(split: "train") | filter(label: 7) | pad(2, 2, 2, 2)`:
 * what progress lines show and what the cache compares. with_ops = 0 names the source only. */
void data_describe(const DataSpec *spec, int with_ops, char *buf, int len);
#endif
