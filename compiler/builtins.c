/* builtins.c: the built-in tensor functions (elementwise math, reductions, reshapes, random
 * draws, constants) and the parameter initialisers. Each is an entry of tensor_builtins. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sema_internal.h"

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

/* sum, mean, amax, amin: over `axis:` (a number or a tuple), or every axis */
static Value reduce_call(Ctx *c, Args *a, const BuiltinDef *def) {
    if (need_graph(c, a->loc, fmt("%s()", def->name)) < 0) return error_value;
    if (a->npos < 1) { diag_error(a->loc, "%s() needs a tensor", def->name); return error_value; }
    const char *fn = def->name;
    int mean = !strcmp(fn, "mean");
    IrOp op = (IrOp)def->op;
    int x = as_tensor(c, a->pos[0], a->pos_loc[0], fn);
    if (x < 0) return error_value;
    Loc l = a->loc;
    Value *axis = named(a, "axis", &l);
    if (!axis && a->npos > 1) { axis = &a->pos[1]; l = a->pos_loc[1]; }
    if (no_other_named(a, fn) < 0) return error_value;
    int err = 0;
    IrNode *n = &c->g->nodes[x];
    unsigned mask = axes_mask_of(axis, l, n->ndim, &err);
    if (err) return error_value;
    int64_t count = 1;
    for (int i = 0; i < n->ndim; i++) if (mask >> i & 1) count *= n->shape[i];
    int r = ir_reduce(c->g, op, x, mask);
    if (mean) r = ir_binary(c->g, IR_MUL, r, ir_const(c->g, 1.0f / (float)count, 0, NULL));
    return located(c, r, a->loc);
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

/* An initialiser, from `param W[..] = NAME` or `NAME(arg)`: normal(std), uniform(limit),
 * constant(value). */
Value init_value(const BuiltinDef *def, Args *a) {
    Value v = { .kind = V_INIT, .init = (Init)def->init };
    double x = 0;
    if (v.init == INIT_NORMAL || v.init == INIT_UNIFORM || v.init == INIT_CONSTANT) {
        x = v.init == INIT_CONSTANT ? 0 : 0.05;
        Loc l = a->loc;
        const char *key = v.init == INIT_NORMAL ? "std" : v.init == INIT_UNIFORM ? "limit" : "value";
        Value *p = a->npos ? &a->pos[0] : named(a, key, &l);
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
    { "floor", unary_call, IR_FLOOR, -1 },
    { "max", binary_call, IR_MAX, -1 },
    { "min", binary_call, IR_MIN, -1 },
    { "pow", binary_call, IR_POW, -1 },
    { "where", where_call, 0, -1 },
    { "reshape", reshape_batch, 0, -1 },
    { "transpose", transpose_call, 0, -1 },
    { "sum", reduce_call, IR_SUM, -1 },
    { "mean", reduce_call, IR_SUM, -1 },
    { "amax", reduce_call, IR_MAXR, -1 },
    { "amin", reduce_call, IR_MINR, -1 },
    { "last", last_call, 0, -1 },
    { "normal_like", random_like, IR_NORMAL, -1 },
    { "uniform_like", random_like, IR_UNIFORM, -1 },
    { "normal", shaped_call, IR_NORMAL, INIT_NORMAL },
    { "uniform", shaped_call, IR_UNIFORM, INIT_UNIFORM },
    { "zeros", shaped_call, IR_CONST, INIT_ZEROS },
    { "ones", shaped_call, IR_CONST, INIT_ONES },
    { "latent_grid", latent_grid, 0, -1 },
    { "grid", grid_call, 0, -1 },
    { "glorot_uniform", initializer_only, 0, INIT_GLOROT_UNIFORM },
    { "glorot_normal", initializer_only, 0, INIT_GLOROT_NORMAL },
    { "he_uniform", initializer_only, 0, INIT_HE_UNIFORM },
    { "he_normal", initializer_only, 0, INIT_HE_NORMAL },
    { "lecun_uniform", initializer_only, 0, INIT_LECUN_UNIFORM },
    { "lecun_normal", initializer_only, 0, INIT_LECUN_NORMAL },
    { "constant", initializer_only, 0, INIT_CONSTANT },
    { NULL, NULL, 0, -1 },
};
