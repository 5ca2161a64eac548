/* plan.c: the memory planner. Every temp buffer of a plan lives in one arena; two temps share
 * memory when their lifetimes (the steps from the first write to the last read) do not
 * overlap. A step never reads memory it writes, since lifetimes are closed intervals: a
 * buffer whose last read is step s and one first written by step s get distinct memory.
 * Kept buffers (roots: loss, gradients, reports, saves, state updates) live to the end and
 * are read after the run; inputs, filled before the run and refilled between runs only by
 * the caller, live through the whole run and share with nothing.
 * One exception to "no step reads memory it writes": an elementwise kernel may write its
 * result over an operand that dies with it when it reads that operand only at the element
 * it writes (relu(x @ W + b) over x @ W): each element is loaded before it is stored, by the
 * one thread that owns it, in the JIT and in the interpreter alike. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"

enum { ALIGN_FLOATS = 16 };        /* 64 bytes: a cache line, an AVX-512 vector */

static int64_t padded(int64_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

int plan_step_buffers(const Plan *p, int s, int *reads, int *nreads) {
    const PlanStep *st = &p->steps[s];
    int n = 0, w = -1;
    switch (st->kind) {
    case STEP_KERNEL: {
        const Kernel *k = p->kernels[st->kernel];
        for (int a = 0; a < k->nargs; a++)
            if (a == k->out_buf) w = k->args[a];
            else reads[n++] = k->args[a];
        break;
    }
    case STEP_GEMM: case STEP_GATHER: case STEP_CONV:
        reads[n++] = st->a;
        reads[n++] = st->b;
        if (st->kind != STEP_GATHER && st->has_bias) reads[n++] = st->bias;
        if (st->kind == STEP_CONV && st->has_mask) reads[n++] = st->mask;
        w = st->c;
        break;
    case STEP_IM2COL: case STEP_COL2IM: case STEP_HISTORY: case STEP_SCAN: reads[n++] = st->a; w = st->c; break;
    case STEP_NORMAL: case STEP_UNIFORM: w = st->c; break;
    default:                      /* a step kind this function does not know yet */
        fprintf(stderr, "gmc: internal error: the memory planner does not know step kind %d\n", st->kind);
        abort();
    }
    *nreads = n;
    return w;
}

int plan_step_second_write(const Plan *p, int s) {
    const PlanStep *st = &p->steps[s];
    return (st->kind == STEP_CONV || st->kind == STEP_GEMM) && st->has_bgrad ? st->bgrad : -1;
}

void plan_drop_steps(Plan *p, const char *drop) {
    int n = 0;
    for (int s = 0; s < p->nsteps; s++) if (!drop[s]) p->steps[n++] = p->steps[s];
    p->nsteps = n;
    int *renum = calloc(p->nkernels ? p->nkernels : 1, sizeof *renum), nk = 0;
    if (!renum) { fprintf(stderr, "gmc: out of memory\n"); abort(); }
    for (int s = 0; s < p->nsteps; s++) if (p->steps[s].kind == STEP_KERNEL) renum[p->steps[s].kernel] = 1;
    for (int k = 0; k < p->nkernels; k++) {
        if (!renum[k]) { free(p->kernels[k]); continue; }
        p->kernels[nk] = p->kernels[k];
        renum[k] = nk++;
    }
    for (int s = 0; s < p->nsteps; s++) if (p->steps[s].kind == STEP_KERNEL) p->steps[s].kernel = renum[p->steps[s].kernel];
    p->nkernels = nk;
    free(renum);
}

int plan_step_reads(const Plan *p, int s, int b, int *writes) {
    int reads[K_MAXARGS + 2], n;
    *writes = plan_step_buffers(p, s, reads, &n) == b || plan_step_second_write(p, s) == b;
    for (int i = 0; i < n; i++) if (reads[i] == b) return 1;
    return 0;
}

static int in_arena(const Buffer *b) { return b->kind == BUF_TEMP || b->kind == BUF_INPUT; }

/* lifetimes: first and last step touching each buffer */
static void lifetimes(Plan *p) {
    for (int b = 0; b < p->nbufs; b++) { p->bufs[b].first = INT_MAX; p->bufs[b].last = -1; }
    int reads[K_MAXARGS + 2], nreads;
    for (int s = 0; s < p->nsteps; s++) {
        int w = plan_step_buffers(p, s, reads, &nreads), w2 = plan_step_second_write(p, s);
        if (w >= 0) reads[nreads++] = w;
        if (w2 >= 0) reads[nreads++] = w2;
        for (int i = 0; i < nreads; i++) {
            Buffer *b = &p->bufs[reads[i]];
            if (s < b->first) b->first = s;
            if (s > b->last) b->last = s;
        }
    }
    for (int b = 0; b < p->nbufs; b++) {
        Buffer *buf = &p->bufs[b];
        if (buf->kind == BUF_INPUT) { buf->first = -1; buf->keep = 1; }
        if (buf->first == INT_MAX) buf->first = buf->last = 0;     /* touched by no step */
        if (buf->keep) buf->last = INT_MAX;
    }
}

/* every load of local buffer `local` in e addresses the element the kernel stores */
static int loads_in_place(const Kernel *k, const KExpr *e, int local) {
    if (!e) return 1;
    if (e->op == KE_LOAD && e->buf == local) {
        if (e->offset != k->out_offset) return 0;
        for (int d = 0; d < k->nout; d++) if (e->stride[d] != k->out_stride[d]) return 0;
    }
    for (int i = 0; i < 3; i++) if (!loads_in_place(k, e->arg[i], local)) return 0;
    return 1;
}

static int group_of(int *group, int b) {
    while (group[b] != b) b = group[b] = group[group[b]];
    return b;
}

/* Joins the output of each elementwise kernel with an operand it may overwrite (see the top):
 * a group is then placed as one buffer over the union of its members' lifetimes. */
static int join_in_place(Plan *p, int *group) {
    int joined = 0;
    for (int s = 0; s < p->nsteps; s++) {
        if (p->steps[s].kind != STEP_KERNEL) continue;
        const Kernel *k = p->kernels[p->steps[s].kernel];
        if (k->reduce != KR_NONE || k->ndim != k->nout) continue;
        const Buffer *out = &p->bufs[k->args[k->out_buf]];
        if (out->kind != BUF_TEMP || out->first != s) continue;
        for (int a = 0; a < k->nargs; a++) {
            const Buffer *x = &p->bufs[k->args[a]];
            if (a == k->out_buf || x->kind != BUF_TEMP || x->keep || x->last != s || x->size != out->size ||
                !loads_in_place(k, k->body, a) || !loads_in_place(k, k->post, a)) continue;
            group[k->args[k->out_buf]] = group_of(group, k->args[a]);
            joined++;
            break;
        }
    }
    return joined;
}

static const Plan *sort_plan;
static int by_size(const void *x, const void *y) {
    const Buffer *a = &sort_plan->bufs[*(const int *)x], *b = &sort_plan->bufs[*(const int *)y];
    if (a->size != b->size) return a->size > b->size ? -1 : 1;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    return *(const int *)x - *(const int *)y;
}
static int by_offset(const void *x, const void *y) {
    const Buffer *a = &sort_plan->bufs[*(const int *)x], *b = &sort_plan->bufs[*(const int *)y];
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

/* largest first, each at the start of the tightest gap left by the placed buffers whose
 * lifetimes overlap its own (or after them all) */
static int64_t place(Plan *p, int *order, int n) {
    int *live = malloc((n ? n : 1) * sizeof *live);
    int64_t top = 0;
    sort_plan = p;
    qsort(order, n, sizeof *order, by_size);
    for (int i = 0; i < n; i++) {
        Buffer *b = &p->bufs[order[i]];
        int nlive = 0;
        for (int j = 0; j < i; j++) {
            const Buffer *o = &p->bufs[order[j]];
            if (o->first <= b->last && b->first <= o->last) live[nlive++] = order[j];
        }
        qsort(live, nlive, sizeof *live, by_offset);
        int64_t need = padded(b->size), end = 0, best = -1, best_gap = INT64_MAX;
        for (int j = 0; j < nlive; j++) {
            const Buffer *o = &p->bufs[live[j]];
            int64_t gap = o->offset - end;
            if (gap >= need && gap < best_gap) { best = end; best_gap = gap; }
            if (o->offset + padded(o->size) > end) end = o->offset + padded(o->size);
        }
        b->offset = best >= 0 ? best : end;
        if (b->offset + need > top) top = b->offset + need;
    }
    free(live);
    return top;
}

/* the scratch every plan's dying temps live in: never shrinks, grows when a bigger plan comes */
static struct { float *mem; int64_t floats; unsigned gen; } scratch = { NULL, 0, 1 };

static void scratch_reserve(int64_t floats) {
    if (floats <= scratch.floats) return;
    free(scratch.mem);
    size_t bytes = (size_t)floats * sizeof(float);
    scratch.mem = aligned_alloc(64, bytes);
    if (!scratch.mem) { fprintf(stderr, "gmc: out of memory (%zu bytes of buffers)\n", bytes); exit(2); }
    memset(scratch.mem, 0, bytes);
    scratch.floats = floats;
    scratch.gen++;
}

int64_t plan_scratch_floats(void) { return scratch.floats; }

void plan_bind_scratch(Plan *p) {
    if (p->scratch_gen == scratch.gen) return;
    for (int b = 0; b < p->nbufs; b++)
        if (p->bufs[b].offset >= p->kept_floats) {
            p->bufs[b].data = scratch.mem + (p->bufs[b].offset - p->kept_floats);
            if (p->ptrs) p->ptrs[b] = p->bufs[b].data;
        }
    p->scratch_gen = scratch.gen;
}

void plan_memory(Plan *p, int enabled) {
    int *order = malloc((p->nbufs ? p->nbufs : 1) * sizeof *order), n = 0;
    int *group = malloc((p->nbufs ? p->nbufs : 1) * sizeof *group);
    lifetimes(p);
    p->temp_floats = 0;
    p->in_place = 0;
    for (int b = 0; b < p->nbufs; b++) {
        group[b] = b;
        p->bufs[b].offset = -1;
        if (in_arena(&p->bufs[b])) p->temp_floats += padded(p->bufs[b].size);
    }
    if (enabled) {
        p->in_place = join_in_place(p, group);
        /* a group's first member stands for it: its lifetime widened to the group's */
        int *first = malloc(p->nbufs * sizeof *first + 1), *last = malloc(p->nbufs * sizeof *last + 1);
        for (int b = 0; b < p->nbufs; b++) { first[b] = p->bufs[b].first; last[b] = p->bufs[b].last; }
        for (int b = 0; b < p->nbufs; b++) {
            int g = group_of(group, b);
            if (p->bufs[b].first < first[g]) first[g] = p->bufs[b].first;
            if (p->bufs[b].last > last[g]) last[g] = p->bufs[b].last;
        }
        /* groups that live to the end (inputs, roots) go first, into the plan's own arena;
         * the rest, into the shared scratch placed after them */
        int nkept = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int b = 0; b < p->nbufs; b++)
                if (in_arena(&p->bufs[b]) && group_of(group, b) == b && (last[b] == INT_MAX) == !pass) {
                    p->bufs[b].first = first[b];
                    p->bufs[b].last = last[b];
                    order[n++] = b;
                    nkept += !pass;
                }
        p->kept_floats = place(p, order, nkept);
        int64_t temps = place(p, order + nkept, n - nkept);
        for (int i = nkept; i < n; i++) p->bufs[order[i]].offset += p->kept_floats;
        p->arena_floats = p->kept_floats + temps;
        for (int b = 0; b < p->nbufs; b++)
            if (in_arena(&p->bufs[b])) p->bufs[b].offset = p->bufs[group_of(group, b)].offset;
        free(first);
        free(last);
        lifetimes(p);                  /* the members' own lifetimes back */
    } else {                           /* one block each, as if allocated one by one */
        int64_t at = 0;
        for (int b = 0; b < p->nbufs; b++)
            if (in_arena(&p->bufs[b])) { p->bufs[b].offset = at; at += padded(p->bufs[b].size); }
        p->arena_floats = p->kept_floats = at;
    }
    free(order);
    free(group);
    scratch_reserve(p->arena_floats - p->kept_floats);
    size_t bytes = (size_t)(p->kept_floats ? p->kept_floats : ALIGN_FLOATS) * sizeof(float);
    p->arena = aligned_alloc(64, bytes);
    if (!p->arena) { fprintf(stderr, "gmc: out of memory (%zu bytes of buffers)\n", bytes); exit(2); }
    memset(p->arena, 0, bytes);
    for (int b = 0; b < p->nbufs; b++)
        if (p->bufs[b].offset >= 0 && p->bufs[b].offset < p->kept_floats) p->bufs[b].data = p->arena + p->bufs[b].offset;
    p->scratch_gen = 0;
    plan_bind_scratch(p);
}

/* --stats: where a plan's memory goes. The arena's size, what of it is kept after a run
 * (roots, inputs), and at the step where the most temps are live, how much of that is
 * im2col / col2im output, matrix products and kernels. */
PlanMemory plan_memory_profile(const Plan *p) {
    PlanMemory m = { .arena = p->arena_floats };
    for (int b = 0; b < p->nbufs; b++)
        if (in_arena(&p->bufs[b]) && p->bufs[b].keep) m.kept += padded(p->bufs[b].size);
    int64_t *live = calloc(p->nsteps + 1, sizeof *live);
    for (int b = 0; b < p->nbufs; b++) {
        const Buffer *buf = &p->bufs[b];
        if (buf->kind != BUF_TEMP || buf->keep) continue;
        for (int s = buf->first; s <= buf->last && s < p->nsteps; s++) live[s] += padded(buf->size);
    }
    int peak = 0;
    for (int s = 0; s < p->nsteps; s++) if (live[s] > live[peak]) peak = s;
    m.peak_step = peak;
    for (int b = 0; b < p->nbufs; b++) {
        const Buffer *buf = &p->bufs[b];
        if (buf->kind != BUF_TEMP || buf->keep || buf->first > peak || buf->last < peak) continue;
        StepKind k = p->steps[buf->first].kind;
        int64_t sz = padded(buf->size);
        if (k == STEP_IM2COL) m.peak_im2col += sz;
        else if (k == STEP_COL2IM) m.peak_col2im += sz;
        else if (k == STEP_GEMM) m.peak_gemm += sz;
        else m.peak_other += sz;
    }
    free(live);
    return m;
}
