/* test_plan.c: the memory planner (compiler/plan.c) on real graphs: the steps of the MLP
 * VAE's and the conv autoencoder's training steps (forward, backward, gradients) and the
 * CycleGAN generators' step. For each plan:
 *  - the schedule is simulated over the arena: every float remembers the buffer that last
 *    wrote it, and no step may read a buffer whose memory another buffer has since written;
 *    kept buffers (loss, gradients, reports) must still own their memory after the last step;
 *  - the arena is smaller than the temps would take with a buffer each, and some kernels
 *    write in place (over an operand read only at the element written);
 *  - the loss and every gradient are bit-identical with the planner on and off, over two
 *    runs (the second run starts from the first run's leftovers in the shared memory); this
 *    also checks the in-place kernels, which the simulation cannot see inside a step. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "plan.h"
#include "program.h"
#include "rng.h"

/* the first violation as text, or "" */
static void simulate(const Plan *p, char *why, int whylen) {
    int *owner = malloc((p->arena_floats + 1) * sizeof *owner);
    for (int64_t i = 0; i < p->arena_floats; i++) owner[i] = -1;
    for (int b = 0; b < p->nbufs; b++)        /* inputs are filled before the run */
        if (p->bufs[b].kind == BUF_INPUT)
            for (int64_t i = 0; i < p->bufs[b].size; i++) owner[p->bufs[b].offset + i] = b;
    why[0] = 0;
    int reads[K_MAXARGS + 2], nreads;
    for (int s = 0; s < p->nsteps && !why[0]; s++) {
        int w = plan_step_buffers(p, s, reads, &nreads);
        for (int r = 0; r < nreads && !why[0]; r++) {
            const Buffer *b = &p->bufs[reads[r]];
            if (b->offset < 0) continue;       /* parameters, constants */
            for (int64_t i = 0; i < b->size; i++)
                if (owner[b->offset + i] != reads[r]) {
                    snprintf(why, whylen, "step %d reads b%d whose float %lld belongs to b%d", s,
                             reads[r], (long long)i, owner[b->offset + i]);
                    break;
                }
        }
        if (w >= 0 && p->bufs[w].offset >= 0) {
            const Buffer *b = &p->bufs[w];
            if (b->offset + b->size > p->arena_floats)
                snprintf(why, whylen, "b%d ends past the arena", w);
            else
                for (int64_t i = 0; i < b->size; i++) owner[b->offset + i] = w;
        }
    }
    for (int b = 0; b < p->nbufs && !why[0]; b++)
        if (p->bufs[b].keep && p->bufs[b].offset >= 0)
            for (int64_t i = 0; i < p->bufs[b].size; i++)
                if (owner[p->bufs[b].offset + i] != b) {
                    snprintf(why, whylen, "kept b%d lost float %lld to b%d after the run", b,
                             (long long)i, owner[p->bufs[b].offset + i]);
                    break;
                }
    free(owner);
}

static Plan *build(Program *prog, BlockGraph *bg, int no_plan, Jit *jit, int *roots, int *nroots) {
    int n = 0;
    roots[n++] = bg->loss;
    for (int i = 0; i < bg->ngrads; i++) roots[n++] = bg->grad_node[i];
    for (int i = 0; i < bg->nreports; i++) roots[n++] = bg->report_node[i];
    *nroots = n;
    LowerOptions lo = { .fuse = 1, .no_plan = no_plan };
    char err[256];
    Plan *p = plan_build(&bg->g, &prog->params, roots, n, bg->ninputs, &lo, jit, err, sizeof err);
    if (!p) printf("# %s\n", err);
    return p;
}

static void fill_inputs(Plan *p, int ninputs) {
    Rng data;
    rng_init(&data, 7);
    for (int k = 0; k < ninputs; k++) {
        float *x = plan_input(p, k);
        if (x) rng_uniform(&data, x, p->bufs[p->input_buf[k]].size);
    }
}

static void check_program(const char *path, int batch, int remat, Jit *jit) {
    Program *prog = sema_load(path, NULL, 0);
    CHECK(prog != NULL, "%s loads", path);
    if (!prog) return;
    sema_init_params(prog, 1);
    Train *t = &prog->trains[0];
    BlockGraph bg;
    int rc = sema_build_block(prog, t, t->steps[0], batch, 1, &bg);
    CHECK(rc == 0 && bg.loss >= 0, "%s: the first step builds", path);
    if (rc) return;
    int roots[1024], nroots;
    Plan *on = build(prog, &bg, 0, jit, roots, &nroots), *off = build(prog, &bg, 1, jit, roots, &nroots);
    CHECK(on && off, "%s: the step compiles with and without the planner", path);
    if (!on || !off) return;
    char why[256];
    simulate(on, why, sizeof why);
    CHECK(!why[0], "%s: %d steps, %d buffers: no step reads memory another buffer overwrote%s%s",
          path, on->nsteps, on->nbufs, why[0] ? ": " : "", why);
    CHECK(on->arena_floats < on->temp_floats && off->arena_floats == off->temp_floats,
          "%s: the arena holds %.2f MB instead of %.2f MB", path, on->arena_floats * 4e-6, on->temp_floats * 4e-6);
    CHECK(on->in_place > 0 && off->in_place == 0, "%s: %d elementwise kernels write over an operand (none without the planner)",
          path, on->in_place);
    int split = on->kept_floats > 0 && on->kept_floats < on->arena_floats;
    for (int b = 0; b < on->nbufs; b++)
        if (on->bufs[b].offset >= 0 && on->bufs[b].last == INT_MAX && on->bufs[b].offset + on->bufs[b].size > on->kept_floats) split = 0;
    CHECK(split, "%s: kept buffers in the plan's own %.2f MB, the others in %.2f MB of shared scratch", path,
          on->kept_floats * 4e-6, (on->arena_floats - on->kept_floats) * 4e-6);
    if (remat >= 0)
        CHECK(on->rematerialised >= remat && off->rematerialised == on->rematerialised,
              "%s, batch %d: %d window buffers recomputed where the weight gradient reads them (at least %d)",
              path, batch, on->rematerialised, remat);
    int same = 1;
    for (int run = 0; run < 2; run++) {
        fill_inputs(on, bg.ninputs);
        fill_inputs(off, bg.ninputs);
        Rng r1, r2;
        rng_init(&r1, 99 + run);
        rng_init(&r2, 99 + run);
        plan_run(on, &r1);
        plan_run(off, &r2);
        for (int r = 0; r < nroots; r++) {
            const float *a = plan_node(on, roots[r]), *b = plan_node(off, roots[r]);
            int64_t size = ir_numel(&bg.g.nodes[roots[r]]);
            if (!a || !b || memcmp(a, b, size * sizeof *a)) {
                same = 0;
                printf("# run %d: root %%%d differs\n", run, roots[r]);
            }
        }
    }
    CHECK(same, "%s: loss, %d gradients and reports bit-identical with and without the planner (two runs)",
          path, bg.ngrads);
    plan_free(on);
    plan_free(off);
}

/* A plan built after another grows the shared scratch (the same step at a larger batch):
 * the first plan, run again after the second overwrote the scratch, finds its buffers in
 * the new scratch and computes the same loss and gradients. */
static void check_shared_scratch(Jit *jit) {
    Program *prog = sema_load("examples/conv_ae.gm", NULL, 0);
    CHECK(prog != NULL, "examples/conv_ae.gm loads");
    if (!prog) return;
    sema_init_params(prog, 1);
    BlockGraph bs, bb;
    int rs[1024], rb[1024], ns, nb;
    Program *small = prog, *big = prog;
    if (sema_build_block(small, &small->trains[0], small->trains[0].steps[0], 2, 1, &bs) != 0 ||
        sema_build_block(big, &big->trains[0], big->trains[0].steps[0], 96, 1, &bb) != 0) return;
    Plan *ps = build(small, &bs, 0, jit, rs, &ns);
    if (!ps) return;
    int64_t before = plan_scratch_floats();
    float *first = malloc(ns * sizeof *first);
    Rng r;
    fill_inputs(ps, bs.ninputs);
    rng_init(&r, 5);
    plan_run(ps, &r);
    for (int i = 0; i < ns; i++) first[i] = plan_node(ps, rs[i])[0];
    Plan *pb = build(big, &bb, 0, jit, rb, &nb);
    if (!pb) return;
    Rng r2;
    rng_init(&r2, 6);
    plan_run(pb, &r2);                     /* its temps overwrite the scratch */
    fill_inputs(ps, bs.ninputs);
    rng_init(&r, 5);
    plan_run(ps, &r);
    int same = 1;
    for (int i = 0; i < ns; i++) same &= memcmp(&first[i], plan_node(ps, rs[i]), sizeof *first) == 0;
    CHECK(plan_scratch_floats() > before && same,
          "the shared scratch grew from %.2f to %.2f MB for a bigger plan, and the first plan, run again, "
          "gives the same loss and gradients", before * 4e-6, plan_scratch_floats() * 4e-6);
    free(first);
    plan_free(ps);
    plan_free(pb);
}

/* kernels that differ only in where they start in their buffers share one compiled body
 * (lower.c moves each slot's offset into the kernel's argument table): the left and right
 * halves of x, each doubled into a buffer of its own, compile once and still read and write
 * the right places */
static void check_shared_offsets(Jit *jit) {
    IrGraph g;
    ir_init(&g);
    int64_t shape[2] = { 4, 10 }, half[2] = { 4, 5 }, at0[2] = { 0, 0 }, at5[2] = { 0, 5 };
    int x = ir_leaf(&g, IR_INPUT, 2, shape, 0), two = ir_const(&g, 2.0f, 0, NULL);
    int roots[2] = { ir_binary(&g, IR_MUL, ir_slice(&g, x, at0, half), two),
                     ir_binary(&g, IR_MUL, ir_slice(&g, x, at5, half), two) };
    ParamTable params = { 0 };
    LowerOptions lo = { .fuse = 1 };
    char err[256] = "";
    Plan *p = plan_build(&g, &params, roots, 2, 1, &lo, jit, err, sizeof err);
    CHECK(p != NULL, "slices: plan built (%s)", err);
    if (!p) { ir_free(&g); return; }
    float *in = plan_input(p, 0);
    for (int i = 0; i < 40; i++) in[i] = (float)i;
    Rng rng;
    rng_init(&rng, 1);
    plan_run(p, &rng);
    const float *y = plan_node(p, roots[0]), *z = plan_node(p, roots[1]);
    int ok = y && z;
    for (int r = 0; ok && r < 4; r++)
        for (int c = 0; c < 5; c++)
            ok &= y[r * 5 + c] == 2.0f * (r * 10 + c) && z[r * 5 + c] == 2.0f * (r * 10 + 5 + c);
    CHECK(p->nkernels == 2 && p->ncompiled == 1, "slices: 2 kernels, %d compiled (want 1)", p->ncompiled);
    CHECK(ok, "slices: both halves doubled, each from and to the right place");
    plan_free(p);
    ir_free(&g);
}

int main(void) {
    setenv("GMC_STDLIB", "stdlib", 0);
    Jit *jit = jit_create();
    check_program("examples/vae_mlp.gm", 4, 0, jit);
    check_program("examples/conv_ae.gm", 2, -1, jit);
    check_program("examples/cyclegan.gm", 1, -1, jit);
    check_shared_scratch(jit);
    check_shared_offsets(jit);
    /* every convolution of conv_ae is implicit now (no window buffers left, and last:
     * its large scratch would spoil check_shared_scratch's growth); with im2col kept,
     * its windows over 1 MB are recomputed where the weight gradient reads them */
    setenv("GMC_NO_IMPLICIT_CONV", "1", 1);
    check_program("examples/conv_ae.gm", 48, 1, jit);
    unsetenv("GMC_NO_IMPLICIT_CONV");
    jit_destroy(jit);
    CHECK_DONE();
}
