/* conv_fuse.c: convolutions without im2col matrices. lower.c emits a convolution as the IR
 * composes it: im2col, then matrix products with the im2col matrix (forward, and transposed
 * for the weight gradient), and for the input gradient a product whose result only col2im
 * reads. Where the runtime can compute such a product from the image itself
 * (conv_gemm_implicit), this pass turns those steps into STEP_CONV steps and drops the im2col
 * and col2im steps, so the im2col matrix (9x the image for 3x3 windows) is never written or
 * read; its buffer is left empty. It runs before the memory planner, so lifetimes follow the
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

int plan_fuse_convs(Plan *p) {
    char *drop = calloc(p->nsteps ? p->nsteps : 1, 1);
    if (!drop) { fprintf(stderr, "gmc: out of memory\n"); abort(); }
    int fused = 0;
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_IM2COL && !drop[s]) fused += fuse_im2col(p, s, drop);
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_COL2IM && !drop[s]) fused += fuse_col2im(p, s, drop);
    int n = 0;
    for (int s = 0; s < p->nsteps; s++) if (!drop[s]) p->steps[n++] = p->steps[s];
    p->nsteps = n;
    free(drop);
    return fused;
}
