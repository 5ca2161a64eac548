/* data_ops.c: data transforms. Shape rules (shared with the compiler, which calls
 * data_op_shape to know an example's shape before any data is read), load-time transforms
 * on whole data sets, and per-batch random transforms drawn from the run's Philox stream.
 * Images are channels-last: [H, W] or [H, W, C]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"
#include "image_load.h"
#include "progress.h"

static const char *op_name(DataOpKind k) {
    static const char *names[] = { "filter", "scale", "pad", "crop", "resize", "channels",
                                   "split", "random_flip", "add_noise" };
    return names[k];
}

static void shape_text(int ndim, const int64_t *shape, char *buf, int len) {
    int k = snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < len; i++)
        k += snprintf(buf + k, len - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

int data_op_shape(const DataOp *op, int *ndim, int64_t *shape, char *err, int errlen) {
    int image_op = op->kind == DOP_PAD || op->kind == DOP_CROP || op->kind == DOP_RESIZE ||
                   op->kind == DOP_CHANNELS || op->kind == DOP_FLIP;
    if (image_op && *ndim != 2 && *ndim != 3) {
        char s[128];
        shape_text(*ndim, shape, s, sizeof s);
        data_fail(err, errlen, "%s() applies to images, [H, W] or [H, W, C]; these examples are %s",
                  op_name(op->kind), s);
        return -1;
    }
    switch (op->kind) {
    case DOP_PAD:
        shape[0] += op->v[0] + op->v[1];
        shape[1] += op->v[2] + op->v[3];
        break;
    case DOP_CROP:
        if (op->v[0] < 0 || op->v[1] < 0 || op->v[0] + op->v[2] > shape[0] || op->v[1] + op->v[3] > shape[1]) {
            if (op->v[0] < 0 || op->v[1] < 0)
                data_fail(err, errlen, "crop of %lldx%lld does not fit in %lldx%lld images", (long long)op->v[2],
                          (long long)op->v[3], (long long)shape[0], (long long)shape[1]);
            else
                data_fail(err, errlen, "crop of %lldx%lld at top %lld, left %lld does not fit in %lldx%lld images",
                          (long long)op->v[2], (long long)op->v[3], (long long)op->v[0], (long long)op->v[1],
                          (long long)shape[0], (long long)shape[1]);
            return -1;
        }
        shape[0] = op->v[2];
        shape[1] = op->v[3];
        break;
    case DOP_RESIZE:
        shape[0] = op->v[0];
        shape[1] = op->v[1];
        break;
    case DOP_CHANNELS:
        if (*ndim == 3 && shape[2] != 1 && shape[2] != 3) {
            data_fail(err, errlen, "channels() converts images of 1 or 3 channels; these have %lld",
                      (long long)shape[2]);
            return -1;
        }
        *ndim = 3;
        shape[2] = op->v[0];
        break;
    default:
        break;
    }
    return 0;
}

/* --- load-time transforms -------------------------------------------------------------- */

/* Replaces d's arrays, freeing the old ones if d owned them. */
static void replace(Dataset *d, float *x, float *labels) {
    if (d->owned) {
        if (x != d->x) free(d->x);
        if (labels != d->labels) free(d->labels);
    }
    d->x = x;
    d->labels = labels;
    d->owned = 1;
}

static void select_examples(Dataset *d, const int64_t *keep, int64_t n) {
    float *x = data_alloc((size_t)(n * d->example_size) * sizeof *x);
    float *labels = d->labels ? data_alloc((size_t)n * sizeof *labels) : NULL;
    for (int64_t i = 0; i < n; i++) {
        memcpy(x + i * d->example_size, d->x + keep[i] * d->example_size, d->example_size * sizeof *x);
        if (labels) labels[i] = d->labels[keep[i]];
    }
    replace(d, x, labels);
    d->n = n;
}

int64_t data_split_keep(const DataOp *op, int64_t n, int64_t *keep) {
    /* the fraction to 1e-9, so train: 0.9 and validation: 0.1 make the same cut */
    double f = floor(op->fraction * 1e9 + 0.5) / 1e9;
    int64_t nval = (int64_t)floor(n * f + 0.5);
    if (nval > n) nval = n;
    int validation = op->v[0] == 1;
    int64_t count = validation ? nval : n - nval;
    if (!keep) return count;
    if (!op->v[1]) {                 /* the last nval examples are the validation part */
        for (int64_t i = 0; i < count; i++) keep[i] = validation ? n - nval + i : i;
        return count;
    }
    /* shuffled: a fixed permutation (independent of --seed) picks the validation part */
    int64_t *perm = data_alloc((size_t)n * sizeof *perm);
    char *in_val = data_alloc((size_t)n + 1);
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    Rng r;
    rng_init(&r, 0x9E3779B97F4A7C15ull);
    rng_shuffle(&r, perm, n);
    for (int64_t i = n - nval; i < n; i++) in_val[perm[i]] = 1;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (in_val[i] == validation) keep[k++] = i;
    free(perm);
    free(in_val);
    return count;
}

int data_select_rows(const DataOp *op, const float *labels, int64_t *rows, int64_t *n,
                     const char *what, char *err, int errlen) {
    int64_t k = 0;
    if (op->kind == DOP_SPLIT) {
        int64_t *keep = data_alloc((size_t)(*n ? *n : 1) * sizeof *keep);
        k = data_split_keep(op, *n, keep);
        for (int64_t i = 0; i < k; i++) keep[i] = rows[keep[i]];
        memcpy(rows, keep, (size_t)k * sizeof *rows);
        free(keep);
        if (k == 0) {
            data_fail(err, errlen, "%s: the %s part of the split is empty (%lld examples)", what,
                      op->v[0] ? "validation" : "train", (long long)*n);
            return -1;
        }
    } else {
        if (!labels) {
            data_fail(err, errlen, "%s: filter(label: ...) needs labels, and this data set has none", what);
            return -1;
        }
        for (int64_t i = 0; i < *n; i++)
            for (int j = 0; j < op->n; j++)
                if (labels[rows[i]] == (float)op->v[j]) { rows[k++] = rows[i]; break; }
        if (k == 0) {
            data_fail(err, errlen, "%s: no example has the label%s asked for", what, op->n > 1 ? "s" : "");
            return -1;
        }
    }
    *n = k;
    return 0;
}

static int apply_selection(Dataset *d, const DataOp *op, const char *what, char *err, int errlen) {
    int64_t n = d->n, *rows = data_alloc((size_t)(n ? n : 1) * sizeof *rows);
    for (int64_t i = 0; i < n; i++) rows[i] = i;
    int rc = data_select_rows(op, d->labels, rows, &n, what, err, errlen);
    if (rc == 0) select_examples(d, rows, n);
    free(rows);
    return rc;
}

/* Rebuilds every example with a per-example function into the new shape. */
typedef void (*ExampleFn)(const Dataset *d, const DataOp *op, const float *src, float *dst,
                          const int64_t *out_shape);

static void map_examples(Dataset *d, const DataOp *op, ExampleFn fn, const char *what) {
    int ndim = d->ndim;
    int64_t shape[IR_MAXDIM];
    memcpy(shape, d->shape, sizeof shape);
    data_op_shape(op, &ndim, shape, NULL, 0);
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) size *= shape[i];
    float *x = data_alloc((size_t)(d->n * size) * sizeof *x + 1);
    char label[1200];
    snprintf(label, sizeof label, "%s | %s", what, op_name(op->kind));
    Progress pr;
    progress_start(&pr, label, d->n);
    for (int64_t i = 0; i < d->n; i++) {
        fn(d, op, d->x + i * d->example_size, x + i * size, shape);
        if ((i & 255) == 255) progress_update(&pr, i + 1);
    }
    progress_end(&pr);
    replace(d, x, d->labels);
    d->ndim = ndim;
    memcpy(d->shape, shape, sizeof shape);
    d->example_size = size;
}

static int64_t channels_of(const Dataset *d) { return d->ndim == 3 ? d->shape[2] : 1; }

static void pad_example(const Dataset *d, const DataOp *op, const float *src, float *dst, const int64_t *os) {
    int64_t c = channels_of(d), h = d->shape[0], w = d->shape[1], ow = os[1];
    for (int64_t i = 0; i < os[0] * ow * c; i++) dst[i] = (float)op->value;
    for (int64_t y = 0; y < h; y++)
        memcpy(dst + ((y + op->v[0]) * ow + op->v[2]) * c, src + y * w * c, (size_t)(w * c) * sizeof *dst);
}

static void crop_example(const Dataset *d, const DataOp *op, const float *src, float *dst, const int64_t *os) {
    int64_t c = channels_of(d), w = d->shape[1];
    for (int64_t y = 0; y < os[0]; y++)
        memcpy(dst + y * os[1] * c, src + ((y + op->v[0]) * w + op->v[1]) * c, (size_t)(os[1] * c) * sizeof *dst);
}

static void resize_example(const Dataset *d, const DataOp *op, const float *src, float *dst, const int64_t *os) {
    (void)op;
    image_resize(src, (int)d->shape[0], (int)d->shape[1], (int)channels_of(d), dst, (int)os[0], (int)os[1]);
}

static void channels_example(const Dataset *d, const DataOp *op, const float *src, float *dst, const int64_t *os) {
    int64_t pixels = d->shape[0] * d->shape[1], cin = channels_of(d), cout = op->v[0];
    (void)os;
    for (int64_t p = 0; p < pixels; p++) {
        const float *s = src + p * cin;
        float *t = dst + p * cout;
        if (cin == cout) memcpy(t, s, (size_t)cout * sizeof *t);
        else if (cin == 1) t[0] = t[1] = t[2] = s[0];
        else t[0] = 0.299f * s[0] + 0.587f * s[1] + 0.114f * s[2];   /* ITU-R 601 luma */
    }
}

int data_apply_op(Dataset *d, const DataOp *op, double vmin, double vmax, const char *what,
                  char *err, int errlen) {
    switch (op->kind) {
    case DOP_FILTER: case DOP_SPLIT:
        return apply_selection(d, op, what, err, errlen);
    case DOP_SCALE: {
        double a = op->known ? op->a : vmin, b = op->known ? op->b : vmax;
        double k = b != a ? (op->hi - op->lo) / (b - a) : 0;
        int64_t total = d->n * d->example_size;
        float *x = d->owned ? d->x : data_alloc((size_t)total * sizeof *x + 1);
        for (int64_t i = 0; i < total; i++) x[i] = (float)(op->lo + (d->x[i] - a) * k);
        replace(d, x, d->labels);
        return 0;
    }
    case DOP_PAD: map_examples(d, op, pad_example, what); return 0;
    case DOP_CROP: map_examples(d, op, crop_example, what); return 0;
    case DOP_RESIZE: map_examples(d, op, resize_example, what); return 0;
    case DOP_CHANNELS: map_examples(d, op, channels_example, what); return 0;
    case DOP_FLIP: case DOP_NOISE:
        return 0;                    /* per batch */
    }
    return 0;
}

/* --- per-batch transforms -------------------------------------------------------------- */

static void flip_rows(float *img, int64_t h, int64_t w, int64_t c) {
    for (int64_t y = 0; y < h; y++) {
        float *row = img + y * w * c;
        for (int64_t l = 0, r = w - 1; l < r; l++, r--)
            for (int64_t k = 0; k < c; k++) {
                float t = row[l * c + k];
                row[l * c + k] = row[r * c + k];
                row[r * c + k] = t;
            }
    }
}

void data_batch_ops(const DataSpec *spec, const Dataset *d, float *dst, int n, Rng *rng) {
    int64_t size = d->example_size;
    for (int k = 0; k < spec->nops; k++) {
        const DataOp *op = &spec->ops[k];
        if (op->kind == DOP_FLIP) {
            float *u = data_alloc((size_t)n * sizeof *u + 1);
            rng_uniform(rng, u, n);
            for (int i = 0; i < n; i++)
                if (u[i] < op->p) flip_rows(dst + i * size, d->shape[0], d->shape[1], channels_of(d));
            free(u);
        } else if (op->kind == DOP_NOISE) {
            int64_t total = (int64_t)n * size;
            float *z = data_alloc((size_t)total * sizeof *z + 1);
            rng_normal(rng, z, total);
            for (int64_t i = 0; i < total; i++) dst[i] += (float)op->std * z[i];
            free(z);
        }
    }
}
