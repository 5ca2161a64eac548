/* gemm_fuse.c: a bias added to a matrix product's result (a dense layer whose activation
 * needs the pre-activation kept, like relu for its gradient) is added by the product itself,
 * block by block right after each block's sgemm while it is in cache (runtime/gemm.c), and the
 * kernel that added it is dropped: one pass over the layer's output less. The sum is the same
 * float addition the kernel did, so results are bit for bit the unfused ones. Likewise the
 * bias gradient (the column sums of dy) is computed by the weight gradient's product x^T dy,
 * which reads dy anyway, in the order and precision of the reduction kernel it replaces. Products fused
 * with a convolution are conv_fuse.c's (which does the same for their bias); this runs after
 * it and before the memory planner, on the plain products left. */
#include <stdio.h>
#include <stdlib.h>
#include "plan.h"

/* the product s, whose result only one later kernel reads, to add a bias [n] to every row:
 * the product writes that kernel's output itself */
static int fuse_bias(Plan *p, int s, char *drop) {
    PlanStep *st = &p->steps[s];
    int y = st->c, reader = -1;
    if (p->bufs[y].keep || st->batch > 1 || st->has_bias) return 0;
    for (int r = 0; r < p->nsteps; r++) {
        if (r == s || drop[r]) continue;
        int w, rd = plan_step_reads(p, r, y, &w);
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
    int64_t size = 1;
    for (int d = k->ndim - 1; d >= 0; d--) {      /* the output: contiguous, y's shape */
        if (k->out_stride[d] != size) return 0;
        size *= k->dims[d];
    }
    if (k->reduce != KR_NONE || k->post || k->nout != k->ndim || k->out_offset || k->nargs != 3 ||
        k->arg_offset[k->out_buf] || size != st->m * st->n || k->dims[k->ndim - 1] != st->n || !e ||
        e->op != KE_ADD)
        return 0;
    int out = k->args[k->out_buf];
    for (int i = 0; i < 2; i++) {
        const KExpr *ye = e->arg[i], *be = e->arg[1 - i];
        if (!kernel_load_like(k, ye, 0) || k->args[ye->buf] != y || !kernel_load_like(k, be, 1)) continue;
        int bias = k->args[be->buf], moved = 0;
        if (bias == y || out == y || out == bias || p->bufs[bias].size != st->n) continue;
        for (int r = s; r < p->nsteps; r++) {
            int w, rd;
            if (drop[r] || r == reader) continue;
            plan_step_reads(p, r, bias, &w);
            moved |= w;                          /* the bias must be ready at step s */
            rd = plan_step_reads(p, r, out, &w);
            moved |= r < reader && (rd || w);    /* the output written earlier: no one between */
        }
        if (moved) continue;
        st->has_bias = 1;
        st->bias = bias;
        st->c = out;
        drop[reader] = 1;
        p->bufs[y].size = 0;
        return 1;
    }
    return 0;
}

/* the reduction kernel s, db[j] = sum over i of dy[i, j] (a dense layer's bias gradient), and
 * a product dy feeds as its B ([k, n], not transposed: the weight gradient x^T dy): the
 * product computes the sums too, from dy while it reads it, and the kernel is dropped */
static int fuse_colsum(Plan *p, int s, char *drop) {
    const Kernel *k = p->kernels[p->steps[s].kernel];
    const KExpr *e = k->body;
    if (k->reduce != KR_SUM || k->post || k->ndim != 2 || k->nout != 1 || k->nargs != 2 || k->out_offset ||
        k->out_stride[0] != 1 || !e || e->op != KE_LOAD || e->offset || k->arg_offset[e->buf] ||
        k->arg_offset[k->out_buf] || e->stride[0] != 1 || e->stride[1] != k->dims[0])
        return 0;
    int dy = k->args[e->buf], db = k->args[k->out_buf];
    if (dy == db || p->bufs[db].size != k->dims[0]) return 0;
    for (int g = 0; g < p->nsteps; g++) {
        PlanStep *st = &p->steps[g];
        if (drop[g] || st->kind != STEP_GEMM || st->b != dy || st->trans_b || st->batch > 1 || st->has_bgrad ||
            st->n != k->dims[0] || st->k != k->dims[1] || st->m < 2 || st->k < 2 || st->a == db || st->c == db)
            continue;
        /* db is then written at step g instead of s: no step in between may touch it */
        int lo = g < s ? g : s, hi = g < s ? s : g, clash = 0;
        for (int r = lo + 1; r < hi && !clash; r++) {
            int w;
            if (!drop[r]) clash = plan_step_reads(p, r, db, &w) || w;
        }
        if (clash) continue;
        st->has_bgrad = 1;
        st->bgrad = db;
        drop[s] = 1;
        return 1;
    }
    return 0;
}

int plan_fuse_product_bias(Plan *p) {
    char *drop = calloc(p->nsteps ? p->nsteps : 1, 1);
    if (!drop) { fprintf(stderr, "gmc: out of memory\n"); abort(); }
    int fused = 0;
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_GEMM && !drop[s]) fused += fuse_bias(p, s, drop);
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind == STEP_KERNEL && !drop[s]) fused += fuse_colsum(p, s, drop);
    plan_drop_steps(p, drop);
    free(drop);
    return fused;
}
