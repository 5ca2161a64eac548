/* data.c: data set sources. Fashion-MNIST comes from Debian's dataset-fashion-mnist package;
 * MNIST (or any IDX pair) from a directory given in the program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data.h"
#include "idx.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

typedef struct Cached { const char *source, *split, *dir; int scaled; float lo, hi; Dataset d; } Cached;
static Cached cache[16];
static int ncache;

static int same(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

const Dataset *data_load(const DataSpec *s, char *err, int errlen) {
    for (int i = 0; i < ncache; i++) {
        Cached *c = &cache[i];
        if (same(c->source, s->source) && same(c->split, s->split) && same(c->dir, s->dir) &&
            c->scaled == s->scaled && c->lo == s->lo && c->hi == s->hi)
            return &c->d;
    }
    if (ncache == 16) { snprintf(err, errlen, "too many data sets"); return NULL; }
    const char *dir = s->dir ? s->dir : !strcmp(s->source, "fashion_mnist") ? FASHION_DIR : NULL;
    if (!dir) {
        snprintf(err, errlen, "%s(): give the directory of its IDX files with dir: \"...\"", s->source);
        return NULL;
    }
    const char *prefix = !strcmp(s->split, "train") ? "train" : "t10k";
    char ipath[1024], lpath[1024];
    snprintf(ipath, sizeof ipath, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lpath, sizeof lpath, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    IdxArray images, labels;
    if (idx_load(ipath, &images, err, errlen) != 0) return NULL;
    if (images.ndim != 3) {
        snprintf(err, errlen, "%s: expected images of rank 3, got rank %d", ipath, images.ndim);
        idx_free(&images);
        return NULL;
    }
    int have_labels = idx_load(lpath, &labels, err, errlen) == 0;
    if (have_labels && (labels.ndim != 1 || labels.dims[0] != images.dims[0])) {
        snprintf(err, errlen, "%s: %lld labels for %lld images", lpath,
                 (long long)labels.dims[0], (long long)images.dims[0]);
        idx_free(&images);
        idx_free(&labels);
        return NULL;
    }
    Cached *c = &cache[ncache];
    Dataset *d = &c->d;
    d->n = images.dims[0];
    d->ndim = 2;
    d->shape[0] = images.dims[1];
    d->shape[1] = images.dims[2];
    d->example_size = d->shape[0] * d->shape[1];
    d->x = malloc(d->n * d->example_size * sizeof *d->x);
    float lo = s->scaled ? s->lo : 0, hi = s->scaled ? s->hi : 255;
    for (int64_t i = 0; i < d->n * d->example_size; i++)
        d->x[i] = lo + (hi - lo) * (images.data[i] / 255.0f);
    if (have_labels) {
        d->labels = malloc(d->n * sizeof *d->labels);
        for (int64_t i = 0; i < d->n; i++) d->labels[i] = labels.data[i];
        idx_free(&labels);
    }
    idx_free(&images);
    *c = (Cached){ s->source, s->split, s->dir, s->scaled, s->lo, s->hi, *d };
    ncache++;
    return &c->d;
}

void data_fill_batch(const Dataset *d, const DataSpec *spec, const int64_t *idx, int64_t start,
                     int n, float *dst, Rng *rng) {
    (void)spec; (void)rng;     /* no per-batch transforms yet */
    for (int i = 0; i < n; i++)
        memcpy(dst + (int64_t)i * d->example_size, d->x + idx[start + i] * d->example_size,
               d->example_size * sizeof *dst);
}
