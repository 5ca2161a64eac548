/* sema_util.c: helpers of semantic analysis: formatting, scopes, argument checks, tensor
 * values with located diagnostics, and the registry of built-in functions. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sema_internal.h"

const Value none = { .kind = V_NONE };
const Value error_value = { .kind = V_ERROR };

void *xmalloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    return p;
}

const char *fmt(const char *f, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return ast_intern(buf);
}

const char *shape_str(int ndim, const int64_t *shape) {
    char buf[256];
    int k = snprintf(buf, sizeof buf, "[");
    for (int i = 0; i < ndim && k < 200; i++)
        k += snprintf(buf + k, sizeof buf - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    snprintf(buf + k, sizeof buf - k, "]");
    return ast_intern(buf);
}

const char *node_shape(Ctx *c, int node) {
    IrNode *n = &c->g->nodes[node];
    return shape_str(n->ndim, n->shape);
}

const char *kind_name(VKind k) {
    const char *names[] = { "nothing", "number", "string", "tensor", "tuple", "layer",
        "model", "model instance", "data set", "data stream", "optimizer", "initializer",
        "built-in function", "array", "train block", "error" };
    return names[k];
}

Scope *scope_new(Scope *parent) {
    Scope *s = xmalloc(sizeof *s);
    s->parent = parent;
    return s;
}

void scope_set(Scope *s, const char *name, Value v) {
    for (int i = 0; i < s->n; i++)
        if (s->b[i].name == name) { s->b[i].v = v; return; }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->b = realloc(s->b, s->cap * sizeof *s->b);
    }
    s->b[s->n++] = (Binding){ name, v };
}

Value *scope_get(Scope *s, const char *name) {
    for (; s; s = s->parent)
        for (int i = 0; i < s->n; i++)
            if (s->b[i].name == name) return &s->b[i].v;
    return NULL;
}

Value num_value(double x, int is_int) { return (Value){ .kind = V_NUM, .num = x, .is_int = is_int }; }
Value tensor_value(int node) { return (Value){ .kind = V_TENSOR, .node = node }; }

Value *named(Args *a, const char *name, Loc *loc) {
    for (int i = 0; i < a->nnamed; i++)
        if (!strcmp(a->names[i], name)) {
            if (loc) *loc = a->named_loc[i];
            a->names[i] = "";        /* consumed */
            return &a->named[i];
        }
    return NULL;
}

int no_other_named(Args *a, const char *fn) {
    for (int i = 0; i < a->nnamed; i++)
        if (a->names[i][0]) {
            diag_error(a->named_loc[i], "%s() has no argument named '%s'", fn, a->names[i]);
            return -1;
        }
    return 0;
}

int want_num(Value v, Loc loc, const char *what, double *out) {
    if (v.kind != V_NUM) {
        diag_error(loc, "%s must be a number, got a %s", what, kind_name(v.kind));
        return -1;
    }
    *out = v.num;
    return 0;
}

int want_int(Value v, Loc loc, const char *what, int64_t *out) {
    if (v.kind != V_NUM || v.num != floor(v.num)) {
        diag_error(loc, "%s must be an integer, got %s", what,
                   v.kind == V_NUM ? fmt("%g", v.num) : fmt("a %s", kind_name(v.kind)));
        return -1;
    }
    *out = (int64_t)v.num;
    return 0;
}

int need_graph(Ctx *c, Loc loc, const char *what) {
    if (c->g) return 0;
    diag_error(loc, "%s is a tensor operation; it cannot be used in a constant", what);
    return -1;
}

/* numbers become scalar constants when they meet tensors */
int as_tensor(Ctx *c, Value v, Loc loc, const char *what) {
    if (v.kind == V_TENSOR) return v.node;
    if (v.kind == V_NUM && c->g) return ir_const(c->g, (float)v.num, 0, NULL);
    if (v.kind == V_ARRAY && c->g) return array_tensor(c, v);     /* a constant tensor */
    if (v.kind == V_NUM || v.kind == V_ARRAY) { need_graph(c, loc, what); return -1; }
    if (v.kind != V_ERROR)
        diag_error(loc, "%s expects a tensor, got a %s", what, kind_name(v.kind));
    return -1;
}

Value located(Ctx *c, int node, Loc loc) {
    if (node >= 0) c->g->nodes[node].loc = loc;
    return node >= 0 ? tensor_value(node) : error_value;
}

Value tensor_binary(Ctx *c, IrOp op, Value a, Value b, Loc loc, const char *what) {
    int x = as_tensor(c, a, loc, what), y = as_tensor(c, b, loc, what);
    if (x < 0 || y < 0) return error_value;
    int r = ir_binary(c->g, op, x, y);
    if (r < 0) {
        diag_error(loc, "%s: shapes %s and %s do not broadcast", what, node_shape(c, x), node_shape(c, y));
        return error_value;
    }
    return located(c, r, loc);
}

/* normalise an axis given as a number against ndim (negative counts from the end) */
int axis_of(Value v, Loc loc, int ndim, int *axis) {
    int64_t a;
    if (want_int(v, loc, "axis", &a) < 0) return -1;
    if (a < -ndim || a >= ndim) {
        diag_error(loc, "axis %lld is out of range for a tensor of rank %d", (long long)a, ndim);
        return -1;
    }
    *axis = (int)(a < 0 ? a + ndim : a);
    return 0;
}

unsigned axes_mask_of(Value *v, Loc loc, int ndim, int *err) {
    if (!v) return ndim ? (1u << ndim) - 1 : 0;
    unsigned mask = 0;
    int ax;
    if (v->kind == V_TUPLE) {
        for (int i = 0; i < v->n; i++) {
            if (axis_of(v->items[i], loc, ndim, &ax) < 0) { *err = 1; return 0; }
            mask |= 1u << ax;
        }
        return mask;
    }
    if (axis_of(*v, loc, ndim, &ax) < 0) { *err = 1; return 0; }
    return 1u << ax;
}

/* dims given as numbers (or one tuple of numbers) from argument `from` on */
int dims_of(Args *a, int from, int64_t *dims, const char *fn) {
    Value *vs = a->pos + from;
    int n = a->npos - from;
    if (n == 1 && vs[0].kind == V_TUPLE) { vs = vs[0].items; n = a->pos[from].n; }
    else if (n == 1 && vs[0].kind == V_ARRAY) {      /* zeros(x.shape), normal([4, 2]) */
        Value arr = vs[0];
        if (arr.andim > 1) { diag_error(a->pos_loc[from], "%s(): dimensions are given by an array of one axis, got shape %s", fn, array_shape_str(arr)); return -1; }
        if (arr.n > IR_MAXDIM - 1) { diag_error(a->loc, "%s(): too many dimensions", fn); return -1; }
        for (int i = 0; i < arr.n; i++)
            if (want_int(num_value(arr.arr[i], 1), a->pos_loc[from], fmt("%s() dimension", fn), &dims[i]) < 0) return -1;
        return arr.n;
    }
    if (n > IR_MAXDIM - 1) { diag_error(a->loc, "%s(): too many dimensions", fn); return -1; }
    for (int i = 0; i < n; i++)
        if (want_int(vs[i], a->pos_loc[from + (i < a->npos - from ? i : 0)], fmt("%s() dimension", fn), &dims[i]) < 0)
            return -1;
    return n;
}


Scope *builtin_scope(void) {
    /* array_builtins first: a tensor built-in of the same name replaces it in the scope, and
     * builtin_call still folds it on arrays (array_fold finds folds by name) */
    const BuiltinDef *tables[] = { array_builtins, tensor_builtins, data_builtins, optimizer_builtins, model_builtins };
    Scope *s = scope_new(NULL);
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const BuiltinDef *d = tables[t]; d->name; d++) {
            Value v = { .kind = V_BUILTIN, .builtin = d, .name = ast_intern(d->name) };
            scope_set(s, v.name, v);
        }
    scope_set(s, ast_intern("pi"), num_value(M_PI, 0));
    return s;
}

Value builtin_call(Ctx *c, const BuiltinDef *def, Args *a) {
    if (c->init_context && def->init >= 0) return init_value(def, a);
    int tensors = 0;
    for (int i = 0; i < a->npos; i++) tensors |= a->pos[i].kind == V_TENSOR;
    for (int i = 0; i < a->nnamed; i++) tensors |= a->named[i].kind == V_TENSOR;
    if (!tensors) {        /* compile-time arguments only: arrays fold */
        int handled;
        Value v = array_fold(c, def, a, &handled);
        if (handled) return v;
    }
    return def->fn(c, a, def);
}
