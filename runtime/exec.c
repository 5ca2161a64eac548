/* exec.c: runs a plan: random fills from the counter-based RNG, sgemm through OpenBLAS,
 * compiled kernels. */
#include <cblas.h>
#include "plan.h"

void plan_run(Plan *p, Rng *rng) {
    for (int s = 0; s < p->nsteps; s++) {
        const PlanStep *st = &p->steps[s];
        switch (st->kind) {
        case STEP_NORMAL:
            rng_normal(rng, p->ptrs[st->c], p->bufs[st->c].size);
            break;
        case STEP_UNIFORM:
            rng_uniform(rng, p->ptrs[st->c], p->bufs[st->c].size);
            break;
        case STEP_GEMM: {
            int lda = st->trans_a ? st->m : st->k;
            int ldb = st->trans_b ? st->k : st->n;
            cblas_sgemm(CblasRowMajor, st->trans_a ? CblasTrans : CblasNoTrans,
                        st->trans_b ? CblasTrans : CblasNoTrans, st->m, st->n, st->k, 1.0f,
                        p->ptrs[st->a], lda, p->ptrs[st->b], ldb, 0.0f, p->ptrs[st->c], st->n);
            break;
        }
        case STEP_KERNEL: {
            const Kernel *k = p->kernels[st->kernel];
            int64_t end = k->nout ? k->dims[0] : 1;
            if (p->fns[st->kernel]) p->fns[st->kernel](p->ptrs, 0, end);
            else kernel_interpret(k, p->ptrs, 0, end);
            break;
        }
        }
    }
}
