/* test_gradcheck.c: every IR op's gradient (built by autodiff.c) against central finite
 * differences, through the whole lowering: fused JIT kernels, unfused kernels, and the
 * reference interpreter. Losses are sum(op(...) * w) with a fixed random w, so every output
 * element matters with its own weight.
 * Second derivatives (grad of a function of a gradient, as WGAN-GP's penalty needs): the loss
 * is sum_i sum(w_i * d/dx_i sum(w * op(x)^2)), whose gradient differentiates op's gradient
 * rules (with a cotangent that depends on x, so linear ops are exercised too). */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "plan.h"
#include "threads.h"

typedef struct Case {
    const char *name;
    int nin;
    int ndim[3];
    int64_t shape[3][4];
    float lo, hi;            /* inputs drawn uniformly from [lo, hi] */
} Case;

static ParamTable params;
static Jit *jit;

static int add_input(IrGraph *g, int ndim, const int64_t *shape, float lo, float hi, Rng *rng) {
    char name[32];
    snprintf(name, sizeof name, "in%d", params.n);
    int idx = params_add(&params, strdup(name), "t", ndim, shape, INIT_ZEROS, 0, 0, 1, (Loc){ 0 });
    Param *p = &params.items[idx];
    rng_uniform(rng, p->data, p->size);
    for (int64_t i = 0; i < p->size; i++) p->data[i] = lo + (hi - lo) * p->data[i];
    return ir_leaf(g, IR_PARAM, ndim, shape, idx);
}

/* a constant tensor of ids: whole numbers in [0, v) with repeats */
static int ids_data(IrGraph *g, int ndim, const int64_t *shape, int v) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *d = malloc(n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = (float)((i * 7 + 3) % v);
    return ir_data(g, d, ndim, shape);
}

/* builds op(inputs) for the named case */
static int apply(IrGraph *g, const char *name, const int *x) {
    static const struct { const char *name; IrOp op; } table[] = {
        { "neg", IR_NEG }, { "exp", IR_EXP }, { "log", IR_LOG }, { "log1p", IR_LOG1P },
        { "sqrt", IR_SQRT }, { "rsqrt", IR_RSQRT }, { "abs", IR_ABS }, { "tanh", IR_TANH },
        { "sigmoid", IR_SIGMOID }, { "softplus", IR_SOFTPLUS }, { "erf", IR_ERF }, { "sin", IR_SIN }, { "cos", IR_COS },
        { "add", IR_ADD }, { "sub", IR_SUB }, { "mul", IR_MUL }, { "div", IR_DIV },
        { "max", IR_MAX }, { "min", IR_MIN }, { "pow", IR_POW },
        { "add_bcast", IR_ADD }, { "mul_bcast", IR_MUL }, { "div_bcast", IR_DIV },
        { "max_scalar0", IR_MAX },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(name, table[i].name)) {
            if (!strcmp(name, "max_scalar0")) return ir_binary(g, IR_MAX, x[0], ir_const(g, 0, 0, NULL));
            return ir_is_unary(table[i].op) ? ir_unary(g, table[i].op, x[0]) : ir_binary(g, table[i].op, x[0], x[1]);
        }
    if (!strcmp(name, "where")) return ir_where(g, ir_binary(g, IR_GT, x[0], ir_const(g, 0, 0, NULL)), x[0], x[1]);
    if (!strcmp(name, "reshape")) { int64_t s[2] = { 6, 4 }; return ir_reshape(g, x[0], 2, s); }
    if (!strcmp(name, "transpose")) { int perm[3] = { 2, 0, 1 }; return ir_transpose(g, x[0], perm); }
    if (!strcmp(name, "broadcast")) { int64_t s[3] = { 3, 4, 5 }; return ir_broadcast(g, x[0], 3, s); }
    if (!strcmp(name, "sum_all")) return ir_reduce(g, IR_SUM, x[0], 7);
    if (!strcmp(name, "sum_axis0")) return ir_reduce(g, IR_SUM, x[0], 1);
    if (!strcmp(name, "sum_axis1")) return ir_reduce(g, IR_SUM, x[0], 2);
    if (!strcmp(name, "sum_axes02")) return ir_reduce(g, IR_SUM, x[0], 5);
    if (!strcmp(name, "maxr_axis1")) return ir_reduce(g, IR_MAXR, x[0], 2);
    if (!strcmp(name, "minr_axis2")) return ir_reduce(g, IR_MINR, x[0], 4);
    if (!strcmp(name, "matmul")) return ir_matmul(g, x[0], x[1], 0, 0);
    if (!strcmp(name, "matmul_tb")) return ir_matmul(g, x[0], x[1], 0, 1);
    if (!strcmp(name, "matmul_ta")) return ir_matmul(g, x[0], x[1], 1, 0);
    if (!strcmp(name, "matmul_tab")) return ir_matmul(g, x[0], x[1], 1, 1);
    if (!strcmp(name, "matmul_batched")) return ir_matmul(g, x[0], x[1], 0, 0);
    if (!strcmp(name, "bmm") || !strcmp(name, "bmm4")) return ir_matmul(g, x[0], x[1], 0, 0);
    if (!strcmp(name, "bmm_tb")) return ir_matmul(g, x[0], x[1], 0, 1);
    if (!strcmp(name, "bmm_ta")) return ir_matmul(g, x[0], x[1], 1, 0);
    if (!strcmp(name, "bmm_tab")) return ir_matmul(g, x[0], x[1], 1, 1);
    /* the convolution family (ir_conv.c), for its second derivatives (conv critics) */
    ConvWindow win = { .kh = 3, .kw = 3, .sy = 2, .sx = 2, .dy = 1, .dx = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1 };
    if (!strcmp(name, "conv2d")) return ir_conv2d(g, x[0], x[1], &win, 1);
    if (!strcmp(name, "conv2d_transpose")) return ir_conv2d_transpose(g, x[0], x[1], &win, 5, 5);
    if (!strcmp(name, "maxpool")) {
        /* x in [-0.1, 0.1] plus distinct offsets 0.5 apart: no finite-difference step
         * changes which tap wins a window */
        IrNode xn = g->nodes[x[0]];
        float *off = malloc(ir_numel(&xn) * sizeof *off);
        for (int64_t i = 0; i < ir_numel(&xn); i++) off[i] = 0.5f * (float)((i * 7) % ir_numel(&xn));
        int shifted = ir_binary(g, IR_ADD, x[0], ir_data(g, off, xn.ndim, xn.shape));
        return ir_pool2d(g, shifted, &win, 1);
    }
    if (!strcmp(name, "avgpool")) return ir_pool2d(g, x[0], &win, 0);
    if (!strcmp(name, "upsample_bilinear")) return ir_upsample2d(g, x[0], 2, 2, 1);
    if (!strcmp(name, "cumsum1")) return ir_scan(g, IR_CUMSUM, x[0], 1, 0);
    if (!strcmp(name, "cumsum_rev")) return ir_scan(g, IR_CUMSUM, x[0], 2, 1);
    if (!strcmp(name, "cumprod0")) return ir_scan(g, IR_CUMPROD, x[0], 0, 0);
    if (!strcmp(name, "cumprod_rev")) return ir_scan(g, IR_CUMPROD, x[0], 2, 1);
    if (!strcmp(name, "gather")) { int64_t s[2] = { 2, 4 }; return ir_gather(g, x[0], ids_data(g, 2, s, 5)); }
    if (!strcmp(name, "gather_1d")) { int64_t s[1] = { 4 }; return ir_gather(g, x[0], ids_data(g, 1, s, 3)); }
    if (!strcmp(name, "scatter")) { int64_t s[2] = { 2, 4 }; return ir_scatter(g, x[0], ids_data(g, 2, s, 5), 5); }
    /* a composite: softmax cross-entropy shape of computation, exercises fusion + reductions */
    if (!strcmp(name, "logsumexp")) {
        int m = ir_reduce(g, IR_MAXR, x[0], 2);
        int64_t keep[2] = { g->nodes[x[0]].shape[0], 1 };
        int mk = ir_reshape(g, m, 2, keep);
        int e = ir_unary(g, IR_EXP, ir_binary(g, IR_SUB, x[0], mk));
        return ir_binary(g, IR_ADD, ir_unary(g, IR_LOG, ir_reduce(g, IR_SUM, e, 2)), m);
    }
    return -1;
}

static double run_loss(Plan *p, int loss) {
    Rng rng = { 0, 0 };
    plan_run(p, &rng);
    return *plan_node(p, loss);
}

static int random_data(IrGraph *g, const IrNode *like, Rng *rng) {
    float *w = malloc((ir_numel(like) ? ir_numel(like) : 1) * sizeof *w);
    rng_uniform(rng, w, ir_numel(like));
    for (int64_t i = 0; i < ir_numel(like); i++) w[i] = 2 * w[i] - 1;
    return ir_data(g, w, like->ndim, like->shape);
}

static int sum_all(IrGraph *g, int a) {
    int nd = g->nodes[a].ndim;
    return ir_reduce(g, IR_SUM, a, nd ? (1u << nd) - 1 : 0);
}

static void check_case(const Case *c, int fuse, int interpret, int order) {
    IrGraph g;
    ir_init(&g);
    params.n = 0;
    Rng rng;
    rng_init(&rng, 42);
    int x[3];
    for (int i = 0; i < c->nin; i++) x[i] = add_input(&g, c->ndim[i], c->shape[i], c->lo, c->hi, &rng);
    int y = apply(&g, c->name, x);
    if (y < 0) { CHECK(0, "%s: could not build", c->name); return; }
    IrNode yn = g.nodes[y];
    int wn = random_data(&g, &yn, &rng), loss, grads[3], roots[4];
    if (order == 1) loss = sum_all(&g, ir_binary(&g, IR_MUL, y, wn));
    else {
        int inner = sum_all(&g, ir_binary(&g, IR_MUL, ir_binary(&g, IR_MUL, y, y), wn)), first[3];
        ir_grad(&g, inner, x, c->nin, first);
        loss = -1;
        for (int i = 0; i < c->nin; i++) {
            IrNode xn = g.nodes[x[i]];
            int term = sum_all(&g, ir_binary(&g, IR_MUL, first[i], random_data(&g, &xn, &rng)));
            loss = loss < 0 ? term : ir_binary(&g, IR_ADD, loss, term);
        }
    }
    ir_grad(&g, loss, x, c->nin, grads);
    roots[0] = loss;
    for (int i = 0; i < c->nin; i++) roots[i + 1] = grads[i];
    LowerOptions lo = { .fuse = fuse, .interpret = interpret };
    char err[256];
    Plan *p = plan_build(&g, &params, roots, c->nin + 1, 0, &lo, jit, err, sizeof err);
    if (!p) { CHECK(0, "%s: plan failed: %s", c->name, err); ir_free(&g); return; }
    run_loss(p, loss);
    /* every analytic gradient first: the finite-difference runs overwrite the plan's buffers */
    float *analytics[3];
    for (int i = 0; i < c->nin; i++) {
        Param *pr = &params.items[g.nodes[x[i]].slot];
        analytics[i] = malloc(pr->size * sizeof(float));
        memcpy(analytics[i], plan_node(p, grads[i]), pr->size * sizeof(float));
    }
    double worst = 0;
    for (int i = 0; i < c->nin; i++) {
        Param *pr = &params.items[g.nodes[x[i]].slot];
        float *analytic = analytics[i];
        for (int64_t k = 0; k < pr->size; k++) {
            float saved = pr->data[k];
            float h = 1e-2f * fmaxf(1.0f, fabsf(saved));
            pr->data[k] = saved + h;
            double up = run_loss(p, loss);
            pr->data[k] = saved - h;
            double down = run_loss(p, loss);
            pr->data[k] = saved;
            double fd = (up - down) / (2 * (double)h);
            double e = fabs(fd - analytic[k]) / fmax(1.0, fabs(fd));
            if (e > worst) worst = e;
        }
        free(analytic);
    }
    CHECK(worst < 2e-2, "%s %-14s %s: max error %.2e vs finite differences",
          order == 1 ? "grad" : "grad of grad", c->name, interpret ? "interpreted" : fuse ? "fused JIT" : "unfused JIT", worst);
    plan_free(p);
    ir_free(&g);
}

/* gather and its adjoint at a size the runtime splits across threads (rows by ids, the
 * scatter by columns), against a plain loop: forward rows and the table's gradient */
static void check_big_gather(void) {
    enum { V = 300, D = 70, M = 2000 };
    IrGraph g;
    ir_init(&g);
    params.n = 0;
    Rng rng;
    rng_init(&rng, 9);
    int64_t ts[2] = { V, D }, is[1] = { M };
    int table = add_input(&g, 2, ts, -1, 1, &rng);
    float *ids = malloc(M * sizeof *ids);
    for (int i = 0; i < M; i++) ids[i] = (float)((i * 37 + i / 7) % V);
    ids[5] = -1; ids[6] = V;                       /* out of range: NaN rows, no gradient */
    int y = ir_gather(&g, table, ir_data(&g, ids, 1, is));
    IrNode yn = g.nodes[y];
    int w = random_data(&g, &yn, &rng);
    int loss = sum_all(&g, ir_binary(&g, IR_MUL, ir_where(&g, ir_binary(&g, IR_EQ, y, y), y, ir_const(&g, 0, 0, NULL)), w));
    int grad;
    ir_grad(&g, loss, &table, 1, &grad);
    int roots[3] = { loss, grad, y };
    LowerOptions lo = { .fuse = 1 };
    char err[256];
    Plan *p = plan_build(&g, &params, roots, 3, 0, &lo, jit, err, sizeof err);
    run_loss(p, loss);
    const float *t = params.items[0].data, *wd = g.consts[g.nodes[w].slot];
    const float *got_y = plan_node(p, y), *got_g = plan_node(p, grad);
    double *ref = calloc(V * D, sizeof *ref);
    int rows_ok = 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < D; j++) {
            int r = (int)ids[i];
            if (r < 0 || r >= V) { rows_ok &= isnan(got_y[i * D + j]); continue; }
            rows_ok &= got_y[i * D + j] == t[r * D + j];
            ref[r * D + j] += wd[i * D + j];
        }
    double worst = 0;
    for (int k = 0; k < V * D; k++) worst = fmax(worst, fabs(got_g[k] - ref[k]));
    CHECK(rows_ok, "gather of %d ids from [%d, %d] on %d threads: the rows, NaN rows for bad ids", M, V, D, threads_count());
    CHECK(worst < 1e-4, "scatter (gather's gradient) on %d threads: max error %.1e vs a plain loop", threads_count(), worst);
    free(ref);
    plan_free(p);
    ir_free(&g);
}

int main(void) {
    jit = jit_create();
    CHECK(jit != NULL, "LLVM JIT created");
    Case cases[] = {
        { "neg", 1, { 2 }, { { 3, 4 } }, -2, 2 },
        { "exp", 1, { 2 }, { { 3, 4 } }, -2, 2 },
        { "log", 1, { 2 }, { { 3, 4 } }, 0.5f, 3 },
        { "log1p", 1, { 2 }, { { 3, 4 } }, -0.5f, 3 },
        { "sqrt", 1, { 2 }, { { 3, 4 } }, 0.5f, 3 },
        { "rsqrt", 1, { 2 }, { { 3, 4 } }, 0.5f, 3 },
        { "abs", 1, { 2 }, { { 3, 4 } }, 0.2f, 2 },
        { "tanh", 1, { 2 }, { { 3, 4 } }, -2, 2 },
        { "sigmoid", 1, { 2 }, { { 3, 4 } }, -4, 4 },
        { "softplus", 1, { 2 }, { { 3, 4 } }, -4, 4 },
        { "erf", 1, { 2 }, { { 3, 4 } }, -2, 2 },
        { "sin", 1, { 2 }, { { 3, 4 } }, -3, 3 },
        { "cos", 1, { 2 }, { { 3, 4 } }, -3, 3 },
        { "add", 2, { 2, 2 }, { { 3, 4 }, { 3, 4 } }, -2, 2 },
        { "sub", 2, { 2, 2 }, { { 3, 4 }, { 3, 4 } }, -2, 2 },
        { "mul", 2, { 2, 2 }, { { 3, 4 }, { 3, 4 } }, -2, 2 },
        { "div", 2, { 2, 2 }, { { 3, 4 }, { 3, 4 } }, 0.5f, 2 },
        { "max", 2, { 2, 2 }, { { 3, 4 }, { 3, 4 } }, -2, 2 },
        { "min", 2, { 2, 2 }, { { 3, 4 }, { 3, 4 } }, -2, 2 },
        { "pow", 2, { 2, 2 }, { { 3, 4 }, { 3, 4 } }, 0.5f, 2 },
        { "add_bcast", 2, { 2, 1 }, { { 3, 4 }, { 4 } }, -2, 2 },
        { "mul_bcast", 2, { 3, 2 }, { { 2, 3, 4 }, { 3, 1 } }, -2, 2 },
        { "div_bcast", 2, { 2, 2 }, { { 3, 4 }, { 3, 1 } }, 0.5f, 2 },
        { "max_scalar0", 1, { 2 }, { { 3, 4 } }, -2, 2 },
        { "where", 2, { 2, 2 }, { { 3, 4 }, { 3, 4 } }, -2, 2 },
        { "reshape", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "transpose", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "broadcast", 1, { 3 }, { { 3, 1, 5 } }, -2, 2 },
        { "sum_all", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "sum_axis0", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "sum_axis1", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "sum_axes02", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "maxr_axis1", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "minr_axis2", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "matmul", 2, { 2, 2 }, { { 3, 4 }, { 4, 5 } }, -1, 1 },
        { "matmul_tb", 2, { 2, 2 }, { { 3, 4 }, { 5, 4 } }, -1, 1 },
        { "matmul_ta", 2, { 2, 2 }, { { 4, 3 }, { 4, 5 } }, -1, 1 },
        { "matmul_tab", 2, { 2, 2 }, { { 4, 3 }, { 5, 4 } }, -1, 1 },
        { "matmul_batched", 2, { 3, 2 }, { { 2, 3, 4 }, { 4, 5 } }, -1, 1 },
        { "bmm", 2, { 3, 3 }, { { 2, 3, 4 }, { 2, 4, 5 } }, -1, 1 },
        { "bmm_tb", 2, { 3, 3 }, { { 2, 3, 4 }, { 2, 5, 4 } }, -1, 1 },
        { "bmm_ta", 2, { 3, 3 }, { { 2, 4, 3 }, { 2, 4, 5 } }, -1, 1 },
        { "bmm_tab", 2, { 3, 3 }, { { 2, 4, 3 }, { 2, 5, 4 } }, -1, 1 },
        { "bmm4", 2, { 4, 4 }, { { 2, 2, 3, 4 }, { 2, 2, 4, 3 } }, -1, 1 },
        { "conv2d", 2, { 4, 4 }, { { 2, 5, 5, 2 }, { 3, 3, 2, 3 } }, -1, 1 },
        { "conv2d_transpose", 2, { 4, 4 }, { { 2, 3, 3, 2 }, { 3, 3, 3, 2 } }, -1, 1 },
        { "maxpool", 1, { 4 }, { { 2, 5, 5, 2 } }, -0.1f, 0.1f },
        { "avgpool", 1, { 4 }, { { 2, 5, 5, 2 } }, -2, 2 },
        { "upsample_bilinear", 1, { 4 }, { { 1, 3, 3, 2 } }, -2, 2 },
        { "cumsum1", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "cumsum_rev", 1, { 3 }, { { 2, 3, 4 } }, -2, 2 },
        { "cumprod0", 1, { 3 }, { { 4, 3, 2 } }, 0.5f, 1.5f },
        { "cumprod_rev", 1, { 3 }, { { 2, 3, 4 } }, 0.5f, 1.5f },
        { "gather", 1, { 2 }, { { 5, 3 } }, -2, 2 },
        { "gather_1d", 1, { 1 }, { { 6 } }, -2, 2 },
        { "scatter", 1, { 3 }, { { 2, 4, 3 } }, -2, 2 },
        { "logsumexp", 1, { 2 }, { { 3, 5 } }, -3, 3 },
    };
    int n = sizeof cases / sizeof cases[0];
    for (int i = 0; i < n; i++) {
        for (int order = 1; order <= 2; order++) {
            check_case(&cases[i], 1, 0, order);
            check_case(&cases[i], 0, 0, order);
            check_case(&cases[i], 1, 1, order);
        }
    }
    threads_start(3);
    check_big_gather();
    threads_stop();
    check_big_gather();
    jit_destroy(jit);
    CHECK_DONE();
}
