/* builtins.c: the built-in tensor functions (elementwise math, reductions, reshapes, random
 * draws, constants) and the parameter initialisers. Each is an entry of tensor_builtins. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sema_internal.h"
#include "param_file.h"

static Value reshape_batch(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "reshape()") < 0) return error_value;
    if (a->npos < 2) { diag_error(a->loc, "reshape(x, dims...) needs the new example shape"); return error_value; }
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], "reshape");
    if (x < 0) return error_value;
    IrNode *n = &c->g->nodes[x];
    int64_t dims[IR_MAXDIM];
    int nd = dims_of(a, 1, dims + 1, "reshape");
    if (nd < 0) return error_value;
    if (n->ndim < 1) { diag_error(a->loc, "reshape(): cannot reshape a scalar"); return error_value; }
    /* the batch axis is kept: reshape(x, 28, 28) shapes each example */
    dims[0] = n->shape[0];
    int64_t total = ir_numel(n) / (n->shape[0] ? n->shape[0] : 1), known = 1;
    int infer = -1;
    for (int i = 1; i <= nd; i++) {
        if (dims[i] == -1 && infer < 0) infer = i;
        else if (dims[i] <= 0) { diag_error(a->loc, "reshape(): dimension %lld is not positive", (long long)dims[i]); return error_value; }
        else known *= dims[i];
    }
    if (infer >= 0) {
        if (known == 0 || total % known) goto mismatch;
        dims[infer] = total / known;
    } else if (known != total) goto mismatch;
    return located(c, ir_reshape(c->g, x, nd + 1, dims), a->loc);
mismatch:
    diag_error(a->loc, "reshape(): cannot reshape examples of shape %s (%lld elements) into %s",
               shape_str(n->ndim - 1, n->shape + 1), (long long)total, shape_str(nd, dims + 1));
    return error_value;
}

/* The arguments every reduction takes: x, `axis:` (a number or a tuple; every axis if
 * absent; also the second positional argument) and `keepdims:` (reduced axes stay as size 1). */
typedef struct Reduction { int x; unsigned mask; int keep; int64_t count; } Reduction;

static int reduction_args(Ctx *c, Args *a, const char *fn, Reduction *r) {
    if (need_graph(c, a->loc, fmt("%s()", fn)) < 0) return -1;
    if (a->npos < 1 || a->npos > 2) { diag_error(a->loc, "%s(x, axis:, keepdims:) takes one tensor", fn); return -1; }
    r->x = as_tensor(c, a->pos[0], a->pos_loc[0], fn);
    if (r->x < 0) return -1;
    Loc l = a->loc, kl = a->loc;
    Value *axis = named(a, "axis", &l), *keep = named(a, "keepdims", &kl);
    if (!axis && a->npos > 1) { axis = &a->pos[1]; l = a->pos_loc[1]; }
    if (no_other_named(a, fn) < 0) return -1;
    int err = 0;
    IrNode *n = &c->g->nodes[r->x];
    r->mask = axes_mask_of(axis, l, n->ndim, &err);
    if (err) return -1;
    int64_t k = 0;
    if (keep && want_int(*keep, kl, fmt("%s() keepdims", fn), &k) < 0) return -1;
    r->keep = k != 0;
    r->count = 1;
    for (int i = 0; i < n->ndim; i++) if (r->mask >> i & 1) r->count *= n->shape[i];
    return 0;
}

/* y, a reduction of x over mask, reshaped to x's rank with the reduced axes of size 1 */
static int keep_axes(IrGraph *g, int y, int x, unsigned mask) {
    IrNode in = g->nodes[x];
    int64_t shape[IR_MAXDIM];
    for (int k = 0; k < in.ndim; k++) shape[k] = (mask >> k & 1) ? 1 : in.shape[k];
    return ir_reshape(g, y, in.ndim, shape);
}

static int scaled(IrGraph *g, int x, double k) {
    return ir_binary(g, IR_MUL, x, ir_const(g, (float)k, 0, NULL));
}

static Value reduction_result(Ctx *c, const Reduction *r, int y, Loc loc) {
    return located(c, r->keep ? keep_axes(c->g, y, r->x, r->mask) : y, loc);
}

/* sum, mean, amax, amin */
static Value reduce_call(Ctx *c, Args *a, const BuiltinDef *def) {
    Reduction r;
    if (reduction_args(c, a, def->name, &r) < 0) return error_value;
    int y = ir_reduce(c->g, (IrOp)def->op, r.x, r.mask);
    if (!strcmp(def->name, "mean")) y = scaled(c->g, y, 1.0 / (double)r.count);
    return reduction_result(c, &r, y, a->loc);
}

/* logsumexp: max + log(sum(exp(x - max))), finite wherever the largest term is */
static Value logsumexp_call(Ctx *c, Args *a, const BuiltinDef *def) {
    Reduction r;
    if (reduction_args(c, a, def->name, &r) < 0) return error_value;
    IrGraph *g = c->g;
    int m = ir_reduce(g, IR_MAXR, r.x, r.mask);
    int e = ir_unary(g, IR_EXP, ir_binary(g, IR_SUB, r.x, keep_axes(g, m, r.x, r.mask)));
    int y = ir_binary(g, IR_ADD, ir_unary(g, IR_LOG, ir_reduce(g, IR_SUM, e, r.mask)), m);
    return reduction_result(c, &r, y, a->loc);
}

/* variance: the biased one, mean((x - mean(x))^2), as numpy and Keras's normalisations */
static Value variance_call(Ctx *c, Args *a, const BuiltinDef *def) {
    Reduction r;
    if (reduction_args(c, a, def->name, &r) < 0) return error_value;
    IrGraph *g = c->g;
    int mu = scaled(g, ir_reduce(g, IR_SUM, r.x, r.mask), 1.0 / (double)r.count);
    int d = ir_binary(g, IR_SUB, r.x, keep_axes(g, mu, r.x, r.mask));
    int y = scaled(g, ir_reduce(g, IR_SUM, ir_binary(g, IR_MUL, d, d), r.mask), 1.0 / (double)r.count);
    return reduction_result(c, &r, y, a->loc);
}

/* arange(lo, hi, step = 1) = [lo, lo + step, ...) below hi: a constant tensor without a
 * batch axis (range(...) is a compile-time array, arrays.c, which becomes one where needed) */
static Value range_call(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (need_graph(c, a->loc, fmt("%s()", fn)) < 0) return error_value;
    double lo = 0, hi = 0, step = 1;
    if (a->nnamed || a->npos < 2 || a->npos > 3) {
        diag_error(a->loc, "arange(lo, hi, step) takes 2 or 3 numbers");
        return error_value;
    }
    for (int i = 0; i < a->npos; i++) {
        double *dst = i == 0 ? &lo : i == 1 ? &hi : &step;
        if (want_num(a->pos[i], a->pos_loc[i], fmt("%s() bound", fn), dst) < 0) return error_value;
    }
    double count = step != 0 ? ceil((hi - lo) / step) : -1;
    if (!(count >= 1 && count <= (1 << 26))) {
        diag_error(a->loc, "%s(): no elements from %g to %g in steps of %g (or more than 2^26)", fn, lo, hi, step);
        return error_value;
    }
    int64_t n = (int64_t)count;
    float *v = xmalloc(n * sizeof *v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(lo + step * (double)i);
    return located(c, ir_data(c->g, v, 1, &n), a->loc);
}

/* one_hot(ids, n): ids of any shape holding whole numbers -> a new last axis of n with a 1
 * where the axis index equals the id (ids outside 0..n-1 give a row of zeros); a constant to
 * the gradient */
static Value one_hot_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "one_hot()") < 0) return error_value;
    int64_t n;
    if (a->npos != 2 || a->nnamed) { diag_error(a->loc, "one_hot(ids, n) takes a tensor of ids and a number of classes"); return error_value; }
    int ids = as_tensor(c, a->pos[0], a->pos_loc[0], "one_hot");
    if (ids < 0 || want_int(a->pos[1], a->pos_loc[1], "one_hot() classes", &n) < 0) return error_value;
    if (n < 1 || n > (1 << 24)) { diag_error(a->pos_loc[1], "one_hot(): the number of classes must be in 1..2^24, got %lld", (long long)n); return error_value; }
    IrNode in = c->g->nodes[ids];
    if (in.ndim >= IR_MAXDIM) { diag_error(a->pos_loc[0], "one_hot(): ids of rank %d leave no room for a new axis", in.ndim); return error_value; }
    float *iota = xmalloc(n * sizeof *iota);
    for (int64_t i = 0; i < n; i++) iota[i] = (float)i;
    in.shape[in.ndim] = 1;
    int col = ir_reshape(c->g, ids, in.ndim + 1, in.shape);
    return located(c, ir_binary(c->g, IR_EQ, col, ir_data(c->g, iota, 1, &n)), a->loc);
}

/* gather(table, ids, axis: 0): numpy's take: the slices of table along `axis` at ids (whole
 * numbers of any shape, stored as floats), so table [V, D] and ids [B, T] give [B, T, D] and
 * a 1-D schedule abar [T] at timesteps t [B] gives [B]. Out-of-range ids give NaNs. The table
 * gets the gradient (rows added back at their ids); ids get none. */
static Value gather_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "gather()") < 0) return error_value;
    if (a->npos != 2) { diag_error(a->loc, "gather(table, ids, axis: 0) takes a table and ids"); return error_value; }
    int table = as_tensor(c, a->pos[0], a->pos_loc[0], "gather"), ids = as_tensor(c, a->pos[1], a->pos_loc[1], "gather");
    if (table < 0 || ids < 0) return error_value;
    Loc al = a->loc;
    Value *av = named(a, "axis", &al);
    if (no_other_named(a, "gather") < 0) return error_value;
    IrNode t = c->g->nodes[table], d = c->g->nodes[ids];
    if (t.ndim < 1) { diag_error(a->pos_loc[0], "gather(): the table must have at least one axis, got a scalar"); return error_value; }
    int axis = 0;
    if (av && axis_of(*av, al, t.ndim, &axis) < 0) return error_value;
    if (t.ndim - 1 + d.ndim > IR_MAXDIM) {
        diag_error(a->loc, "gather(): table %s at ids %s would have more than %d axes", node_shape(c, table), node_shape(c, ids), IR_MAXDIM);
        return error_value;
    }
    IrGraph *g = c->g;
    int perm[IR_MAXDIM];
    if (axis) {              /* the gathered axis first ... */
        perm[0] = axis;
        for (int i = 0, k = 1; i < t.ndim; i++) if (i != axis) perm[k++] = i;
        table = ir_transpose(g, table, perm);
    }
    int r = ir_gather(g, table, ids);
    if (axis) {              /* ... and the ids' axes back where it was */
        int nd = g->nodes[r].ndim, k = 0;
        for (int i = 0; i < axis; i++) perm[k++] = d.ndim + i;
        for (int i = 0; i < d.ndim; i++) perm[k++] = i;
        for (int i = d.ndim + axis; i < nd; i++) perm[k++] = i;
        r = ir_transpose(g, r, perm);
    }
    return located(c, r, a->loc);
}

/* grad(y, x): the gradient of scalar y with respect to x, a tensor already computed (an
 * input, or a tensor derived from inputs and parameters), as ordinary graph nodes, so it can
 * be used in a loss and differentiated again (WGAN-GP's gradient penalty) */
static Value grad_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "grad()") < 0) return error_value;
    if (a->npos != 2 || a->nnamed) { diag_error(a->loc, "grad(y, x) takes a scalar and the tensor to differentiate by"); return error_value; }
    if (a->pos[1].kind != V_TENSOR) {
        if (a->pos[1].kind != V_ERROR)
            diag_error(a->pos_loc[1], "grad(): x must be a tensor the program computed, got a %s", kind_name(a->pos[1].kind));
        return error_value;
    }
    int y = as_tensor(c, a->pos[0], a->pos_loc[0], "grad"), x = a->pos[1].node;
    if (y < 0) return error_value;
    if (c->g->nodes[y].ndim) {
        diag_error(a->pos_loc[0], "grad(): y must be a scalar, got %s (sum it first)", node_shape(c, y));
        return error_value;
    }
    int gx;
    ir_grad(c->g, y, &x, 1, &gx);
    return located(c, gx, a->loc);
}

/* matmul(a, b, trans_a: false, trans_b: false): `a @ b` with the last two axes of either
 * operand transposed (attention's Q @ K^T without a copy of K) */
static Value matmul_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "matmul()") < 0) return error_value;
    if (a->npos != 2) { diag_error(a->loc, "matmul(a, b, trans_a:, trans_b:) takes two tensors"); return error_value; }
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], "matmul"), y = as_tensor(c, a->pos[1], a->pos_loc[1], "matmul");
    if (x < 0 || y < 0) return error_value;
    int64_t t[2] = { 0, 0 };
    const char *flag[2] = { "trans_a", "trans_b" };
    for (int i = 0; i < 2; i++) {
        Loc l = a->loc;
        Value *v = named(a, flag[i], &l);
        if (v && want_int(*v, l, fmt("matmul() %s", flag[i]), &t[i]) < 0) return error_value;
    }
    if (no_other_named(a, "matmul") < 0) return error_value;
    int r = ir_matmul(c->g, x, y, t[0] != 0, t[1] != 0);
    if (r < 0) {
        diag_error(a->loc, "matmul(): %s%s @ %s%s: the inner dimensions differ, or the batch axes%s",
                   node_shape(c, x), t[0] ? "^T" : "", node_shape(c, y), t[1] ? "^T" : "",
                   t[0] ? " (trans_a needs a matrix or a batched b)" : "");
        return error_value;
    }
    return located(c, r, a->loc);
}

/* cumsum(x, axis: -1, reverse: false), cumprod(...): running sums and products along an axis
 * (from its end with reverse: true); cumprod's gradient divides by x, so x must have no zeros
 * where a gradient is taken */
static Value scan_call(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (need_graph(c, a->loc, fmt("%s()", fn)) < 0) return error_value;
    if (a->npos < 1 || a->npos > 2) { diag_error(a->loc, "%s(x, axis: -1, reverse: false) takes one tensor", fn); return error_value; }
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], fn);
    if (x < 0) return error_value;
    Loc al = a->loc, rl = a->loc;
    Value *av = named(a, "axis", &al), *rv = named(a, "reverse", &rl);
    if (!av && a->npos > 1) { av = &a->pos[1]; al = a->pos_loc[1]; }
    if (no_other_named(a, fn) < 0) return error_value;
    int ndim = c->g->nodes[x].ndim, axis = ndim - 1;
    int64_t rev = 0;
    if (ndim < 1) { diag_error(a->pos_loc[0], "%s(): needs a tensor with at least one axis, got a scalar", fn); return error_value; }
    if ((av && axis_of(*av, al, ndim, &axis) < 0) || (rv && want_int(*rv, rl, fmt("%s() reverse", fn), &rev) < 0))
        return error_value;
    return located(c, ir_scan(c->g, (IrOp)def->op, x, axis, rev != 0), a->loc);
}

/* the index of the largest element along `axis` (the first one on ties), as a float: the
 * maximum, compared, then the smallest index where it was found; no gradient */
static int argmax_node(IrGraph *g, int x, int axis) {
    IrNode n = g->nodes[x];
    int64_t len = n.shape[axis], shape[IR_MAXDIM];
    float *iota = xmalloc(len * sizeof *iota);
    for (int64_t i = 0; i < len; i++) iota[i] = (float)i;
    int idx = ir_data(g, iota, 1, &len);
    for (int d = axis; d < n.ndim; d++) shape[d - axis] = d == axis ? len : 1;
    idx = ir_reshape(g, idx, n.ndim - axis, shape);          /* along axis, broadcasting after */
    int m = keep_axes(g, ir_reduce(g, IR_MAXR, x, 1u << axis), x, 1u << axis);
    int hit = ir_where(g, ir_binary(g, IR_EQ, x, m), idx, ir_const(g, (float)len, 0, NULL));
    return ir_reduce(g, IR_MINR, hit, 1u << axis);
}

static Value argmax_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "argmax()") < 0) return error_value;
    if (a->npos < 1 || a->npos > 2) { diag_error(a->loc, "argmax(x, axis: -1) takes one tensor"); return error_value; }
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], "argmax");
    if (x < 0) return error_value;
    Loc al = a->loc;
    Value *av = named(a, "axis", &al);
    if (!av && a->npos > 1) { av = &a->pos[1]; al = a->pos_loc[1]; }
    if (no_other_named(a, "argmax") < 0) return error_value;
    int ndim = c->g->nodes[x].ndim, axis = ndim - 1;
    if (ndim < 1) { diag_error(a->pos_loc[0], "argmax(): needs a tensor with at least one axis, got a scalar"); return error_value; }
    if (av && axis_of(*av, al, ndim, &axis) < 0) return error_value;
    return located(c, argmax_node(c->g, x, axis), a->loc);
}

/* whole numbers drawn uniformly from lo..hi-1: floor(lo + (hi - lo) u), u ~ U[0, 1) (kept
 * below hi where float rounding would reach it) */
static int randint_node(IrGraph *g, double lo, double hi, int ndim, const int64_t *shape) {
    int u = ir_leaf(g, IR_UNIFORM, ndim, shape, 0);
    int v = ir_unary(g, IR_FLOOR, ir_binary(g, IR_ADD, scaled(g, u, hi - lo), ir_const(g, (float)lo, 0, NULL)));
    return ir_binary(g, IR_MIN, v, ir_const(g, (float)(hi - 1), 0, NULL));
}

static int randint_bounds(Args *a, int from, const char *fn, double *lo, double *hi) {
    int64_t l, h;
    if (want_int(a->pos[from], a->pos_loc[from], fmt("%s() bound", fn), &l) < 0 ||
        want_int(a->pos[from + 1], a->pos_loc[from + 1], fmt("%s() bound", fn), &h) < 0) return -1;
    if (h <= l || h - l > (1 << 24) || l < -(1 << 24) || h > (1 << 24)) {
        diag_error(a->loc, "%s(): no whole numbers in %lld..%lld (lo must be below hi, both within 2^24)", fn, (long long)l, (long long)h - 1);
        return -1;
    }
    *lo = (double)l;
    *hi = (double)h;
    return 0;
}

/* randint(lo, hi, dims...), randint_like(x, lo, hi): fresh whole numbers in lo..hi-1 */
static Value randint_call(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    int like = !strcmp(fn, "randint_like");
    if (need_graph(c, a->loc, fmt("%s()", fn)) < 0) return error_value;
    if (a->nnamed || (like ? a->npos != 3 : a->npos < 2)) {
        diag_error(a->loc, like ? "randint_like(x, lo, hi) takes a tensor and two bounds" : "randint(lo, hi, dims...) takes two bounds and a shape");
        return error_value;
    }
    double lo, hi;
    if (randint_bounds(a, like, fn, &lo, &hi) < 0) return error_value;
    int64_t dims[IR_MAXDIM];
    int nd;
    if (like) {
        int x = as_tensor(c, a->pos[0], a->pos_loc[0], fn);
        if (x < 0) return error_value;
        nd = c->g->nodes[x].ndim;
        memcpy(dims, c->g->nodes[x].shape, nd * sizeof *dims);
    } else if ((nd = dims_of(a, 2, dims, fn)) < 0) return error_value;
    return located(c, randint_node(c->g, lo, hi, nd, dims), a->loc);
}

/* bernoulli(p): 1 with probability p (a tensor), else 0; bernoulli(p, dims...) for a number p */
static Value bernoulli_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "bernoulli()") < 0) return error_value;
    if (a->npos < 1 || a->nnamed || (a->pos[0].kind == V_TENSOR && a->npos > 1)) {
        diag_error(a->loc, "bernoulli(p) takes a tensor of probabilities, or bernoulli(p, dims...) a number");
        return error_value;
    }
    int p = as_tensor(c, a->pos[0], a->pos_loc[0], "bernoulli");
    if (p < 0) return error_value;
    int64_t dims[IR_MAXDIM];
    int nd = c->g->nodes[p].ndim;
    memcpy(dims, c->g->nodes[p].shape, nd * sizeof *dims);
    if (a->pos[0].kind != V_TENSOR && (nd = dims_of(a, 1, dims, "bernoulli")) < 0) return error_value;
    int u = ir_leaf(c->g, IR_UNIFORM, nd, dims, 0);
    return located(c, ir_binary(c->g, IR_LT, u, p), a->loc);
}

/* categorical(logits): one draw per row of the last axis, P(i) = softmax(logits)_i, as ids
 * (the Gumbel-max trick: argmax(logits + g), g = -log(-log(u)), u ~ U[0, 1)) */
static Value categorical_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "categorical()") < 0) return error_value;
    if (a->npos != 1 || a->nnamed) { diag_error(a->loc, "categorical(logits) takes one tensor of logits"); return error_value; }
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], "categorical");
    if (x < 0) return error_value;
    IrGraph *g = c->g;
    IrNode n = g->nodes[x];
    if (n.ndim < 1) { diag_error(a->pos_loc[0], "categorical(): the logits need a last axis of classes, got a scalar"); return error_value; }
    int u = ir_leaf(g, IR_UNIFORM, n.ndim, n.shape, 0);
    int gumbel = ir_unary(g, IR_NEG, ir_unary(g, IR_LOG, ir_unary(g, IR_NEG, ir_unary(g, IR_LOG, u))));
    return located(c, argmax_node(g, ir_binary(g, IR_ADD, x, gumbel), n.ndim - 1), a->loc);
}

/* z points of an n x n grid over [lo, hi]^2, row-major with y decreasing downwards so the
 * decoded grid reads like a plot */
static Value latent_grid(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "latent_grid()") < 0) return error_value;
    int64_t n;
    double lo, hi;
    if (a->npos != 3) { diag_error(a->loc, "latent_grid(n, lo, hi) takes 3 arguments, got %d", a->npos); return error_value; }
    if (want_int(a->pos[0], a->pos_loc[0], "latent_grid size", &n) < 0 ||
        want_num(a->pos[1], a->pos_loc[1], "latent_grid bound", &lo) < 0 ||
        want_num(a->pos[2], a->pos_loc[2], "latent_grid bound", &hi) < 0) return error_value;
    if (n < 1 || n > 1000) { diag_error(a->pos_loc[0], "latent_grid size must be in 1..1000"); return error_value; }
    float *z = xmalloc(n * n * 2 * sizeof *z);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double t = n > 1 ? 1.0 / (n - 1) : 0;
            z[(i * n + j) * 2] = (float)(lo + (hi - lo) * j * t);
            z[(i * n + j) * 2 + 1] = (float)(hi - (hi - lo) * i * t);
        }
    int64_t shape[2] = { n * n, 2 };
    return located(c, ir_data(c->g, z, 2, shape), a->loc);
}


/* math on plain numbers folds at compile time */
static double fold_unary(IrOp op, double x) {
    switch (op) {
    case IR_EXP: return exp(x);
    case IR_LOG: return log(x);
    case IR_LOG1P: return log1p(x);
    case IR_SQRT: return sqrt(x);
    case IR_RSQRT: return 1 / sqrt(x);
    case IR_ABS: return fabs(x);
    case IR_SIGN: return (x > 0) - (x < 0);
    case IR_TANH: return tanh(x);
    case IR_SIGMOID: return 1 / (1 + exp(-x));
    case IR_SOFTPLUS: return log1p(exp(-fabs(x))) + fmax(x, 0);
    case IR_ERF: return erf(x);
    case IR_SIN: return sin(x);
    case IR_COS: return cos(x);
    case IR_FLOOR: return floor(x);
    default: return NAN;
    }
}

static Value unary_call(Ctx *c, Args *a, const BuiltinDef *def) {
    if (a->npos != 1 || a->nnamed) {
        diag_error(a->loc, "%s() takes 1 argument, got %d", def->name, a->npos + a->nnamed);
        return error_value;
    }
    if (a->pos[0].kind == V_NUM) return num_value(fold_unary((IrOp)def->op, a->pos[0].num), 0);
    if (need_graph(c, a->loc, fmt("%s()", def->name)) < 0) return error_value;
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], def->name);
    return x < 0 ? error_value : located(c, ir_unary(c->g, (IrOp)def->op, x), a->loc);
}

/* max, min, pow of two values (elementwise; reductions are amax / amin) */
static Value binary_call(Ctx *c, Args *a, const BuiltinDef *def) {
    IrOp op = (IrOp)def->op;
    if (a->npos != 2 || a->nnamed) {
        diag_error(a->loc, "%s() takes 2 arguments, got %d%s", def->name, a->npos + a->nnamed,
                   op != IR_POW ? fmt(" (for a reduction use a%s(x, axis: ...))", def->name) : "");
        return error_value;
    }
    Value x = a->pos[0], y = a->pos[1];
    if (x.kind == V_NUM && y.kind == V_NUM)
        return num_value(op == IR_MAX ? fmax(x.num, y.num) : op == IR_MIN ? fmin(x.num, y.num) : pow(x.num, y.num),
                         x.is_int && y.is_int && op != IR_POW);
    if (need_graph(c, a->loc, fmt("%s()", def->name)) < 0) return error_value;
    return tensor_binary(c, op, x, y, a->loc, fmt("%s()", def->name));
}

/* clip(x, lo, hi) = min(max(x, lo), hi) (the gradient passes where lo < x < hi) */
static Value clip_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (a->npos != 3 || a->nnamed) { diag_error(a->loc, "clip(x, lo, hi) takes 3 arguments, got %d", a->npos + a->nnamed); return error_value; }
    Value x = a->pos[0], lo = a->pos[1], hi = a->pos[2];
    if (x.kind == V_NUM && lo.kind == V_NUM && hi.kind == V_NUM)
        return num_value(fmin(fmax(x.num, lo.num), hi.num), x.is_int && lo.is_int && hi.is_int);
    if (need_graph(c, a->loc, "clip()") < 0) return error_value;
    Value m = tensor_binary(c, IR_MAX, x, lo, a->loc, "clip()");
    return m.kind == V_ERROR ? m : tensor_binary(c, IR_MIN, m, hi, a->loc, "clip()");
}

/* stop_gradient(x): x's value, through which no gradient flows (straight-through estimators:
 * x + stop_gradient(q - x)) */
static Value stop_gradient_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (a->npos != 1 || a->nnamed) { diag_error(a->loc, "stop_gradient(x) takes one tensor"); return error_value; }
    if (a->pos[0].kind == V_NUM) return a->pos[0];
    if (need_graph(c, a->loc, "stop_gradient()") < 0) return error_value;
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], "stop_gradient");
    return x < 0 ? error_value : located(c, ir_unary(c->g, IR_STOPGRAD, x), a->loc);
}

static Value where_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "where()") < 0) return error_value;
    if (a->npos != 3) { diag_error(a->loc, "where(cond, a, b) takes 3 arguments, got %d", a->npos); return error_value; }
    int t[3];
    for (int i = 0; i < 3; i++)
        if ((t[i] = as_tensor(c, a->pos[i], a->pos_loc[i], "where")) < 0) return error_value;
    int r = ir_where(c->g, t[0], t[1], t[2]);
    if (r < 0) {
        diag_error(a->loc, "where(): shapes %s, %s and %s do not broadcast", node_shape(c, t[0]),
                   node_shape(c, t[1]), node_shape(c, t[2]));
        return error_value;
    }
    return located(c, r, a->loc);
}

static Value transpose_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "transpose()") < 0) return error_value;
    if (a->npos != 1) { diag_error(a->loc, "transpose(x) takes one tensor"); return error_value; }
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], "transpose");
    if (x < 0) return error_value;
    IrNode *n = &c->g->nodes[x];
    if (n->ndim < 2) { diag_error(a->loc, "transpose(): needs a tensor of rank 2 or more, got %s", node_shape(c, x)); return error_value; }
    int perm[IR_MAXDIM];
    for (int i = 0; i < n->ndim; i++) perm[i] = i;
    perm[n->ndim - 1] = n->ndim - 2;
    perm[n->ndim - 2] = n->ndim - 1;
    return located(c, ir_transpose(c->g, x, perm), a->loc);
}

static Value last_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (a->npos != 1 || a->pos[0].kind != V_TENSOR) { diag_error(a->loc, "last(x) takes one tensor"); return error_value; }
    IrNode *n = &c->g->nodes[a->pos[0].node];
    return num_value(n->ndim ? (double)n->shape[n->ndim - 1] : 1, 1);
}

/* ndim(x): the number of axes (the batch axis included); size(x, axis): one axis's length
 * (axis 0 is the batch, negative counts from the end); shape(x): the sizes after the first
 * axis, as a tuple: an example's shape, what reshape() takes. Layers use them to work on
 * inputs of any rank (std.nn's groupnorm). */
static Value shape_query(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    int want = def->op == 1 ? 2 : 1;
    if (a->npos != want || a->nnamed || a->pos[0].kind != V_TENSOR) {
        diag_error(a->loc, def->op == 1 ? "size(x, axis) takes a tensor and an axis" : "%s(x) takes one tensor", fn);
        return error_value;
    }
    IrNode *n = &c->g->nodes[a->pos[0].node];
    if (def->op == 0) return num_value(n->ndim, 1);
    if (def->op == 1) {
        int ax;
        if (axis_of(a->pos[1], a->pos_loc[1], n->ndim, &ax) < 0) return error_value;
        return num_value((double)n->shape[ax], 1);
    }
    if (n->ndim < 1) { diag_error(a->loc, "shape(): a scalar has no example shape"); return error_value; }
    Value t = { .kind = V_TUPLE, .n = n->ndim - 1, .items = xmalloc((n->ndim ? n->ndim : 1) * sizeof(Value)) };
    for (int i = 1; i < n->ndim; i++) t.items[i - 1] = num_value((double)n->shape[i], 1);
    return t;
}

/* check(cond, "message"): an error with that message where cond (known at compile time) is
 * false; layers use it to check their arguments. */
static Value check_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)c; (void)def;
    if (a->npos != 2 || a->nnamed || a->pos[1].kind != V_STR) {
        diag_error(a->loc, "check(condition, \"message\") takes a condition and a string");
        return error_value;
    }
    if (a->pos[0].kind != V_NUM) { diag_error(a->pos_loc[0], "check(): the condition must be known at compile time"); return error_value; }
    if (a->pos[0].num == 0) { diag_error(a->loc, "%s", a->pos[1].str); return error_value; }
    return num_value(1, 1);
}

/* normal_like(x), uniform_like(x): fresh draws of x's shape */
static Value random_like(Ctx *c, Args *a, const BuiltinDef *def) {
    if (need_graph(c, a->loc, fmt("%s()", def->name)) < 0) return error_value;
    if (a->npos != 1) { diag_error(a->loc, "%s(x) takes one tensor", def->name); return error_value; }
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], def->name);
    if (x < 0) return error_value;
    IrNode n = c->g->nodes[x];
    return located(c, ir_leaf(c->g, (IrOp)def->op, n.ndim, n.shape, 0), a->loc);
}

/* normal(d...), uniform(d...): fresh draws; zeros(d...), ones(d...): constants */
static Value shaped_call(Ctx *c, Args *a, const BuiltinDef *def) {
    if (need_graph(c, a->loc, fmt("%s()", def->name)) < 0) return error_value;
    int64_t dims[IR_MAXDIM];
    int nd = dims_of(a, 0, dims, def->name);
    if (nd < 0) return error_value;
    IrOp op = (IrOp)def->op;
    if (op == IR_CONST) return located(c, ir_const(c->g, def->init == INIT_ONES, nd, dims), a->loc);
    return located(c, ir_leaf(c->g, op, nd, dims, 0), a->loc);
}

/* history(x, 50): a pool of past values of x (CycleGAN's generated-image pool), one pool
 * per call site, so rebuilding the block for another batch size keeps the same pool */
static Value history_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    int64_t cap;
    if (need_graph(c, a->loc, "history()") < 0) return error_value;
    if (a->npos != 2 || want_int(a->pos[1], a->pos_loc[1], "a history capacity", &cap) < 0) {
        if (a->npos != 2) diag_error(a->loc, "history(x, capacity) takes a tensor and a number");
        return error_value;
    }
    if (cap < 1 || cap > 100000) { diag_error(a->pos_loc[1], "a history capacity must be in 1..100000"); return error_value; }
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], "history");
    if (x < 0) return error_value;
    if (c->g->nodes[x].ndim < 1) { diag_error(a->pos_loc[0], "history() keeps examples: it needs a batch axis"); return error_value; }
    Program *p = c->prog;
    int id = 0;
    while (id < p->nhistory && memcmp(&p->history_site[id], &a->loc, sizeof a->loc)) id++;
    if (id == p->nhistory) {
        if (id == 16) { diag_error(a->loc, "too many history() pools"); return error_value; }
        p->history_site[p->nhistory++] = a->loc;
    }
    return located(c, ir_history(c->g, x, id, (int)cap), a->loc);
}

static Value grid_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)c; (void)def;
    diag_error(a->loc, "grid() formats images for `save ... to \"file.png\"` and is only valid there");
    return error_value;
}

static Value initializer_only(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)c;
    diag_error(a->loc, "%s is an initializer; use it as `param W[...] = %s`", def->name, def->name);
    return error_value;
}

/* ---- convolutions, pooling, upsampling: channels-last images [batch, H, W, C]. Geometry in
 * runtime/conv.h, the graphs in ir_conv.c; here the arguments and the shape errors. ---- */

static int image_arg(Ctx *c, Args *a, int i, const char *fn) {
    int x = as_tensor(c, a->pos[i], a->pos_loc[i], fn);
    if (x < 0) return -1;
    if (c->g->nodes[x].ndim != 4) {
        diag_error(a->pos_loc[i], "%s() needs images of shape [batch, height, width, channels], got %s",
                   fn, node_shape(c, x));
        return -1;
    }
    return x;
}

/* n or (ny, nx), each in [min, 2^20] */
static int pair_value(const Value *v, Loc l, const char *what, int min, int *y, int *x) {
    const Value *items = v;
    int n = 1;
    if (v->kind == V_TUPLE) { items = v->items; n = v->n; }
    if (n != 1 && n != 2) { diag_error(l, "%s must be a number or a pair (y, x)", what); return -1; }
    int64_t k[2];
    for (int i = 0; i < n; i++) {
        if (want_int(items[i], l, what, &k[i]) < 0) return -1;
        if (k[i] < min || k[i] > (1 << 20)) {
            diag_error(l, "%s must be between %d and %d, got %lld", what, min, 1 << 20, (long long)k[i]);
            return -1;
        }
    }
    *y = (int)k[0];
    *x = (int)k[n - 1];
    return 0;
}

/* the named pair argument `name` (or positional argument pos, if given) */
static int pair_arg(Args *a, const char *name, int pos, const char *fn, int min, int *y, int *x) {
    Loc l = a->loc;
    const Value *v = named(a, name, &l);
    if (!v && pos > 0 && a->npos > pos) { v = &a->pos[pos]; l = a->pos_loc[pos]; }
    return v ? pair_value(v, l, fmt("%s() %s", fn, name), min, y, x) : 0;
}

enum { PAD_VALID, PAD_SAME, PAD_EXPLICIT };

/* padding: "same", "valid", n, (py, px) or (top, bottom, left, right) */
typedef struct Padding { int kind; int t, b, l, r; } Padding;

static int padding_value(const Value *v, Loc l, const char *fn, int allow_explicit, Padding *p) {
    if (v->kind == V_STR) {
        if (!strcmp(v->str, "same")) { p->kind = PAD_SAME; return 0; }
        if (!strcmp(v->str, "valid")) { p->kind = PAD_VALID; return 0; }
    } else if (allow_explicit && (v->kind == V_NUM || v->kind == V_TUPLE)) {
        const Value *items = v->kind == V_TUPLE ? v->items : v;
        int n = v->kind == V_TUPLE ? v->n : 1;
        int64_t k[4];
        if (n == 1 || n == 2 || n == 4) {
            for (int i = 0; i < n; i++) {
                if (want_int(items[i], l, fmt("%s() padding", fn), &k[i]) < 0) return -1;
                if (k[i] < 0 || k[i] > (1 << 20)) { diag_error(l, "%s(): padding must not be negative", fn); return -1; }
            }
            p->kind = PAD_EXPLICIT;
            p->t = (int)k[0];
            p->b = (int)k[n == 4 ? 1 : 0];
            p->l = (int)k[n == 4 ? 2 : n - 1];
            p->r = (int)k[n == 4 ? 3 : n - 1];
            return 0;
        }
    }
    diag_error(l, allow_explicit ? "%s(): padding must be \"same\", \"valid\", a number, (y, x) or (top, bottom, left, right)"
                                 : "%s(): padding must be \"same\" or \"valid\"", fn);
    return -1;
}

static int padding_arg(Args *a, const char *fn, int dflt, int allow_explicit, Padding *p) {
    Loc l = a->loc;
    const Value *v = named(a, "padding", &l);
    memset(p, 0, sizeof *p);
    p->kind = dflt;
    return v ? padding_value(v, l, fn, allow_explicit, p) : 0;
}

/* the padding of win (taps, strides, dilations set) over an h x w image */
static void place_window(const Padding *p, int64_t h, int64_t w, ConvWindow *win) {
    win->pt = win->pb = win->pl = win->pr = 0;
    if (p->kind == PAD_SAME) {
        conv_same_padding(h, win->kh, win->sy, win->dy, &win->pt, &win->pb);
        conv_same_padding(w, win->kw, win->sx, win->dx, &win->pl, &win->pr);
    } else if (p->kind == PAD_EXPLICIT) {
        win->pt = p->t; win->pb = p->b; win->pl = p->l; win->pr = p->r;
    }
}

static const char *window_str(const ConvWindow *w) {
    return fmt("a %dx%d window (stride %d,%d, dilation %d,%d, padding %d,%d,%d,%d)", w->kh, w->kw,
               w->sy, w->sx, w->dy, w->dx, w->pt, w->pb, w->pl, w->pr);
}

/* the grid of windows over x, or -1 after an error if none fits */
static int window_fits(Ctx *c, int x, const ConvWindow *win, Loc loc, const char *fn) {
    IrNode *n = &c->g->nodes[x];
    ConvGeom geo = conv_geom(win, n->shape[0], n->shape[1], n->shape[2], n->shape[3]);
    if (geo.ho >= 1 && geo.wo >= 1) return 0;
    diag_error(loc, "%s(): %s does not fit in images of %lldx%lld (%s)", fn, window_str(win),
               (long long)n->shape[1], (long long)n->shape[2], node_shape(c, x));
    return -1;
}

/* conv2d(x, w, stride:, padding:, dilation:, groups:): w is [kh, kw, C / groups, filters] */
static Value conv2d_call(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (need_graph(c, a->loc, "conv2d()") < 0) return error_value;
    if (a->npos != 2) { diag_error(a->loc, "conv2d(x, w, stride:, padding:, dilation:, groups:) takes images and a kernel, got %d positional arguments", a->npos); return error_value; }
    int x = image_arg(c, a, 0, fn), w = as_tensor(c, a->pos[1], a->pos_loc[1], fn);
    if (x < 0 || w < 0) return error_value;
    ConvWindow win = { .sy = 1, .sx = 1, .dy = 1, .dx = 1 };
    Padding pad;
    int64_t groups = 1;
    Loc gl = a->loc;
    Value *gv = named(a, "groups", &gl);
    if (pair_arg(a, "stride", 0, fn, 1, &win.sy, &win.sx) < 0 ||
        pair_arg(a, "dilation", 0, fn, 1, &win.dy, &win.dx) < 0 ||
        padding_arg(a, fn, PAD_VALID, 1, &pad) < 0 ||
        (gv && want_int(*gv, gl, "conv2d() groups", &groups) < 0) || no_other_named(a, fn) < 0)
        return error_value;
    IrNode *xn = &c->g->nodes[x], *wn = &c->g->nodes[w];
    if (wn->ndim != 4) {
        diag_error(a->pos_loc[1], "conv2d(): the kernel must have shape [kh, kw, in_channels, filters], got %s", node_shape(c, w));
        return error_value;
    }
    if (groups < 1 || xn->shape[3] % groups || wn->shape[3] % groups) {
        diag_error(gl, "conv2d(): groups (%lld) must divide the %lld input channels and the %lld filters",
                   (long long)groups, (long long)xn->shape[3], (long long)wn->shape[3]);
        return error_value;
    }
    if (wn->shape[2] * groups != xn->shape[3]) {
        diag_error(a->loc, "conv2d(): the kernel %s takes %lld input channels%s, the images %s have %lld",
                   node_shape(c, w), (long long)wn->shape[2], groups > 1 ? fmt(" per group (%lld groups)", (long long)groups) : "",
                   node_shape(c, x), (long long)xn->shape[3]);
        return error_value;
    }
    win.kh = (int)wn->shape[0];
    win.kw = (int)wn->shape[1];
    place_window(&pad, xn->shape[1], xn->shape[2], &win);
    if (window_fits(c, x, &win, a->loc, fn) < 0) return error_value;
    return located(c, ir_conv2d(c->g, x, w, &win, (int)groups), a->loc);
}

/* conv2d_transpose(x, w, stride:, padding:, output_padding:, dilation:): w is
 * [kh, kw, filters, C] (Keras); the output size follows Keras, the padding TensorFlow */
static Value conv2d_transpose_call(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (need_graph(c, a->loc, "conv2d_transpose()") < 0) return error_value;
    if (a->npos != 2) { diag_error(a->loc, "conv2d_transpose(x, w, stride:, padding:, output_padding:, dilation:) takes images and a kernel, got %d positional arguments", a->npos); return error_value; }
    int x = image_arg(c, a, 0, fn), w = as_tensor(c, a->pos[1], a->pos_loc[1], fn);
    if (x < 0 || w < 0) return error_value;
    ConvWindow win = { .sy = 1, .sx = 1, .dy = 1, .dx = 1 };
    Padding pad;
    int opy = -1, opx = -1;
    Loc ol = a->loc;
    Value *ov = named(a, "output_padding", &ol);
    if (pair_arg(a, "stride", 0, fn, 1, &win.sy, &win.sx) < 0 ||
        pair_arg(a, "dilation", 0, fn, 1, &win.dy, &win.dx) < 0 ||
        padding_arg(a, fn, PAD_VALID, 1, &pad) < 0 ||
        (ov && pair_value(ov, ol, "conv2d_transpose() output_padding", -1, &opy, &opx) < 0) ||
        no_other_named(a, fn) < 0)
        return error_value;
    IrNode *xn = &c->g->nodes[x], *wn = &c->g->nodes[w];
    if (wn->ndim != 4) {
        diag_error(a->pos_loc[1], "conv2d_transpose(): the kernel must have shape [kh, kw, filters, in_channels], got %s", node_shape(c, w));
        return error_value;
    }
    if (wn->shape[3] != xn->shape[3]) {
        diag_error(a->loc, "conv2d_transpose(): the kernel %s takes %lld input channels (its last axis), the images %s have %lld",
                   node_shape(c, w), (long long)wn->shape[3], node_shape(c, x), (long long)xn->shape[3]);
        return error_value;
    }
    win.kh = (int)wn->shape[0];
    win.kw = (int)wn->shape[1];
    if ((opy >= 0 && opy >= win.sy) || (opx >= 0 && opx >= win.sx)) {
        diag_error(ol, "conv2d_transpose(): output_padding (%d, %d) must be smaller than the stride (%d, %d)",
                   opy, opx, win.sy, win.sx);
        return error_value;
    }
    int64_t h = xn->shape[1], wd = xn->shape[2], ho, wo;
    if (pad.kind == PAD_EXPLICIT) {
        ho = (h - 1) * win.sy + conv_span(win.kh, win.dy) - pad.t - pad.b + (opy > 0 ? opy : 0);
        wo = (wd - 1) * win.sx + conv_span(win.kw, win.dx) - pad.l - pad.r + (opx > 0 ? opx : 0);
    } else {
        ho = conv_transpose_out_size(h, win.kh, win.sy, win.dy, pad.kind == PAD_SAME, opy);
        wo = conv_transpose_out_size(wd, win.kw, win.sx, win.dx, pad.kind == PAD_SAME, opx);
    }
    if (ho >= 1 && wo >= 1) place_window(&pad, ho, wo, &win);
    /* the convolution this transposes must map the output back onto the input grid */
    if (ho < 1 || wo < 1 || conv_out_size(ho, win.kh, win.sy, win.dy, win.pt, win.pb) != h ||
        conv_out_size(wo, win.kw, win.sx, win.dx, win.pl, win.pr) != wd) {
        diag_error(a->loc, "conv2d_transpose(): no %lldx%lld output for images %s with %s",
                   (long long)ho, (long long)wo, node_shape(c, x), window_str(&win));
        return error_value;
    }
    return located(c, ir_conv2d_transpose(c->g, x, w, &win, ho, wo), a->loc);
}

/* maxpool2d / avgpool2d(x, pool, stride:, padding:): Keras's defaults (pool 2, stride = pool,
 * "valid", sizes rounded down) */
static Value pool_call(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (need_graph(c, a->loc, fmt("%s()", fn)) < 0) return error_value;
    if (a->npos < 1 || a->npos > 2) { diag_error(a->loc, "%s(x, pool, stride:, padding:) takes images and a pool size", fn); return error_value; }
    int x = image_arg(c, a, 0, fn);
    if (x < 0) return error_value;
    ConvWindow win = { .kh = 2, .kw = 2, .dy = 1, .dx = 1 };
    Padding pad;
    if (pair_arg(a, "pool", 1, fn, 1, &win.kh, &win.kw) < 0) return error_value;
    win.sy = win.kh;
    win.sx = win.kw;
    if (pair_arg(a, "stride", 0, fn, 1, &win.sy, &win.sx) < 0 ||
        padding_arg(a, fn, PAD_VALID, 0, &pad) < 0 || no_other_named(a, fn) < 0)
        return error_value;
    IrNode *xn = &c->g->nodes[x];
    place_window(&pad, xn->shape[1], xn->shape[2], &win);
    if (window_fits(c, x, &win, a->loc, fn) < 0) return error_value;
    return located(c, ir_pool2d(c->g, x, &win, def->op), a->loc);
}

/* upsample2d(x, size, mode: "nearest" | "bilinear") */
static Value upsample_call(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (need_graph(c, a->loc, "upsample2d()") < 0) return error_value;
    if (a->npos < 1 || a->npos > 2) { diag_error(a->loc, "upsample2d(x, size, mode:) takes images and a factor"); return error_value; }
    int x = image_arg(c, a, 0, fn);
    if (x < 0) return error_value;
    int fy = 2, fx = 2, bilinear = 0;
    if (pair_arg(a, "size", 1, fn, 1, &fy, &fx) < 0) return error_value;
    Loc ml = a->loc;
    Value *mode = named(a, "mode", &ml);
    if (mode) {
        if (mode->kind != V_STR || (strcmp(mode->str, "nearest") && strcmp(mode->str, "bilinear"))) {
            diag_error(ml, "upsample2d(): mode must be \"nearest\" or \"bilinear\"");
            return error_value;
        }
        bilinear = !strcmp(mode->str, "bilinear");
    }
    if (no_other_named(a, fn) < 0) return error_value;
    return located(c, ir_upsample2d(c->g, x, fy, fx, bilinear), a->loc);
}

/* pad2d(x, padding): zeros around each image: n, (y, x) or (top, bottom, left, right) */
static Value pad2d_call(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (need_graph(c, a->loc, "pad2d()") < 0) return error_value;
    if (a->npos != 2 || a->nnamed) { diag_error(a->loc, "pad2d(x, padding) takes images and a padding"); return error_value; }
    int x = image_arg(c, a, 0, fn);
    if (x < 0) return error_value;
    Padding p;
    if (a->pos[1].kind == V_STR) {
        diag_error(a->pos_loc[1], "pad2d(): padding must be a number, (y, x) or (top, bottom, left, right)");
        return error_value;
    }
    if (padding_value(&a->pos[1], a->pos_loc[1], fn, 1, &p) < 0) return error_value;
    int64_t before[4] = { 0, p.t, p.l, 0 }, after[4] = { 0, p.b, p.r, 0 };
    return located(c, ir_pad(c->g, x, before, after), a->loc);
}

/* concat(a, b, ..., axis: -1) */
static Value concat_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "concat()") < 0) return error_value;
    if (a->npos < 1) { diag_error(a->loc, "concat(a, b, ..., axis:) needs tensors"); return error_value; }
    Loc al = a->loc;
    Value *av = named(a, "axis", &al);
    if (no_other_named(a, "concat") < 0) return error_value;
    int t[16];
    for (int i = 0; i < a->npos; i++)
        if ((t[i] = as_tensor(c, a->pos[i], a->pos_loc[i], "concat")) < 0) return error_value;
    int ndim = c->g->nodes[t[0]].ndim, axis = ndim - 1;
    if (ndim < 1) { diag_error(a->pos_loc[0], "concat(): cannot join scalars"); return error_value; }
    if (av && axis_of(*av, al, ndim, &axis) < 0) return error_value;
    int r = t[0];
    for (int i = 1; i < a->npos; i++) {
        int next = ir_concat(c->g, r, t[i], axis);
        if (next < 0) {
            diag_error(a->pos_loc[i], "concat(): %s does not join %s along axis %d: the other axes must match",
                       node_shape(c, t[i]), node_shape(c, r), axis);
            return error_value;
        }
        r = next;
    }
    return located(c, r, a->loc);
}

/* slice(x, axis:, start:, size:): size defaults to the rest of the axis; a negative start
 * counts from the end */
static Value slice_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (need_graph(c, a->loc, "slice()") < 0) return error_value;
    if (a->npos != 1) { diag_error(a->loc, "slice(x, axis:, start:, size:) takes one tensor"); return error_value; }
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], "slice");
    if (x < 0) return error_value;
    IrNode *n = &c->g->nodes[x];
    if (n->ndim < 1) { diag_error(a->loc, "slice(): cannot slice a scalar"); return error_value; }
    Loc al = a->loc, sl = a->loc, zl = a->loc;
    Value *av = named(a, "axis", &al), *sv = named(a, "start", &sl), *zv = named(a, "size", &zl);
    int axis = n->ndim - 1;
    int64_t start, size;
    if (no_other_named(a, "slice") < 0 || (av && axis_of(*av, al, n->ndim, &axis) < 0)) return error_value;
    if (!sv) { diag_error(a->loc, "slice() needs start:"); return error_value; }
    if (want_int(*sv, sl, "slice() start", &start) < 0) return error_value;
    int64_t len = n->shape[axis];
    if (start < 0) start += len;
    size = len - start;
    if (zv && want_int(*zv, zl, "slice() size", &size) < 0) return error_value;
    if (start < 0 || start >= len || size < 1 || start + size > len) {
        diag_error(a->loc, "slice(): start %lld, size %lld is not inside axis %d of %s",
                   (long long)start, (long long)size, axis, node_shape(c, x));
        return error_value;
    }
    int64_t at[IR_MAXDIM] = { 0 }, shape[IR_MAXDIM];
    memcpy(shape, n->shape, n->ndim * sizeof *shape);
    at[axis] = start;
    shape[axis] = size;
    return located(c, ir_slice(c->g, x, at, shape), a->loc);
}

/* An initialiser, from `param W[..] = NAME` or `NAME(arg)`: normal(std), uniform(limit),
 * constant(value). */
Value init_value(const BuiltinDef *def, Args *a) {
    if (def->init == INIT_FILE) return file_init(a);
    Value v = { .kind = V_INIT, .init = (Init)def->init };
    double x = 0;
    if (v.init == INIT_NORMAL || v.init == INIT_UNIFORM || v.init == INIT_CONSTANT || v.init == INIT_ORTHOGONAL) {
        x = v.init == INIT_CONSTANT ? 0 : v.init == INIT_ORTHOGONAL ? 1 : 0.05;
        Loc l = a->loc;
        const char *key = v.init == INIT_NORMAL ? "std" : v.init == INIT_UNIFORM ? "limit" :
                          v.init == INIT_ORTHOGONAL ? "gain" : "value";
        Value *p = a->npos ? &a->pos[0] : named(a, key, &l);
        if (a->npos) l = a->pos_loc[0];
        if (p && want_num(*p, l, "initializer argument", &x) < 0) return error_value;
    }
    v.ia = (float)x;
    return v;
}

const BuiltinDef tensor_builtins[] = {
    { "exp", unary_call, IR_EXP, -1 },
    { "log", unary_call, IR_LOG, -1 },
    { "log1p", unary_call, IR_LOG1P, -1 },
    { "sqrt", unary_call, IR_SQRT, -1 },
    { "rsqrt", unary_call, IR_RSQRT, -1 },
    { "abs", unary_call, IR_ABS, -1 },
    { "sign", unary_call, IR_SIGN, -1 },
    { "tanh", unary_call, IR_TANH, -1 },
    { "sigmoid", unary_call, IR_SIGMOID, -1 },
    { "softplus", unary_call, IR_SOFTPLUS, -1 },
    { "erf", unary_call, IR_ERF, -1 },
    { "sin", unary_call, IR_SIN, -1 },
    { "cos", unary_call, IR_COS, -1 },
    { "floor", unary_call, IR_FLOOR, -1 },
    { "max", binary_call, IR_MAX, -1 },
    { "min", binary_call, IR_MIN, -1 },
    { "pow", binary_call, IR_POW, -1 },
    { "where", where_call, 0, -1 },
    { "clip", clip_call, 0, -1 },
    { "stop_gradient", stop_gradient_call, 0, -1 },
    { "reshape", reshape_batch, 0, -1 },
    { "transpose", transpose_call, 0, -1 },
    { "sum", reduce_call, IR_SUM, -1 },
    { "mean", reduce_call, IR_SUM, -1 },
    { "amax", reduce_call, IR_MAXR, -1 },
    { "amin", reduce_call, IR_MINR, -1 },
    { "logsumexp", logsumexp_call, 0, -1 },
    { "variance", variance_call, 0, -1 },
    { "arange", range_call, 0, -1 },
    { "one_hot", one_hot_call, 0, -1 },
    { "gather", gather_call, 0, -1 },
    { "grad", grad_call, 0, -1 },
    { "matmul", matmul_call, 0, -1 },
    { "cumsum", scan_call, IR_CUMSUM, -1 },
    { "cumprod", scan_call, IR_CUMPROD, -1 },
    { "argmax", argmax_call, 0, -1 },
    { "randint", randint_call, 0, -1 },
    { "randint_like", randint_call, 0, -1 },
    { "bernoulli", bernoulli_call, 0, -1 },
    { "categorical", categorical_call, 0, -1 },
    { "last", last_call, 0, -1 },
    { "ndim", shape_query, 0, -1 },
    { "check", check_call, 0, -1 },
    { "size", shape_query, 1, -1 },
    { "shape", shape_query, 2, -1 },
    { "normal_like", random_like, IR_NORMAL, -1 },
    { "uniform_like", random_like, IR_UNIFORM, -1 },
    { "normal", shaped_call, IR_NORMAL, INIT_NORMAL },
    { "uniform", shaped_call, IR_UNIFORM, INIT_UNIFORM },
    { "zeros", shaped_call, IR_CONST, INIT_ZEROS },
    { "ones", shaped_call, IR_CONST, INIT_ONES },
    { "conv2d", conv2d_call, 0, -1 },
    { "conv2d_transpose", conv2d_transpose_call, 0, -1 },
    { "maxpool2d", pool_call, 1, -1 },
    { "avgpool2d", pool_call, 0, -1 },
    { "upsample2d", upsample_call, 0, -1 },
    { "pad2d", pad2d_call, 0, -1 },
    { "concat", concat_call, 0, -1 },
    { "slice", slice_call, 0, -1 },
    { "latent_grid", latent_grid, 0, -1 },
    { "grid", grid_call, 0, -1 },
    { "history", history_call, 0, -1 },
    { "glorot_uniform", initializer_only, 0, INIT_GLOROT_UNIFORM },
    { "glorot_normal", initializer_only, 0, INIT_GLOROT_NORMAL },
    { "he_uniform", initializer_only, 0, INIT_HE_UNIFORM },
    { "he_normal", initializer_only, 0, INIT_HE_NORMAL },
    { "lecun_uniform", initializer_only, 0, INIT_LECUN_UNIFORM },
    { "lecun_normal", initializer_only, 0, INIT_LECUN_NORMAL },
    { "constant", initializer_only, 0, INIT_CONSTANT },
    { "orthogonal", initializer_only, 0, INIT_ORTHOGONAL },
    { "safetensors", initializer_only, 0, INIT_FILE },
    { NULL, NULL, 0, -1 },
};
