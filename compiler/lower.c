/* lower.c: IR graph -> plan of kernels. The fusion decision lives in one place
 * (materialise()): a node gets a buffer of its own only when something needs it stored
 * (a root, a matmul operand, a reshape, several consumers, a broadcast that would recompute
 * it); everything else is inlined into its consumers' loop bodies, so a chain of elementwise
 * ops and the reduction after it become one pass over memory. */
#include <stdlib.h>
#include <string.h>
#include "plan.h"
#include "conv_gemm.h"

/* An affine map from the iteration space of the kernel being built to a node's coordinates:
 * coordinate j of the node = off[j] + sum_k a[j][k] * idx[k] (offsets come from slices). */
typedef struct Map { int niter; int64_t a[IR_MAXDIM][K_MAXDIM]; int64_t off[IR_MAXDIM]; } Map;

typedef struct Lower {
    const IrGraph *g;
    Plan *p;
    char *mat;           /* node is stored in a buffer */
    int fuse;            /* 0: the unfused oracle, one kernel per op */
} Lower;

static void *xcalloc(size_t n, size_t s) {
    void *p = calloc(n ? n : 1, s);
    if (!p) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    return p;
}

static void contiguous_strides(int ndim, const int64_t *shape, int64_t *st) {
    int64_t s = 1;
    for (int j = ndim - 1; j >= 0; j--) { st[j] = s; s *= shape[j]; }
}

static int is_leaf(IrOp op) { return op <= IR_UNIFORM; }

static KExpr *build(Lower *L, int node, const Map *m);
static int merged_in_place(const Lower *L, int node);

static KExpr *load_node(Lower *L, int node, const Map *m) {
    const IrNode *n = &L->g->nodes[node];
    int64_t cst[IR_MAXDIM], stride[K_MAXDIM] = { 0 }, offset = 0;
    contiguous_strides(n->ndim, n->shape, cst);
    for (int k = 0; k < m->niter; k++)
        for (int j = 0; j < n->ndim; j++) stride[k] += cst[j] * m->a[j][k];
    for (int j = 0; j < n->ndim; j++) offset += cst[j] * m->off[j];
    return kx_load(L->p->node_buf[node], offset, stride, m->niter);
}

/* the map for input `in` of an elementwise node with map m: right-aligned broadcasting */
static void broadcast_map(const IrNode *out, const IrNode *in, const Map *m, Map *r) {
    memset(r, 0, sizeof *r);
    r->niter = m->niter;
    int lead = out->ndim - in->ndim;
    for (int j = 0; j < in->ndim; j++)
        if (!(in->shape[j] == 1 && out->shape[j + lead] != 1)) {
            memcpy(r->a[j], m->a[j + lead], sizeof r->a[j]);
            r->off[j] = m->off[j + lead];
        }
}

static KOp kop_of(IrOp op) {
    if (ir_is_unary(op)) return KE_NEG + (op - IR_NEG);
    return KE_ADD + (op - IR_ADD);
}

/* Does `fine` split every dim of `coarse` into a run of consecutive dims (dims of size 1
 * anywhere)? Then coordinate j of coarse is sum over its run of mul[o] * (coordinate o of
 * fine), with group[o] = j: an affine map, so a reshape that splits can be walked through
 * like a transpose, and one that merges can be written by a kernel iterating the finer shape
 * (the nearest upsampling's broadcast into its slice of a concat). */
static int reshape_split(const IrNode *coarse, const IrNode *fine, int *group, int64_t *mul) {
    int o = 0;
    for (int j = 0; j < coarse->ndim; j++) {
        int start = o;
        int64_t prod = 1;
        while (prod < coarse->shape[j] && o < fine->ndim) prod *= fine->shape[o++];
        if (prod != coarse->shape[j]) return 0;
        int64_t inner = 1;
        for (int q = o - 1; q >= start; q--) { group[q] = j; mul[q] = inner; inner *= fine->shape[q]; }
    }
    for (; o < fine->ndim; o++) {
        if (fine->shape[o] != 1) return 0;
        group[o] = 0;
        mul[o] = 0;
    }
    for (int q = 0; q < fine->ndim; q++)          /* size-1 dims contribute nothing */
        if (fine->shape[q] == 1) mul[q] = 0;
    return 1;
}

/* the expression of node's own operation (its inputs loaded or inlined) */
static KExpr *build_op(Lower *L, int node, const Map *m) {
    const IrNode *n = &L->g->nodes[node];
    Map im;
    switch (n->op) {
    case IR_CONST:
        return kx_const(n->value);
    case IR_TRANSPOSE:
        memset(&im, 0, sizeof im);
        im.niter = m->niter;
        for (int i = 0; i < n->ndim; i++) {
            memcpy(im.a[n->perm[i]], m->a[i], sizeof im.a[0]);
            im.off[n->perm[i]] = m->off[i];
        }
        return build(L, n->in[0], &im);
    case IR_SLICE:                /* the same walk, shifted to the block's start */
        im = *m;
        for (int j = 0; j < n->ndim; j++) im.off[j] += n->lo[j];
        return build(L, n->in[0], &im);
    case IR_BROADCAST:
        broadcast_map(n, &L->g->nodes[n->in[0]], m, &im);
        return build(L, n->in[0], &im);
    case IR_STOPGRAD:             /* only autodiff tells it from its input */
        return build(L, n->in[0], m);
    case IR_RESHAPE: {            /* a split (materialise() keeps the others in buffers) */
        const IrNode *x = &L->g->nodes[n->in[0]];
        int group[IR_MAXDIM];
        int64_t mul[IR_MAXDIM];
        if (x->op == IR_IM2COL && !L->mat[n->in[0]]) {
            /* windows [n, ho, wo, kh, kw, c] without padding: image (n, oy*sy + ky*dy,
             * ox*sx + kx*dx, c), read straight from the image */
            const ConvWindow *w = &x->win;
            memset(&im, 0, sizeof im);
            im.niter = m->niter;
            for (int k = 0; k < m->niter; k++) {
                im.a[0][k] = m->a[0][k];
                im.a[1][k] = w->sy * m->a[1][k] + w->dy * m->a[3][k];
                im.a[2][k] = w->sx * m->a[2][k] + w->dx * m->a[4][k];
                im.a[3][k] = m->a[5][k];
            }
            im.off[0] = m->off[0];
            im.off[1] = w->sy * m->off[1] + w->dy * m->off[3];
            im.off[2] = w->sx * m->off[2] + w->dx * m->off[4];
            im.off[3] = m->off[5];
            return build(L, x->in[0], &im);
        }
        if (!reshape_split(x, n, group, mul)) break;
        memset(&im, 0, sizeof im);
        im.niter = m->niter;
        for (int o = 0; o < n->ndim; o++) {
            for (int k = 0; k < m->niter; k++) im.a[group[o]][k] += mul[o] * m->a[o][k];
            im.off[group[o]] += mul[o] * m->off[o];
        }
        return build(L, n->in[0], &im);
    }
    default:
        break;
    }
    if (ir_is_elementwise(n->op)) {
        KExpr *args[3];
        for (int k = 0; k < n->nin; k++) {
            broadcast_map(n, &L->g->nodes[n->in[k]], m, &im);
            args[k] = build(L, n->in[k], &im);
        }
        if (n->op == IR_WHERE) return kx_select(args[0], args[1], args[2]);
        if (ir_is_unary(n->op)) return kx_un(kop_of(n->op), args[0]);
        return kx_bin(kop_of(n->op), args[0], args[1]);
    }
    fprintf(stderr, "gmc: internal error: cannot inline %s\n", ir_op_name(n->op));
    abort();
}

static KExpr *build(Lower *L, int node, const Map *m) {
    if (L->mat[node] && L->g->nodes[node].op != IR_CONST) return load_node(L, node, m);
    return build_op(L, node, m);
}

static int new_buffer(Plan *p, BufKind kind, int slot, int64_t size) {
    Buffer *b = &p->bufs[p->nbufs];
    b->kind = kind;
    b->slot = slot;
    b->size = size;
    return p->nbufs++;
}

static void add_step(Plan *p, PlanStep s) { p->steps[p->nsteps++] = s; }

/* adds kernel k, which writes node's buffer at k's out_offset and out_stride */
static void add_kernel_at(Lower *L, int node, Kernel *k, const char *part) {
    Plan *p = L->p;
    snprintf(k->name, sizeof k->name, "k%d_%s%s", node, ir_op_name(L->g->nodes[node].op), part);
    k->out_buf = p->node_buf[node];
    p->kernels[p->nkernels] = k;
    add_step(p, (PlanStep){ .kind = STEP_KERNEL, .kernel = p->nkernels++, .node = node });
}

static void add_kernel(Lower *L, int node, Kernel *k) {
    contiguous_strides(k->nout, k->dims, k->out_stride);
    add_kernel_at(L, node, k, "");
}

static void emit_elementwise(Lower *L, int node) {
    const IrNode *n = &L->g->nodes[node];
    Kernel *k = xcalloc(1, sizeof *k);
    k->ndim = k->nout = n->ndim;
    memcpy(k->dims, n->shape, n->ndim * sizeof *n->shape);
    Map m = { .niter = n->ndim };
    for (int j = 0; j < n->ndim; j++) m.a[j][j] = 1;
    k->body = build_op(L, node, &m);
    add_kernel(L, node, k);
}

/* A sum of many elements into few outputs (a bias gradient: [C] from [N, H, W, C]) in one
 * kernel gives each thread a few outputs and walks the whole input once per vector of them,
 * strided. Summed first over everything but the leading axis, into [N, outputs] (one thread
 * per example, each reading its own contiguous block once), then over N, it is one pass over
 * memory split N ways. The partials are rounded to float before the second sum. */
enum { SPLIT_SUM_MAX_OUT = 4096, SPLIT_SUM_MIN_IN = 65536, SPLIT_SUM_MIN_LEAD = 8 };

static int split_sum(Lower *L, int node) {
    const IrNode *n = &L->g->nodes[node];
    const IrNode *x = &L->g->nodes[n->in[0]];
    int64_t out = ir_numel(n), in = ir_numel(x);
    int nred = 0;
    for (int j = 0; j < x->ndim; j++) nred += n->axes_mask >> j & 1;
    if (!L->fuse || n->op != IR_SUM || !(n->axes_mask & 1) || nred < 2 || x->shape[0] < SPLIT_SUM_MIN_LEAD ||
        out > SPLIT_SUM_MAX_OUT || in < SPLIT_SUM_MIN_IN || out * 64 > in)
        return 0;
    Plan *p = L->p;
    int64_t lead = x->shape[0];
    int part = new_buffer(p, BUF_TEMP, -1, lead * out);
    Kernel *k = xcalloc(1, sizeof *k);             /* [lead, kept...] summed over the rest */
    Map m = { .niter = x->ndim };
    int it = 0;
    k->dims[it] = lead;
    m.a[0][it++] = 1;
    for (int pass = 0; pass < 2; pass++)
        for (int j = 1; j < x->ndim; j++)
            if ((int)(n->axes_mask >> j & 1) == pass) {
                k->dims[it] = x->shape[j];
                m.a[j][it++] = 1;
            }
    k->ndim = x->ndim;
    k->nout = x->ndim - nred + 1;
    k->reduce = KR_SUM;
    k->body = build(L, n->in[0], &m);
    contiguous_strides(k->nout, k->dims, k->out_stride);
    add_kernel_at(L, node, k, "_part");
    k->out_buf = part;                             /* into the partials, not node's buffer */
    Kernel *t = xcalloc(1, sizeof *t);             /* [kept...] summed over lead */
    int64_t st[K_MAXDIM] = { 0 };
    for (int d = 0; d < k->nout - 1; d++) {
        t->dims[d] = k->dims[d + 1];
        st[d] = k->out_stride[d + 1];
    }
    t->dims[k->nout - 1] = lead;
    st[k->nout - 1] = k->out_stride[0];
    t->ndim = k->nout;
    t->nout = k->nout - 1;
    t->reduce = KR_SUM;
    t->body = kx_load(part, 0, st, t->ndim);
    add_kernel(L, node, t);
    return 1;
}

static void emit_reduction(Lower *L, int node) {
    const IrNode *n = &L->g->nodes[node];
    const IrNode *x = &L->g->nodes[n->in[0]];
    if (split_sum(L, node)) return;
    Kernel *k = xcalloc(1, sizeof *k);
    Map m = { .niter = x->ndim };
    int it = 0;
    for (int pass = 0; pass < 2; pass++)          /* kept axes first, then reduced */
        for (int j = 0; j < x->ndim; j++)
            if ((int)(n->axes_mask >> j & 1) == pass) {
                k->dims[it] = x->shape[j];
                m.a[j][it++] = 1;
            }
    k->ndim = x->ndim;
    k->nout = n->ndim;
    k->reduce = n->op == IR_SUM ? KR_SUM : n->op == IR_MAXR ? KR_MAX : KR_MIN;
    k->body = build(L, n->in[0], &m);
    add_kernel(L, node, k);
}

static void emit_matmul(Lower *L, int node) {
    const IrNode *n = &L->g->nodes[node];
    const IrNode *a = &L->g->nodes[n->in[0]];
    const IrNode *b = &L->g->nodes[n->in[1]];
    PlanStep s = { .kind = STEP_GEMM, .node = node, .trans_a = n->trans_a, .trans_b = n->trans_b };
    s.a = L->p->node_buf[n->in[0]];
    s.b = L->p->node_buf[n->in[1]];
    s.c = L->p->node_buf[node];
    s.n = n->shape[n->ndim - 1];
    s.k = n->trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    if (b->ndim > 2) {            /* one product per matrix of the batch */
        s.m = n->shape[n->ndim - 2];
        s.batch = ir_numel(n) / (s.m * s.n);
    } else s.m = ir_numel(n) / n->shape[n->ndim - 1];
    add_step(L->p, s);
}

/* Writes node src (loaded, or its expression inlined) into the block of node's buffer that
 * starts at coordinates `at`: one part of a pad or a concat. */
static void emit_placement(Lower *L, int node, int src, const int64_t *at, const char *part) {
    const IrNode *n = &L->g->nodes[node], *x = &L->g->nodes[src];
    Kernel *k = xcalloc(1, sizeof *k);
    int64_t cst[IR_MAXDIM];
    contiguous_strides(n->ndim, n->shape, cst);
    for (int j = 0; j < n->ndim; j++) k->out_offset += at[j] * cst[j];
    int group[IR_MAXDIM];
    int64_t mul[IR_MAXDIM];
    if (merged_in_place(L, src)) {
        /* a merging reshape: iterate over its operand's finer shape and write each element
         * where the merged coordinates put it (upsampling's broadcast straight into the
         * concat, instead of into a buffer of its own and then copied) */
        const IrNode *f = &L->g->nodes[x->in[0]];
        reshape_split(x, f, group, mul);
        k->ndim = k->nout = f->ndim;
        memcpy(k->dims, f->shape, f->ndim * sizeof *f->shape);
        for (int o = 0; o < f->ndim; o++) k->out_stride[o] = mul[o] * cst[group[o]];
        Map m = { .niter = f->ndim };
        for (int j = 0; j < f->ndim; j++) m.a[j][j] = 1;
        k->body = build(L, x->in[0], &m);
    } else {
        k->ndim = k->nout = x->ndim;
        memcpy(k->dims, x->shape, x->ndim * sizeof *x->shape);
        memcpy(k->out_stride, cst, n->ndim * sizeof *cst);
        Map m = { .niter = x->ndim };
        for (int j = 0; j < x->ndim; j++) m.a[j][j] = 1;
        k->body = build(L, src, &m);
    }
    add_kernel_at(L, node, k, part);
}

static void emit_pad(Lower *L, int node) {
    const IrNode *n = &L->g->nodes[node];
    Kernel *zero = xcalloc(1, sizeof *zero);      /* the border: clear everything first */
    zero->ndim = zero->nout = 1;
    zero->dims[0] = ir_numel(n);
    zero->out_stride[0] = 1;
    zero->body = kx_const(0);
    add_kernel_at(L, node, zero, "_zero");
    emit_placement(L, node, n->in[0], n->lo, "_copy");
}

static void emit_concat(Lower *L, int node) {
    const IrNode *n = &L->g->nodes[node];
    int64_t at[IR_MAXDIM] = { 0 };
    emit_placement(L, node, n->in[0], at, "_a");
    at[n->axis] = L->g->nodes[n->in[0]].shape[n->axis];
    emit_placement(L, node, n->in[1], at, "_b");
}

static void emit_window(Lower *L, int node) {
    const IrNode *n = &L->g->nodes[node];
    const IrNode *image = n->op == IR_IM2COL ? &L->g->nodes[n->in[0]] : n;
    PlanStep s = { .kind = n->op == IR_IM2COL ? STEP_IM2COL : STEP_COL2IM, .node = node };
    s.a = L->p->node_buf[n->in[0]];
    s.c = L->p->node_buf[node];
    s.geom = conv_geom(&n->win, image->shape[0], image->shape[1], image->shape[2], image->shape[3]);
    add_step(L->p, s);
}

/* ops whose operands (and results) are plain contiguous buffers: sgemm, the runtime's
 * window movers, and reshape, which aliases its operand's buffer */
static int reads_contiguous(IrOp op) {
    return op == IR_MATMUL || op == IR_RESHAPE || op == IR_IM2COL || op == IR_COL2IM || op == IR_HISTORY ||
           op == IR_GATHER || op == IR_SCATTER || op == IR_CUMSUM || op == IR_CUMPROD;
}

/* a reshape that merges dims and that emit_placement writes through (see reshape_views) */
static int merged_in_place(const Lower *L, int node) {
    const IrNode *r = &L->g->nodes[node];
    if (L->mat[node] || r->op != IR_RESHAPE) return 0;
    const IrNode *x = &L->g->nodes[r->in[0]];
    int group[IR_MAXDIM];
    int64_t mul[IR_MAXDIM];
    return !reshape_split(x, r, group, mul) && reshape_split(r, x, group, mul);
}

/* Reshapes that need no buffer (views): one that splits dims, read by kernels only (they
 * walk through it with an affine map), or one that merges dims and is only placed into a
 * concat or a pad. The nearest upsampling is reshape(broadcast(reshape(x))): the merging
 * reshape of its broadcast goes straight into the U-Net's concat, and its gradient (the
 * concat's gradient sliced, split and summed over each block) reads the slice in place. */
static void reshape_views(const Lower *L, const char *live, const int *uses, const int *roots, int nroots,
                          char *view) {
    const IrGraph *g = L->g;
    char *placed = xcalloc(g->n, 1), *other = xcalloc(g->n, 1);
    for (int i = 0; i < g->n; i++) {
        if (!live[i]) continue;
        const IrNode *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            if (n->op == IR_CONCAT || n->op == IR_PAD) placed[n->in[k]] = 1;
            else if (reads_contiguous(n->op)) other[n->in[k]] = 1;
        }
    }
    char *root = xcalloc(g->n, 1), *bad = xcalloc(g->n, 1);
    for (int r = 0; r < nroots; r++) other[roots[r]] = root[roots[r]] = 1;
    int group[IR_MAXDIM];
    int64_t mul[IR_MAXDIM];
    /* a split costs nothing to walk through, however many kernels read it */
    for (int i = 0; i < g->n; i++) {
        const IrNode *n = &g->nodes[i], *x = &g->nodes[n->in[0]];
        if (!live[i] || n->op != IR_RESHAPE || other[i]) continue;
        view[i] = reshape_split(x, n, group, mul) || (uses[i] == 1 && placed[i] && reshape_split(n, x, group, mul));
    }
    /* Windows without padding (max-pooling's) read only through views of shape
     * [n, ho, wo, kh, kw, c] are an affine map of the image: no im2col step, no buffer */
    for (int j = 0; j < g->n; j++) {
        if (!live[j]) continue;
        const IrNode *n = &g->nodes[j];
        for (int k = 0; k < n->nin; k++) {
            const IrNode *w = &g->nodes[n->in[k]];
            if (w->op != IR_IM2COL) continue;
            int ok = n->op == IR_RESHAPE && view[j] && n->ndim == 6 && n->shape[0] == w->shape[0] &&
                     n->shape[1] == w->shape[1] && n->shape[2] == w->shape[2] && n->shape[3] == w->win.kh &&
                     n->shape[4] == w->win.kw && n->shape[5] == g->nodes[w->in[0]].shape[3];
            if (!ok) bad[n->in[k]] = 1;
        }
    }
    for (int i = 0; i < g->n; i++) {
        const IrNode *n = &g->nodes[i];
        if (live[i] && n->op == IR_IM2COL && !bad[i] && !root[i] && uses[i] >= 1 &&
            !n->win.pt && !n->win.pb && !n->win.pl && !n->win.pr)
            view[i] = 1;
    }
    free(placed);
    free(other);
    free(root);
    free(bad);
}

/* a reshape in a buffer aliases its operand's: that must be a buffer too (operands come
 * before their consumers, so one pass from the last node carries it down chains) */
static void alias_reshapes(Lower *L, const char *live) {
    for (int i = L->g->n - 1; i >= 0; i--)
        if (live[i] && L->mat[i] && L->g->nodes[i].op == IR_RESHAPE) L->mat[L->g->nodes[i].in[0]] = 1;
}

/* One cheap op of one buffer and constants (relu's max(x, 0), leaky relu's mask x > 0 and
 * alpha * x): with several readers it is recomputed in each instead of written to a buffer
 * of its own and read back, when every reader is a kernel reading it element for element
 * (not through a broadcast, which would recompute it per copy). The forward and backward
 * kernels of a leaky relu each compare x with 0 instead of sharing a mask: one pass over
 * memory and one kernel launch fewer per layer. */
static int cheap_op(IrOp op) {
    return op == IR_NEG || op == IR_ABS || op == IR_ADD || op == IR_SUB || op == IR_MUL || op == IR_MAX ||
           op == IR_MIN || (op >= IR_GT && op <= IR_NE);
}

static void recompute_cheap(Lower *L, const char *live, const int *uses, const int *roots, int nroots) {
    const IrGraph *g = L->g;
    char *keep = xcalloc(g->n, 1);
    for (int r = 0; r < nroots; r++) keep[roots[r]] = 1;
    for (int i = 0; i < g->n; i++) {
        if (!live[i]) continue;
        const IrNode *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            const IrNode *in = &g->nodes[n->in[k]];
            if (reads_contiguous(n->op) || n->op == IR_CONCAT || n->op == IR_PAD || ir_numel(in) != ir_numel(n) ||
                !(ir_is_elementwise(n->op) || (n->op >= IR_SUM && n->op <= IR_MINR)))
                keep[n->in[k]] = 1;
        }
    }
    for (int i = 0; i < g->n; i++) {
        const IrNode *n = &g->nodes[i];
        if (!live[i] || !L->mat[i] || keep[i] || uses[i] < 2 || uses[i] > 4 || !cheap_op(n->op)) continue;
        int bufs = 0, ok = 1;
        for (int k = 0; k < n->nin; k++) {
            const IrNode *in = &g->nodes[n->in[k]];
            if (in->op == IR_CONST) continue;
            bufs++;
            ok &= L->mat[n->in[k]] && in->op != IR_RESHAPE && ir_numel(in) == ir_numel(n);
        }
        if (ok && bufs == 1) L->mat[i] = 0;
    }
    free(keep);
}

/* Which nodes get buffers. Leaves, roots, matmuls and reductions always; operands that must
 * be contiguous; with fusion off, everything but constants. */
static void materialise(Lower *L, const char *live, const int *roots, int nroots, int fuse) {
    const IrGraph *g = L->g;
    int *uses = xcalloc(g->n, sizeof *uses);
    char *view = xcalloc(g->n, 1);
    for (int i = 0; i < g->n; i++)
        if (live[i])
            for (int k = 0; k < g->nodes[i].nin; k++) uses[g->nodes[i].in[k]]++;
    if (fuse) reshape_views(L, live, uses, roots, nroots, view);
    memset(uses, 0, g->n * sizeof *uses);
    for (int i = 0; i < g->n; i++) {
        if (!live[i]) continue;
        const IrNode *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            const IrNode *in = &g->nodes[n->in[k]];
            uses[n->in[k]]++;
            /* a broadcast would recompute the input's expression for every copy */
            if (ir_numel(in) < ir_numel(n) && (ir_is_elementwise(n->op) || n->op == IR_BROADCAST))
                L->mat[n->in[k]] = 1;
        }
        if ((is_leaf(n->op) && n->op != IR_CONST) || n->op == IR_MATMUL || (n->op == IR_RESHAPE && !view[i]) ||
            (n->op >= IR_SUM && n->op <= IR_MINR) || n->op == IR_PAD || n->op == IR_CONCAT ||
            (reads_contiguous(n->op) && !view[i]) || !fuse)
            L->mat[i] = 1;
    }
    for (int i = 0; i < g->n; i++)
        if (live[i] && uses[i] > 1 && !view[i]) L->mat[i] = 1;
    for (int i = 0; i < g->n; i++)          /* a view read by several kernels: of a buffer */
        if (view[i] && uses[i] > 1 && g->nodes[i].op == IR_RESHAPE && !view[g->nodes[i].in[0]])
            L->mat[g->nodes[i].in[0]] = 1;
    for (int i = 0; i < g->n; i++)          /* constants are inlined wherever they are used */
        if (g->nodes[i].op == IR_CONST) L->mat[i] = 0;
    for (int r = 0; r < nroots; r++) L->mat[roots[r]] = 1;
    for (int i = 0; i < g->n; i++)          /* operands read as contiguous memory */
        if (live[i] && reads_contiguous(g->nodes[i].op) && !(g->nodes[i].op == IR_RESHAPE && !L->mat[i]))
            for (int k = 0; k < g->nodes[i].nin; k++) L->mat[g->nodes[i].in[k]] = 1;
    alias_reshapes(L, live);
    if (fuse) recompute_cheap(L, live, uses, roots, nroots);
    free(uses);
    free(view);
}

/* the distinct buffers the expression of node's inputs loads: materialised nodes reached
 * through inlined ones (constants are inlined as numbers) */
static int count_loads(const Lower *L, int node, int *stamp, int mark) {
    const IrNode *x = &L->g->nodes[node];
    int n = 0;
    for (int k = 0; k < x->nin; k++) {
        int in = x->in[k];
        if (L->g->nodes[in].op == IR_CONST || stamp[in] == mark) continue;
        stamp[in] = mark;
        n += L->mat[in] ? 1 : count_loads(L, in, stamp, mark);
    }
    return n;
}

/* A long chain of fused ops (a sum of many gradient contributions) can read more buffers
 * than a kernel's table holds: materialise its largest inlined operand, then check that one
 * too (nodes are visited from the last, so operands come after their consumers). */
static void bound_loads(Lower *L, const char *live) {
    const IrGraph *g = L->g;
    int *stamp = xcalloc(g->n, sizeof *stamp), mark = 0;
    for (int i = g->n - 1; i >= 0; i--) {
        const IrNode *n = &g->nodes[i];
        if (!live[i] || !L->mat[i] || is_leaf(n->op) || reads_contiguous(n->op)) continue;
        /* the output takes a slot; pad and concat fill theirs with one kernel per operand */
        while (count_loads(L, i, stamp, ++mark) > K_MAXARGS - 1) {
            int best = -1, most = -1;
            for (int k = 0; k < n->nin; k++) {
                int in = n->in[k];
                if (L->mat[in] || g->nodes[in].op == IR_CONST) continue;
                int c = count_loads(L, in, stamp, ++mark);
                if (c > most) { most = c; best = in; }
            }
            if (best < 0) break;      /* cannot happen: at most 3 operands, all buffers */
            L->mat[best] = 1;
        }
    }
    free(stamp);
}

/* ---- kernels as code: buffers through a local table, identical code compiled once ---- */

static int local_id(Kernel *k, int global) {
    for (int i = 0; i < k->nargs; i++) if (k->args[i] == global) return i;
    if (k->nargs == K_MAXARGS) { fprintf(stderr, "gmc: internal error: kernel %s reads too many buffers\n", k->name); abort(); }
    k->args[k->nargs] = global;
    return k->nargs++;
}

static KExpr *relabel(Kernel *k, const KExpr *e) {
    if (!e) return NULL;
    KExpr *c = xcalloc(1, sizeof *c);
    *c = *e;
    if (e->op == KE_LOAD) c->buf = local_id(k, e->buf);
    for (int i = 0; i < 3; i++) c->arg[i] = relabel(k, e->arg[i]);
    return c;
}

/* rewrites the kernel's buffer ids into slots of its own table, output first */
static void localise(Kernel *k) {
    k->nargs = 0;
    k->out_buf = local_id(k, k->out_buf);
    k->body = relabel(k, k->body);      /* fresh trees: the lowering may share subtrees */
    k->post = relabel(k, k->post);
}

static void min_offsets(const KExpr *e, int64_t *lo) {
    if (!e) return;
    if (e->op == KE_LOAD && e->offset < lo[e->buf]) lo[e->buf] = e->offset;
    for (int i = 0; i < 3; i++) min_offsets(e->arg[i], lo);
}

static void shift_offsets(KExpr *e, const int64_t *lo) {
    if (!e) return;
    if (e->op == KE_LOAD) e->offset -= lo[e->buf];
    for (int i = 0; i < 3; i++) shift_offsets(e->arg[i], lo);
}

/* moves each slot's smallest offset into arg_offset (added to the slot's pointer when the
 * kernel runs), so the code, and the key, no longer depend on it. After planning: plan.c
 * compares offsets within a kernel only, and those keep their differences. */
static void offsets_to_args(Kernel *k) {
    int64_t lo[K_MAXARGS];
    for (int a = 0; a < k->nargs; a++) lo[a] = INT64_MAX;
    lo[k->out_buf] = k->out_offset;
    min_offsets(k->body, lo);
    min_offsets(k->post, lo);
    for (int a = 0; a < k->nargs; a++) {
        if (lo[a] == INT64_MAX) lo[a] = 0;
        k->arg_offset[a] += lo[a];
    }
    k->out_offset -= lo[k->out_buf];
    shift_offsets(k->body, lo);
    shift_offsets(k->post, lo);
}

/* the canonical text of a kernel: everything that decides its code, nothing else. That is
 * render_llvm.c's key, written from the loop nest the kernel compiles to (kernels that cut
 * the same loops differently share code). A malformed kernel has none: it gets a key of its
 * own, and the JIT rejects it with the reason. */
static char *kernel_key(const Kernel *k, int index) {
    char *key = jit_kernel_key(k);
    if (key) return key;
    key = xcalloc(32, 1);
    snprintf(key, 32, "malformed kernel %d", index);
    return key;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* compiles the kernels the Jit has not seen, each distinct one once, all in one module */
static int compile_kernels(Plan *p, Jit *jit, char *err, int errlen) {
    int n = p->nkernels, nfresh = 0, rc = 0;
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    char **keys = xcalloc(n, sizeof *keys);
    int *slot = xcalloc(cap, sizeof *slot);          /* hash table: key -> kernel index + 1 */
    int *fresh_of = xcalloc(n, sizeof *fresh_of);
    Kernel **fresh = xcalloc(n, sizeof *fresh);
    const char **fresh_keys = xcalloc(n, sizeof *fresh_keys);
    for (int k = 0; k < n; k++) {
        offsets_to_args(p->kernels[k]);
        fresh_of[k] = -1;
        if (kernel_is_row_copy(p->kernels[k])) continue;   /* run by kernel_copy.c, not compiled */
        p->kernels[k]->outer_scale = jit_outer_scale(p->kernels[k]);   /* also where code is shared */
        keys[k] = kernel_key(p->kernels[k], k);
        if ((p->fns[k] = jit_cached(jit, keys[k]))) continue;
        size_t h = fnv1a(keys[k]) & (cap - 1);
        while (slot[h] && strcmp(keys[slot[h] - 1], keys[k])) h = (h + 1) & (cap - 1);
        if (slot[h]) { fresh_of[k] = fresh_of[slot[h] - 1]; continue; }
        slot[h] = k + 1;
        fresh_of[k] = nfresh;
        fresh_keys[nfresh] = keys[k];
        fresh[nfresh++] = p->kernels[k];
    }
    KernelFn *fns = xcalloc(nfresh + 1, sizeof *fns);
    if (nfresh && jit_compile_keyed(jit, fresh, fresh_keys, nfresh, fns, err, errlen) != 0) rc = -1;
    for (int k = 0; k < n && !rc; k++)
        if (fresh_of[k] >= 0) {
            p->fns[k] = fns[fresh_of[k]];
            jit_cache(jit, keys[k], p->fns[k]);
        }
    p->ncompiled = nfresh;
    for (int k = 0; k < n; k++) free(keys[k]);
    free(keys); free(slot); free(fresh_of); free(fresh); free(fresh_keys); free(fns);
    return rc;
}

/* Recomputes a window buffer (im2col's output: kh*kw times its image) where it is read long
 * after it was last touched, instead of keeping it live in between. A convolution's input
 * windows are read by its forward product and again, after the whole rest of the forward
 * pass, by its weight gradient; kept, every layer's windows were live at once at the turn of
 * the forward and backward passes (three quarters of CycleGAN's arena at batch 16). The copy
 * reads the image, which is usually live anyway and is kh*kw times smaller. Small window
 * buffers are kept: recomputing costs time and saves little. */
enum { REMAT_DISTANCE = 8 };            /* steps since the last touch before recomputing */
#define REMAT_MIN_FLOATS (256 * 1024)   /* 1 MB */

static void rematerialise_windows(Plan *p) {
    int n0 = p->nsteps, nb0 = p->nbufs, cap = 2 * nb0 + 16, n = 0;
    PlanStep *out = xcalloc(2 * n0 + 1, sizeof *out);
    p->bufs = realloc(p->bufs, cap * sizeof *p->bufs);
    if (!p->bufs) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    memset(p->bufs + nb0, 0, (cap - nb0) * sizeof *p->bufs);
    int *maker = xcalloc(cap, sizeof *maker);       /* window buffer -> its im2col step + 1 */
    int *cur = xcalloc(cap, sizeof *cur);            /* window buffer -> its latest copy */
    int *touched = xcalloc(cap, sizeof *touched);    /* copy -> last step (in out) touching it */
    int reads[K_MAXARGS + 2], nreads;
    for (int s = 0; s < n0; s++) {
        PlanStep st = p->steps[s];
        int w = plan_step_buffers(p, s, reads, &nreads);
        for (int i = 0; i < nreads; i++) {
            int b = reads[i];
            if (!maker[b]) continue;
            if (n - touched[cur[b]] > REMAT_DISTANCE && p->nbufs < cap) {
                PlanStep again = p->steps[maker[b] - 1];
                p->rematerialised++;
                again.c = new_buffer(p, BUF_TEMP, -1, p->bufs[b].size);
                cur[b] = again.c;
                out[n++] = again;
            }
            touched[cur[b]] = n;
        }
        /* the step reads the latest copies */
        if (st.kind == STEP_KERNEL) {
            Kernel *k = p->kernels[st.kernel];
            for (int a = 0; a < k->nargs; a++)
                if (a != k->out_buf && maker[k->args[a]]) k->args[a] = cur[k->args[a]];
        } else {
            if (st.a >= 0 && st.a < nb0 && maker[st.a]) st.a = cur[st.a];
            if ((st.kind == STEP_GEMM || st.kind == STEP_GATHER) && st.b >= 0 && st.b < nb0 && maker[st.b]) st.b = cur[st.b];
        }
        if (st.kind == STEP_IM2COL && w >= 0 && p->bufs[w].size >= REMAT_MIN_FLOATS) {
            maker[w] = s + 1;
            cur[w] = w;
            touched[w] = n;
        }
        out[n++] = st;
    }
    free(p->steps);
    p->steps = out;
    p->nsteps = n;
    free(maker); free(cur); free(touched);
}

Plan *plan_build(const IrGraph *g, const ParamTable *params, const int *roots, int nroots,
                 int ninputs, const LowerOptions *opt, Jit *jit, char *err, int errlen) {
    Lower L = { .g = g, .fuse = opt->fuse };
    Plan *p = L.p = xcalloc(1, sizeof *p);
    char *live = xcalloc(g->n, 1);
    L.mat = xcalloc(g->n, 1);
    for (int r = 0; r < nroots; r++) live[roots[r]] = 1;
    for (int i = g->n - 1; i >= 0; i--)
        if (live[i])
            for (int k = 0; k < g->nodes[i].nin; k++) live[g->nodes[i].in[k]] = 1;
    materialise(&L, live, roots, nroots, opt->fuse);
    bound_loads(&L, live);
    alias_reshapes(&L, live);          /* bound_loads may have given a view a buffer */

    p->nnodes = g->n;
    p->node_buf = xcalloc(g->n, sizeof *p->node_buf);
    p->bufs = xcalloc(2 * g->n, sizeof *p->bufs);          /* split sums add partials */
    p->steps = xcalloc(2 * g->n, sizeof *p->steps);        /* pad and concat take two */
    p->kernels = xcalloc(2 * g->n, sizeof *p->kernels);
    p->ninputs = ninputs;
    p->input_buf = xcalloc(ninputs, sizeof *p->input_buf);
    for (int s = 0; s < ninputs; s++) p->input_buf[s] = -1;

    for (int i = 0; i < g->n; i++) {
        p->node_buf[i] = -1;
        if (!live[i] || !L.mat[i]) continue;
        const IrNode *n = &g->nodes[i];
        int64_t size = ir_numel(n);
        switch (n->op) {
        case IR_PARAM: p->node_buf[i] = new_buffer(p, BUF_PARAM, n->slot, size); break;
        case IR_DATA: p->node_buf[i] = new_buffer(p, BUF_DATA, n->slot, size); break;
        case IR_INPUT:
            p->node_buf[i] = new_buffer(p, BUF_INPUT, n->slot, size);
            p->input_buf[n->slot] = p->node_buf[i];
            break;
        case IR_RESHAPE: p->node_buf[i] = p->node_buf[n->in[0]]; break;
        default: p->node_buf[i] = new_buffer(p, BUF_TEMP, -1, size); break;
        }
        switch (n->op) {
        case IR_NORMAL: case IR_UNIFORM:
            add_step(p, (PlanStep){ .kind = n->op == IR_NORMAL ? STEP_NORMAL : STEP_UNIFORM,
                                    .c = p->node_buf[i], .node = i });
            break;
        case IR_INPUT: case IR_PARAM: case IR_DATA: case IR_RESHAPE: break;
        case IR_MATMUL: emit_matmul(&L, i); break;
        case IR_SUM: case IR_MAXR: case IR_MINR: emit_reduction(&L, i); break;
        case IR_PAD: emit_pad(&L, i); break;
        case IR_CONCAT: emit_concat(&L, i); break;
        case IR_IM2COL: case IR_COL2IM: emit_window(&L, i); break;
        case IR_CUMSUM: case IR_CUMPROD: {
            int64_t outer = 1, inner = 1;
            for (int d = 0; d < n->ndim; d++)
                if (d < n->axis) outer *= n->shape[d];
                else if (d > n->axis) inner *= n->shape[d];
            add_step(p, (PlanStep){ .kind = STEP_SCAN, .node = i, .prod = n->op == IR_CUMPROD,
                                    .reverse = n->reverse, .a = p->node_buf[n->in[0]],
                                    .c = p->node_buf[i], .m = outer, .k = n->shape[n->axis], .n = inner });
            break;
        }
        case IR_GATHER: case IR_SCATTER: {
            const IrNode *ids = &g->nodes[n->in[1]];
            const IrNode *table = n->op == IR_GATHER ? &g->nodes[n->in[0]] : n;
            add_step(p, (PlanStep){ .kind = STEP_GATHER, .node = i, .scatter = n->op == IR_SCATTER,
                                    .a = p->node_buf[n->in[0]], .b = p->node_buf[n->in[1]],
                                    .c = p->node_buf[i], .m = ir_numel(ids), .k = table->shape[0],
                                    .n = ir_numel(table) / table->shape[0] });
            break;
        }
        case IR_HISTORY: {
            const IrNode *n = &g->nodes[i];
            add_step(p, (PlanStep){ .kind = STEP_HISTORY, .node = i, .a = p->node_buf[n->in[0]],
                                    .c = p->node_buf[i], .m = n->shape[0], .n = ir_numel(n) / n->shape[0],
                                    .pool = n->slot, .capacity = n->axis });
            break;
        }
        default: emit_elementwise(&L, i); break;
        }
    }
    for (int k = 0; k < p->nkernels; k++) localise(p->kernels[k]);   /* the planner reads args */
    /* storage: params point at the table, data at the graph's constants, temps and inputs
     * into the plan's arena; roots (and noise draws for --grad-dump) stay readable after */
    for (int r = 0; r < nroots; r++) if (p->node_buf[roots[r]] >= 0) p->bufs[p->node_buf[roots[r]]].keep = 1;
    for (int i = 0; i < g->n && opt->keep_leaves; i++)
        if (p->node_buf[i] >= 0 && (g->nodes[i].op == IR_NORMAL || g->nodes[i].op == IR_UNIFORM))
            p->bufs[p->node_buf[i]].keep = 1;
    /* convolutions from the image itself (not in the unfused oracle, nor with
     * GMC_NO_IMPLICIT_CONV=1: those keep im2col, col2im and sgemm to compare against) */
    const char *nc = getenv("GMC_NO_IMPLICIT_CONV");
    if (opt->fuse && !opt->interpret && !(nc && *nc && strcmp(nc, "0"))) plan_fuse_convs(p);
    if (opt->fuse && !opt->interpret) plan_fuse_product_bias(p);     /* gemm_fuse.c */
    /* window buffers the implicit convolutions did not replace: recomputed where read late */
    const char *no_remat = getenv("GMC_NO_REMAT");      /* for measuring what it costs */
    if (!(no_remat && *no_remat && strcmp(no_remat, "0"))) rematerialise_windows(p);
    const char *env = getenv("GMC_NO_PLAN");
    plan_memory(p, !opt->no_plan && !(env && *env && strcmp(env, "0")));
    p->ptrs = xcalloc(p->nbufs, sizeof *p->ptrs);
    for (int b = 0; b < p->nbufs; b++) {
        Buffer *buf = &p->bufs[b];
        if (buf->kind == BUF_PARAM) buf->data = params->items[buf->slot].data;
        else if (buf->kind == BUF_DATA) buf->data = g->consts[buf->slot];
        p->ptrs[b] = buf->data;
    }
    free(live);
    free(L.mat);

    p->fns = xcalloc(p->nkernels, sizeof *p->fns);
    if (!opt->interpret && p->nkernels && compile_kernels(p, jit, err, errlen) != 0) {
        plan_free(p);
        return NULL;
    }
    return p;
}

float *plan_node(const Plan *p, int node) {
    if (node < 0 || node >= p->nnodes || p->node_buf[node] < 0) return NULL;
    const Buffer *b = &p->bufs[p->node_buf[node]];
    return b->kind == BUF_TEMP && !b->keep ? NULL : b->data;    /* its memory was reused */
}

float *plan_input(const Plan *p, int slot) {
    return slot < p->ninputs && p->input_buf[slot] >= 0 ? p->ptrs[p->input_buf[slot]] : NULL;
}

void plan_print(const Plan *p, const IrGraph *g, FILE *f) {
    for (int s = 0; s < p->nsteps; s++) {
        const PlanStep *st = &p->steps[s];
        const IrNode *n = &g->nodes[st->node];
        switch (st->kind) {
        case STEP_KERNEL: {
            const Kernel *k = p->kernels[st->kernel];
            kernel_print(k, f);
            fprintf(f, "    buffers:");
            for (int a = 0; a < k->nargs; a++) {
                fprintf(f, " %d=b%d", a, k->args[a]);
                if (k->arg_offset[a]) fprintf(f, "+%lld", (long long)k->arg_offset[a]);
            }
            fprintf(f, "\n");
            break;
        }
        case STEP_GEMM:
            fprintf(f, "sgemm %%%d: b%d = b%d%s @ b%d%s  [%lld x %lld x %lld]", st->node, st->c,
                    st->a, st->trans_a ? "^T" : "", st->b, st->trans_b ? "^T" : "",
                    (long long)st->m, (long long)st->k, (long long)st->n);
            if (st->batch > 1) fprintf(f, " x %lld", (long long)st->batch);
            if (st->has_bias) fprintf(f, " + bias b%d", st->bias);
            if (st->has_bgrad) fprintf(f, ", b%d = column sums of b%d", st->bgrad, st->b);
            fprintf(f, "\n");
            break;
        case STEP_NORMAL: case STEP_UNIFORM:
            fprintf(f, "fill %%%d: b%d ~ %s [%lld]\n", st->node, st->c,
                    st->kind == STEP_NORMAL ? "normal" : "uniform", (long long)ir_numel(n));
            break;
        case STEP_SCAN:
            fprintf(f, "%s %%%d: b%d <- b%d along the middle axis of [%lld, %lld, %lld]%s\n",
                    st->prod ? "cumprod" : "cumsum", st->node, st->c, st->a, (long long)st->m,
                    (long long)st->k, (long long)st->n, st->reverse ? ", reversed" : "");
            break;
        case STEP_GATHER:
            fprintf(f, "%s %%%d: b%d <- b%d rows at ids b%d  [%lld ids, %lld rows of %lld]\n",
                    st->scatter ? "scatter" : "gather", st->node, st->c, st->a, st->b,
                    (long long)st->m, (long long)st->k, (long long)st->n);
            break;
        case STEP_HISTORY:
            fprintf(f, "history %%%d: b%d = pool %d (capacity %d) of b%d\n", st->node, st->c, st->pool, st->capacity, st->a);
            break;
        case STEP_CONV: case STEP_IM2COL: case STEP_COL2IM: {
            const ConvGeom *gm = &st->geom;
            if (st->kind == STEP_CONV) {
                fprintf(f, "conv %s %%%d: b%d <- b%d, b%d%s%s%.0d  [%lld x %lld x %lld], ",
                        st->conv == CONV_FWD ? "forward" : st->conv == CONV_WGRAD ? "weight-gradient" : "input-gradient",
                        st->node, st->c, st->a, st->b, st->trans_b ? "^T" : "", st->has_bias ? " + bias b" : "",
                        st->has_bias ? st->bias : 0, (long long)st->m, (long long)st->k, (long long)st->n);
                if (st->relu) fprintf(f, "then relu, ");          /* the epilogues (conv_fuse.c) */
                if (st->has_mask) fprintf(f, "times (b%d > 0), ", st->mask);
                if (st->has_bgrad) fprintf(f, "bias gradient b%d, ", st->bgrad);
            }
            else fprintf(f, "%s %%%d: b%d <- b%d  ", st->kind == STEP_IM2COL ? "im2col" : "col2im", st->node, st->c, st->a);
            fprintf(f, "image [%lld, %lld, %lld, %lld], windows %lldx%lld, "
                    "k %dx%d s %d,%d d %d,%d pad %d,%d,%d,%d\n", (long long)gm->n,
                    (long long)gm->h, (long long)gm->w, (long long)gm->c, (long long)gm->ho,
                    (long long)gm->wo, gm->win.kh, gm->win.kw, gm->win.sy, gm->win.sx, gm->win.dy,
                    gm->win.dx, gm->win.pt, gm->win.pb, gm->win.pl, gm->win.pr);
            break;
        }
        }
    }
}

void plan_free(Plan *p) {
    if (!p) return;
    free(p->arena);
    for (int k = 0; k < p->nkernels; k++) free(p->kernels[k]);  /* KExprs: arena later */
    free(p->kernels); free(p->fns); free(p->steps); free(p->bufs); free(p->ptrs);
    free(p->node_buf); free(p->input_buf);
    free(p);
}
