/* ir.c: building the tensor graph, with shape rules for every op. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ir.h"

static const char *op_names[IR_NUM_OPS] = {
    "input", "param", "const", "data", "normal", "uniform",
    "neg", "exp", "log", "log1p", "sqrt", "rsqrt", "abs", "sign", "tanh", "sigmoid",
    "softplus", "erf", "sin", "cos", "floor",
    "add", "sub", "mul", "div", "max", "min", "pow",
    "gt", "ge", "lt", "le", "eq", "ne", "where",
    "reshape", "transpose", "broadcast", "sum", "maxr", "minr", "matmul",
    "pad", "slice", "concat", "im2col", "col2im", "history", "gather", "scatter", "cumsum", "cumprod", "stop_gradient",
};

const char *ir_op_name(IrOp op) { return op < IR_NUM_OPS ? op_names[op] : "?"; }
int ir_is_unary(IrOp op) { return op >= IR_NEG && op <= IR_FLOOR; }
int ir_is_binary(IrOp op) { return op >= IR_ADD && op <= IR_NE; }
int ir_is_elementwise(IrOp op) { return ir_is_unary(op) || ir_is_binary(op) || op == IR_WHERE; }

int64_t ir_numel(const IrNode *n) {
    int64_t k = 1;
    for (int i = 0; i < n->ndim; i++) k *= n->shape[i];
    return k;
}

void ir_init(IrGraph *g) { memset(g, 0, sizeof *g); }

void ir_free(IrGraph *g) {
    for (int i = 0; i < g->nconsts; i++) free(g->consts[i]);
    free(g->consts);
    free(g->nodes);
    memset(g, 0, sizeof *g);
}

static int push(IrGraph *g, IrOp op, int ndim, const int64_t *shape_in) {
    /* callers often pass a shape that lives in g->nodes, which realloc may move */
    int64_t shape[IR_MAXDIM];
    if (ndim) memcpy(shape, shape_in, ndim * sizeof *shape);
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->nodes = realloc(g->nodes, g->cap * sizeof *g->nodes);
        if (!g->nodes) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    }
    IrNode *n = &g->nodes[g->n];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->ndim = ndim;
    if (ndim) memcpy(n->shape, shape, ndim * sizeof *shape);
    n->in[0] = n->in[1] = n->in[2] = -1;
    return g->n++;
}

int ir_leaf(IrGraph *g, IrOp op, int ndim, const int64_t *shape, int slot) {
    int id = push(g, op, ndim, shape);
    g->nodes[id].slot = slot;
    return id;
}

int ir_const(IrGraph *g, float v, int ndim, const int64_t *shape) {
    int id = push(g, IR_CONST, ndim, shape);
    g->nodes[id].value = v;
    return id;
}

int ir_data(IrGraph *g, float *payload, int ndim, const int64_t *shape) {
    g->consts = realloc(g->consts, (g->nconsts + 1) * sizeof *g->consts);
    g->consts[g->nconsts] = payload;
    int id = push(g, IR_DATA, ndim, shape);
    g->nodes[id].slot = g->nconsts++;
    return id;
}

int ir_unary(IrGraph *g, IrOp op, int a) {
    IrNode x = g->nodes[a];
    int id = push(g, op, x.ndim, x.shape);
    g->nodes[id].nin = 1;
    g->nodes[id].in[0] = a;
    return id;
}

int ir_broadcast_shape(int na, const int64_t *sa, int nb, const int64_t *sb, int64_t *out) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : sa[i - (n - na)];
        int64_t db = i < n - nb ? 1 : sb[i - (n - nb)];
        if (da != db && da != 1 && db != 1) return -1;
        out[i] = da == 1 ? db : da;
    }
    return n;
}

int ir_binary(IrGraph *g, IrOp op, int a, int b) {
    int64_t shape[IR_MAXDIM];
    IrNode *x = &g->nodes[a], *y = &g->nodes[b];
    int nd = ir_broadcast_shape(x->ndim, x->shape, y->ndim, y->shape, shape);
    if (nd < 0) return -1;
    int id = push(g, op, nd, shape);
    g->nodes[id].nin = 2;
    g->nodes[id].in[0] = a;
    g->nodes[id].in[1] = b;
    return id;
}

int ir_where(IrGraph *g, int c, int a, int b) {
    int64_t s1[IR_MAXDIM], s2[IR_MAXDIM];
    IrNode *x = &g->nodes[c], *y = &g->nodes[a], *z = &g->nodes[b];
    int n1 = ir_broadcast_shape(x->ndim, x->shape, y->ndim, y->shape, s1);
    if (n1 < 0) return -1;
    int n2 = ir_broadcast_shape(n1, s1, z->ndim, z->shape, s2);
    if (n2 < 0) return -1;
    int id = push(g, IR_WHERE, n2, s2);
    IrNode *n = &g->nodes[id];
    n->nin = 3;
    n->in[0] = c; n->in[1] = a; n->in[2] = b;
    return id;
}

int ir_reshape(IrGraph *g, int a, int ndim, const int64_t *shape) {
    IrNode *x = &g->nodes[a];
    if (x->ndim == ndim && (!ndim || !memcmp(x->shape, shape, ndim * sizeof *shape))) return a;
    int id = push(g, IR_RESHAPE, ndim, shape);
    g->nodes[id].nin = 1;
    g->nodes[id].in[0] = a;
    return id;
}

int ir_transpose(IrGraph *g, int a, const int *perm) {
    IrNode x = g->nodes[a];
    int64_t shape[IR_MAXDIM];
    for (int i = 0; i < x.ndim; i++) shape[i] = x.shape[perm[i]];
    int id = push(g, IR_TRANSPOSE, x.ndim, shape);
    IrNode *n = &g->nodes[id];
    n->nin = 1;
    n->in[0] = a;
    memcpy(n->perm, perm, x.ndim * sizeof *perm);
    return id;
}

int ir_broadcast(IrGraph *g, int a, int ndim, const int64_t *shape) {
    IrNode *x = &g->nodes[a];
    if (x->ndim == ndim && (!ndim || !memcmp(x->shape, shape, ndim * sizeof *shape))) return a;
    int id = push(g, IR_BROADCAST, ndim, shape);
    g->nodes[id].nin = 1;
    g->nodes[id].in[0] = a;
    return id;
}

int ir_reduce(IrGraph *g, IrOp op, int a, unsigned axes_mask) {
    if (!axes_mask) return a;      /* reducing over no axes is the identity */
    IrNode x = g->nodes[a];
    int64_t shape[IR_MAXDIM];
    int nd = 0;
    for (int i = 0; i < x.ndim; i++)
        if (!(axes_mask >> i & 1)) shape[nd++] = x.shape[i];
    int id = push(g, op, nd, shape);
    g->nodes[id].nin = 1;
    g->nodes[id].in[0] = a;
    g->nodes[id].axes_mask = axes_mask;
    return id;
}

int ir_matmul(IrGraph *g, int a, int b, int trans_a, int trans_b) {
    IrNode x = g->nodes[a], y = g->nodes[b];
    if (x.ndim < 2 || y.ndim < 2) return -1;
    if (y.ndim > 2 && (x.ndim != y.ndim || memcmp(x.shape, y.shape, (x.ndim - 2) * sizeof *x.shape)))
        return -1;
    int yd = y.ndim;
    int64_t m = trans_a ? x.shape[x.ndim - 1] : x.shape[x.ndim - 2];
    int64_t k = trans_a ? x.shape[x.ndim - 2] : x.shape[x.ndim - 1];
    int64_t k2 = trans_b ? y.shape[yd - 1] : y.shape[yd - 2];
    int64_t nn = trans_b ? y.shape[yd - 2] : y.shape[yd - 1];
    if (k != k2 || (trans_a && x.ndim != 2 && yd == 2)) return -1;
    int64_t shape[IR_MAXDIM];
    memcpy(shape, x.shape, x.ndim * sizeof *shape);
    shape[x.ndim - 2] = m;
    shape[x.ndim - 1] = nn;
    int id = push(g, IR_MATMUL, x.ndim, shape);
    IrNode *n = &g->nodes[id];
    n->nin = 2;
    n->in[0] = a; n->in[1] = b;
    n->trans_a = trans_a; n->trans_b = trans_b;
    return id;
}

/* (the count arrays are copied first: they may point into the node array, which push moves) */
int ir_pad(IrGraph *g, int a, const int64_t *before_in, const int64_t *after_in) {
    IrNode x = g->nodes[a];
    int64_t shape[IR_MAXDIM], before[IR_MAXDIM], after[IR_MAXDIM];
    int any = 0;
    for (int i = 0; i < x.ndim; i++) {
        before[i] = before_in[i];
        after[i] = after_in[i];
        if (before[i] < 0 || after[i] < 0) return -1;
        shape[i] = x.shape[i] + before[i] + after[i];
        any |= before[i] != 0 || after[i] != 0;
    }
    if (!any) return a;
    int id = push(g, IR_PAD, x.ndim, shape);
    IrNode *n = &g->nodes[id];
    n->nin = 1;
    n->in[0] = a;
    memcpy(n->lo, before, x.ndim * sizeof *before);
    memcpy(n->hi, after, x.ndim * sizeof *after);
    return id;
}

int ir_slice(IrGraph *g, int a, const int64_t *start_in, const int64_t *shape_in) {
    IrNode x = g->nodes[a];
    int64_t shape[IR_MAXDIM], start[IR_MAXDIM];
    int whole = 1;
    for (int i = 0; i < x.ndim; i++) {
        shape[i] = shape_in[i];
        start[i] = start_in[i];
        if (start[i] < 0 || shape[i] < 1 || start[i] + shape[i] > x.shape[i]) return -1;
        whole &= shape[i] == x.shape[i];
    }
    if (whole) return a;
    int id = push(g, IR_SLICE, x.ndim, shape);
    IrNode *n = &g->nodes[id];
    n->nin = 1;
    n->in[0] = a;
    memcpy(n->lo, start, x.ndim * sizeof *start);
    return id;
}

int ir_concat(IrGraph *g, int a, int b, int axis) {
    IrNode x = g->nodes[a], y = g->nodes[b];
    if (x.ndim != y.ndim || axis < 0 || axis >= x.ndim) return -1;
    for (int i = 0; i < x.ndim; i++)
        if (i != axis && x.shape[i] != y.shape[i]) return -1;
    x.shape[axis] += y.shape[axis];
    int id = push(g, IR_CONCAT, x.ndim, x.shape);
    IrNode *n = &g->nodes[id];
    n->nin = 2;
    n->in[0] = a; n->in[1] = b;
    n->axis = axis;
    return id;
}

static int window_ok(const ConvWindow *w) {
    return w->kh > 0 && w->kw > 0 && w->sy > 0 && w->sx > 0 && w->dy > 0 && w->dx > 0 &&
           w->pt >= 0 && w->pb >= 0 && w->pl >= 0 && w->pr >= 0;
}

/* (windows are copied first, for the same reason) */
int ir_im2col(IrGraph *g, int a, const ConvWindow *win_in) {
    IrNode x = g->nodes[a];
    ConvWindow win = *win_in;
    if (x.ndim != 4 || !window_ok(&win)) return -1;
    ConvGeom geo = conv_geom(&win, x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
    if (geo.ho < 1 || geo.wo < 1) return -1;
    int64_t shape[4] = { geo.n, geo.ho, geo.wo, (int64_t)win.kh * win.kw * geo.c };
    int id = push(g, IR_IM2COL, 4, shape);
    IrNode *n = &g->nodes[id];
    n->nin = 1;
    n->in[0] = a;
    n->win = win;
    return id;
}

int ir_col2im(IrGraph *g, int cols, const ConvWindow *win_in, int64_t h, int64_t w) {
    IrNode x = g->nodes[cols];
    ConvWindow win = *win_in;
    int64_t taps = (int64_t)win.kh * win.kw;
    if (x.ndim != 4 || !window_ok(&win) || x.shape[3] % taps) return -1;
    ConvGeom geo = conv_geom(&win, x.shape[0], h, w, x.shape[3] / taps);
    if (geo.ho != x.shape[1] || geo.wo != x.shape[2]) return -1;
    int64_t shape[4] = { geo.n, h, w, geo.c };
    int id = push(g, IR_COL2IM, 4, shape);
    IrNode *n = &g->nodes[id];
    n->nin = 1;
    n->in[0] = cols;
    n->win = win;
    return id;
}

int ir_history(IrGraph *g, int a, int pool, int capacity) {
    int id = ir_unary(g, IR_HISTORY, a);
    g->nodes[id].slot = pool;
    g->nodes[id].axis = capacity;
    return id;
}

int ir_gather(IrGraph *g, int table, int ids) {
    IrNode t = g->nodes[table], d = g->nodes[ids];
    if (t.ndim < 1 || d.ndim + t.ndim - 1 > IR_MAXDIM) return -1;
    int64_t shape[IR_MAXDIM];
    memcpy(shape, d.shape, d.ndim * sizeof *shape);
    memcpy(shape + d.ndim, t.shape + 1, (t.ndim - 1) * sizeof *shape);
    int id = push(g, IR_GATHER, d.ndim + t.ndim - 1, shape);
    IrNode *n = &g->nodes[id];
    n->nin = 2;
    n->in[0] = table; n->in[1] = ids;
    return id;
}

int ir_scatter(IrGraph *g, int values, int ids, int64_t rows) {
    IrNode v = g->nodes[values], d = g->nodes[ids];
    if (rows < 1 || v.ndim < d.ndim || v.ndim - d.ndim + 1 > IR_MAXDIM ||
        (d.ndim && memcmp(v.shape, d.shape, d.ndim * sizeof *d.shape)))
        return -1;
    int64_t shape[IR_MAXDIM] = { rows };
    memcpy(shape + 1, v.shape + d.ndim, (v.ndim - d.ndim) * sizeof *shape);
    int id = push(g, IR_SCATTER, v.ndim - d.ndim + 1, shape);
    IrNode *n = &g->nodes[id];
    n->nin = 2;
    n->in[0] = values; n->in[1] = ids;
    return id;
}

int ir_scan(IrGraph *g, IrOp op, int a, int axis, int reverse) {
    if (axis < 0 || axis >= g->nodes[a].ndim) return -1;
    int id = ir_unary(g, op, a);
    g->nodes[id].axis = axis;
    g->nodes[id].reverse = reverse;
    return id;
}

int ir_unbroadcast(IrGraph *g, int a, int ndim, const int64_t *shape_in) {
    IrNode x = g->nodes[a];
    int64_t shape[IR_MAXDIM];     /* ir_reduce may move the node array shape_in points into */
    if (ndim) memcpy(shape, shape_in, ndim * sizeof *shape);
    if (x.ndim == ndim && (!ndim || !memcmp(x.shape, shape, ndim * sizeof *shape))) return a;
    unsigned mask = 0;
    int lead = x.ndim - ndim;
    for (int i = 0; i < x.ndim; i++)
        if (i < lead || (shape[i - lead] == 1 && x.shape[i] != 1)) mask |= 1u << i;
    int r = mask ? ir_reduce(g, IR_SUM, a, mask) : a;
    return ir_reshape(g, r, ndim, shape);
}

void ir_print(const IrGraph *g, FILE *f) {
    for (int i = 0; i < g->n; i++) {
        const IrNode *n = &g->nodes[i];
        fprintf(f, "%%%d = %s", i, ir_op_name(n->op));
        for (int k = 0; k < n->nin; k++) fprintf(f, "%s%%%d", k ? ", " : " ", n->in[k]);
        if (n->op == IR_CONST) fprintf(f, " %g", n->value);
        if (n->op == IR_INPUT || n->op == IR_PARAM || n->op == IR_DATA) fprintf(f, " #%d", n->slot);
        if (n->op >= IR_SUM && n->op <= IR_MINR) fprintf(f, " axes=0x%x", n->axes_mask);
        if (n->op == IR_MATMUL && (n->trans_a || n->trans_b))
            fprintf(f, " trans=%d%d", n->trans_a, n->trans_b);
        if (n->op == IR_TRANSPOSE) {
            fprintf(f, " perm=");
            for (int k = 0; k < n->ndim; k++) fprintf(f, "%s%d", k ? "," : "", n->perm[k]);
        }
        if (n->op == IR_PAD || n->op == IR_SLICE) {
            fprintf(f, n->op == IR_PAD ? " pad=" : " start=");
            for (int k = 0; k < n->ndim; k++)
                if (n->op == IR_PAD) fprintf(f, "%s%lld:%lld", k ? "," : "", (long long)n->lo[k], (long long)n->hi[k]);
                else fprintf(f, "%s%lld", k ? "," : "", (long long)n->lo[k]);
        }
        if (n->op == IR_CONCAT) fprintf(f, " axis=%d", n->axis);
        if (n->op == IR_CUMSUM || n->op == IR_CUMPROD) fprintf(f, " axis=%d%s", n->axis, n->reverse ? " reverse" : "");
        if (n->op == IR_IM2COL || n->op == IR_COL2IM)
            fprintf(f, " k=%dx%d s=%d,%d d=%d,%d pad=%d,%d,%d,%d", n->win.kh, n->win.kw, n->win.sy,
                    n->win.sx, n->win.dy, n->win.dx, n->win.pt, n->win.pb, n->win.pl, n->win.pr);
        fprintf(f, " : [");
        for (int k = 0; k < n->ndim; k++) fprintf(f, "%s%lld", k ? ", " : "", (long long)n->shape[k]);
        fprintf(f, "]\n");
    }
}

int params_find(const ParamTable *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->items[i].name, name)) return i;
    return -1;
}

int params_add(ParamTable *t, const char *name, const char *owner, int ndim,
               const int64_t *shape, Init init, float a, float b, int trainable, Loc loc) {
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 32;
        t->items = realloc(t->items, t->cap * sizeof *t->items);
    }
    Param *p = &t->items[t->n];
    memset(p, 0, sizeof *p);
    p->name = name;
    p->owner = owner;
    p->ndim = ndim;
    memcpy(p->shape, shape, ndim * sizeof *shape);
    p->size = 1;
    for (int i = 0; i < ndim; i++) p->size *= shape[i];
    p->init = init;
    p->init_a = a;
    p->init_b = b;
    p->trainable = trainable;
    p->loc = loc;
    p->data = calloc(p->size ? p->size : 1, sizeof(float));
    return t->n++;
}
