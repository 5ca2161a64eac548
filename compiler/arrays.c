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
    Value v = { .kind = V_ARRAY, .n = n, .is_int = 1, .andim = 1 };
    v.ashape[0] = n;
    v.arr = xmalloc((size_t)(n ? n : 1) * sizeof *v.arr);
    memset(v.arr, 0, (size_t)(n ? n : 1) * sizeof *v.arr);
    return v;
}

Value array_shaped(int nd, const int *dims) {
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= dims[i];
    Value v = array_value((int)n);
    v.andim = nd;
    memcpy(v.ashape, dims, (size_t)nd * sizeof *dims);
    return v;
}

int array_shape(Value v, int *dims) {
    if (v.kind != V_ARRAY) return 0;
    if (v.andim < 1) { dims[0] = v.n; return 1; }    /* built without array_value */
    memcpy(dims, v.ashape, (size_t)v.andim * sizeof *dims);
    return v.andim;
}

const char *array_shape_str(Value v) {
    int d[IR_MAXDIM];
    int64_t s[IR_MAXDIM];
    int nd = array_shape(v, d);
    for (int i = 0; i < nd; i++) s[i] = d[i];
    return shape_str(nd, s);
}

/* a[i] of an array: a number (one axis) or the sub-array of the axes after the first */
Value array_row(Value a, int i) {
    int d[IR_MAXDIM];
    int nd = array_shape(a, d);
    if (nd == 1) return num_value(a.arr[i], a.is_int);
    Value r = array_shaped(nd - 1, d + 1);
    memcpy(r.arr, a.arr + (size_t)i * r.n, (size_t)r.n * sizeof *r.arr);
    r.is_int = a.is_int;
    return r;
}

/* arrays of one shape stacked along a new first axis ([[1, 2], [3, 4]]); *bad is the first
 * row whose kind or shape differs from row 0's (the result is then `none`), or -1 */
Value array_stack(const Value *rows, int n, int *bad) {
    int d[IR_MAXDIM + 1], nd = array_shape(rows[0], d + 1);
    *bad = -1;
    for (int i = 0; i < n; i++) {
        int s[IR_MAXDIM], k = array_shape(rows[i], s);
        if (rows[i].kind != V_ARRAY || k != nd || memcmp(s, d + 1, (size_t)nd * sizeof *s)) { *bad = i; return none; }
    }
    if (nd + 1 > IR_MAXDIM) { *bad = 0; return none; }
    d[0] = n;
    Value r = array_shaped(nd + 1, d);
    int row = rows[0].n;
    for (int i = 0; i < n; i++) {
        memcpy(r.arr + (size_t)i * row, rows[i].arr, (size_t)row * sizeof *r.arr);
        r.is_int &= rows[i].is_int;
    }
    return r;
}

int is_array_like(Value v) { return v.kind == V_NUM || v.kind == V_ARRAY; }

static void set_int_flag(Value *v) {
    v->is_int = 1;
    for (int i = 0; i < v->n && v->is_int; i++)
        if (v->arr[i] != floor(v->arr[i]) || fabs(v->arr[i]) > 9007199254740992.0) v->is_int = 0;
}

/* numpy broadcasting of arrays and numbers: the result's rank (its shape in d), or -1 after
 * an error */
static int broadcast_shape(Value *vs, int n, Loc *locs, const char *what, int *d) {
    int nd = 0, s[IR_MAXDIM];
    for (int i = 0; i < n; i++) { int k = array_shape(vs[i], s); if (k > nd) nd = k; }
    for (int j = 0; j < nd; j++) d[j] = 1;
    int first = -1;
    for (int i = 0; i < n; i++) {
        if (vs[i].kind != V_ARRAY) continue;
        int k = array_shape(vs[i], s);
        for (int j = 0; j < k; j++) {
            int o = nd - k + j;
            if (s[j] == d[o] || s[j] == 1) continue;
            if (d[o] != 1) {
                diag_error(locs[i], "%s: arrays of shape %s and %s do not broadcast", what,
                           array_shape_str(vs[first]), array_shape_str(vs[i]));
                return -1;
            }
            d[o] = s[j];
        }
        if (first < 0) first = i;
    }
    return nd;
}

/* element k (row-major over the shape d[nd]) of v broadcast to that shape */
static double at_b(Value v, int64_t k, int nd, const int *d, int64_t total) {
    if (v.kind != V_ARRAY) return v.num;
    if (v.n == total) return v.arr[k];          /* the same shape (broadcasting succeeded) */
    int s[IR_MAXDIM];
    int vn = array_shape(v, s);
    int64_t off = 0, stride = 1;
    for (int j = nd - 1; j >= 0; j--) {
        int64_t i = k % d[j];
        k /= d[j];
        int vj = j - (nd - vn);
        if (vj < 0) continue;
        if (s[vj] != 1) off += i * stride;
        stride *= s[vj];
    }
    return v.arr[off];
}

static int64_t numel(int nd, const int *d) {
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= d[i];
    return n;
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

/* a @ b of arrays of one or two axes (numpy's matmul: a vector on the left is a row, on the
 * right a column, and that axis is dropped) */
static Value array_matmul(Value a, Value b, Loc loc) {
    int da[IR_MAXDIM], db[IR_MAXDIM];
    int na = array_shape(a, da), nb = array_shape(b, db);
    if (na < 1 || nb < 1 || na > 2 || nb > 2) {
        diag_error(loc, "operator '@' on arrays takes vectors and matrices, got shapes %s and %s",
                   na ? array_shape_str(a) : "a number", nb ? array_shape_str(b) : "a number");
        return error_value;
    }
    int m = na == 2 ? da[0] : 1, k = da[na - 1], k2 = nb == 2 ? db[0] : db[0], n = nb == 2 ? db[1] : 1;
    if (k != k2) {
        diag_error(loc, "operator '@': arrays of shape %s and %s: inner dimensions %d and %d differ",
                   array_shape_str(a), array_shape_str(b), k, k2);
        return error_value;
    }
    if ((int64_t)m * n > MAX_ARRAY) { diag_error(loc, "operator '@': an array of more than %d numbers", MAX_ARRAY); return error_value; }
    int d[2], nd = 0;
    if (na == 2) d[nd++] = m;
    if (nb == 2) d[nd++] = n;
    Value r = nd ? array_shaped(nd, d) : array_value(1);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int q = 0; q < k; q++) acc += a.arr[(size_t)i * k + q] * b.arr[(size_t)q * n + j];
            r.arr[(size_t)i * n + j] = acc;
        }
    if (!nd) return num_value(r.arr[0], a.is_int && b.is_int);
    set_int_flag(&r);
    return r;
}

Value array_binary(const char *op, Value a, Value b, Loc loc) {
    if (!strcmp(op, "@")) return array_matmul(a, b, loc);
    Value vs[2] = { a, b };
    Loc locs[2] = { loc, loc };
    int d[IR_MAXDIM];
    int nd = broadcast_shape(vs, 2, locs, fmt("operator '%s'", op), d);
    if (nd < 0) return error_value;
    int64_t total = numel(nd, d);
    if (total > MAX_ARRAY) { diag_error(loc, "operator '%s': an array of more than %d numbers", op, MAX_ARRAY); return error_value; }
    Value r = array_shaped(nd, d);
    for (int64_t i = 0; i < total; i++) {
        int rc = scalar_op(op, at_b(a, i, nd, d, total), at_b(b, i, nd, d, total), &r.arr[i]);
        if (rc == -1) { diag_error(loc, "modulo by zero"); return error_value; }
        if (rc == -2) { diag_error(loc, "operator '%s' does not apply to arrays", op); return error_value; }
    }
    set_int_flag(&r);
    return r;
}

Value array_unary(const char *op, Value a, Loc loc) {
    (void)loc;
    int d[IR_MAXDIM];
    Value r = array_shaped(array_shape(a, d), d);
    for (int i = 0; i < a.n; i++) r.arr[i] = op[0] == 'n' ? a.arr[i] == 0 : -a.arr[i];
    set_int_flag(&r);
    return r;
}

int array_tensor(Ctx *c, Value v) {
    float *data = xmalloc((size_t)(v.n ? v.n : 1) * sizeof *data);
    for (int i = 0; i < v.n; i++) data[i] = (float)v.arr[i];
    int d[IR_MAXDIM];
    int64_t shape[IR_MAXDIM];
    int nd = array_shape(v, d);
    for (int i = 0; i < nd; i++) shape[i] = d[i];
    return ir_data(c->g, data, nd, shape);
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

/* elementwise over numbers and arrays, broadcast as numpy does: f(args) */
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
    int d[IR_MAXDIM];
    int nd = broadcast_shape(a->pos, nargs, a->pos_loc, fmt("%s()", fn), d);
    if (nd < 0) return error_value;
    int64_t total = numel(nd, d);
    if (total > MAX_ARRAY) { diag_error(a->loc, "%s(): an array of more than %d numbers", fn, MAX_ARRAY); return error_value; }
    Value r = array_shaped(nd, d);
    for (int64_t k = 0; k < total; k++) {
        double x[3];
        for (int i = 0; i < nargs; i++) x[i] = at_b(a->pos[i], k, nd, d, total);
        r.arr[k] = f(fn, x);
    }
    set_int_flag(&r);
    if (nd) return r;
    return num_value(r.arr[0], 0);
}

static double f_unary(const char *fn, const double *x) { int found; return unary_fn(fn, x[0], &found); }
static double f_binary(const char *fn, const double *x) {
    return !strcmp(fn, "max") ? fmax(x[0], x[1]) : !strcmp(fn, "min") ? fmin(x[0], x[1]) : pow(x[0], x[1]);
}
static double f_clip(const char *fn, const double *x) { (void)fn; return fmin(fmax(x[0], x[1]), x[2]); }
static double f_where(const char *fn, const double *x) { (void)fn; return x[0] != 0 ? x[1] : x[2]; }

/* an axis of an array of rank nd (negative counts from the end) */
static int array_axis(Value v, Loc loc, int nd, const char *fn, int *axis) {
    int64_t k;
    if (want_int(v, loc, fmt("%s() axis", fn), &k) < 0) return -1;
    if (k < -nd || k >= nd) {
        diag_error(loc, "%s(): axis %lld is out of range for an array of %d ax%s", fn, (long long)k, nd, nd == 1 ? "is" : "es");
        return -1;
    }
    *axis = (int)(k < 0 ? k + nd : k);
    return 0;
}

/* the array's shape split around `axis`: outer * len * inner elements */
static void split_at(const int *d, int nd, int axis, int64_t *outer, int64_t *len, int64_t *inner) {
    *outer = numel(axis, d);
    *len = d[axis];
    *inner = numel(nd - axis - 1, d + axis + 1);
}

/* cumsum / cumprod along an axis (the last one unless given), in double */
static Value fold_scan(Args *a, const char *fn) {
    Loc al = a->loc, rl = a->loc;
    Value *av = named(a, "axis", &al), *rv = named(a, "reverse", &rl);
    if (no_other_named(a, fn) < 0) return error_value;
    if (a->npos == 2 && !av) { av = &a->pos[1]; al = a->pos_loc[1]; }
    if (a->npos < 1 || a->npos > 2 || !is_array_like(a->pos[0])) {
        diag_error(a->loc, "%s(a, axis: -1, reverse: false) takes one array", fn);
        return error_value;
    }
    Value x = a->pos[0];
    if (x.kind == V_NUM) { x = array_value(1); x.arr[0] = a->pos[0].num; }
    int d[IR_MAXDIM], nd = array_shape(x, d), axis = nd - 1, prod = !strcmp(fn, "cumprod");
    int64_t rev = 0, outer, len, inner;
    if ((av && array_axis(*av, al, nd, fn, &axis) < 0) || (rv && want_int(*rv, rl, fmt("%s() reverse", fn), &rev) < 0))
        return error_value;
    split_at(d, nd, axis, &outer, &len, &inner);
    Value r = array_shaped(nd, d);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double acc = prod;
            for (int64_t q = 0; q < len; q++) {
                int64_t j = rev ? len - 1 - q : q, at = (o * len + j) * inner + i;
                r.arr[at] = acc = prod ? acc * x.arr[at] : acc + x.arr[at];
            }
        }
    set_int_flag(&r);
    return r;
}

/* sum, mean, amax, amin, prod over all axes, or `axis:` (a number or a tuple), keepdims */
static Value fold_reduce(Args *a, const char *fn) {
    Loc al = a->loc, kl = a->loc;
    Value *av = named(a, "axis", &al), *kv = named(a, "keepdims", &kl);
    if (no_other_named(a, fn) < 0) return error_value;
    if (a->npos == 2 && !av) { av = &a->pos[1]; al = a->pos_loc[1]; }
    if (a->npos < 1 || a->npos > 2) { diag_error(a->loc, "%s(a, axis: ..., keepdims: false) takes one array", fn); return error_value; }
    Value x = a->pos[0];
    int d[IR_MAXDIM], nd = array_shape(x, d), reduced[IR_MAXDIM] = { 0 };
    int64_t keep = 0;
    if (kv && want_int(*kv, kl, fmt("%s() keepdims", fn), &keep) < 0) return error_value;
    if (!av) for (int i = 0; i < nd; i++) reduced[i] = 1;
    else {
        int n = av->kind == V_TUPLE ? av->n : 1;
        for (int i = 0; i < n; i++) {
            int ax;
            if (array_axis(av->kind == V_TUPLE ? av->items[i] : *av, al, nd, fn, &ax) < 0) return error_value;
            reduced[ax] = 1;
        }
    }
    int rd[IR_MAXDIM], rnd = 0;
    int64_t count = 1;
    for (int i = 0; i < nd; i++) {
        if (reduced[i]) count *= d[i];
        if (!reduced[i]) rd[rnd++] = d[i];
        else if (keep) rd[rnd++] = 1;
    }
    if (count == 0 && strcmp(fn, "sum") && strcmp(fn, "prod")) { diag_error(a->loc, "%s() of an empty array", fn); return error_value; }
    int isum = !strcmp(fn, "sum"), iprod = !strcmp(fn, "prod"), imax = !strcmp(fn, "amax"), imin = !strcmp(fn, "amin");
    double init = iprod ? 1 : imax ? -INFINITY : imin ? INFINITY : 0;
    Value r = array_shaped(rnd, rd);
    for (int i = 0; i < r.n; i++) r.arr[i] = init;
    /* each element goes to the output element of its kept coordinates */
    for (int64_t k = 0; k < x.n; k++) {
        int64_t rest = k, o = 0, stride = 1;
        for (int j = nd - 1; j >= 0; j--) {
            int64_t i = rest % d[j];
            rest /= d[j];
            if (!reduced[j]) { o += i * stride; stride *= d[j]; }
        }
        double v = x.arr[k], *acc = &r.arr[o];
        *acc = imax ? fmax(*acc, v) : imin ? fmin(*acc, v) : iprod ? *acc * v : *acc + v;
    }
    if (!strcmp(fn, "mean")) for (int i = 0; i < r.n; i++) r.arr[i] /= (double)count;
    (void)isum;
    if (rnd == 0) return num_value(r.arr[0], x.is_int && strcmp(fn, "mean"));
    set_int_flag(&r);
    return r;
}

/* concat(a, b, ..., axis: 0): numbers join one-axis arrays as elements */
static Value fold_concat(Args *a) {
    Loc al = a->loc;
    Value *av = named(a, "axis", &al);
    if (no_other_named(a, "concat") < 0) return error_value;
    int nd = 0, d[IR_MAXDIM], first = -1;
    for (int i = 0; i < a->npos; i++) {
        if (!is_array_like(a->pos[i])) {
            diag_error(a->pos_loc[i], "concat(): cannot join a %s to arrays", kind_name(a->pos[i].kind));
            return error_value;
        }
        if (a->pos[i].kind == V_ARRAY && first < 0) { first = i; nd = array_shape(a->pos[i], d); }
    }
    int axis = 0;
    if (av && array_axis(*av, al, nd, "concat", &axis) < 0) return error_value;
    int64_t total = 0;
    for (int i = 0; i < a->npos; i++) {
        int s[IR_MAXDIM], k = array_shape(a->pos[i], s);
        if (k == 0 && nd == 1) { total++; continue; }
        int ok = k == nd;
        for (int j = 0; j < nd && ok; j++) ok = j == axis || s[j] == d[j];
        if (!ok) {
            diag_error(a->pos_loc[i], "concat(): an array of shape %s does not join one of shape %s along axis %d",
                       k ? array_shape_str(a->pos[i]) : "[] (a number)", array_shape_str(a->pos[first]), axis);
            return error_value;
        }
        total += s[axis];
    }
    if (total * numel(nd, d) / (d[axis] ? d[axis] : 1) > MAX_ARRAY) { diag_error(a->loc, "concat(): an array of more than %d numbers", MAX_ARRAY); return error_value; }
    int rd[IR_MAXDIM];
    memcpy(rd, d, sizeof rd);
    rd[axis] = (int)total;
    Value r = array_shaped(nd, rd);
    int64_t outer, len, inner, at = 0;
    split_at(rd, nd, axis, &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < a->npos; i++) {
            Value x = a->pos[i];
            int s[IR_MAXDIM];
            int64_t chunk = array_shape(x, s) ? s[axis] * inner : 1;
            for (int64_t q = 0; q < chunk; q++) r.arr[at++] = x.kind == V_ARRAY ? x.arr[o * chunk + q] : x.num;
        }
    set_int_flag(&r);
    return r;
}

/* reshape(a, dims...) of an array keeps its first axis, as reshape does for a tensor's batch
 * axis (reshape(range(4), 1) is a column [4, 1]); with `whole: true` the whole array takes
 * the new shape (numpy's reshape). One dimension may be -1. */
static Value fold_reshape(Args *a) {
    Loc wl = a->loc;
    Value *wv = named(a, "whole", &wl);
    int64_t whole = 0, dims[IR_MAXDIM];
    if ((wv && want_int(*wv, wl, "reshape() whole", &whole) < 0) || no_other_named(a, "reshape") < 0) return error_value;
    Value x = a->pos[0];
    int xd[IR_MAXDIM];
    array_shape(x, xd);
    int keep = !whole, nd = dims_of(a, 1, dims + keep, "reshape");
    if (nd < 0) return error_value;
    if (nd == 0) { diag_error(a->loc, "reshape(a, dims...) needs the new shape"); return error_value; }
    if (keep) dims[0] = xd[0];
    nd += keep;
    int64_t known = 1;
    int infer = -1;
    for (int i = keep; i < nd; i++) {
        if (dims[i] == -1 && infer < 0) infer = i;
        else if (dims[i] < 0) { diag_error(a->loc, "reshape(): dimension %lld is negative", (long long)dims[i]); return error_value; }
        else known *= dims[i];
    }
    int64_t want = keep ? (xd[0] ? x.n / xd[0] : 0) : x.n;
    if (infer >= 0 && known && want % known == 0) dims[infer] = want / known, known = want;
    if (known != want) {
        if (keep)
            diag_error(a->loc, "reshape(): an array of shape %s keeps its first axis (as a tensor keeps its batch axis), so each of its %d rows of %lld numbers cannot take shape %s; reshape(a, dims..., whole: true) reshapes the whole array",
                       array_shape_str(x), xd[0], (long long)want, shape_str(nd - 1, dims + 1));
        else
            diag_error(a->loc, "reshape(): an array of shape %s (%d numbers) cannot take shape %s", array_shape_str(x), x.n, shape_str(nd, dims));
        return error_value;
    }
    int d[IR_MAXDIM];
    for (int i = 0; i < nd; i++) d[i] = (int)dims[i];
    Value r = array_shaped(nd, d);
    memcpy(r.arr, x.arr, (size_t)x.n * sizeof *x.arr);
    r.is_int = x.is_int;
    return r;
}

/* transpose(a): the last two axes swapped, as for tensors */
static Value fold_transpose(Args *a) {
    if (a->npos != 1 || a->nnamed) { diag_error(a->loc, "transpose(a) takes one array"); return error_value; }
    Value x = a->pos[0];
    int d[IR_MAXDIM], nd = array_shape(x, d);
    if (nd < 2) { diag_error(a->pos_loc[0], "transpose(): needs an array of two axes or more, got shape %s", array_shape_str(x)); return error_value; }
    int rd[IR_MAXDIM];
    memcpy(rd, d, sizeof rd);
    rd[nd - 1] = d[nd - 2];
    rd[nd - 2] = d[nd - 1];
    Value r = array_shaped(nd, rd);
    int64_t rows = d[nd - 2], cols = d[nd - 1], mat = rows * cols;
    for (int64_t b = 0; b < x.n / (mat ? mat : 1); b++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) r.arr[b * mat + j * rows + i] = x.arr[b * mat + i * cols + j];
    r.is_int = x.is_int;
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
    case V_ARRAY: { int d[IR_MAXDIM]; array_shape(x, d); return num_value(d[0], 1); }
    case V_TUPLE: return num_value(x.n, 1);
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
        if (a->npos <= 2) return fold_reduce(a, fn);
    }
    if (a->npos >= 1 && a->pos[0].kind == V_ARRAY && !strcmp(fn, "reshape")) return fold_reshape(a);
    if (a->npos >= 1 && a->pos[0].kind == V_ARRAY && !strcmp(fn, "transpose")) return fold_transpose(a);
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
        diag_error(loc, "index %lld is out of range for %s", (long long)*k, what);
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

/* a[i], a[i, j], a[i][j], a[lo:hi:step, j], a[[0, 2]]: each index picks along its axis (a
 * number drops the axis, a slice or an array of whole numbers keeps it); axes not indexed
 * are kept whole. An index that is a tensor makes the array a constant tensor and indexes
 * that (a gather at run time). */
Value array_index(Ctx *c, Value a, IndexItem *it, int n, Loc loc) {
    int d[IR_MAXDIM], nd = array_shape(a, d);
    for (int i = 0; i < n; i++)
        if (!it[i].is_slice && it[i].v.kind == V_TENSOR) {
            if (need_graph(c, it[i].loc, "indexing by a tensor") < 0) return error_value;
            if (nd == 1 && n == 1) return gather_array(c, a, it[i].v.node, loc);
            return tensor_index(c, tensor_value(array_tensor(c, a)), it, n, loc);
        }
    if (n > nd) {
        diag_error(it[nd].loc, "too many indices: %d for an array of shape %s", n, array_shape_str(a));
        return error_value;
    }
    int64_t *pick[IR_MAXDIM], cnt[IR_MAXDIM];
    int rd[IR_MAXDIM] = { 0 }, rnd = 0, arrays = 0;
    for (int j = 0; j < nd; j++) {
        const char *what = nd == 1 ? fmt("an array of length %d", d[0]) : fmt("axis %d (length %d) of an array of shape %s", j, d[j], array_shape_str(a));
        if (j >= n || it[j].is_slice) {
            int64_t start = 0, step = 1;
            cnt[j] = d[j];
            if (j < n && slice_range(&it[j], d[j], &start, &cnt[j], &step) < 0) return error_value;
            pick[j] = xmalloc((size_t)(cnt[j] ? cnt[j] : 1) * sizeof **pick);
            for (int64_t i = 0; i < cnt[j]; i++) pick[j][i] = start + i * step;
            rd[rnd++] = (int)cnt[j];
            continue;
        }
        Value v = it[j].v;
        if (v.kind == V_NUM) {
            pick[j] = xmalloc(sizeof **pick);
            cnt[j] = 1;
            if (index_of(&v, it[j].loc, d[j], what, &pick[j][0]) < 0) return error_value;
            continue;
        }
        if (v.kind == V_ARRAY && v.andim <= 1) {     /* a[[0, 2]]: the chosen elements */
            if (++arrays > 1) {
                diag_error(it[j].loc, "an array is indexed by at most one array of indices, got two");
                return error_value;
            }
            pick[j] = xmalloc((size_t)(v.n ? v.n : 1) * sizeof **pick);
            cnt[j] = v.n;
            for (int i = 0; i < v.n; i++) {
                Value e = num_value(v.arr[i], 1);
                if (index_of(&e, it[j].loc, d[j], what, &pick[j][i]) < 0) return error_value;
            }
            rd[rnd++] = v.n;
            continue;
        }
        diag_error(it[j].loc, "an index must be a whole number, a slice, an array of whole numbers or a tensor, got %s",
                   v.kind == V_ARRAY ? fmt("an array of shape %s", array_shape_str(v)) : fmt("a %s", kind_name(v.kind)));
        return error_value;
    }
    Value r = array_shaped(rnd, rd);
    int64_t total = 1, pos[IR_MAXDIM] = { 0 };
    for (int j = 0; j < nd; j++) total *= cnt[j];
    for (int64_t k = 0; k < total; k++) {
        int64_t off = 0;
        for (int j = 0; j < nd; j++) off = off * d[j] + pick[j][pos[j]];
        r.arr[k] = a.arr[off];
        for (int j = nd - 1; j >= 0; j--) {       /* the next position, row-major */
            if (++pos[j] < cnt[j]) break;
            pos[j] = 0;
        }
    }
    for (int j = 0; j < nd; j++) free(pick[j]);
    if (rnd == 0) return num_value(r.arr[0], a.is_int);
    set_int_flag(&r);
    return r;
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
        if (index_of(&it[d].v, it[d].loc, xn.shape[d], fmt("axis %d of a tensor of shape %s of length %lld", d, shape_str(xn.ndim, xn.shape), (long long)xn.shape[d]), &k) < 0)
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
