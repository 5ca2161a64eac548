/* data.c: data sets for the runtime. A pipeline is loaded once: its source is read (and
 * kept, so `| filter(label: 7)` and `| filter(label: 9)` of one source, or the two parts of a
 * split, read it once), its load-time transforms applied, and the result cached under the
 * pipeline's description. Batches are filled from there, with the per-batch transforms. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"

void data_fail(char *err, int errlen, const char *fmt, ...) {
    if (!err || errlen <= 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, (size_t)errlen, fmt, ap);
    va_end(ap);
}

void *data_alloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    return p;
}

/* --- descriptions ------------------------------------------------------------------------ */

typedef struct Buf { char *s; int len, k; } Buf;

static void put(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Buf *b, const char *fmt, ...) {
    if (b->k >= b->len - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->s + b->k, (size_t)(b->len - b->k), fmt, ap);
    va_end(ap);
    b->k = w < 0 ? b->len - 1 : b->k + w < b->len - 1 ? b->k + w : b->len - 1;
}

static void describe(const DataSpec *s, int with_ops, Buf *b) {
    switch (s->kind) {
    case DS_IDX:
        put(b, "%s(split: \"%s\"", s->source, s->split);
        if (s->dir) put(b, ", dir: \"%s\"", s->dir);
        put(b, ")");
        break;
    case DS_FOLDER:
        put(b, "image_folder(\"%s\"", s->path);
        if (s->resize) put(b, ", size: (%lld, %lld)", (long long)s->size[0], (long long)s->size[1]);
        put(b, ", channels: %d)", s->channels);
        break;
    case DS_NPY:
        put(b, "npy(\"%s\"", s->path);
        if (s->labels_path) put(b, ", labels: \"%s\"", s->labels_path);
        put(b, ")");
        break;
    case DS_TEXT:
        put(b, "text(\"%s\"", s->path);
        if (with_ops) put(b, ", window: %d, step: %d, one_hot: %d", s->window, s->stride, s->one_hot);
        put(b, ")");
        break;
    case DS_UNPAIRED:
        put(b, "unpaired(");
        describe(s->a, with_ops, b);
        put(b, ", ");
        describe(s->b, with_ops, b);
        put(b, ")");
        break;
    }
    if (!with_ops) return;
    for (int i = 0; i < s->nops; i++) {
        const DataOp *op = &s->ops[i];
        switch (op->kind) {
        case DOP_FILTER:
            put(b, " | filter(label: ");
            for (int k = 0; k < op->n; k++) put(b, "%s%lld", k ? ", " : "", (long long)op->v[k]);
            put(b, ")");
            break;
        case DOP_SCALE:
            if (op->known) put(b, " | scale(%g, %g, from: (%g, %g))", op->lo, op->hi, op->a, op->b);
            else put(b, " | scale(%g, %g)", op->lo, op->hi);
            break;
        case DOP_PAD:
            put(b, " | pad(top: %lld, bottom: %lld, left: %lld, right: %lld, value: %g)", (long long)op->v[0],
                (long long)op->v[1], (long long)op->v[2], (long long)op->v[3], op->value);
            break;
        case DOP_CROP:
            put(b, " | crop(%lld, %lld, top: %lld, left: %lld)", (long long)op->v[2], (long long)op->v[3],
                (long long)op->v[0], (long long)op->v[1]);
            break;
        case DOP_RESIZE: put(b, " | resize(%lld, %lld)", (long long)op->v[0], (long long)op->v[1]); break;
        case DOP_CHANNELS: put(b, " | channels(%lld)", (long long)op->v[0]); break;
        case DOP_SPLIT:
            put(b, " | split(\"%s\", %g%s)", op->v[0] ? "validation" : "train",
                op->v[0] ? op->fraction : 1 - op->fraction, op->v[1] ? ", shuffled: true" : "");
            break;
        case DOP_FLIP: case DOP_NOISE:
            break;                   /* per batch: the loaded data does not depend on them */
        }
    }
}

void data_describe(const DataSpec *spec, int with_ops, char *buf, int len) {
    Buf b = { buf, len, 0 };
    if (len > 0) buf[0] = 0;
    describe(spec, with_ops, &b);
}

/* --- the caches ---------------------------------------------------------------------------- */

typedef struct Entry { char *key; Dataset *d; } Entry;
typedef struct Cache { Entry *e; int n, cap; } Cache;
static Cache sources, sets;

static Dataset *cache_find(Cache *c, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].key, key)) return c->e[i].d;
    return NULL;
}

static Dataset *cache_add(Cache *c, const char *key, const Dataset *d) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->e = realloc(c->e, (size_t)c->cap * sizeof *c->e);
        if (!c->e) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    }
    Dataset *copy = data_alloc(sizeof *copy);
    *copy = *d;
    c->e[c->n++] = (Entry){ strdup(key), copy };
    return copy;
}

static void dataset_free(Dataset *d) {
    if (!d->owned) return;
    free(d->x);
    free(d->x8);
    free(d->labels);
    free((void *)d->ids);
    free((void *)d->vocab);
}

static int needs_labels(const DataSpec *s) {
    if (s->labels) return 1;
    for (int i = 0; i < s->nops; i++)
        if (s->ops[i].kind == DOP_FILTER) return 1;
    return 0;
}

/* The source's examples before any transform (read once per run). */
static const Dataset *source_get(const DataSpec *s, char *err, int errlen) {
    char key[4096];
    data_describe(s, 0, key, sizeof key);
    int need = needs_labels(s);
    Dataset *d = cache_find(&sources, key);
    if (d && !(need && !d->labels && s->kind == DS_IDX)) return d;
    Dataset raw;
    if (source_load(s, need, &raw, err, errlen) != 0) { dataset_free(&raw); return NULL; }
    if (d) { dataset_free(d); *d = raw; return d; }    /* now with its labels */
    return cache_add(&sources, key, &raw);
}

/* --- compile-time probes ------------------------------------------------------------------- */

/* Sema evaluates a pipeline once per graph it builds; a large folder is listed once. */
static int probe_folder_cached(DataSpec *s, char *err, int errlen) {
    typedef struct Probed { char *key; int64_t size[2]; int channels; int64_t nclasses; } Probed;
    static Probed *done;
    static int n, cap;
    char key[4096];
    data_describe(s, 0, key, sizeof key);
    for (int i = 0; i < n; i++)
        if (!strcmp(done[i].key, key)) {
            memcpy(s->size, done[i].size, sizeof s->size);
            s->channels = done[i].channels;
            s->nclasses = done[i].nclasses;
            return 0;
        }
    if (source_probe_folder(s, err, errlen) != 0) return -1;
    if (n == cap) {
        cap = cap ? 2 * cap : 16;
        done = realloc(done, (size_t)cap * sizeof *done);
        if (!done) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    }
    done[n++] = (Probed){ strdup(key), { s->size[0], s->size[1] }, s->channels, s->nclasses };
    return 0;
}

int data_probe(DataSpec *s, char *err, int errlen) {
    switch (s->kind) {
    case DS_IDX:
        s->ndim = 2;
        s->shape[0] = s->shape[1] = IDX_SIDE;
        if (!s->nclasses) s->nclasses = 10;
        return 0;
    case DS_FOLDER:
        if (probe_folder_cached(s, err, errlen) != 0) return -1;
        s->ndim = 3;
        s->shape[0] = s->size[0];
        s->shape[1] = s->size[1];
        s->shape[2] = s->channels;
        return 0;
    case DS_NPY: {
        const Dataset *d = source_get(s, err, errlen);
        if (!d) return -1;
        s->ndim = d->ndim;
        memcpy(s->shape, d->shape, sizeof s->shape);
        s->nclasses = d->labels ? d->nclasses : 0;
        return 0;
    }
    case DS_TEXT: {
        const Dataset *d = source_get(s, err, errlen);
        if (!d) return -1;
        if (d->nids < (int64_t)s->window + 1) {
            data_fail(err, errlen, "%s: %lld characters, fewer than window + 1 = %d", s->path,
                      (long long)d->nids, s->window + 1);
            return -1;
        }
        s->vocab = d->vocab;
        s->nvocab = d->nvocab;
        s->nclasses = d->nvocab;
        s->nparts = 2;
        s->ndim = s->one_hot ? 2 : 1;
        s->shape[0] = s->window;
        s->shape[1] = d->nvocab;
        s->ndim2 = s->one_hot ? 1 : 0;
        s->shape2[0] = d->nvocab;
        return 0;
    }
    case DS_UNPAIRED:
        return 0;
    }
    return 0;
}

/* --- loading ----------------------------------------------------------------------------- */

static int load_text_windows(const DataSpec *s, const Dataset *raw, Dataset *d, char *err, int errlen) {
    int64_t start = 0, len = raw->nids;
    for (int i = 0; i < s->nops; i++) {        /* splits cut the corpus, before windowing */
        const DataOp *op = &s->ops[i];
        if (op->kind != DOP_SPLIT) continue;
        int64_t count = data_split_keep(op, len, NULL);
        if (op->v[0]) start += len - count;
        len = count;
    }
    *d = (Dataset){ .ids = raw->ids + start, .nids = len, .window = s->window, .stride = s->stride,
                    .nvocab = raw->nvocab, .vocab = raw->vocab, .nclasses = raw->nvocab };
    if (len < (int64_t)s->window + 1) {
        data_fail(err, errlen, "%s: %lld characters in this part, fewer than window + 1 = %d", s->path,
                  (long long)len, s->window + 1);
        return -1;
    }
    d->n = (len - s->window - 1) / s->stride + 1;
    d->ndim = s->ndim;
    memcpy(d->shape, s->shape, sizeof d->shape);
    d->example_size = s->one_hot ? (int64_t)s->window * raw->nvocab : s->window;
    return 0;
}

static int same_shape(const Dataset *d, const DataSpec *s) {
    if (d->ndim != s->ndim) return 0;
    for (int i = 0; i < d->ndim; i++)
        if (d->shape[i] != s->shape[i]) return 0;
    return 1;
}

/* The float examples of an image source: the leading filters and splits pick rows first,
 * so only those are converted; *first is the next transform to apply. */
static int from_bytes(const DataSpec *s, const Dataset *raw, Dataset *d, int *first,
                      const char *what, char *err, int errlen) {
    int64_t n = raw->n, *rows = data_alloc((size_t)(n ? n : 1) * sizeof *rows);
    for (int64_t i = 0; i < n; i++) rows[i] = i;
    for (; *first < s->nops && (s->ops[*first].kind == DOP_FILTER || s->ops[*first].kind == DOP_SPLIT); ++*first)
        if (data_select_rows(&s->ops[*first], raw->labels, rows, &n, what, err, errlen) != 0) {
            free(rows);
            return -1;
        }
    int64_t size = raw->example_size;
    d->x = data_alloc((size_t)(n * size) * sizeof *d->x + 1);
    d->labels = raw->labels ? data_alloc((size_t)n * sizeof *d->labels + 1) : NULL;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = raw->x8 + rows[i] * size;
        float *dst = d->x + i * size;
        for (int64_t k = 0; k < size; k++) dst[k] = src[k];
        if (d->labels) d->labels[i] = raw->labels[rows[i]];
    }
    d->x8 = NULL;
    d->n = n;
    d->owned = 1;
    free(rows);
    return 0;
}

/* The examples of a byte source stored as bytes: when its load-time transforms are per
 * example (pad, crop, resize, channels, scale) and leave at most 256 distinct values, as
 * images of bytes do, each value is kept as its index into a palette of those floats, and a
 * batch is decoded when it is filled: the same floats, a quarter of the memory (Fashion-MNIST
 * padded to 32x32: 61 MB instead of 246 MB, and no float copy of the whole set is made on the
 * way). Examples are transformed in chunks. Returns 0, 1 when the set does not fit a palette
 * (the caller converts it to floats), -1 on error. */
static int from_bytes_coded(const DataSpec *s, const Dataset *raw, Dataset *d, const char *what,
                            char *err, int errlen) {
    int first = 0;
    while (first < s->nops && (s->ops[first].kind == DOP_FILTER || s->ops[first].kind == DOP_SPLIT)) first++;
    for (int i = first; i < s->nops; i++)
        if (s->ops[i].kind == DOP_FILTER || s->ops[i].kind == DOP_SPLIT ||
            (s->ops[i].kind == DOP_SCALE && !s->ops[i].known)) return 1;
    if (raw->n == 0) return 1;
    int64_t n = raw->n, *rows = data_alloc((size_t)(n ? n : 1) * sizeof *rows);
    for (int64_t i = 0; i < n; i++) rows[i] = i;
    for (int i = 0; i < first; i++)
        if (data_select_rows(&s->ops[i], raw->labels, rows, &n, what, err, errlen) != 0) {
            free(rows);
            return -1;
        }
    if (n == 0) { free(rows); return 1; }          /* the float path says what is wrong */
    enum { CHUNK = 256 };
    int64_t size = raw->example_size, out_size = 0;
    uint8_t *codes = NULL;
    float palette[256];
    int ncolors = 0, rc = 0;
    int slot[512] = { 0 };                       /* hash of a value's bits -> its code + 1 */
    uint32_t slot_bits[512];
    uint32_t last_bits = 0;
    int last_code = -1;
    Dataset c = { 0 };
    for (int64_t at = 0; at < n && !rc; at += CHUNK) {
        int64_t cnt = n - at < CHUNK ? n - at : CHUNK;
        c = (Dataset){ .n = cnt, .ndim = raw->ndim, .example_size = size, .owned = 1 };
        memcpy(c.shape, raw->shape, sizeof c.shape);
        c.x = data_alloc((size_t)(cnt * size) * sizeof *c.x + 1);
        for (int64_t i = 0; i < cnt; i++)
            for (int64_t k = 0; k < size; k++) c.x[i * size + k] = raw->x8[rows[at + i] * size + k];
        for (int i = first; i < s->nops && !rc; i++)
            if (data_apply_op(&c, &s->ops[i], 0, 0, what, err, errlen) != 0) rc = -1;
        if (!rc && !codes) {
            out_size = c.example_size;
            codes = data_alloc((size_t)(n * out_size) + 1);
        }
        for (int64_t k = 0; k < cnt * out_size && !rc; k++) {
            uint32_t bits;
            memcpy(&bits, &c.x[k], sizeof bits);
            if (bits != last_bits || last_code < 0) {
                uint32_t h = (bits * 2654435761u) >> 23;            /* 512 slots */
                while (slot[h] && slot_bits[h] != bits) h = (h + 1) & 511;
                if (!slot[h]) {
                    if (ncolors == 256) { rc = 1; break; }
                    palette[ncolors++] = c.x[k];
                    slot[h] = ncolors;
                    slot_bits[h] = bits;
                }
                last_bits = bits;
                last_code = slot[h] - 1;
            }
            codes[at * out_size + k] = (uint8_t)last_code;
        }
        if (!rc && at + cnt < n) free(c.x);
    }
    if (rc) {
        free(c.x);
        free(codes);
        free(rows);
        return rc;
    }
    *d = *raw;
    d->ndim = c.ndim;             /* the transformed shape */
    memcpy(d->shape, c.shape, sizeof d->shape);
    d->example_size = c.example_size;
    free(c.x);
    d->x = NULL;
    d->x8 = codes;
    d->coded = 1;
    memset(d->palette, 0, sizeof d->palette);
    memcpy(d->palette, palette, ncolors * sizeof *palette);
    d->n = n;
    d->labels = raw->labels ? data_alloc((size_t)n * sizeof *d->labels + 1) : NULL;
    for (int64_t i = 0; i < n && d->labels; i++) d->labels[i] = raw->labels[rows[i]];
    d->owned = 1;
    free(rows);
    return 0;
}

const Dataset *data_load(const DataSpec *s, char *err, int errlen) {
    char key[8192];
    data_describe(s, 1, key, sizeof key);
    Dataset *hit = cache_find(&sets, key);
    if (hit) return hit;
    Dataset d;
    if (s->kind == DS_UNPAIRED) {
        const Dataset *a = data_load(s->a, err, errlen);
        const Dataset *b = a ? data_load(s->b, err, errlen) : NULL;
        if (!b) return NULL;
        d = (Dataset){ .n = a->n > b->n ? a->n : b->n, .ndim = a->ndim, .example_size = a->example_size,
                       .a = a, .b = b };
        memcpy(d.shape, a->shape, sizeof d.shape);
        return cache_add(&sets, key, &d);
    }
    const Dataset *raw = source_get(s, err, errlen);
    if (!raw) return NULL;
    if (s->kind == DS_TEXT) {
        if (load_text_windows(s, raw, &d, err, errlen) != 0) return NULL;
        return cache_add(&sets, key, &d);
    }
    d = *raw;
    d.owned = 0;                  /* shares the source's arrays until a transform replaces them */
    char what[4096];
    data_describe(s, 0, what, sizeof what);
    int first = 0;
    if (raw->x8) {
        int rc = from_bytes_coded(s, raw, &d, what, err, errlen);
        if (rc < 0) return NULL;
        if (rc == 0) {
            if (!same_shape(&d, s)) {
                data_fail(err, errlen, "%s: the examples do not have the shape the program was checked with", what);
                dataset_free(&d);
                return NULL;
            }
            return cache_add(&sets, key, &d);
        }
        d = *raw;
        d.owned = 0;
    }
    if (raw->x8 && from_bytes(s, raw, &d, &first, what, err, errlen) != 0) return NULL;
    double vmin = 0, vmax = 0;
    for (int i = first; i < s->nops; i++)
        if (s->ops[i].kind == DOP_SCALE && !s->ops[i].known && raw->x && raw->n) {
            vmin = vmax = raw->x[0];
            for (int64_t k = 1; k < raw->n * raw->example_size; k++) {
                if (raw->x[k] < vmin) vmin = raw->x[k];
                if (raw->x[k] > vmax) vmax = raw->x[k];
            }
            break;
        }
    for (int i = first; i < s->nops; i++)
        if (data_apply_op(&d, &s->ops[i], vmin, vmax, what, err, errlen) != 0) {
            dataset_free(&d);
            return NULL;
        }
    if (!same_shape(&d, s)) {
        data_fail(err, errlen, "%s: the examples do not have the shape the program was checked with", what);
        dataset_free(&d);
        return NULL;
    }
    return cache_add(&sets, key, &d);
}

/* --- batches ----------------------------------------------------------------------------- */

int64_t data_num_batches(const Dataset *d, const DataSpec *spec) {
    int64_t bs = spec->batch > 0 ? spec->batch : d->n;
    if (bs <= 0) return 0;
    return spec->drop_last ? d->n / bs : (d->n + bs - 1) / bs;
}

int data_batch_len(const Dataset *d, const DataSpec *spec, int64_t b) {
    int64_t bs = spec->batch > 0 ? spec->batch : d->n, left = d->n - b * bs;
    return (int)(left < bs ? (left > 0 ? left : 0) : bs);
}

float data_value(const Dataset *d, int64_t k) { return d->coded ? d->palette[d->x8[k]] : d->x[k]; }

/* Rows are taken modulo n, so a smaller stream read alongside a larger one cycles. */
static void copy_examples(const Dataset *d, const int64_t *rows, int n, float *dst) {
    if (d->coded) {
        for (int i = 0; i < n; i++) {
            const uint8_t *src = d->x8 + rows[i] % d->n * d->example_size;
            float *out = dst + (int64_t)i * d->example_size;
            for (int64_t k = 0; k < d->example_size; k++) out[k] = d->palette[src[k]];
        }
        return;
    }
    for (int i = 0; i < n; i++)
        memcpy(dst + (int64_t)i * d->example_size, d->x + rows[i] % d->n * d->example_size,
               d->example_size * sizeof *dst);
}

static void fill_text(const Dataset *d, const DataSpec *spec, int part, const int64_t *idx,
                      int64_t start, int n, float *dst) {
    int64_t L = d->window, V = d->nvocab;
    int64_t per = part == 0 ? (spec->one_hot ? L * V : L) : (spec->one_hot ? V : 1);
    memset(dst, 0, (size_t)(n * per) * sizeof *dst);
    for (int i = 0; i < n; i++) {
        const uint8_t *w = d->ids + idx[start + i] % d->n * d->stride;
        float *out = dst + i * per;
        if (part == 1) {              /* the character after the window */
            if (spec->one_hot) out[w[L]] = 1;
            else out[0] = w[L];
        } else {
            for (int64_t t = 0; t < L; t++) {
                if (spec->one_hot) out[t * V + w[t]] = 1;
                else out[t] = w[t];
            }
        }
    }
}

void data_fill_part(const Dataset *d, const DataSpec *spec, int part, const int64_t *idx,
                    int64_t start, int n, float *dst, Rng *rng) {
    int64_t *rows = data_alloc((size_t)n * sizeof *rows + 1);
    if (d->a) {                   /* unpaired: A in order, B drawn at random, as CycleGAN does */
        const Dataset *dom = part == 0 ? d->a : d->b;
        for (int i = 0; i < n; i++)
            rows[i] = part == 0 ? idx[start + i] % dom->n : (int64_t)rng_below(rng, (uint64_t)dom->n);
        copy_examples(dom, rows, n, dst);
        data_batch_ops(part == 0 ? spec->a : spec->b, dom, dst, n, rng);
    } else if (d->ids) {
        fill_text(d, spec, part, idx, start, n, dst);
    } else if (part == 0) {
        for (int i = 0; i < n; i++) rows[i] = idx[start + i];
        copy_examples(d, rows, n, dst);
        data_batch_ops(spec, d, dst, n, rng);
    } else {                      /* labels: class ids, or one-hot rows */
        int64_t k = spec->one_hot ? d->nclasses : 1;
        memset(dst, 0, (size_t)(n * k) * sizeof *dst);
        for (int i = 0; i < n && d->labels; i++) {
            float label = d->labels[idx[start + i] % d->n];
            if (!spec->one_hot) dst[i] = label;
            else if (label >= 0 && label < k) dst[i * k + (int64_t)label] = 1;
        }
    }
    free(rows);
}

void data_fill_batch(const Dataset *d, const DataSpec *spec, const int64_t *idx, int64_t start,
                     int n, float *dst, Rng *rng) {
    data_fill_part(d, spec, 0, idx, start, n, dst, rng);
}
