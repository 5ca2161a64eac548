/* exec.c: runs a plan: random fills from the counter-based RNG, matrix products (gemm.c),
 * im2col / col2im (conv.c), compiled kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "conv.h"
#include "conv_gemm.h"
#include "gemm.h"
#include "plan.h"
#include "threads.h"
#include "history.h"

/* c = the rows of table a [k, n] at ids b [m] (NaN rows for ids out of range, so a bad id
 * shows up as a non-finite loss), or (scatter) c [k, n] = the rows of a [m, n] summed at
 * their ids, in index order so the sums do not depend on threads. Threads split a gather by
 * ids and a scatter by columns, so each output element is still written by one thread. */
typedef struct GatherCall { const PlanStep *st; const float *a, *ids; float *c; } GatherCall;

static int64_t row_of(float id, int64_t k) {
    float r = nearbyintf(id);
    return r >= 0 && r < (float)k ? (int64_t)r : -1;
}

static void gather_range(void *ctx, int64_t begin, int64_t end) {
    const GatherCall *g = ctx;
    int64_t m = g->st->m, n = g->st->n, k = g->st->k;
    if (g->st->scatter) {                    /* [begin, end) is a block of columns */
        for (int64_t r = 0; r < k; r++) memset(g->c + r * n + begin, 0, (size_t)(end - begin) * sizeof *g->c);
        for (int64_t i = 0; i < m; i++) {
            int64_t row = row_of(g->ids[i], k);
            if (row >= 0)
                for (int64_t j = begin; j < end; j++) g->c[row * n + j] += g->a[i * n + j];
        }
        return;
    }
    for (int64_t i = begin; i < end; i++) {  /* [begin, end) is a block of ids */
        int64_t row = row_of(g->ids[i], k);
        if (row >= 0) memcpy(g->c + i * n, g->a + row * n, (size_t)n * sizeof *g->c);
        else for (int64_t j = 0; j < n; j++) g->c[i * n + j] = NAN;
    }
}

static void gather(const PlanStep *st, const float *a, const float *ids, float *c) {
    GatherCall call = { st, a, ids, c };
    int64_t split = st->scatter ? st->n : st->m, work = st->m * st->n;
    if (work >= 65536 && split > 1)
        parallel_for(split, st->scatter ? 16 : (65536 + st->n - 1) / st->n / 4 + 1, gather_range, &call);
    else gather_range(&call, 0, split);
}

/* running sums or products of a [m, k, n] along k, accumulated in double */
static void scan(const PlanStep *st, const float *a, float *c) {
    int64_t m = st->m, k = st->k, n = st->n;
    for (int64_t o = 0; o < m; o++)
        for (int64_t j = 0; j < n; j++) {
            double acc = st->prod ? 1 : 0;
            for (int64_t t = 0; t < k; t++) {
                int64_t at = (o * k + (st->reverse ? k - 1 - t : t)) * n + j;
                acc = st->prod ? acc * a[at] : acc + a[at];
                c[at] = (float)acc;
            }
        }
}

typedef struct KernelCall { const Kernel *k; KernelFn fn; float *args[K_MAXARGS]; } KernelCall;

static void kernel_range(void *ctx, int64_t begin, int64_t end) {
    KernelCall *c = ctx;
    if (c->fn) kernel_run(c->fn, c->k, c->args, begin, end);
    else kernel_interpret(c->k, c->args, begin, end);
}

ExecStats exec_stats;

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static StatGroup step_group(const Plan *p, const PlanStep *st) {
    switch (st->kind) {
    case STEP_KERNEL: return p->kernels[st->kernel]->reduce == KR_NONE ? SG_ELEMENTWISE : SG_REDUCTION;
    case STEP_GEMM: {
        double flops = 2.0 * st->m * st->n * st->k;     /* per product of a batch */
        if (st->k == 1) return SG_OUTER;
        if (st->m == 1 || st->n == 1) return SG_GEMV;
        return flops < 1e6 ? SG_GEMM_SMALL : flops < 1e8 ? SG_GEMM_MEDIUM : SG_GEMM_LARGE;
    }
    case STEP_CONV: return SG_CONV;
    case STEP_IM2COL: return SG_IM2COL;
    case STEP_COL2IM: return SG_COL2IM;
    case STEP_NORMAL: case STEP_UNIFORM: return SG_RANDOM;
    case STEP_HISTORY: return SG_HISTORY;
    case STEP_SCAN: return SG_SCAN;
    default: return SG_GATHER;
    }
}

const char *stat_group_name(StatGroup g) {
    static const char *names[SG_COUNT] = {
        "elementwise kernels", "reduction kernels", "sgemv (a vector)", "outer products",
        "sgemm < 1 MFLOP", "sgemm 1-100 MFLOP", "sgemm >= 100 MFLOP", "im2col", "col2im",
        "random draws", "history pools", "gather/scatter", "cumsum/cumprod",
        "conv (implicit GEMM)",
    };
    return g < SG_COUNT ? names[g] : "?";
}

static void count_step(const Plan *p, const PlanStep *st, double seconds) {
    StatGroup g = step_group(p, st);
    exec_stats.seconds[g] += seconds;
    exec_stats.calls[g]++;
    if (st->kind == STEP_KERNEL) {
        const Kernel *k = p->kernels[st->kernel];
        KernelTime *kt = exec_stats.kernels;
        int i = 0;
        while (i < exec_stats.nkernels && kt[i].k != k) i++;
        if (i == exec_stats.nkernels) {
            if (i == 256) return;
            kt[exec_stats.nkernels++] = (KernelTime){ k, 0, 0 };
        }
        kt[i].seconds += seconds;
        kt[i].calls++;
    }
    if (st->kind != STEP_GEMM && st->kind != STEP_CONV) return;
    int64_t batch = st->batch > 1 ? st->batch : 1;
    exec_stats.flops[g] += 2.0 * st->m * st->n * st->k * batch;
    GemmShape *sh = exec_stats.shapes;
    int i = 0;
    while (i < exec_stats.nshapes && !(sh[i].m == st->m && sh[i].n == st->n && sh[i].k == st->k &&
                                       sh[i].batch == batch && sh[i].trans_a == st->trans_a &&
                                       sh[i].trans_b == st->trans_b && sh[i].conv == st->conv)) i++;
    if (i == exec_stats.nshapes) {
        if (i == 256) return;         /* the first 256 shapes are plenty for a profile */
        sh[exec_stats.nshapes++] = (GemmShape){ st->m, st->n, st->k, batch, st->trans_a, st->trans_b, st->conv, 0, 0 };
    }
    sh[i].seconds += seconds;
    sh[i].calls++;
}

/* GMC_POISON_DEAD=1: a check of the memory planner, not a mode to train in. The temps of the
 * scratch start every run as NaN, and each temp is filled with NaN right after the last step
 * the planner thinks reads it, unless that step wrote its result over it (an in-place
 * kernel). A step that reads a buffer before it is written, or after its memory may have
 * been given to another, then reads NaN: results that differ from an unpoisoned run (or a
 * non-finite loss) point at a lifetime the planner got wrong. */
static int poison_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("GMC_POISON_DEAD");
        on = e && *e && strcmp(e, "0");
    }
    return on;
}

static void poison(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = NAN;
}

static void poison_dead(const Plan *p, int s) {
    int reads[K_MAXARGS + 2], nreads;
    int w = plan_step_buffers(p, s, reads, &nreads), w2 = plan_step_second_write(p, s);
    if (w >= 0) reads[nreads++] = w;
    if (w2 >= 0) reads[nreads++] = w2;
    const Buffer *out = w >= 0 ? &p->bufs[w] : NULL;
    for (int i = 0; i < nreads; i++) {
        const Buffer *b = &p->bufs[reads[i]];
        if (b->kind != BUF_TEMP || b->keep || b->last != s || !b->data) continue;
        if (out && out != b && out->last > s && out->data &&
            out->data < b->data + b->size && b->data < out->data + out->size) continue;   /* in place */
        poison(b->data, b->size);
    }
}

void plan_run(Plan *p, Rng *rng) {
    plan_bind_scratch(p);
    int poisoned = poison_enabled();
    if (poisoned)
        for (int b = 0; b < p->nbufs; b++)
            if (p->bufs[b].kind == BUF_TEMP && !p->bufs[b].keep && p->bufs[b].data) poison(p->bufs[b].data, p->bufs[b].size);
    for (int s = 0; s < p->nsteps; s++) {
        const PlanStep *st = &p->steps[s];
        double t0 = exec_stats.enabled ? seconds_now() : 0;
        switch (st->kind) {
        case STEP_NORMAL:
            rng_normal(rng, p->ptrs[st->c], p->bufs[st->c].size);
            break;
        case STEP_UNIFORM:
            rng_uniform(rng, p->ptrs[st->c], p->bufs[st->c].size);
            break;
        case STEP_GEMM: {
            const float *a = p->ptrs[st->a], *b = p->ptrs[st->b];
            float *c = p->ptrs[st->c];
            if (st->has_bias || st->has_bgrad)
                gemm_product_ep(st->m, st->n, st->k, st->trans_a, st->trans_b, a, b,
                                st->has_bias ? p->ptrs[st->bias] : NULL, st->has_bgrad ? p->ptrs[st->bgrad] : NULL, c);
            else gemm_batched(st->batch, st->m, st->n, st->k, st->trans_a, st->trans_b, a, b, c);
            break;
        }
        case STEP_CONV: {
            ConvEpilogue ep = { .bias = st->has_bias ? p->ptrs[st->bias] : NULL, .relu = st->relu,
                                .bias_grad = st->has_bgrad ? p->ptrs[st->bgrad] : NULL,
                                .mask = st->has_mask ? p->ptrs[st->mask] : NULL };
            conv_gemm_ep(&st->geom, st->conv, p->ptrs[st->a], p->ptrs[st->b], p->ptrs[st->c], st->n, st->trans_b, &ep);
            break;
        }
        case STEP_IM2COL: im2col(&st->geom, p->ptrs[st->a], p->ptrs[st->c]); break;
        case STEP_HISTORY:
            history_query(st->pool, st->capacity, p->ptrs[st->a], p->ptrs[st->c], st->m, st->n, rng);
            break;
        case STEP_SCAN: scan(st, p->ptrs[st->a], p->ptrs[st->c]); break;
        case STEP_GATHER: gather(st, p->ptrs[st->a], p->ptrs[st->b], p->ptrs[st->c]); break;
        case STEP_COL2IM: col2im(&st->geom, p->ptrs[st->a], p->ptrs[st->c]); break;
        case STEP_KERNEL: {
            const Kernel *k = p->kernels[st->kernel];
            KernelCall call = { .k = k, .fn = p->fns[st->kernel] };
            for (int a = 0; a < k->nargs; a++) call.args[a] = p->ptrs[k->args[a]] + k->arg_offset[a];
            int64_t end = k->nout ? k->dims[0] : 1, points = 1;
            for (int d = 0; d < k->ndim; d++) points *= k->dims[d];
            /* split along the outermost output dim when the kernel is big enough to pay for
             * waking the other threads; each output point is computed by one thread */
            int64_t min_chunk = points / (end ? end : 1) >= 4096 ? 1 : (4096 * (end ? end : 1) + points - 1) / (points ? points : 1);
            if (points >= 32768 && end > 1) parallel_for(end, min_chunk, kernel_range, &call);
            else kernel_range(&call, 0, end);
            break;
        }
        }
        if (exec_stats.enabled) count_step(p, st, seconds_now() - t0);
        if (poisoned) poison_dead(p, s);
    }
}
