/* data_builtins.c: data pipelines. Sources (fashion_mnist, mnist, image_folder, npy, text,
 * unpaired) and transforms (filter, scale, pad, crop, resize, channels, split, random_flip,
 * add_noise, with_labels, shuffle, batch) build a DataSpec that runtime/data.c loads. The
 * shape of an example is known here, before any data is read: sources that cannot know it
 * from their arguments are probed (data_probe reads a folder listing and one image header,
 * or the .npy / text file), and every transform's shape rule is runtime/data_ops.c's own. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "data.h"
#include "sema_internal.h"

enum {
    SRC_IDX, SRC_FOLDER, SRC_NPY, SRC_TEXT, SRC_UNPAIRED,
    T_FILTER, T_SCALE, T_PAD, T_CROP, T_RESIZE, T_CHANNELS, T_SPLIT, T_FLIP, T_NOISE,
    T_LABELS, T_SHUFFLE, T_BATCH,
};

/* --- argument helpers ----------------------------------------------------------------- */

static int want_str(Value *v, Loc l, const char *what, const char **out) {
    if (v->kind != V_STR) { diag_error(l, "%s must be a string, got a %s", what, kind_name(v->kind)); return -1; }
    *out = v->str;
    return 0;
}

static int want_bool(Value *v, Loc l, const char *what, int *out) {
    if (v->kind != V_NUM) { diag_error(l, "%s must be true or false, got a %s", what, kind_name(v->kind)); return -1; }
    *out = v->num != 0;
    return 0;
}

/* A number or a tuple of 1..max numbers, each in [lo, hi]; the count, or -1. */
static int want_ints(Value *v, Loc l, const char *what, int64_t *out, int max, int64_t lo, int64_t hi) {
    Value *items = v->kind == V_TUPLE ? v->items : v;
    int n = v->kind == V_TUPLE ? v->n : 1;
    if (n < 1 || n > max) { diag_error(l, "%s: expected 1 to %d numbers, got %d", what, max, n); return -1; }
    for (int i = 0; i < n; i++) {
        if (want_int(items[i], l, what, &out[i]) < 0) return -1;
        if (out[i] < lo || out[i] > hi) {
            diag_error(l, "%s must be between %lld and %lld, got %lld", what, (long long)lo, (long long)hi,
                       (long long)out[i]);
            return -1;
        }
    }
    return n;
}

/* Positional arguments from `from` on as integers (pad(2), crop(24, 24)). */
static int pos_ints(Args *a, int from, const char *what, int64_t *out, int min, int max, int64_t lo, int64_t hi) {
    int n = a->npos - from;
    if (n < min || n > max) {
        diag_error(a->loc, "%s takes %d to %d numbers, got %d", what, min, max, n < 0 ? 0 : n);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (want_ints(&a->pos[from + i], a->pos_loc[from + i], what, &out[i], 1, lo, hi) < 0) return -1;
    return n;
}

static int named_int(Args *a, const char *name, const char *what, int64_t *out, int64_t lo, int64_t hi) {
    Loc l;
    Value *v = named(a, name, &l);
    if (!v) return 0;
    return want_ints(v, l, what, out, 1, lo, hi) < 0 ? -1 : 1;
}

static int named_num(Args *a, const char *name, const char *what, double *out) {
    Loc l;
    Value *v = named(a, name, &l);
    if (!v) return 0;
    return want_num(*v, l, what, out) < 0 ? -1 : 1;
}

static const BuiltinDef *tensor_namesake(const char *name) {
    for (const BuiltinDef *d = tensor_builtins; d->name; d++)
        if (!strcmp(d->name, name)) return d;
    return NULL;
}

static const char *source_text(const DataSpec *d) {
    char buf[512];
    data_describe(d, 0, buf, sizeof buf);
    return fmt("%s", buf);
}

/* --- building specs ------------------------------------------------------------------- */

/* Specs that other specs point to (the domains of unpaired sets) are kept once each, so
 * that evaluating a pipeline twice gives byte-equal specs: sema compares them with memcmp. */
static const DataSpec *intern_spec(const DataSpec *d) {
    static const DataSpec **seen;
    static int n, cap;
    for (int i = 0; i < n; i++)
        if (!memcmp(seen[i], d, sizeof *d)) return seen[i];
    if (n == cap) {
        cap = cap ? 2 * cap : 16;
        const DataSpec **grown = xmalloc(cap * sizeof *grown);
        if (n) memcpy(grown, seen, n * sizeof *grown);
        seen = grown;
    }
    DataSpec *copy = xmalloc(sizeof *copy);
    *copy = *d;
    return seen[n++] = copy;
}

static DataSpec *new_spec(DataSource kind, const char *source, Loc loc) {
    DataSpec *d = xmalloc(sizeof *d);
    d->kind = kind;
    d->source = source;
    d->split = "all";
    d->nparts = 1;
    d->loc = loc;
    return d;
}

static int probe(DataSpec *d, Loc loc) {
    char err[1024];
    if (data_probe(d, err, sizeof err) == 0) return 0;
    diag_error(loc, "%s", err);
    return -1;
}

static int is_value_op(DataOpKind k) {
    return k == DOP_SCALE || k == DOP_PAD || k == DOP_CROP || k == DOP_RESIZE || k == DOP_CHANNELS;
}

/* Appends a transform to d (to both domains of an unpaired set), working out the new
 * example shape. A pad without value: fills with the low end of the value range (black);
 * a scale without from: maps the current range. */
static int add_op(DataSpec *d, DataOp op, Loc loc, const char *fn) {
    if (d->kind == DS_UNPAIRED) {
        DataSpec *a = xmalloc(sizeof *a), *b = xmalloc(sizeof *b);
        *a = *d->a;
        *b = *d->b;
        if (add_op(a, op, loc, fn) < 0 || add_op(b, op, loc, fn) < 0) return -1;
        d->a = intern_spec(a);
        d->b = intern_spec(b);
        d->ndim = a->ndim;
        memcpy(d->shape, a->shape, sizeof d->shape);
        d->ndim2 = b->ndim;
        memcpy(d->shape2, b->shape, sizeof d->shape2);
        return 0;
    }
    if (d->kind == DS_TEXT && op.kind != DOP_SPLIT) {
        diag_error(loc, "%s() does not apply to text windows (of the transforms, only split does)", fn);
        return -1;
    }
    if (d->kind == DS_TEXT && op.v[1]) {
        diag_error(loc, "a text corpus is split where it stands (its last part is the validation part); shuffled: does not apply");
        return -1;
    }
    if (d->per_batch && is_value_op(op.kind)) {
        diag_error(loc, "%s() comes after random_flip() or add_noise(), which are applied to each batch: put them last", fn);
        return -1;
    }
    if (op.kind == DOP_FILTER) {
        if (!d->nclasses) {
            diag_error(loc, "filter(label: ...) needs labels, and %s has none%s", source_text(d),
                       d->kind == DS_FOLDER ? " (labels come from one subfolder per class)" :
                       d->kind == DS_NPY ? " (give npy(..., labels: \"labels.npy\"))" : "");
            return -1;
        }
        for (int i = 0; i < op.n; i++)
            if (op.v[i] >= d->nclasses) {
                diag_error(loc, "label %lld is out of range: %s has %lld classes", (long long)op.v[i],
                           source_text(d), (long long)d->nclasses);
                return -1;
            }
    }
    if (op.kind == DOP_SCALE && !op.known && d->range_known) {
        op.known = 1;
        op.a = d->range_lo;
        op.b = d->range_hi;
    }
    if (op.kind == DOP_CROP && d->ndim >= 2) {
        if (op.v[4] & 1) op.v[0] = (d->shape[0] - op.v[2]) / 2;
        if (op.v[4] & 2) op.v[1] = (d->shape[1] - op.v[3]) / 2;
    }
    if (op.kind == DOP_PAD && !op.value_given) op.value = d->range_known ? d->range_lo : 0;
    if (d->nops == DATA_MAXOPS) { diag_error(loc, "too many transforms (at most %d)", DATA_MAXOPS); return -1; }
    char err[512];
    if (data_op_shape(&op, &d->ndim, d->shape, err, sizeof err) != 0) { diag_error(loc, "%s", err); return -1; }
    if (op.kind == DOP_SCALE) { d->range_known = 1; d->range_lo = op.lo; d->range_hi = op.hi; }
    if (op.kind == DOP_FLIP || op.kind == DOP_NOISE) d->per_batch = 1;
    d->ops[d->nops++] = op;
    return 0;
}

/* --- sources -------------------------------------------------------------------------- */

static Value idx_source(Args *a, const char *fn) {
    DataSpec *d = new_spec(DS_IDX, fn, a->loc);
    d->split = "train";
    d->range_known = 1;
    d->range_hi = 255;
    Loc l;
    Value *v = named(a, "split", &l);
    if (v) {
        if (v->kind != V_STR || (strcmp(v->str, "train") && strcmp(v->str, "test"))) {
            diag_error(l, "split must be \"train\" or \"test\"");
            return error_value;
        }
        d->split = v->str;
    }
    if ((v = named(a, "dir", &l))) {
        if (v->kind != V_STR) { diag_error(l, "dir must be a string"); return error_value; }
        d->dir = v->str;
    }
    int64_t channels = 0;
    if (named_int(a, "channels", "channels", &channels, 1, 3) < 0) return error_value;
    if (no_other_named(a, fn) < 0) return error_value;
    if (a->npos) { diag_error(a->pos_loc[0], "%s() takes only named arguments (split:, dir:, channels:)", fn); return error_value; }
    if (probe(d, a->loc) < 0) return error_value;
    if (channels == 2) { diag_error(a->loc, "channels must be 1 or 3"); return error_value; }
    if (channels && add_op(d, (DataOp){ .kind = DOP_CHANNELS, .n = 1, .v = { channels } }, a->loc, "channels") < 0)
        return error_value;
    return (Value){ .kind = V_DATA, .data = d };
}

/* The one positional argument of a file or folder source. */
static int source_path(Args *a, const char *fn, const char *what, const char **path) {
    if (a->npos != 1) {
        diag_error(a->npos ? a->pos_loc[1] : a->loc, "%s() takes one %s, then named arguments", fn, what);
        return -1;
    }
    return want_str(&a->pos[0], a->pos_loc[0], what, path);
}

static int folder_options(Args *a, DataSpec *d) {
    Loc l;
    Value *v = named(a, "size", &l);
    if (v) {
        int64_t hw[2];
        int n = want_ints(v, l, "size", hw, 2, 1, 65536);
        if (n < 0) return -1;
        d->size[0] = hw[0];
        d->size[1] = n == 2 ? hw[1] : hw[0];
        d->resize = 1;
    }
    int64_t c = 0;
    if (named_int(a, "channels", "channels", &c, 1, 3) < 0) return -1;
    if (c == 2) { diag_error(a->loc, "channels must be 1 (grey) or 3 (RGB)"); return -1; }
    d->channels = (int)c;
    return 0;
}

static DataSpec *folder_spec(const char *path, Loc loc) {
    DataSpec *d = new_spec(DS_FOLDER, "image_folder", loc);
    d->path = path;
    d->range_known = 1;
    d->range_hi = 255;
    return d;
}

static Value folder_source(Args *a, const char *fn) {
    const char *path;
    if (source_path(a, fn, "folder", &path) < 0) return error_value;
    DataSpec *d = folder_spec(path, a->loc);
    if (folder_options(a, d) < 0 || no_other_named(a, fn) < 0) return error_value;
    if (probe(d, a->pos_loc[0]) < 0) return error_value;
    return (Value){ .kind = V_DATA, .data = d };
}

static Value npy_source(Args *a, const char *fn) {
    const char *path;
    if (source_path(a, fn, "file name", &path) < 0) return error_value;
    DataSpec *d = new_spec(DS_NPY, fn, a->loc);
    d->path = path;
    Loc l;
    Value *v = named(a, "labels", &l);
    if (v && want_str(v, l, "labels", &d->labels_path) < 0) return error_value;
    if (no_other_named(a, fn) < 0) return error_value;
    if (probe(d, a->pos_loc[0]) < 0) return error_value;
    return (Value){ .kind = V_DATA, .data = d };
}

static Value text_source(Args *a, const char *fn) {
    const char *path;
    if (source_path(a, fn, "file name", &path) < 0) return error_value;
    DataSpec *d = new_spec(DS_TEXT, fn, a->loc);
    d->path = path;
    d->one_hot = 1;
    int64_t window = 0, step = 1;
    int rc = named_int(a, "window", "window", &window, 1, 1 << 20);
    if (rc < 0) return error_value;
    if (rc == 0) { diag_error(a->loc, "text() needs window: N, the characters in each example"); return error_value; }
    if (named_int(a, "step", "step", &step, 1, 1 << 20) < 0) return error_value;
    Loc l;
    Value *v = named(a, "one_hot", &l);
    if (v && want_bool(v, l, "one_hot", &d->one_hot) < 0) return error_value;
    if (no_other_named(a, fn) < 0) return error_value;
    d->window = (int)window;
    d->stride = (int)step;
    if (probe(d, a->pos_loc[0]) < 0) return error_value;
    return (Value){ .kind = V_DATA, .data = d };
}

static Value unpaired_source(Args *a, const char *fn) {
    if (a->npos != 2) {
        diag_error(a->loc, "unpaired(a, b) takes two data sets (or two image folders), got %d arguments", a->npos);
        return error_value;
    }
    const DataSpec *dom[2];
    DataSpec opts = {0};
    if (folder_options(a, &opts) < 0 || no_other_named(a, fn) < 0) return error_value;
    for (int i = 0; i < 2; i++) {
        Value *v = &a->pos[i];
        if (v->kind == V_STR) {
            DataSpec *f = folder_spec(v->str, a->pos_loc[i]);
            memcpy(f->size, opts.size, sizeof opts.size);
            f->resize = opts.resize;
            f->channels = opts.channels;
            if (probe(f, a->pos_loc[i]) < 0) return error_value;
            dom[i] = intern_spec(f);
        } else if (v->kind == V_DATA) {
            if (v->data->nparts != 1 || v->data->kind == DS_UNPAIRED) {
                diag_error(a->pos_loc[i], "each domain of unpaired() must yield one tensor per example (no labels, text or pairs)");
                return error_value;
            }
            if (v->data->batch || v->data->shuffle) {
                diag_error(a->pos_loc[i], "shuffle and batch() go after unpaired(...), not inside it");
                return error_value;
            }
            dom[i] = intern_spec(v->data);
        } else {
            diag_error(a->pos_loc[i], "unpaired() takes data sets or folder names, got a %s", kind_name(v->kind));
            return error_value;
        }
    }
    DataSpec *d = new_spec(DS_UNPAIRED, fn, a->loc);
    d->a = dom[0];
    d->b = dom[1];
    d->nparts = 2;
    d->ndim = dom[0]->ndim;
    memcpy(d->shape, dom[0]->shape, sizeof d->shape);
    d->ndim2 = dom[1]->ndim;
    memcpy(d->shape2, dom[1]->shape, sizeof d->shape2);
    return (Value){ .kind = V_DATA, .data = d };
}

/* --- transforms ----------------------------------------------------------------------- */

static Value transform(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (a->npos < 1 || a->pos[0].kind != V_DATA) {
        const BuiltinDef *t = tensor_namesake(fn);
        if (t) return builtin_call(c, t, a);      /* e.g. a tensor op of the same name */
        diag_error(a->loc, "%s() applies to a data set (e.g. `images | %s`), got %s", fn,
                   fn, a->npos ? fmt("a %s", kind_name(a->pos[0].kind)) : "nothing");
        return error_value;
    }
    DataSpec *d = xmalloc(sizeof *d);
    *d = *a->pos[0].data;
    DataOp op = {0};
    int64_t v[4];
    Loc l;
    Value *nv;
    switch (def->op) {
    case T_FILTER: {
        if (a->npos != 1) { diag_error(a->pos_loc[1], "filter takes label: N or label: (N, M, ...)"); return error_value; }
        nv = named(a, "label", &l);
        if (!nv) { diag_error(a->loc, "filter() needs label: N (or a tuple of labels)"); return error_value; }
        op.kind = DOP_FILTER;
        op.n = want_ints(nv, l, "label", op.v, 16, 0, 1 << 24);
        if (op.n < 0) return error_value;
        break;
    }
    case T_SCALE: {
        if (a->npos != 3) { diag_error(a->loc, "scale(lo, hi) takes 2 arguments, got %d", a->npos - 1); return error_value; }
        op.kind = DOP_SCALE;
        if (want_num(a->pos[1], a->pos_loc[1], "scale bound", &op.lo) < 0 ||
            want_num(a->pos[2], a->pos_loc[2], "scale bound", &op.hi) < 0) return error_value;
        if ((nv = named(a, "from", &l))) {
            if (nv->kind != V_TUPLE || nv->n != 2 || want_num(nv->items[0], l, "from", &op.a) < 0 ||
                want_num(nv->items[1], l, "from", &op.b) < 0) {
                diag_error(l, "from: wants the input range as (lo, hi)");
                return error_value;
            }
            if (op.a == op.b) { diag_error(l, "from: the input range is empty"); return error_value; }
            op.known = 1;
        }
        break;
    }
    case T_PAD: {
        op.kind = DOP_PAD;
        int n = a->npos > 1 ? pos_ints(a, 1, "pad()", v, 1, 2, 0, 4096) : 0;
        if (n < 0) return error_value;
        if (n == 1) op.v[0] = op.v[1] = op.v[2] = op.v[3] = v[0];
        if (n == 2) { op.v[0] = op.v[1] = v[0]; op.v[2] = op.v[3] = v[1]; }
        const char *sides[] = { "top", "bottom", "left", "right" };
        int any = 0;
        for (int i = 0; i < 4; i++) {
            int rc = named_int(a, sides[i], sides[i], &op.v[i], 0, 4096);
            if (rc < 0) return error_value;
            any |= rc;
        }
        if (!n && !any) { diag_error(a->loc, "pad() needs the padding: pad(n), pad(rows, cols) or top:/bottom:/left:/right:"); return error_value; }
        int rc = named_num(a, "value", "pad value", &op.value);
        if (rc < 0) return error_value;
        op.value_given = rc;
        break;
    }
    case T_CROP: {
        op.kind = DOP_CROP;
        int n = pos_ints(a, 1, "crop()", v, 1, 2, 1, 65536);
        if (n < 0) return error_value;
        op.v[2] = v[0];
        op.v[3] = n == 2 ? v[1] : v[0];
        int top = named_int(a, "top", "top", &op.v[0], 0, 65536);
        int left = named_int(a, "left", "left", &op.v[1], 0, 65536);
        if (top < 0 || left < 0) return error_value;
        op.v[4] = (top ? 0 : 1) | (left ? 0 : 2);    /* centred where not given; add_op works it out */
        break;
    }
    case T_RESIZE: {
        op.kind = DOP_RESIZE;
        int n = pos_ints(a, 1, "resize()", v, 1, 2, 1, 65536);
        if (n < 0) return error_value;
        op.v[0] = v[0];
        op.v[1] = n == 2 ? v[1] : v[0];
        break;
    }
    case T_CHANNELS: {
        op.kind = DOP_CHANNELS;
        op.n = 1;
        if (pos_ints(a, 1, "channels()", op.v, 1, 1, 1, 3) < 0) return error_value;
        if (op.v[0] == 2) { diag_error(a->pos_loc[1], "channels must be 1 (grey) or 3 (RGB)"); return error_value; }
        break;
    }
    case T_SPLIT: {
        /* split("train", 0.9) and split("validation", 0.1) are the two sides of one cut */
        op.kind = DOP_SPLIT;
        const char *part;
        double f;
        if (a->npos != 3 || want_str(&a->pos[1], a->pos_loc[1], "split part", &part) < 0 ||
            want_num(a->pos[2], a->pos_loc[2], "split fraction", &f) < 0) {
            if (a->npos != 3) diag_error(a->loc, "split(part, fraction) takes \"train\" or \"validation\" and the fraction of the examples in that part");
            return error_value;
        }
        if (strcmp(part, "train") && strcmp(part, "validation")) {
            diag_error(a->pos_loc[1], "the split part must be \"train\" or \"validation\", got \"%s\"", part);
            return error_value;
        }
        if (!(f > 0 && f < 1)) { diag_error(a->pos_loc[2], "the split fraction must be between 0 and 1, got %g", f); return error_value; }
        op.v[0] = !strcmp(part, "validation");
        op.fraction = floor((op.v[0] ? f : 1 - f) * 1e9 + 0.5) / 1e9;   /* 1 - 0.9 is 0.1 */
        int shuffled = 0;
        if ((nv = named(a, "shuffled", &l)) && want_bool(nv, l, "shuffled", &shuffled) < 0) return error_value;
        op.v[1] = shuffled;
        break;
    }
    case T_FLIP: {
        op.kind = DOP_FLIP;
        op.p = 0.5;
        if (a->npos == 2 && want_num(a->pos[1], a->pos_loc[1], "flip probability", &op.p) < 0) return error_value;
        if (named_num(a, "p", "flip probability", &op.p) < 0) return error_value;
        if (a->npos > 2 || !(op.p >= 0 && op.p <= 1)) {
            diag_error(a->loc, "random_flip(p) takes one probability between 0 and 1");
            return error_value;
        }
        break;
    }
    case T_NOISE: {
        op.kind = DOP_NOISE;
        if (a->npos != 2) { diag_error(a->loc, "add_noise(std) takes the standard deviation of the noise"); return error_value; }
        if (want_num(a->pos[1], a->pos_loc[1], "noise standard deviation", &op.std) < 0) return error_value;
        if (!(op.std >= 0)) { diag_error(a->pos_loc[1], "the noise standard deviation must be 0 or more"); return error_value; }
        break;
    }
    case T_LABELS: {
        if (a->npos != 1) { diag_error(a->pos_loc[1], "with_labels takes only named arguments (one_hot:, classes:)"); return error_value; }
        if (d->kind == DS_TEXT || d->kind == DS_UNPAIRED) {
            diag_error(a->loc, "%s already yields two tensors per example", d->kind == DS_TEXT ? "text() (windows, targets)" : "unpaired() (A, B)");
            return error_value;
        }
        int64_t classes = 0;
        if ((nv = named(a, "one_hot", &l)) && want_bool(nv, l, "one_hot", &d->one_hot) < 0) return error_value;
        if (named_int(a, "classes", "classes", &classes, 1, 1 << 24) < 0) return error_value;
        if (classes) d->nclasses = classes;
        if (!d->nclasses) {
            diag_error(a->loc, "%s has no labels%s", source_text(d),
                       d->kind == DS_FOLDER ? " (labels come from one subfolder per class)" :
                       d->kind == DS_NPY ? " (give npy(..., labels: \"labels.npy\"))" : "");
            return error_value;
        }
        d->labels = 1;
        d->nparts = 2;
        d->ndim2 = d->one_hot ? 1 : 0;
        d->shape2[0] = d->nclasses;
        if (no_other_named(a, fn) < 0) return error_value;
        return (Value){ .kind = V_DATA, .data = d };
    }
    case T_SHUFFLE:
        if (a->npos != 1) { diag_error(a->pos_loc[1], "shuffle takes no arguments"); return error_value; }
        d->shuffle = 1;
        return (Value){ .kind = V_DATA, .data = d };
    case T_BATCH: {
        int64_t n;
        if (a->npos != 2) { diag_error(a->loc, "batch(n) takes 1 argument, got %d", a->npos - 1); return error_value; }
        if (want_int(a->pos[1], a->pos_loc[1], "batch size", &n) < 0) return error_value;
        if (n < 1 || n > 1000000) { diag_error(a->pos_loc[1], "batch size must be positive"); return error_value; }
        d->batch = (int)n;
        if ((nv = named(a, "drop_last", &l)) && want_bool(nv, l, "drop_last", &d->drop_last) < 0) return error_value;
        if (no_other_named(a, fn) < 0) return error_value;
        return (Value){ .kind = V_DATA, .data = d };
    }
    }
    if (no_other_named(a, fn) < 0) return error_value;
    if (add_op(d, op, a->loc, fn) < 0) return error_value;
    return (Value){ .kind = V_DATA, .data = d };
}

static Value source(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)c;
    switch (def->op) {
    case SRC_IDX: return idx_source(a, def->name);
    case SRC_FOLDER: return folder_source(a, def->name);
    case SRC_NPY: return npy_source(a, def->name);
    case SRC_TEXT: return text_source(a, def->name);
    default: return unpaired_source(a, def->name);
    }
}

const BuiltinDef data_builtins[] = {
    { "fashion_mnist", source, SRC_IDX, -1 },
    { "mnist", source, SRC_IDX, -1 },
    { "image_folder", source, SRC_FOLDER, -1 },
    { "npy", source, SRC_NPY, -1 },
    { "text", source, SRC_TEXT, -1 },
    { "unpaired", source, SRC_UNPAIRED, -1 },
    { "filter", transform, T_FILTER, -1 },
    { "scale", transform, T_SCALE, -1 },
    { "pad", transform, T_PAD, -1 },
    { "crop", transform, T_CROP, -1 },
    { "resize", transform, T_RESIZE, -1 },
    { "channels", transform, T_CHANNELS, -1 },
    { "split", transform, T_SPLIT, -1 },
    { "random_flip", transform, T_FLIP, -1 },
    { "add_noise", transform, T_NOISE, -1 },
    { "with_labels", transform, T_LABELS, -1 },
    { "shuffle", transform, T_SHUFFLE, -1 },
    { "batch", transform, T_BATCH, -1 },
    { NULL, NULL, 0, -1 },
};
