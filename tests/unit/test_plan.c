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
 *    also checks the in-place kernels, which the simulation cannot see inside a step.
 * And reshapes lowered as views (an upsampling into a concat, a slice split into blocks), and
 * sums into few outputs split in two kernels, cheap ops recomputed by their readers, and
 * pooling windows read from the image. */
#include <limits.h>
#include <math.h>
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
        for (int out = 0; out < 2; out++, w = plan_step_second_write(p, s))   /* a convolution may write two */
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

/* Reshapes as views (lower.c): the nearest upsampling's broadcast goes straight into its
 * slice of a concat, and the concat's slice, split into 2x2 blocks and summed (the
 * upsampling's gradient), is read in place: no broadcast or slice kernel, no buffer for
 * them, and the same bits as the unfused path that copies both. */
static void check_reshape_views(Jit *jit) {
    IrGraph g;
    ir_init(&g);
    int64_t xs[4] = { 2, 3, 4, 5 }, ys[4] = { 2, 6, 8, 3 }, at[4] = { 0 }, part[4] = { 2, 6, 8, 5 };
    int64_t blocks[6] = { 2, 3, 2, 4, 2, 5 };
    int x = ir_leaf(&g, IR_INPUT, 4, xs, 0), y = ir_leaf(&g, IR_INPUT, 4, ys, 1);
    int up = ir_upsample2d(&g, x, 2, 2, 0);
    int c = ir_concat(&g, up, y, 3);
    int twice = ir_binary(&g, IR_MUL, c, ir_const(&g, 2.0f, 0, NULL));
    int down = ir_reduce(&g, IR_SUM, ir_reshape(&g, ir_slice(&g, twice, at, part), 6, blocks), (1u << 2) | (1u << 4));
    int roots[2] = { twice, down };
    ParamTable params = { 0 };
    Plan *p[2];
    for (int f = 0; f < 2; f++) {
        LowerOptions lo = { .fuse = !f };
        char err[256] = "";
        p[f] = plan_build(&g, &params, roots, 2, 2, &lo, jit, err, sizeof err);
        CHECK(p[f] != NULL, "reshape views: plan built, fusion %s (%s)", f ? "off" : "on", err);
        if (!p[f]) { ir_free(&g); return; }
        Rng data;
        rng_init(&data, 5);
        for (int k = 0; k < 2; k++) rng_uniform(&data, plan_input(p[f], k), p[f]->bufs[p[f]->input_buf[k]].size);
        Rng rng;
        rng_init(&rng, 1);
        plan_run(p[f], &rng);
    }
    int copies = 0, views = 1;
    for (int k = 0; k < p[0]->nkernels; k++)
        copies += strstr(p[0]->kernels[k]->name, "_broadcast") || strstr(p[0]->kernels[k]->name, "_slice");
    for (int i = 0; i < g.n; i++)
        if (g.nodes[i].op == IR_BROADCAST || g.nodes[i].op == IR_SLICE)
            views &= p[0]->node_buf[i] < 0;
    CHECK(copies == 0 && views && p[0]->nkernels == 4,
          "reshape views: concat (2 kernels), doubling and block sums: %d kernels, %d broadcast or slice copies "
          "(want 4, 0), upsampling and slice %s", p[0]->nkernels, copies, views ? "without buffers" : "in buffers");
    const float *xv = plan_input(p[0], 0), *yv = plan_input(p[0], 1);
    const float *t = plan_node(p[0], twice), *d = plan_node(p[0], down);
    int ok = t && d, same = ok && plan_node(p[1], twice) && plan_node(p[1], down) &&
             !memcmp(t, plan_node(p[1], twice), ir_numel(&g.nodes[twice]) * sizeof *t) &&
             !memcmp(d, plan_node(p[1], down), ir_numel(&g.nodes[down]) * sizeof *d);
    for (int n = 0; ok && n < 2; n++)
        for (int h = 0; h < 6; h++)
            for (int w = 0; w < 8; w++)
                for (int ch = 0; ch < 8; ch++) {
                    float v = ch < 5 ? xv[((n * 3 + h / 2) * 4 + w / 2) * 5 + ch] : yv[((n * 6 + h) * 8 + w) * 3 + ch - 5];
                    ok &= t[((n * 6 + h) * 8 + w) * 8 + ch] == 2 * v;
                    if (ch < 5 && h % 2 == 0 && w % 2 == 0)
                        ok &= d[((n * 3 + h / 2) * 4 + w / 2) * 5 + ch] == 8 * v;
                }
    CHECK(ok, "reshape views: the concat holds the upsampled x and y, the block sums 4 x 2x each x");
    CHECK(same, "reshape views: the same bits with fusion off (broadcast and slice copied)");
    plan_free(p[0]);
    plan_free(p[1]);
    ir_free(&g);
}

/* A sum of many elements into few outputs (a bias gradient, [C] from [N, H, W, C]) runs as
 * two kernels (lower.c's split_sum): per example into [N, C], then over N. Fusion off keeps
 * one kernel; a sum that keeps the leading axis is not split; the results agree with sums
 * in double. */
static void check_split_sum(Jit *jit) {
    IrGraph g;
    ir_init(&g);
    int64_t xs[4] = { 64, 8, 8, 32 };
    int x = ir_leaf(&g, IR_INPUT, 4, xs, 0);
    int roots[2] = { ir_reduce(&g, IR_SUM, x, 7u), ir_reduce(&g, IR_SUM, x, 6u) };   /* [32], [64, 32] */
    ParamTable params = { 0 };
    Plan *p[2];
    for (int f = 0; f < 2; f++) {
        LowerOptions lo = { .fuse = !f };
        char err[256] = "";
        p[f] = plan_build(&g, &params, roots, 2, 1, &lo, jit, err, sizeof err);
        CHECK(p[f] != NULL, "split sums: plan built, fusion %s (%s)", f ? "off" : "on", err);
        if (!p[f]) { ir_free(&g); return; }
        float *in = plan_input(p[f], 0);
        for (int64_t i = 0; i < 64 * 8 * 8 * 32; i++) in[i] = (float)((i * 7919) % 1000) * 0.001f - 0.3f;
        Rng rng;
        rng_init(&rng, 1);
        plan_run(p[f], &rng);
    }
    const Kernel *k0 = p[0]->kernels[0];
    CHECK(p[0]->nkernels == 3 && p[1]->nkernels == 2 && strstr(k0->name, "_sum_part") && k0->nout == 2 &&
          k0->dims[0] == 64 && k0->dims[1] == 32,
          "split sums: the bias-like sum is two kernels, [64 x 32] then over 64 (%d kernels fused, %d unfused; "
          "first %s), the per-example sum one", p[0]->nkernels, p[1]->nkernels, k0->name);
    const float *in = plan_input(p[0], 0), *b = plan_node(p[0], roots[0]), *u = plan_node(p[1], roots[0]);
    const float *pe = plan_node(p[0], roots[1]);
    double worst = 0;
    for (int c = 0; c < 32 && b && u && pe; c++) {
        double ref = 0;
        for (int64_t i = c; i < 64 * 8 * 8 * 32; i += 32) ref += in[i];
        double e1 = fabs(b[c] - ref) / (fabs(ref) + 1), e2 = fabs(u[c] - ref) / (fabs(ref) + 1);
        if (e1 > worst) worst = e1;
        if (e2 > worst) worst = e2;
        for (int n = 0; n < 64; n++) {
            double r = 0;
            for (int64_t i = n * 2048 + c; i < (n + 1) * 2048; i += 32) r += in[i];
            double e = fabs(pe[n * 32 + c] - r) / (fabs(r) + 1);
            if (e > worst) worst = e;
        }
    }
    CHECK(b && u && pe && worst < 1e-6, "split sums: fused and unfused sums within %.1e of sums in double", worst);
    plan_free(p[0]);
    plan_free(p[1]);
    ir_free(&g);
}

/* A cheap op of one buffer with several element-for-element readers (leaky relu's mask
 * x > 0, read by the forward where and by the gradient) is recomputed in each reader: no
 * kernel and no buffer of its own, the same bits as the unfused path. A mask read through a
 * broadcast keeps its buffer. */
static void check_cheap_recompute(Jit *jit) {
    IrGraph g;
    ir_init(&g);
    int64_t xs[2] = { 8, 300 }, rs[2] = { 8, 1 };
    int x = ir_leaf(&g, IR_INPUT, 2, xs, 0), dy = ir_leaf(&g, IR_INPUT, 2, xs, 1);
    int mask = ir_binary(&g, IR_GT, x, ir_const(&g, 0.0f, 0, NULL));
    int a = ir_const(&g, 0.3f, 0, NULL);
    int y = ir_where(&g, mask, x, ir_binary(&g, IR_MUL, x, a));
    int dx = ir_where(&g, mask, dy, ir_binary(&g, IR_MUL, dy, a));
    int row = ir_reduce(&g, IR_SUM, x, 2u);                       /* [8] */
    int rmask = ir_binary(&g, IR_GT, ir_reshape(&g, row, 2, rs), ir_const(&g, 0.0f, 0, NULL));
    int z = ir_binary(&g, IR_MUL, rmask, x), z2 = ir_binary(&g, IR_MUL, rmask, dy);    /* broadcast */
    int roots[4] = { y, dx, z, z2 };
    ParamTable params = { 0 };
    Plan *p[2];
    for (int f = 0; f < 2; f++) {
        LowerOptions lo = { .fuse = !f };
        char err[256] = "";
        p[f] = plan_build(&g, &params, roots, 4, 2, &lo, jit, err, sizeof err);
        CHECK(p[f] != NULL, "cheap recompute: plan built, fusion %s (%s)", f ? "off" : "on", err);
        if (!p[f]) { ir_free(&g); return; }
        Rng data;
        rng_init(&data, 3);
        for (int k = 0; k < 2; k++) {
            float *in = plan_input(p[f], k);
            rng_normal(&data, in, 8 * 300);
        }
        Rng rng;
        rng_init(&rng, 1);
        plan_run(p[f], &rng);
    }
    CHECK(p[0]->node_buf[mask] < 0 && p[0]->node_buf[rmask] >= 0,
          "cheap recompute: the mask x > 0 has no buffer (read by two kernels), the broadcast one keeps its own");
    int same = 1;
    for (int r = 0; r < 4; r++) {
        const float *u = plan_node(p[0], roots[r]), *v = plan_node(p[1], roots[r]);
        same &= u && v && !memcmp(u, v, ir_numel(&g.nodes[roots[r]]) * sizeof *u);
    }
    CHECK(same, "cheap recompute: leaky relu and its gradient bit-identical with fusion off");
    plan_free(p[0]);
    plan_free(p[1]);
    ir_free(&g);
}

/* Pooling windows without padding are read straight from the image (lower.c's im2col
 * view): no im2col step for max and mean pooling, the same bits as the unfused path's
 * im2col; a padded window keeps its im2col step. */
static void check_window_views(Jit *jit) {
    IrGraph g;
    ir_init(&g);
    int64_t xs[4] = { 2, 6, 7, 3 };
    int x = ir_leaf(&g, IR_INPUT, 4, xs, 0);
    ConvWindow w = { .kh = 2, .kw = 2, .sy = 2, .sx = 2, .dy = 1, .dx = 1 };
    ConvWindow o = { .kh = 3, .kw = 2, .sy = 1, .sx = 2, .dy = 1, .dx = 1 };   /* overlapping */
    ConvWindow pad = { .kh = 2, .kw = 2, .sy = 2, .sx = 2, .dy = 1, .dx = 1, .pb = 1, .pr = 1 };
    int roots[4] = { ir_pool2d(&g, x, &w, 1), ir_pool2d(&g, x, &w, 0), ir_pool2d(&g, x, &o, 1),
                     ir_pool2d(&g, x, &pad, 1) };
    ParamTable params = { 0 };
    Plan *p[2];
    for (int f = 0; f < 2; f++) {
        LowerOptions lo = { .fuse = !f };
        char err[256] = "";
        p[f] = plan_build(&g, &params, roots, 4, 1, &lo, jit, err, sizeof err);
        CHECK(p[f] != NULL, "window views: plan built, fusion %s (%s)", f ? "off" : "on", err);
        if (!p[f]) { ir_free(&g); return; }
        Rng data;
        rng_init(&data, 4);
        rng_normal(&data, plan_input(p[f], 0), 2 * 6 * 7 * 3);
        Rng rng;
        rng_init(&rng, 1);
        plan_run(p[f], &rng);
    }
    int steps[2] = { 0, 0 };
    for (int f = 0; f < 2; f++)
        for (int s = 0; s < p[f]->nsteps; s++) steps[f] += p[f]->steps[s].kind == STEP_IM2COL;
    CHECK(steps[0] == 1 && steps[1] == 4, "window views: %d im2col steps fused (want 1: the padded pool's), %d unfused (want 4)",
          steps[0], steps[1]);
    int same = 1;
    for (int r = 0; r < 4; r++) {
        const float *u = plan_node(p[0], roots[r]), *v = plan_node(p[1], roots[r]);
        same &= u && v && !memcmp(u, v, ir_numel(&g.nodes[roots[r]]) * sizeof *u);
    }
    const float *in = plan_input(p[0], 0), *mx = plan_node(p[0], roots[0]);
    for (int n = 0; same && n < 2; n++)          /* one max by hand: window (1, 2) of channel 2 */
        same &= mx[((n * 3 + 1) * 3 + 2) * 3 + 2] ==
                fmaxf(fmaxf(in[((n * 6 + 2) * 7 + 4) * 3 + 2], in[((n * 6 + 2) * 7 + 5) * 3 + 2]),
                      fmaxf(in[((n * 6 + 3) * 7 + 4) * 3 + 2], in[((n * 6 + 3) * 7 + 5) * 3 + 2]));
    CHECK(same, "window views: max, mean, overlapping and padded pools bit-identical with fusion off");
    plan_free(p[0]);
    plan_free(p[1]);
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
    check_reshape_views(jit);
    check_split_sum(jit);
    check_cheap_recompute(jit);
    check_window_views(jit);
    /* every convolution of conv_ae is implicit now (no window buffers left, and last:
     * its large scratch would spoil check_shared_scratch's growth); with im2col kept,
     * its windows over 1 MB are recomputed where the weight gradient reads them */
    setenv("GMC_NO_IMPLICIT_CONV", "1", 1);
    check_program("examples/conv_ae.gm", 48, 1, jit);
    unsetenv("GMC_NO_IMPLICIT_CONV");
    jit_destroy(jit);
    CHECK_DONE();
}
