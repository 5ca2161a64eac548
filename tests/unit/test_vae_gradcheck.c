/* test_vae_gradcheck.c: the gradient of the whole VAE loss of examples/vae_mlp.gm, as gmc
 * compiles it (sema -> autodiff -> fused JIT kernels), against central finite differences
 * on a sample of elements of every parameter. The noise draws are replayed identically for
 * every evaluation by restarting the RNG from the same state. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "diag.h"
#include "plan.h"
#include "program.h"

static double loss_at(Plan *p, int loss) {
    Rng rng;
    rng_init(&rng, 99);
    plan_run(p, &rng);
    return *plan_node(p, loss);
}

int main(void) {
    setenv("GMC_STDLIB", "stdlib", 0);
    Program *prog = sema_load("examples/vae_mlp.gm", NULL, 0);
    CHECK(prog != NULL, "examples/vae_mlp.gm loads");
    if (!prog) CHECK_DONE();
    sema_init_params(prog, 1);
    Train *t = &prog->trains[0];
    BlockGraph bg;
    int rc = sema_build_block(prog, t, t->steps[0], 4, 1, &bg);
    CHECK(rc == 0 && bg.loss >= 0 && bg.ngrads == 10, "the VAE step builds with a loss and 10 gradients");
    if (rc) CHECK_DONE();
    int roots[16], n = 0;
    roots[n++] = bg.loss;
    for (int i = 0; i < bg.ngrads; i++) roots[n++] = bg.grad_node[i];
    Jit *jit = jit_create();
    LowerOptions lo = { .fuse = 1 };
    char err[256];
    Plan *p = plan_build(&bg.g, &prog->params, roots, n, bg.ninputs, &lo, jit, err, sizeof err);
    CHECK(p != NULL, "the VAE step compiles");
    if (!p) CHECK_DONE();
    /* a batch of 4 "images" in (0, 1) */
    Rng data;
    rng_init(&data, 7);
    float *x = plan_input(p, 0);
    rng_uniform(&data, x, 4 * 28 * 28);
    double loss = loss_at(p, bg.loss);
    CHECK(loss > 100 && loss < 2000, "the loss of an untrained VAE is plausible (%.2f nats)", loss);
    for (int g = 0; g < bg.ngrads; g++) {
        Param *pr = &prog->params.items[bg.grad_param[g]];
        float *an = malloc(pr->size * sizeof *an);
        memcpy(an, plan_node(p, bg.grad_node[g]), pr->size * sizeof *an);
        double num = 0, den = 0;
        for (int s = 0; s < 24; s++) {
            /* the largest gradients and a spread of others */
            int64_t k = s == 0 ? 0 : (int64_t)((uint64_t)s * 2654435761u % (uint64_t)pr->size);
            if (s == 1) for (int64_t j = 0; j < pr->size; j++) if (fabsf(an[j]) > fabsf(an[k])) k = j;
            float saved = pr->data[k], h = 1e-2f;
            pr->data[k] = saved + h;
            double up = loss_at(p, bg.loss);
            pr->data[k] = saved - h;
            double down = loss_at(p, bg.loss);
            pr->data[k] = saved;
            double fd = (up - down) / (2 * h);
            num += (fd - an[k]) * (fd - an[k]);
            den += fd * fd;
        }
        double rel = sqrt(num / fmax(den, 1e-12));
        CHECK(rel < 2e-2, "VAE loss gradient wrt %-12s vs finite differences: relative error %.2e", pr->name, rel);
        free(an);
    }
    plan_free(p);
    jit_destroy(jit);
    CHECK_DONE();
}
