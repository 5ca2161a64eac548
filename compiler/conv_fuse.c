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

static int reads_buffer(const Plan *p, int s, int b, int *writes) {
    int reads[K_MAXARGS + 2], n;
    int w = plan_step_buffers(p, s, reads, &n);
    *writes = w == b;
    for (int i = 0; i < n; i++) if (reads[i] == b) return 1;
    return 0;
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
        int w, rd = reads_buffer(p, r, col, &w);
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
    int dcol = st->a, writer = -1;
    const ConvGeom *g = &st->geom;
    int64_t P = g->n * g->ho * g->wo, K = (int64_t)g->win.kh * g->win.kw * g->c;
    if (p->bufs[dcol].keep) return 0;
    for (int r = 0; r < p->nsteps; r++) {
        if (r == s || drop[r]) continue;
        int w, rd = reads_buffer(p, r, dcol, &w);
        if (rd) return 0;
        if (w) {
            if (writer >= 0) return 0;
            writer = r;
        }
    }
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

/* the load e of a kernel over dims [.., f]: of buffer `of` at offset 0, walking either like the
 * output (every stride as the output's) or along the last dim only (a bias) */
static int load_like(const Kernel *k, const KExpr *e, int bias) {
    if (!e || e->op != KE_LOAD || e->offset != 0) return 0;
    for (int d = 0; d < k->ndim; d++)
        if (e->stride[d] != (bias ? d == k->ndim - 1 : k->out_stride[d])) return 0;
    return 1;
}

/* the forward step s, whose result only the next kernel reads, to add a bias along its last
 * axis: the bias is added as the product is stored, and the kernel dropped */
static int fuse_bias(Plan *p, int s, char *drop) {
    PlanStep *st = &p->steps[s];
    int y = st->c, reader = -1;
    if (p->bufs[y].keep) return 0;
    for (int r = 0; r < p->nsteps; r++) {
        if (r == s || drop[r]) continue;
        int w, rd = reads_buffer(p, r, y, &w);
        if (w) return 0;
        if (rd) {
            if (reader >= 0) return 0;
            reader = r;
        }
    }
    if (reader < s) return 0;
    const PlanStep *u = &p->steps[reader];
    if (u->kind != STEP_KERNEL) return 0;
    const Kernel *k = p->kernels[u->kernel];
    const KExpr *e = k->body;
    int64_t size = 1, stride = 1;
    for (int d = k->ndim - 1; d >= 0; d--) {      /* the output: contiguous, y's shape */
        if (k->out_stride[d] != stride) return 0;
        stride *= k->dims[d];
        size *= k->dims[d];
    }
    if (k->reduce != KR_NONE || k->post || k->nout != k->ndim || k->out_offset || size != st->m * st->n ||
        k->dims[k->ndim - 1] != st->n || !e || e->op != KE_ADD)
        return 0;
    for (int i = 0; i < 2; i++) {
        const KExpr *ye = e->arg[i], *be = e->arg[1 - i];
        if (!load_like(k, ye, 0) || k->args[ye->buf] != y || !load_like(k, be, 1)) continue;
        int bias = k->args[be->buf], later = 0;
        for (int r = s; r < p->nsteps; r++) {        /* the bias must be ready at step s */
            int w;
            if (!drop[r]) reads_buffer(p, r, bias, &w), later |= w;
        }
        if (bias == y || later || p->bufs[bias].size != st->n) continue;
        st->has_bias = 1;
        st->bias = bias;
        st->c = k->args[k->out_buf];
        drop[reader] = 1;
        p->bufs[y].size = 0;
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
        if (p->steps[s].kind == STEP_CONV && p->steps[s].conv == CONV_FWD && !drop[s]) fused += fuse_bias(p, s, drop);
    int n = 0;
    for (int s = 0; s < p->nsteps; s++) if (!drop[s]) p->steps[n++] = p->steps[s];
    p->nsteps = n;
    free(drop);
    return fused;
}
