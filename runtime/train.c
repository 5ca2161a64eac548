/* train.c: the training loop. A block's graph is compiled once per batch size and cached;
 * each iteration fills its inputs from the data streams, runs the plan, checks the loss is
 * finite, and applies the optimiser to the parameters it owns. Validation, periodic saves and
 * checkpoints run at epoch ends. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cblas.h>
#include "data.h"
#include "diag.h"
#include "fsutil.h"
#include "image.h"
#include "npy.h"
#include "plan.h"
#include "safetensors.h"
#include "train.h"

typedef struct Compiled { Node *block; int batch; BlockGraph bg; Plan *plan; } Compiled;

typedef struct Run {
    Program *p;
    Train *t;
    const RunOptions *o;
    Jit *jit;
    Compiled cache[64];
    int ncache;
    Rng rng;                   /* noise inside graphs */
    Rng data_rng;              /* per-batch data transforms (flips, noise) */
    const Dataset *data[8];    /* per stream */
    float *m, *v;              /* optimiser moments, one slot per parameter element */
    int64_t *offset;           /* parameter -> offset into m and v */
    int64_t opt_steps[8];
    int epoch;
    int64_t step;
    char last_ckpt[1024];
} Run;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fail(const char *msg) { fprintf(stderr, "gmc: %s\n", msg); }

static Compiled *compiled(Run *r, Node *block, int batch, int training) {
    for (int i = 0; i < r->ncache; i++)
        if (r->cache[i].block == block && r->cache[i].batch == batch) return &r->cache[i];
    if (r->ncache == 64) {          /* evict the oldest: only odd batch sizes churn */
        plan_free(r->cache[0].plan);
        ir_free(&r->cache[0].bg.g);
        memmove(r->cache, r->cache + 1, 63 * sizeof *r->cache);
        r->ncache--;
    }
    Compiled *c = &r->cache[r->ncache];
    c->block = block;
    c->batch = batch;
    if (sema_build_block(r->p, r->t, block, batch, training, &c->bg) != 0) return NULL;
    BlockGraph *bg = &c->bg;
    int roots[600], n = 0;
    if (bg->loss >= 0) roots[n++] = bg->loss;
    for (int i = 0; i < bg->ngrads; i++) roots[n++] = bg->grad_node[i];
    for (int i = 0; i < bg->nreports; i++) roots[n++] = bg->report_node[i];
    for (int i = 0; i < bg->nsaves; i++) roots[n++] = bg->saves[i].node;
    LowerOptions lo = { .fuse = r->o->fuse, .interpret = r->o->interpret };
    char err[512];
    c->plan = plan_build(&bg->g, &r->p->params, roots, n, bg->ninputs, &lo, r->jit, err, sizeof err);
    if (!c->plan) { fprintf(stderr, "gmc: kernel compilation failed: %s\n", err); return NULL; }
    if (r->o->dump_kernels) {
        printf("# block at %s:%d, batch %d\n", block->loc.file, block->loc.line, batch);
        plan_print(c->plan, &bg->g, stdout);
    }
    r->ncache++;
    return c;
}

/* fills input slot k of a compiled block with examples idx[start..start+n) of its stream */
static void fill_input(Run *r, Compiled *c, int k, const int64_t *idx, int64_t start, int n) {
    int s = c->bg.input_stream[k];
    data_fill_batch(r->data[s], &r->t->stream[s].spec, idx, start, n, plan_input(c->plan, k), &r->data_rng);
}

static void expand_path(Run *r, const char *tmpl, char *out, int outlen) {
    int k = snprintf(out, outlen, "%s/", r->o->out_dir);
    for (const char *s = tmpl; *s && k < outlen - 1; s++) {
        if (!strncmp(s, "{epoch}", 7)) { k += snprintf(out + k, outlen - k, "%d", r->epoch); s += 6; }
        else if (!strncmp(s, "{step}", 6)) { k += snprintf(out + k, outlen - k, "%lld", (long long)r->step); s += 5; }
        else out[k++] = *s;
    }
    out[k < outlen ? k : outlen - 1] = 0;
}

static int do_saves(Run *r, Compiled *c) {
    for (int i = 0; i < c->bg.nsaves; i++) {
        SaveAction *sa = &c->bg.saves[i];
        IrNode *n = &c->bg.g.nodes[sa->node];
        float *x = plan_node(c->plan, sa->node);
        char path[1024], err[512];
        expand_path(r, sa->path, path, sizeof path);
        int rc;
        if (sa->kind == SAVE_NPY) {
            rc = npy_write(path, x, n->ndim, n->shape, err, sizeof err);
        } else {
            int ch = n->ndim == 4 ? (int)n->shape[1] : 1;
            int h = (int)n->shape[n->ndim - 2], w = (int)n->shape[n->ndim - 1];
            /* images in [0, 1] or [-1, 1] are shown as such; anything else is min-max scaled */
            float lo = INFINITY, hi = -INFINITY;
            for (int64_t k = 0; k < ir_numel(n); k++) { lo = fminf(lo, x[k]); hi = fmaxf(hi, x[k]); }
            if (lo >= 0 && hi <= 1) { lo = 0; hi = 1; }
            else if (lo >= -1 && hi <= 1) { lo = -1; hi = 1; }
            rc = png_write_grid(path, x, (int)n->shape[0], ch, h, w, sa->rows, 0, lo, hi, err, sizeof err);
        }
        if (rc != 0) { fail(err); return -1; }
        printf("wrote %s\n", path);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* checkpoints */

static int save_checkpoint(Run *r) {
    Program *p = r->p;
    int np = p->params.n, nt = 0;
    StTensor *ts = calloc(3 * np, sizeof *ts);
    const char **names = calloc(3 * np, sizeof *names);
    for (int i = 0; i < np; i++) {
        Param *pr = &p->params.items[i];
        ts[nt] = (StTensor){ .name = pr->name, .ndim = pr->ndim, .data = pr->data };
        memcpy(ts[nt].dims, pr->shape, pr->ndim * sizeof *pr->shape);
        nt++;
        if (!pr->trainable || !r->m) continue;
        for (int k = 0; k < 2; k++) {
            char buf[512];
            snprintf(buf, sizeof buf, "optimizer/%s/%s", k ? "v" : "m", pr->name);
            names[nt] = strdup(buf);
            ts[nt] = (StTensor){ .name = names[nt], .ndim = pr->ndim, .data = (k ? r->v : r->m) + r->offset[i] };
            memcpy(ts[nt].dims, pr->shape, pr->ndim * sizeof *pr->shape);
            nt++;
        }
    }
    char epoch[32], step[32], counter[32], seed[32];
    snprintf(epoch, sizeof epoch, "%d", r->epoch);
    snprintf(step, sizeof step, "%lld", (long long)r->step);
    snprintf(counter, sizeof counter, "%llu", (unsigned long long)r->rng.counter);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->o->seed);
    StMeta meta[] = { { "format", "gmc-checkpoint-1" }, { "program", p->path },
                      { "epoch", epoch }, { "step", step }, { "rng_counter", counter }, { "seed", seed } };
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/checkpoints/epoch_%04d.safetensors", r->o->out_dir, r->epoch);
    int rc = st_write(path, ts, nt, meta, 6, err, sizeof err);
    for (int i = 0; i < nt; i++) free((char *)names[i]);
    free(names);
    free(ts);
    if (rc != 0) { fail(err); return -1; }
    /* the pointer to the newest checkpoint is replaced atomically too */
    char latest[1024];
    snprintf(latest, sizeof latest, "%s/checkpoints/latest", r->o->out_dir);
    const char *base = strrchr(path, '/') + 1;
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", base);
    if (write_file_atomic(latest, line, n, err, sizeof err) != 0) { fail(err); return -1; }
    snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
    return 0;
}

static int load_checkpoint(Program *p, const char *path) {
    char err[512];
    StFile *f = st_open(path, err, sizeof err);
    if (!f) { fail(err); return -1; }
    int missing = 0;
    for (int i = 0; i < p->params.n; i++) {
        Param *pr = &p->params.items[i];
        const StTensor *t = st_find(f, pr->name);
        int64_t size = 1;
        if (t) for (int k = 0; k < t->ndim; k++) size *= t->dims[k];
        if (!t || size != pr->size) {
            fprintf(stderr, "gmc: %s: %s '%s'\n", path, t ? "wrong shape for parameter" : "no parameter", pr->name);
            missing++;
            continue;
        }
        memcpy(pr->data, t->data, size * sizeof(float));
    }
    st_close(f);
    return missing ? -1 : 0;
}

/* the checkpoint named by out_dir/checkpoints/latest */
static int latest_checkpoint(const char *out_dir, char *path, int len) {
    char latest[1024], err[512];
    unsigned char *text;
    size_t n;
    snprintf(latest, sizeof latest, "%s/checkpoints/latest", out_dir);
    if (read_file_all(latest, &text, &n, err, sizeof err) != 0) {
        fprintf(stderr, "gmc: no checkpoint to sample from: %s (train first, or give --ckpt FILE)\n", err);
        return -1;
    }
    text[strcspn((char *)text, "\r\n")] = 0;
    snprintf(path, len, "%s/checkpoints/%s", out_dir, (char *)text);
    free(text);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* the optimiser */

static void adam_update(Run *r, Compiled *c) {
    BlockGraph *bg = &c->bg;
    Optimizer *o = &r->t->opt[bg->optimizer];
    int64_t t = ++r->opt_steps[bg->optimizer];
    /* Keras's form: bias corrections folded into the step size, epsilon outside the sqrt */
    double alpha = o->lr * sqrt(1 - pow(o->beta2, (double)t)) / (1 - pow(o->beta1, (double)t));
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    for (int i = 0; i < bg->ngrads; i++) {
        Param *pr = &r->p->params.items[bg->grad_param[i]];
        const float *g = plan_node(c->plan, bg->grad_node[i]);
        float *m = r->m + r->offset[bg->grad_param[i]], *v = r->v + r->offset[bg->grad_param[i]];
        float a = (float)alpha;
        for (int64_t k = 0; k < pr->size; k++) {
            m[k] = b1 * m[k] + (1 - b1) * g[k];
            v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k];
            pr->data[k] -= a * m[k] / (sqrtf(v[k]) + eps);
        }
    }
}

/* ---------------------------------------------------------------------------------------- */

static int load_streams(Run *r) {
    for (int i = 0; i < r->t->nstream; i++) {
        char err[512];
        double t0 = now();
        r->data[i] = data_load(&r->t->stream[i].spec, err, sizeof err);
        if (!r->data[i]) { fail(err); return -1; }
        if (now() - t0 > 1) printf("loaded %s (%s): %lld examples in %.1f s\n", r->t->stream[i].spec.source,
                                   r->t->stream[i].spec.split, (long long)r->data[i]->n, now() - t0);
    }
    return 0;
}

static int setup(Run *r, Program *p, Train *t, const RunOptions *o) {
    memset(r, 0, sizeof *r);
    r->p = p;
    r->t = t;
    r->o = o;
    r->jit = o->interpret ? NULL : jit_create();
    rng_init(&r->rng, o->seed);
    r->rng.counter = 1ull << 40;     /* graph noise: a counter range apart from data shuffling */
    rng_init(&r->data_rng, o->seed);
    r->data_rng.counter = 2ull << 40;
    if (!o->interpret && !r->jit) { fail("cannot create the LLVM JIT"); return -1; }
    r->offset = calloc(p->params.n + 1, sizeof *r->offset);
    int64_t total = 0;
    for (int i = 0; i < p->params.n; i++) { r->offset[i] = total; total += p->params.items[i].size; }
    r->m = calloc(total + 1, sizeof *r->m);
    r->v = calloc(total + 1, sizeof *r->v);
    return 0;
}

static void teardown(Run *r) {
    for (int i = 0; i < r->ncache; i++) { plan_free(r->cache[i].plan); ir_free(&r->cache[i].bg.g); }
    if (r->jit) jit_destroy(r->jit);
    free(r->m); free(r->v); free(r->offset);
}

/* runs a validate block over its whole stream; prints the batch-weighted mean of each report */
static int validate(Run *r, Node *block, double *first_value) {
    Compiled *c = compiled(r, block, 0, 0);
    if (!c) return -1;
    int s = c->bg.ninputs ? c->bg.input_stream[0] : -1;
    const Dataset *d = s >= 0 ? r->data[s] : NULL;
    int64_t n = d ? d->n : 1, bs = d ? r->t->stream[s].spec.batch : 1;
    double sums[16] = { 0 };
    int64_t *idx = malloc(n * sizeof *idx);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t start = 0; start < n; start += bs) {
        int b = (int)(start + bs <= n ? bs : n - start);
        Compiled *cb = compiled(r, block, d ? b : 0, 0);
        if (!cb) { free(idx); return -1; }
        for (int k = 0; k < cb->bg.ninputs; k++)
            fill_input(r, cb, k, idx, start, b);
        plan_run(cb->plan, &r->rng);
        for (int k = 0; k < cb->bg.nreports; k++) sums[k] += *plan_node(cb->plan, cb->bg.report_node[k]) * b;
    }
    free(idx);
    for (int k = 0; k < c->bg.nreports; k++) {
        printf("%s%s %.4f", k ? ", " : "  validation: ", c->bg.report_name[k], sums[k] / n);
        if (k == 0 && first_value) *first_value = sums[k] / n;
    }
    printf("\n");
    return 0;
}

static int run_every(Run *r, Node *block, int epoch_end) {
    int64_t every = 1;
    /* the interval is a compile-time number; sema checked it */
    if (block->a->kind == N_NUM) every = (int64_t)block->a->num;
    int by_epoch = !strcmp(block->name, "epoch");
    if (by_epoch != epoch_end) return 0;
    int64_t count = by_epoch ? r->epoch : r->step;
    if (every <= 0 || count % every) return 0;
    Compiled *c = compiled(r, block, 0, 0);
    if (!c) return -1;
    plan_run(c->plan, &r->rng);
    if (do_saves(r, c) != 0) return -1;
    if (c->bg.checkpoint && save_checkpoint(r) != 0) return -1;
    return 0;
}

int run_train(Program *p, Train *t, const RunOptions *o) {
    Run run, *r = &run;
    if (setup(r, p, t, o) != 0) return 2;
    int status = 0;
    if (mkdir_p(o->out_dir) != 0) {
        fprintf(stderr, "gmc: cannot create %s: %s\n", o->out_dir, strerror(errno));
        teardown(r);
        return 2;
    }
    if (load_streams(r) != 0) { teardown(r); return 2; }
    sema_init_params(p, o->seed);
    Compiled *first = compiled(r, t->steps[0], 0, 1);
    if (!first) { teardown(r); return 1; }
    /* an epoch is one pass over the stream the first step reads */
    int main_stream = first->bg.ninputs ? first->bg.input_stream[0] : -1;
    if (main_stream < 0) { fail("the first step reads no data stream"); teardown(r); return 1; }
    const Dataset *d = r->data[main_stream];
    int bs = t->stream[main_stream].spec.batch;
    int64_t nbatches = (d->n + bs - 1) / bs;
    if (o->limit_batches > 0 && o->limit_batches < nbatches) nbatches = o->limit_batches;
    int64_t *perm = malloc(d->n * sizeof *perm);
    Rng shuffle_rng;
    rng_init(&shuffle_rng, o->seed);
    printf("training %s: %d epoch%s of %lld batches of %d, %d parameters tensors\n", t->name, t->epochs,
           t->epochs == 1 ? "" : "s", (long long)nbatches, bs, p->params.n);
    double t_start = now();
    for (r->epoch = 1; r->epoch <= t->epochs && !status; r->epoch++) {
        for (int64_t i = 0; i < d->n; i++) perm[i] = i;
        if (t->stream[main_stream].spec.shuffle) rng_shuffle(&shuffle_rng, perm, d->n);
        double t0 = now(), loss_sum = 0, last_print = t0;
        int64_t nloss = 0;
        for (int64_t b = 0; b < nbatches && !status; b++) {
            int64_t start = b * bs;
            int n = (int)(start + bs <= d->n ? bs : d->n - start);
            for (int si = 0; si < t->nsteps && !status; si++) {
                Compiled *c = compiled(r, t->steps[si], n, 1);
                if (!c) { status = 1; break; }
                for (int k = 0; k < c->bg.ninputs; k++)
                    fill_input(r, c, k, perm, start, n);
                plan_run(c->plan, &r->rng);
                float loss = *plan_node(c->plan, c->bg.loss);
                if (!isfinite(loss)) {
                    Node *st = t->steps[si];
                    fprintf(stderr, "\ngmc: training diverged at epoch %d, step %lld: the loss of step '%s' (%s:%d) is %s; "
                            "parameters were not updated. Last good checkpoint: %s\n", r->epoch, (long long)r->step + 1,
                            st->name ? st->name : "step", st->loc.file, st->loc.line, isnan(loss) ? "nan" : "inf",
                            r->last_ckpt[0] ? r->last_ckpt : "none yet");
                    status = 3;
                    break;
                }
                if (si == 0) { loss_sum += loss; nloss++; }
                if (r->step == 0 && si == 0) printf("first step loss %.4f\n", loss);
                adam_update(r, c);
            }
            r->step++;
            double tn = now();
            if (tn - last_print > 1 || b == nbatches - 1) {
                printf("%sepoch %d/%d  step %lld/%lld  %.1f steps/s  loss %.4f", isatty(1) ? "\r" : "",
                       r->epoch, t->epochs, (long long)b + 1, (long long)nbatches, (b + 1) / (tn - t0), loss_sum / nloss);
                printf(isatty(1) && b != nbatches - 1 ? "" : "\n");
                fflush(stdout);
                last_print = tn;
            }
            for (int e = 0; e < t->neverys && !status; e++)
                if (run_every(r, t->everys[e], 0) != 0) status = 2;
        }
        if (status) break;
        double epoch_time = now() - t0;
        printf("epoch %d done in %.2f s: train loss %.4f\n", r->epoch, epoch_time, loss_sum / nloss);
        for (int v = 0; v < t->nvalidates && !status; v++)
            if (validate(r, t->validates[v], NULL) != 0) status = 2;
        for (int e = 0; e < t->neverys && !status; e++)
            if (run_every(r, t->everys[e], 1) != 0) status = 2;
        fflush(stdout);
    }
    if (!status) printf("finished %s in %.1f s (%lld steps)\n", t->name, now() - t_start, (long long)r->step);
    free(perm);
    teardown(r);
    return status;
}

int run_sample(Program *p, Node *sample, const RunOptions *o) {
    Run run, *r = &run;
    char path[1024];
    if (o->ckpt) snprintf(path, sizeof path, "%s", o->ckpt);
    else if (latest_checkpoint(o->out_dir, path, sizeof path) != 0) return 2;
    if (load_checkpoint(p, path) != 0) return 2;
    if (setup(r, p, p->ntrains ? &p->trains[0] : NULL, o) != 0) return 2;
    printf("sampling %s from %s\n", sample->name, path);
    Compiled *c = compiled(r, sample, 0, 0);
    int status = 1;
    if (c) {
        plan_run(c->plan, &r->rng);
        status = do_saves(r, c) ? 2 : 0;
    }
    teardown(r);
    return status;
}

int run_grad_dump(Program *p, Train *t, const char *feed_x, const char *path, const RunOptions *o) {
    Run run, *r = &run;
    if (setup(r, p, t, o) != 0) return 2;
    sema_init_params(p, o->seed);
    char err[512];
    float *x = NULL;
    int ndim = 0;
    int64_t dims[8];
    if (npy_read(feed_x, &x, &ndim, dims, err, sizeof err) != 0) { fail(err); teardown(r); return 2; }
    Compiled *c = compiled(r, t->steps[0], (int)dims[0], 1);
    if (!c || c->bg.ninputs != 1) { if (c) fail("--grad-dump needs a step that reads one data stream"); free(x); teardown(r); return 1; }
    IrNode *in = NULL;
    for (int i = 0; i < c->bg.g.n; i++) if (c->bg.g.nodes[i].op == IR_INPUT) in = &c->bg.g.nodes[i];
    int64_t need = ir_numel(in), have = 1;
    for (int k = 0; k < ndim; k++) have *= dims[k];
    if (need != have) { fprintf(stderr, "gmc: %s: %lld values, the step needs %lld\n", feed_x, (long long)have, (long long)need); free(x); teardown(r); return 2; }
    memcpy(plan_input(c->plan, 0), x, need * sizeof *x);
    plan_run(c->plan, &r->rng);
    /* everything the cross-check needs: parameters, input, noise draws, loss, gradients */
    int cap = 2 * p->params.n + 16, nt = 0, nnoise = 0;
    StTensor *ts = calloc(cap, sizeof *ts);
    char **names = calloc(cap, sizeof *names);
    for (int i = 0; i < p->params.n; i++) {
        Param *pr = &p->params.items[i];
        ts[nt] = (StTensor){ .name = pr->name, .ndim = pr->ndim, .data = pr->data };
        memcpy(ts[nt].dims, pr->shape, pr->ndim * sizeof *pr->shape);
        nt++;
    }
    for (int i = 0; i < c->bg.g.n && nt < cap; i++) {
        IrNode *nd = &c->bg.g.nodes[i];
        float *val = plan_node(c->plan, i);
        if (!val || (nd->op != IR_NORMAL && nd->op != IR_UNIFORM && nd->op != IR_INPUT)) continue;
        char buf[64];
        if (nd->op == IR_INPUT) snprintf(buf, sizeof buf, "input/x");
        else snprintf(buf, sizeof buf, "noise/%d", nnoise++);
        names[nt] = strdup(buf);
        ts[nt] = (StTensor){ .name = names[nt], .ndim = nd->ndim, .data = val };
        memcpy(ts[nt].dims, nd->shape, nd->ndim * sizeof *nd->shape);
        nt++;
    }
    ts[nt++] = (StTensor){ .name = "loss", .ndim = 0, .data = plan_node(c->plan, c->bg.loss) };
    for (int k = 0; k < c->bg.ngrads && nt < cap; k++) {
        Param *pr = &p->params.items[c->bg.grad_param[k]];
        char buf[512];
        snprintf(buf, sizeof buf, "grad/%s", pr->name);
        names[nt] = strdup(buf);
        ts[nt] = (StTensor){ .name = names[nt], .ndim = pr->ndim, .data = plan_node(c->plan, c->bg.grad_node[k]) };
        memcpy(ts[nt].dims, pr->shape, pr->ndim * sizeof *pr->shape);
        nt++;
    }
    int rc = st_write(path, ts, nt, NULL, 0, err, sizeof err);
    if (rc != 0) fail(err);
    for (int i = 0; i < cap; i++) free(names[i]);
    free(names);
    free(ts);
    free(x);
    teardown(r);
    return rc ? 2 : 0;
}
