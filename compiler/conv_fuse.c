/* conv_fuse.c: convolutions without im2col matrices. lower.c emits a convolution as the IR
 * composes it: im2col, then matrix products with the im2col matrix (forward, and transposed
 * for the weight gradient), and for the input gradient a product whose result only col2im
 * reads. Where the runtime can compute such a product from the image itself
 * (conv_gemm_implicit), this pass turns those steps into STEP_CONV steps and drops the im2col
 * and col2im steps, so the im2col matrix (9x the image for 3x3 windows) is never written or
 * read; its buffer is left empty. A bias added to the forward product right after it is added
 * as the product is stored. It runs before the memory planner, so lifetimes follow the
 * new steps (the image, not its im2col matrix, lives until the weight gradient). */
#include <stdio.h>
#include <stdlib.h>
#include "conv_gemm.h"
#include "plan.h"

/* the one step other than `self` that writes buffer b (writer = 1) or reads it (writer = 0),
 * when no other step does the opposite; -1 if none or several */
static int sole_step(const Plan *p, int b, int self, const char *drop, int writer) {
    int found = -1;
    for (int r = 0; r < p->nsteps; r++) {
        if (r == self || drop[r]) continue;
        int w, rd = plan_step_reads(p, r, b, &w);
        if (writer ? rd : w) return -1;
        if (writer ? w : rd) {
            if (found >= 0) return -1;
            found = r;
        }
    }
    return found;
}

/* the im2col step s: its products become STEP_CONV when all of its readers are products the
 * runtime covers */
static int fuse_im2col(Plan *p, int s, char *drop) {
    const PlanStep *st = &p->steps[s];
    int col = st->c;
    const ConvGeom *g = &st->geom;
    int64_t P = g->n * g->ho * g->wo, K = (int64_t)g->win.kh * g->win.kw * g->c;
    if (p->bufs[col].keep || P * K == 0) return 0;
    int users = 0;
    for (int r = 0; r < p->nsteps; r++) {
        if (r == s || drop[r]) continue;
        int w, rd = plan_step_reads(p, r, col, &w);
        if (w) return 0;
        if (!rd) continue;
        const PlanStep *u = &p->steps[r];
        if (u->kind != STEP_GEMM || u->a != col || u->b == col || u->batch > 1) return 0;
        if (!u->trans_a && u->m == P && u->k == K && conv_gemm_implicit(g, CONV_FWD, u->n)) users++;
        else if (u->trans_a && !u->trans_b && u->m == K && u->k == P && conv_gemm_implicit(g, CONV_WGRAD, u->n)) users++;
        else return 0;
    }
    if (!users) return 0;
    for (int r = 0; r < p->nsteps; r++) {
        PlanStep *u = &p->steps[r];
        if (r == s || drop[r] || u->kind != STEP_GEMM || u->a != col) continue;
        u->conv = u->trans_a ? CONV_WGRAD : CONV_FWD;
        u->kind = STEP_CONV;
        u->a = st->a;
        u->geom = *g;
    }
    drop[s] = 1;
    p->bufs[col].size = 0;
    return 1;
}

/* the col2im step s: with the product that alone feeds it, one input-gradient step */
static int fuse_col2im(Plan *p, int s, char *drop) {
    PlanStep *st = &p->steps[s];
    int dcol = st->a;
    const ConvGeom *g = &st->geom;
    int64_t P = g->n * g->ho * g->wo, K = (int64_t)g->win.kh * g->win.kw * g->c;
    if (p->bufs[dcol].keep) return 0;
    int writer = sole_step(p, dcol, s, drop, 1);
    if (writer < 0 || writer > s) return 0;
    const PlanStep *u = &p->steps[writer];
    if (u->kind != STEP_GEMM || u->trans_a || u->batch > 1 || u->m != P || u->n != K ||
        !conv_gemm_implicit(g, CONV_DGRAD, u->k))
        return 0;
    st->kind = STEP_CONV;
    st->conv = CONV_DGRAD;
    st->a = u->a;
    st->b = u->b;
    st->n = u->k;
    st->m = P;
    st->k = K;
    st->trans_b = u->trans_b;
    drop[writer] = 1;
    p->bufs[dcol].size = 0;
    return 1;
}

/* an elementwise kernel writing `size` contiguous floats from offset 0, its last dim n */
static int elementwise_like(const Kernel *k, int64_t size, int64_t n) {
    int64_t all = 1, stride = 1;
    for (int d = k->ndim - 1; d >= 0; d--) {      /* the output: contiguous */
        if (k->out_stride[d] != stride) return 0;
        stride *= k->dims[d];
        all *= k->dims[d];
    }
    return k->reduce == KR_NONE && !k->post && k->nout == k->ndim && !k->out_offset && all == size &&
           k->dims[k->ndim - 1] == n && k->body;
}

/* the size of a forward or input-gradient step's result, and its last dim: y [P, f], or dx
 * [N, H, W, C] (a transposed convolution's output in the forward pass) */
static int64_t result_size(const PlanStep *st, int64_t *n) {
    const ConvGeom *g = &st->geom;
    *n = st->conv == CONV_DGRAD ? g->c : st->n;
    return st->conv == CONV_DGRAD ? g->n * g->h * g->w * g->c : st->m * st->n;
}

/* the forward (or input-gradient) step s, whose result only the next kernel reads, to add a
 * bias along its last axis: the bias is added as the product is stored, and the kernel dropped */
static int fuse_bias(Plan *p, int s, char *drop) {
    PlanStep *st = &p->steps[s];
    int y = st->c;
    int64_t n, size = result_size(st, &n);
    if (p->bufs[y].keep || st->has_bias) return 0;
    int reader = sole_step(p, y, s, drop, 0);
    if (reader < s) return 0;
    const PlanStep *u = &p->steps[reader];
    if (u->kind != STEP_KERNEL) return 0;
    const Kernel *k = p->kernels[u->kernel];
    const KExpr *e = k->body;
    if (!elementwise_like(k, size, n) || e->op != KE_ADD) return 0;
    for (int i = 0; i < 2; i++) {
        const KExpr *ye = e->arg[i], *be = e->arg[1 - i];
        if (!kernel_load_like(k, ye, 0) || k->args[ye->buf] != y || !kernel_load_like(k, be, 1)) continue;
        int bias = k->args[be->buf], later = 0;
        for (int r = s; r < p->nsteps; r++) {        /* the bias must be ready at step s */
            int w;
            if (!drop[r]) plan_step_reads(p, r, bias, &w), later |= w;
        }
        if (bias == y || later || p->bufs[bias].size != n) continue;
        st->has_bias = 1;
        st->bias = bias;
        st->c = k->args[k->out_buf];
        drop[reader] = 1;
        p->bufs[y].size = 0;
        return 1;
    }
    return 0;
}

/* the steps other than `self` that write buffer b, and the last of them in *last (-1: none) */
static int writers(const Plan *p, int b, int self, const char *drop, int *last) {
    int n = 0;
    *last = -1;
    for (int r = 0; r < p->nsteps; r++) {
        int w;
        if (r != self && !drop[r] && (plan_step_reads(p, r, b, &w), w)) n++, *last = r;
    }
    return n;
}

static int is_zero(const KExpr *e) { return e && e->op == KE_CONST && e->value == 0.0f; }

/* every load of slot in e is unchanged in value by a relu of what it loads: max(y, 0),
 * y > 0, y <= 0 (and the same turned round), so it may load relu(y) instead */
static int relu_blind(const KExpr *e, int slot, int under_relu) {
    if (!e) return 1;
    if (e->op == KE_LOAD) return e->buf != slot || under_relu;
    for (int i = 0; i < 3; i++) {
        const KExpr *other = e->arg[1 - (i & 1)];
        int ok = i < 2 && is_zero(other) &&
                 (e->op == KE_MAX || ((e->op == KE_GT || e->op == KE_LE) && i == 0) ||
                  ((e->op == KE_LT || e->op == KE_GE) && i == 1));
        if (!relu_blind(e->arg[i], slot, ok)) return 0;
    }
    return 1;
}

/* The forward (or input-gradient: a transposed convolution) step s whose result y is read by a
 * relu kernel r = max(y, 0) and otherwise only through relu-blind expressions (the backward
 * pass's masks y > 0): the step stores relu(y) straight into r, the other readers read r, and
 * y and the relu pass are gone. */
static int fuse_relu(Plan *p, int s, char *drop) {
    PlanStep *st = &p->steps[s];
    int y = st->c, relu = -1;
    int64_t n, size = result_size(st, &n);
    if (p->bufs[y].keep || st->relu || st->has_mask) return 0;
    for (int r = 0; r < p->nsteps; r++) {
        if (r == s || drop[r]) continue;
        int w, rd = plan_step_reads(p, r, y, &w);
        if (w) return 0;
        if (!rd) continue;
        const PlanStep *u = &p->steps[r];
        if (u->kind != STEP_KERNEL || r < s) return 0;
        const Kernel *k = p->kernels[u->kernel];
        for (int a = 0; a < k->nargs; a++)
            if (k->args[a] == y && (a == k->out_buf || !relu_blind(k->body, a, 0) || !relu_blind(k->post, a, 0))) return 0;
        const KExpr *e = k->body;
        if (relu < 0 && elementwise_like(k, size, n) && e->op == KE_MAX &&
            ((kernel_load_like(k, e->arg[0], 0) && k->args[e->arg[0]->buf] == y && is_zero(e->arg[1])) ||
             (kernel_load_like(k, e->arg[1], 0) && k->args[e->arg[1]->buf] == y && is_zero(e->arg[0]))) &&
            writers(p, k->args[k->out_buf], r, drop, &w) == 0 && k->args[k->out_buf] != y)
            relu = r;
    }
    if (relu < 0) return 0;
    int out = p->kernels[p->steps[relu].kernel]->args[p->kernels[p->steps[relu].kernel]->out_buf];
    for (int r = 0; r < p->nsteps; r++) {
        if (r == s || r == relu || drop[r] || p->steps[r].kind != STEP_KERNEL) continue;
        Kernel *k = p->kernels[p->steps[r].kernel];
        for (int a = 0; a < k->nargs; a++) if (k->args[a] == y) k->args[a] = out;
    }
    st->relu = 1;
    st->c = out;
    drop[relu] = 1;
    p->bufs[y].size = 0;
    return 1;
}

/* no step from s on writes b: it is ready when step s runs */
static int ready_at(const Plan *p, int b, int s, const char *drop) {
    for (int r = s; r < p->nsteps; r++) {
        int w;
        if (!drop[r] && (plan_step_reads(p, r, b, &w), w)) return 0;
    }
    return 1;
}

/* The input-gradient step s whose result dx only a kernel reads, to multiply it by a relu's
 * mask, dx * (x > 0): the step applies the mask as it stores dx, into the kernel's output,
 * and the kernel goes. (When something else reads dx too, the step would have to store
 * both: measured no faster than the kernel, so left to it.) */
static int fuse_mask(Plan *p, int s, char *drop) {
    PlanStep *st = &p->steps[s];
    int dx = st->c;
    int64_t X = st->geom.n * st->geom.h * st->geom.w * st->geom.c;
    if (p->bufs[dx].keep || st->has_mask) return 0;
    int r = sole_step(p, dx, s, drop, 0);
    if (r < s || p->steps[r].kind != STEP_KERNEL) return 0;
    const Kernel *k = p->kernels[p->steps[r].kernel];
    const KExpr *e = k->body;
    if (!elementwise_like(k, X, st->geom.c) || e->op != KE_MUL) return 0;
    for (int i = 0; i < 2; i++) {
        const KExpr *d = e->arg[i], *g = e->arg[1 - i];
        if (!kernel_load_like(k, d, 0) || k->args[d->buf] != dx || g->op != KE_GT || !is_zero(g->arg[1]) ||
            !kernel_load_like(k, g->arg[0], 0))
            continue;
        int mb = k->args[g->arg[0]->buf], out = k->args[k->out_buf], wl;
        if (mb == dx || out == dx || !ready_at(p, mb, s, drop) || writers(p, out, r, drop, &wl) || p->bufs[mb].size != X)
            continue;
        st->has_mask = 1;
        st->mask = mb;
        st->c = out;
        p->bufs[dx].size = 0;
        drop[r] = 1;
        return 1;
    }
    return 0;
}

/* Kernel k sums slot's [P, f] rows (the whole buffer, once each) into a row per output point
 * of dims [A, f] (nout 2) or [f] (nout 1, A = 1), in any order: the column dim has stride 1
 * in both, the others walk the rows as a mixed radix. */
static int sums_rows(const Kernel *k, int slot, int64_t P, int64_t f, int64_t *A) {
    const KExpr *e = k->body;
    int col = k->nout - 1;
    if (k->reduce != KR_SUM || k->post || !e || e->op != KE_LOAD || e->buf != slot || e->offset || k->out_offset ||
        k->nargs != 2 || k->nout < 1 || k->nout > 2 || k->dims[col] != f || e->stride[col] != 1 ||
        k->out_stride[col] != 1 || (k->nout == 2 && k->out_stride[0] != f))
        return 0;
    *A = k->nout == 2 ? k->dims[0] : 1;
    int64_t expect = f;
    char used[K_MAXDIM] = { 0 };
    used[col] = 1;
    for (;;) {                    /* the dims by increasing stride: f, f * dims, ... */
        int next = -1;
        for (int d = 0; d < k->ndim; d++)
            if (!used[d] && k->dims[d] > 1 && (next < 0 || e->stride[d] < e->stride[next])) next = d;
        if (next < 0) break;
        if (e->stride[next] != expect) return 0;
        expect *= k->dims[next];
        used[next] = 1;
    }
    return expect == P * f;
}

/* The weight-gradient step s and the bias gradient: the column sums of the same dy, as one
 * kernel or as per-image sums and their sum (lower.c's split of a long reduction). The step
 * sums dy as it reads it, and the kernels go. */
static int fuse_bias_grad(Plan *p, int s, char *drop) {
    PlanStep *st = &p->steps[s];
    int dy = st->b;
    int64_t P = st->k, f = st->n, A;
    if (st->has_bgrad) return 0;
    for (int r = 0; r < p->nsteps; r++) {
        if (r == s || drop[r] || p->steps[r].kind != STEP_KERNEL) continue;
        const Kernel *k1 = p->kernels[p->steps[r].kernel];
        int slot = k1->out_buf ? 0 : 1;
        if (k1->nargs != 2 || k1->args[slot] != dy || !sums_rows(k1, slot, P, f, &A)) continue;
        int t = k1->args[k1->out_buf], last = r, out = t;
        if (A > 1) {              /* the second stage: [A, f] summed over A */
            int r2 = sole_step(p, t, r, drop, 0);
            if (r2 < 0 || p->steps[r2].kind != STEP_KERNEL || p->bufs[t].keep) continue;
            const Kernel *k2 = p->kernels[p->steps[r2].kernel];
            int s2 = k2->out_buf ? 0 : 1;
            int64_t one;
            if (k2->nargs != 2 || k2->args[s2] != t || !sums_rows(k2, s2, A, f, &one) || one != 1) continue;
            last = r2;
            out = k2->args[k2->out_buf];
        }
        int wl;
        if (p->bufs[out].size != f || writers(p, out, last, drop, &wl)) continue;
        int early = 0;            /* the sum moves to step s: nothing may read it before */
        for (int u = 0; u <= s; u++) {
            int w;
            if (u != last && !drop[u] && plan_step_reads(p, u, out, &w)) early = 1;
        }
        if (early || writers(p, dy, s, drop, &wl) != 1 || wl > s) continue;
        st->has_bgrad = 1;
        st->bgrad = out;
        drop[r] = drop[last] = 1;
        if (out != t) p->bufs[t].size = 0;
        return 1;
    }
    return 0;
}

int plan_fuse_convs(Plan *p) {
    char *drop = calloc(p->nsteps ? p->nsteps : 1, 1);
    if (!drop) { fprintf(stderr, "gmc: out of memory\n"); abort(); }
    int fused = 0;
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_IM2COL && !drop[s]) fused += fuse_im2col(p, s, drop);
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_COL2IM && !drop[s]) fused += fuse_col2im(p, s, drop);
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_CONV && p->steps[s].conv != CONV_WGRAD && !drop[s]) fused += fuse_bias(p, s, drop);
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_CONV && p->steps[s].conv != CONV_WGRAD && !drop[s]) fused += fuse_relu(p, s, drop);
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_CONV && p->steps[s].conv == CONV_WGRAD && !drop[s]) fused += fuse_bias_grad(p, s, drop);
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_CONV && p->steps[s].conv == CONV_DGRAD && !drop[s]) fused += fuse_mask(p, s, drop);
    plan_drop_steps(p, drop);
    free(drop);
    return fused;
}
