/* arrays.c: compile-time arrays. `[0.1, 0.2]`, `range(T)`, `linspace(0, 1, 5)` and whatever
 * elementwise math, cumsum / cumprod, concat, indexing and slicing make of them are folded
 * while the program is checked, so a schedule such as DDPM's abar = cumprod(alpha) costs
 * nothing at run time. An array that meets a tensor becomes a constant tensor (IR_DATA);
 * indexing an array with a tensor of whole numbers (abar[t], t drawn per example, or a
 * sampling loop's counter) is a gather at run time (IR_GATHER), and so is x[t] of a tensor.
 *
 * Built-ins are folded by name (array_fold, called for every built-in whose arguments hold no
 * tensor), so a name that builtins.c also defines for tensors (exp, max, concat, cumsum ...)
 * folds on arrays and builds IR on tensors. Names only this file defines are array_builtins. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sema_internal.h"

enum { MAX_ARRAY = 1 << 24 };

Value array_value(int n) {
    Value v = { .kind = V_ARRAY, .n = n, .is_int = 1 };
    v.arr = xmalloc((size_t)(n ? n : 1) * sizeof *v.arr);
    return v;
}

int is_array_like(Value v) { return v.kind == V_NUM || v.kind == V_ARRAY; }

static double at(Value v, int i) { return v.kind == V_ARRAY ? v.arr[i] : v.num; }

static void set_int_flag(Value *v) {
    v->is_int = 1;
    for (int i = 0; i < v->n && v->is_int; i++)
        if (v->arr[i] != floor(v->arr[i]) || fabs(v->arr[i]) > 9007199254740992.0) v->is_int = 0;
}

/* the common length of arrays and numbers (numbers broadcast), or -1 after an error */
static int common_length(Value *vs, int n, Loc *locs, const char *what) {
    int len = -2;
    for (int i = 0; i < n; i++) {
        if (vs[i].kind != V_ARRAY) continue;
        if (len == -2) len = vs[i].n;
        else if (vs[i].n != len) {
            diag_error(locs[i], "%s: arrays of length %d and %d do not match", what, len, vs[i].n);
            return -1;
        }
    }
    return len == -2 ? 0 : len;
}

static int scalar_op(const char *op, double x, double y, double *r) {
    switch (op[0]) {
    case '+': *r = x + y; return 0;
    case '-': *r = x - y; return 0;
    case '*': *r = op[1] == '*' ? pow(x, y) : x * y; return 0;
    case '/': *r = x / y; return 0;
    case '%': if (y == 0) return -1; *r = x - floor(x / y) * y; return 0;
    case '<': *r = op[1] == '=' ? x <= y : x < y; return 0;
    case '>': *r = op[1] == '=' ? x >= y : x > y; return 0;
    case '=': *r = x == y; return 0;
    case '!': *r = x != y; return 0;
    case 'a': *r = x != 0 && y != 0; return 0;
    case 'o': *r = x != 0 || y != 0; return 0;
    default: return -2;
    }
}

Value array_binary(const char *op, Value a, Value b, Loc loc) {
    Value vs[2] = { a, b };
    Loc locs[2] = { loc, loc };
    int n = common_length(vs, 2, locs, fmt("operator '%s'", op));
    if (n < 0) return error_value;
    if (!strcmp(op, "@")) { diag_error(loc, "operator '@' does not apply to arrays (they are one-dimensional)"); return error_value; }
    Value r = array_value(n);
    for (int i = 0; i < n; i++) {
        int rc = scalar_op(op, at(a, i), at(b, i), &r.arr[i]);
        if (rc == -1) { diag_error(loc, "modulo by zero"); return error_value; }
        if (rc == -2) { diag_error(loc, "operator '%s' does not apply to arrays", op); return error_value; }
    }
    set_int_flag(&r);
    return r;
}

Value array_unary(const char *op, Value a, Loc loc) {
    (void)loc;
    Value r = array_value(a.n);
    for (int i = 0; i < a.n; i++) r.arr[i] = op[0] == 'n' ? a.arr[i] == 0 : -a.arr[i];
    set_int_flag(&r);
    return r;
}

int array_tensor(Ctx *c, Value v) {
    float *data = xmalloc((size_t)(v.n ? v.n : 1) * sizeof *data);
    for (int i = 0; i < v.n; i++) data[i] = (float)v.arr[i];
    int64_t shape[1] = { v.n };
    return ir_data(c->g, data, 1, shape);
}

/* ---- folding built-ins ---------------------------------------------------------------- */

static double unary_fn(const char *name, double x, int *found) {
    static const struct { const char *name; double (*fn)(double); } fns[] = {
        { "exp", exp }, { "log", log }, { "log1p", log1p }, { "sqrt", sqrt }, { "abs", fabs },
        { "tanh", tanh }, { "erf", erf }, { "floor", floor }, { "ceil", ceil }, { "round", round },
        { "cos", cos }, { "sin", sin }, { "tan", tan }, { "acos", acos }, { "asin", asin },
        { "atan", atan },
    };
    *found = 1;
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (!strcmp(name, fns[i].name)) return fns[i].fn(x);
    if (!strcmp(name, "rsqrt")) return 1 / sqrt(x);
    if (!strcmp(name, "sign")) return (x > 0) - (x < 0);
    if (!strcmp(name, "sigmoid")) return 1 / (1 + exp(-x));
    if (!strcmp(name, "softplus")) return log1p(exp(-fabs(x))) + fmax(x, 0);
    *found = 0;
    return 0;
}

/* elementwise over numbers and arrays, numbers broadcasting: f(args) */
static Value elementwise(Args *a, const char *fn, int nargs, double (*f)(const char *, const double *)) {
    if (a->npos != nargs || a->nnamed) {
        diag_error(a->loc, "%s() takes %d argument%s, got %d", fn, nargs, nargs == 1 ? "" : "s", a->npos + a->nnamed);
        return error_value;
    }
    for (int i = 0; i < nargs; i++)
        if (!is_array_like(a->pos[i])) {
            diag_error(a->pos_loc[i], "%s() needs numbers, arrays or tensors, got a %s", fn, kind_name(a->pos[i].kind));
            return error_value;
        }
    int n = common_length(a->pos, nargs, a->pos_loc, fmt("%s()", fn));
    if (n < 0) return error_value;
    int any_array = 0;
    for (int i = 0; i < nargs; i++) any_array |= a->pos[i].kind == V_ARRAY;
    Value r = array_value(any_array ? n : 1);
    for (int k = 0; k < r.n; k++) {
        double x[3];
        for (int i = 0; i < nargs; i++) x[i] = at(a->pos[i], k);
        r.arr[k] = f(fn, x);
    }
    set_int_flag(&r);
    if (any_array) return r;
    return num_value(r.arr[0], 0);
}

static double f_unary(const char *fn, const double *x) { int found; return unary_fn(fn, x[0], &found); }
static double f_binary(const char *fn, const double *x) {
    return !strcmp(fn, "max") ? fmax(x[0], x[1]) : !strcmp(fn, "min") ? fmin(x[0], x[1]) : pow(x[0], x[1]);
}
static double f_clip(const char *fn, const double *x) { (void)fn; return fmin(fmax(x[0], x[1]), x[2]); }
static double f_where(const char *fn, const double *x) { (void)fn; return x[0] != 0 ? x[1] : x[2]; }

/* an optional axis: of a one-dimensional array must be 0 or -1 */
static int array_axis_ok(Args *a, const char *fn) {
    Loc l = a->loc;
    Value *ax = named(a, "axis", &l);
    if (ax && (ax->kind != V_NUM || (ax->num != 0 && ax->num != -1))) {
        diag_error(l, "%s(): an array has one axis (0 or -1)", fn);
        return -1;
    }
    return no_other_named(a, fn);
}

static Value fold_scan(Args *a, const char *fn) {
    if (array_axis_ok(a, fn) < 0) return error_value;
    if (a->npos != 1 || !is_array_like(a->pos[0])) {
        diag_error(a->loc, "%s(a) takes one array", fn);
        return error_value;
    }
    Value x = a->pos[0];
    int n = x.kind == V_ARRAY ? x.n : 1, prod = !strcmp(fn, "cumprod");
    Value r = array_value(n);
    double acc = prod;
    for (int i = 0; i < n; i++) r.arr[i] = acc = prod ? acc * at(x, i) : acc + at(x, i);
    set_int_flag(&r);
    return r;
}

static Value fold_reduce(Args *a, const char *fn) {
    if (array_axis_ok(a, fn) < 0) return error_value;
    Value x = a->pos[0];
    if (x.n == 0 && strcmp(fn, "sum") && strcmp(fn, "prod")) { diag_error(a->loc, "%s() of an empty array", fn); return error_value; }
    double acc = !strcmp(fn, "prod") ? 1 : !strcmp(fn, "amax") ? -INFINITY : !strcmp(fn, "amin") ? INFINITY : 0;
    for (int i = 0; i < x.n; i++) {
        double v = x.arr[i];
        if (!strcmp(fn, "amax")) acc = fmax(acc, v);
        else if (!strcmp(fn, "amin")) acc = fmin(acc, v);
        else if (!strcmp(fn, "prod")) acc *= v;
        else acc += v;
    }
    if (!strcmp(fn, "mean")) return num_value(acc / x.n, 0);
    return num_value(acc, x.is_int && strcmp(fn, "mean"));
}

static Value fold_concat(Args *a) {
    if (array_axis_ok(a, "concat") < 0) return error_value;
    int64_t n = 0;
    for (int i = 0; i < a->npos; i++) {
        if (!is_array_like(a->pos[i])) {
            diag_error(a->pos_loc[i], "concat(): cannot join a %s to arrays", kind_name(a->pos[i].kind));
            return error_value;
        }
        n += a->pos[i].kind == V_ARRAY ? a->pos[i].n : 1;
    }
    if (n > MAX_ARRAY) { diag_error(a->loc, "concat(): an array of more than %d numbers", MAX_ARRAY); return error_value; }
    Value r = array_value((int)n);
    int k = 0;
    for (int i = 0; i < a->npos; i++) {
        Value x = a->pos[i];
        for (int j = 0; j < (x.kind == V_ARRAY ? x.n : 1); j++) r.arr[k++] = at(x, j);
    }
    set_int_flag(&r);
    return r;
}

/* range(stop), range(start, stop), range(start, stop, step): numpy's arange */
static Value fold_range(Args *a) {
    double b[3] = { 0, 0, 1 };
    if (a->npos < 1 || a->npos > 3 || a->nnamed) {
        diag_error(a->loc, "range(stop), range(start, stop) or range(start, stop, step), got %d arguments", a->npos + a->nnamed);
        return error_value;
    }
    for (int i = 0; i < a->npos; i++)
        if (want_num(a->pos[i], a->pos_loc[i], "a range bound", &b[a->npos == 1 ? 1 : i]) < 0) return error_value;
    if (b[2] == 0) { diag_error(a->pos_loc[2], "range(): the step must not be 0"); return error_value; }
    double count = ceil((b[1] - b[0]) / b[2]);
    if (count < 0) count = 0;
    if (count > MAX_ARRAY) { diag_error(a->loc, "range(): %.0f numbers is too many (at most %d)", count, MAX_ARRAY); return error_value; }
    Value r = array_value((int)count);
    for (int i = 0; i < r.n; i++) r.arr[i] = b[0] + i * b[2];
    set_int_flag(&r);
    return r;
}

/* linspace(start, stop, n): n evenly spaced numbers, both ends included (numpy) */
static Value fold_linspace(Args *a) {
    double lo, hi;
    int64_t n;
    if (a->npos != 3 || a->nnamed) { diag_error(a->loc, "linspace(start, stop, n) takes 3 arguments, got %d", a->npos + a->nnamed); return error_value; }
    if (want_num(a->pos[0], a->pos_loc[0], "linspace() start", &lo) < 0 || want_num(a->pos[1], a->pos_loc[1], "linspace() stop", &hi) < 0 ||
        want_int(a->pos[2], a->pos_loc[2], "linspace() count", &n) < 0) return error_value;
    if (n < 0 || n > MAX_ARRAY) { diag_error(a->pos_loc[2], "linspace(): the count must be in 0..%d", MAX_ARRAY); return error_value; }
    Value r = array_value((int)n);
    for (int i = 0; i < n; i++) r.arr[i] = n > 1 ? lo + (hi - lo) * i / (double)(n - 1) : lo;
    if (n > 1) r.arr[n - 1] = hi;
    set_int_flag(&r);
    return r;
}

static Value fold_len(Ctx *c, Args *a) {
    if (a->npos != 1 || a->nnamed) { diag_error(a->loc, "len(x) takes one argument"); return error_value; }
    Value x = a->pos[0];
    switch (x.kind) {
    case V_ARRAY: case V_TUPLE: return num_value(x.n, 1);
    case V_STR: return num_value((double)strlen(x.str), 1);
    case V_TENSOR: {
        IrNode *n = &c->g->nodes[x.node];
        if (n->ndim == 0) { diag_error(a->pos_loc[0], "len() of a scalar tensor"); return error_value; }
        return num_value((double)n->shape[0], 1);
    }
    default:
        diag_error(a->pos_loc[0], "len() of a %s", kind_name(x.kind));
        return error_value;
    }
}

static int has_array(Args *a) {
    for (int i = 0; i < a->npos; i++) if (a->pos[i].kind == V_ARRAY) return 1;
    return 0;
}

static int in_list(const char *name, const char *const *list) {
    for (; *list; list++) if (!strcmp(name, *list)) return 1;
    return 0;
}

Value array_fold(Ctx *c, const BuiltinDef *def, Args *a, int *handled) {
    static const char *const always[] = { "range", "linspace", "len", "cos", "sin", "tan", "acos", "asin", "atan", "ceil", "round", NULL };
    static const char *const with_arrays[] = { "cumsum", "cumprod", "concat", "sum", "mean", "amax", "amin", "prod", "clip", NULL };
    const char *fn = def->name;
    int found;
    unary_fn(fn, 0, &found);
    *handled = 1;
    if (!strcmp(fn, "len")) return fold_len(c, a);
    if (!strcmp(fn, "range")) return fold_range(a);
    if (!strcmp(fn, "linspace")) return fold_linspace(a);
    int arrays = has_array(a);
    if (found && (arrays || in_list(fn, always))) return elementwise(a, fn, 1, f_unary);
    if (arrays && (!strcmp(fn, "max") || !strcmp(fn, "min") || !strcmp(fn, "pow"))) return elementwise(a, fn, 2, f_binary);
    if (arrays && !strcmp(fn, "where")) return elementwise(a, fn, 3, f_where);
    if (!strcmp(fn, "clip") && (arrays || (a->npos == 3 && is_array_like(a->pos[0]))))
        return elementwise(a, fn, 3, f_clip);
    if (arrays && in_list(fn, with_arrays)) {
        if (!strcmp(fn, "cumsum") || !strcmp(fn, "cumprod")) return fold_scan(a, fn);
        if (!strcmp(fn, "concat")) return fold_concat(a);
        if (a->npos == 1) return fold_reduce(a, fn);
    }
    (void)always;
    *handled = 0;
    return none;
}

/* The names only this file defines. On tensors: len reads the shape, the rest are errors. */
static Value array_only(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (!strcmp(fn, "len")) return fold_len(c, a);
    for (int i = 0; i < a->npos; i++)
        if (a->pos[i].kind == V_TENSOR) {
            diag_error(a->pos_loc[i], "%s() of a tensor is not supported: it applies to compile-time numbers and arrays", fn);
            return error_value;
        }
    diag_error(a->loc, "%s() needs compile-time numbers or arrays", fn);
    return error_value;
}

const BuiltinDef array_builtins[] = {
    { "range", array_only, 0, -1 },
    { "linspace", array_only, 0, -1 },
    { "len", array_only, 0, -1 },
    { "prod", array_only, 0, -1 },
    { "tan", array_only, 0, -1 },
    { "acos", array_only, 0, -1 },
    { "asin", array_only, 0, -1 },
    { "atan", array_only, 0, -1 },
    { "ceil", array_only, 0, -1 },
    { "round", array_only, 0, -1 },
    { NULL, NULL, 0, -1 },
};

/* ---- indexing ------------------------------------------------------------------------- */

/* Python's slice semantics over a length n: the start, the count and the step */
static int slice_range(const IndexItem *it, int64_t n, int64_t *start, int64_t *count, int64_t *step) {
    int64_t st = it->has[2] ? it->bound[2] : 1;
    if (st == 0) { diag_error(it->loc, "a slice step must not be 0"); return -1; }
    int64_t lo, hi;
    if (st > 0) {
        lo = it->has[0] ? it->bound[0] : 0;
        hi = it->has[1] ? it->bound[1] : n;
        if (lo < 0) lo += n;
        if (hi < 0) hi += n;
        lo = lo < 0 ? 0 : lo > n ? n : lo;
        hi = hi < 0 ? 0 : hi > n ? n : hi;
        *count = hi > lo ? (hi - lo + st - 1) / st : 0;
    } else {
        lo = it->has[0] ? it->bound[0] : n - 1;
        hi = it->has[1] ? it->bound[1] : -n - 1;
        if (lo < 0) lo += n;
        if (hi < 0) hi += n;
        lo = lo < -1 ? -1 : lo > n - 1 ? n - 1 : lo;
        hi = hi < -1 ? -1 : hi > n - 1 ? n - 1 : hi;
        *count = lo > hi ? (lo - hi - st - 1) / -st : 0;
    }
    *start = lo;
    *step = st;
    return 0;
}

/* a whole number in [-n, n), normalised */
static int index_of(const Value *v, Loc loc, int64_t n, const char *what, int64_t *k) {
    if (want_int(*v, loc, "an index", k) < 0) return -1;
    if (*k < -n || *k >= n) {
        diag_error(loc, "index %lld is out of range for %s of length %lld", (long long)*k, what, (long long)n);
        return -1;
    }
    if (*k < 0) *k += n;
    return 0;
}

/* x gathered along `axis` at ids (whole numbers of any shape): the ids' axes take the place
 * of that axis (numpy's take). -1 if the ranks do not fit. */
static int gather_axis(IrGraph *g, int x, int ids, int axis) {
    IrNode t = g->nodes[x], d = g->nodes[ids];
    if (t.ndim - 1 + d.ndim > IR_MAXDIM) return -1;
    int perm[IR_MAXDIM];
    if (axis) {
        perm[0] = axis;
        for (int i = 0, k = 1; i < t.ndim; i++) if (i != axis) perm[k++] = i;
        x = ir_transpose(g, x, perm);
    }
    int r = ir_gather(g, x, ids);
    if (r >= 0 && axis) {
        int nd = g->nodes[r].ndim, k = 0;
        for (int i = 0; i < axis; i++) perm[k++] = d.ndim + i;
        for (int i = 0; i < d.ndim; i++) perm[k++] = i;
        for (int i = d.ndim + axis; i < nd; i++) perm[k++] = i;
        r = ir_transpose(g, r, perm);
    }
    return r;
}

/* arr[t] for a tensor t of whole numbers in 0..n-1: a gather, shaped like t */
static Value gather_array(Ctx *c, Value arr, int t, Loc loc) {
    return located(c, ir_gather(c->g, array_tensor(c, arr), t), loc);
}

Value array_index(Ctx *c, Value a, IndexItem *it, int n, Loc loc) {
    if (n != 1) { diag_error(it[n > 1 ? 1 : 0].loc, "an array has one axis, got %d indices", n); return error_value; }
    if (it->is_slice) {
        int64_t start, count, step;
        if (slice_range(it, a.n, &start, &count, &step) < 0) return error_value;
        Value r = array_value((int)count);
        for (int64_t i = 0; i < count; i++) r.arr[i] = a.arr[start + i * step];
        set_int_flag(&r);
        return r;
    }
    Value v = it->v;
    if (v.kind == V_NUM) {
        int64_t k;
        if (index_of(&v, it->loc, a.n, "an array", &k) < 0) return error_value;
        return num_value(a.arr[k], a.is_int);
    }
    if (v.kind == V_ARRAY) {       /* a[[0, 2]]: the chosen elements */
        Value r = array_value(v.n);
        for (int i = 0; i < v.n; i++) {
            int64_t k;
            Value e = num_value(v.arr[i], 1);
            if (index_of(&e, it->loc, a.n, "an array", &k) < 0) return error_value;
            r.arr[i] = a.arr[k];
        }
        set_int_flag(&r);
        return r;
    }
    if (v.kind == V_TENSOR) {
        if (need_graph(c, it->loc, "indexing by a tensor") < 0) return error_value;
        return gather_array(c, a, v.node, loc);
    }
    diag_error(it->loc, "an index must be a whole number, a slice or a tensor, got a %s", kind_name(v.kind));
    return error_value;
}

Value tensor_index(Ctx *c, Value x, IndexItem *it, int n, Loc loc) {
    IrNode xn = c->g->nodes[x.node];
    if (n > xn.ndim) {
        diag_error(it[xn.ndim < n ? xn.ndim : 0].loc, "too many indices: %d for a tensor of shape %s", n, shape_str(xn.ndim, xn.shape));
        return error_value;
    }
    int64_t start[IR_MAXDIM] = { 0 }, size[IR_MAXDIM], keep[IR_MAXDIM];
    int nkeep = 0, any = 0, gather_at = -1, gather_ids = -1;
    for (int d = 0; d < xn.ndim; d++) {
        size[d] = xn.shape[d];
        if (d >= n) { keep[nkeep++] = size[d]; continue; }
        if (it[d].is_slice) {
            int64_t st, count, step;
            if (slice_range(&it[d], xn.shape[d], &st, &count, &step) < 0) return error_value;
            if (step != 1) { diag_error(it[d].loc, "a tensor is sliced with step 1 only, got step %lld", (long long)step); return error_value; }
            if (count < 1) { diag_error(it[d].loc, "the slice is empty on axis %d of %s", d, shape_str(xn.ndim, xn.shape)); return error_value; }
            start[d] = st;
            size[d] = count;
            keep[nkeep++] = count;
            any |= count != xn.shape[d];
            continue;
        }
        if (it[d].v.kind == V_TENSOR) {       /* gathered below, after the slices */
            if (gather_at >= 0) {
                diag_error(it[d].loc, "a tensor is indexed by at most one run-time value, got two");
                return error_value;
            }
            gather_at = nkeep;
            gather_ids = it[d].v.node;
            keep[nkeep++] = size[d];
            continue;
        }
        int64_t k;
        if (index_of(&it[d].v, it[d].loc, xn.shape[d], fmt("axis %d of a tensor of shape %s", d, shape_str(xn.ndim, xn.shape)), &k) < 0)
            return error_value;
        start[d] = k;
        size[d] = 1;
        any = 1;
    }
    int r = x.node;
    if (any) r = ir_slice(c->g, r, start, size);
    if (nkeep != xn.ndim) r = ir_reshape(c->g, r, nkeep, keep);
    if (gather_at >= 0 && (r = gather_axis(c->g, r, gather_ids, gather_at)) < 0) {
        diag_error(loc, "indexing %s by ids of shape %s gives more than %d axes", shape_str(xn.ndim, xn.shape),
                   node_shape(c, gather_ids), IR_MAXDIM);
        return error_value;
    }
    return located(c, r, loc);
}
