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
#include "optim.h"
#include "plot.h"
#include "threads.h"
#include "history.h"
#include "kernel_cache.h"
#include <dirent.h>
#include <sys/resource.h>

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
    Rng shuffle_rng;           /* epoch orders */
    uint64_t shuffle_counter;  /* shuffle_rng's position at the start of this epoch's orders */
    int64_t *order[8];         /* per training stream: this epoch's order of its examples */
    float *state;              /* optimiser state, OPT_SLOTS floats per updated element */
    int64_t *state_off;        /* parameter -> offset into state */
    int *param_opt;            /* parameter -> the optimiser that updates it, or -1 */
    int64_t opt_t[8];          /* updates made by each optimiser */
    double lr[8];              /* each optimiser's learning rate at its last update */
    Plan *schedule;            /* Train.schedule compiled: learning rates of epoch and step */
    OptScalars opt_scalars[8];
    int epoch;                 /* 1-based */
    int64_t batch;             /* next batch of this epoch */
    int64_t step;              /* iterations done */
    double t_start;
    double optimizer_seconds;  /* --stats */
    double graph_cpu, plan_cpu;  /* --stats: this thread's CPU time building block graphs, and
                                  * lowering + compiling them (the JIT's share by phase, all
                                  * threads, is in jit_stats) */
    int keep_leaves;           /* --grad-dump reads the noise draws after the run */
    FILE *metrics;
    double *history[16];       /* per step: its loss at every iteration of this run, for the plot */
    int64_t nhistory, caphistory;
    int nval;
    const char *val_name[16];
    double val_value[16];
    char last_ckpt[1024];
    SampleProgram *every_sp[16];   /* `every` hooks with run-time loops: their stages, built once */
} Run;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fail(const char *msg) { fprintf(stderr, "gmc: %s\n", msg); }

static const char *fmt_step(int si) { static char b[16][16]; snprintf(b[si & 15], 16, "step%d", si + 1); return b[si & 15]; }
static const char *fmt_epochs(int e) { static char b[48]; snprintf(b, sizeof b, "%d epoch%s, ", e, e == 1 ? "" : "s"); return b; }
static const char *fmt_at_step(int64_t step) { static char b[48]; snprintf(b, sizeof b, "  step %lld: ", (long long)step); return b; }
static const char *fmt_stepfile(int64_t step) { static char b[48]; snprintf(b, sizeof b, "step_%08lld.", (long long)step); return b; }

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int default_batch(const Run *r, const Compiled *c);
/* the plan of c->bg: every value the block reports, saves, updates or carries is a root */
static int compile_plan(Run *r, Compiled *c) {
    double c0 = cpu_seconds();
    BlockGraph *bg = &c->bg;
    int roots[800], n = 0;
    if (bg->loss >= 0) roots[n++] = bg->loss;
    for (int i = 0; i < bg->ngrads; i++) roots[n++] = bg->grad_node[i];
    for (int i = 0; i < bg->nreports; i++) roots[n++] = bg->report_node[i];
    for (int i = 0; i < bg->nsaves; i++) if (bg->saves[i].node >= 0) roots[n++] = bg->saves[i].node;
    for (int i = 0; i < bg->nsaves; i++) if (bg->saves[i].when) roots[n++] = bg->saves[i].when - 1;
    for (int i = 0; i < bg->nstate; i++) roots[n++] = bg->state_node[i];
    for (int i = 0; i < bg->ncarry; i++) roots[n++] = bg->carry_node[i];
    LowerOptions lo = { .fuse = r->o->fuse, .interpret = r->o->interpret, .keep_leaves = r->keep_leaves };
    char err[512];
    c->plan = plan_build(&bg->g, &r->p->params, roots, n, bg->ninputs, &lo, r->jit, err, sizeof err);
    r->plan_cpu += cpu_seconds() - c0;
    if (!c->plan) { fprintf(stderr, "gmc: kernel compilation failed: %s\n", err); return -1; }
    if (r->o->dump_kernels) {
        printf("# block at %s:%d, batch %d: %d steps, %d kernels\n", c->block->loc.file, c->block->loc.line,
               c->batch ? c->batch : default_batch(r, c), c->plan->nsteps, c->plan->nkernels);
        plan_print(c->plan, &bg->g, stdout);
    }
    return 0;
}

/* the first data stream a block reads (-1: none; counters are not streams) */
static int first_stream(const BlockGraph *bg) {
    for (int k = 0; k < bg->ninputs; k++) if (bg->input_stream[k] >= 0) return bg->input_stream[k];
    return -1;
}

/* the batch size a block built with batch 0 (its streams' own) runs with; 0 if it reads none */
static int default_batch(const Run *r, const Compiled *c) {
    int s = first_stream(&c->bg);
    return s >= 0 && r->t ? r->t->stream[s].spec.batch : 0;
}

static Compiled *compiled(Run *r, Node *block, int batch, int training) {
    /* a request for the streams' own batch size finds the block built with batch 0: two
     * copies of the same graph would double its compile time and its arena */
    for (int i = 0; i < r->ncache; i++)
        if (r->cache[i].block == block &&
            (r->cache[i].batch == batch || (batch > 0 && r->cache[i].batch == 0 && default_batch(r, &r->cache[i]) == batch)))
            return &r->cache[i];
    if (r->ncache == 64) {          /* evict the oldest: only odd batch sizes churn */
        plan_free(r->cache[0].plan);
        ir_free(&r->cache[0].bg.g);
        memmove(r->cache, r->cache + 1, 63 * sizeof *r->cache);
        r->ncache--;
    }
    Compiled *c = &r->cache[r->ncache];
    c->block = block;
    c->batch = batch;
    double c0 = cpu_seconds();
    int rc = sema_build_block(r->p, r->t, block, batch, training, &c->bg);
    r->graph_cpu += cpu_seconds() - c0;
    if (rc != 0) return NULL;
    if (compile_plan(r, c) != 0) return NULL;
    r->ncache++;
    return c;
}


/* fills input slot k of a compiled block with examples idx[start..start+n) of its stream,
 * or with the epoch / step counter */
static void fill_input(Run *r, Compiled *c, int k, const int64_t *idx, int64_t start, int n) {
    int s = c->bg.input_stream[k];
    float *dst = plan_input(c->plan, k);
    if (s < 0) {              /* counters; a sampling loop's inputs are filled by run_stages */
        if (dst && (s == STREAM_EPOCH || s == STREAM_STEP)) *dst = s == STREAM_EPOCH ? (float)(r->epoch - 1) : (float)r->step;
        return;
    }
    if (dst) data_fill_part(r->data[s], &r->t->stream[s].spec, c->bg.input_part[k], idx, start, n, dst, &r->data_rng);
}

/* the path of a save under --out: {epoch}, {step} and a sampling loop's {counter} filled in
 * (sema filled in every compile-time name already) */
static void expand_path_var(Run *r, const char *tmpl, const char *var, double value, char *out, int outlen) {
    int k = snprintf(out, outlen, "%s/", r->o->out_dir);
    size_t vl = var ? strlen(var) : 0;
    for (const char *s = tmpl; *s && k < outlen - 1; s++) {
        if (var && s[0] == '{' && !strncmp(s + 1, var, vl) && s[1 + vl] == '}') {
            if (value == floor(value) && fabs(value) < 1e15) k += snprintf(out + k, outlen - k, "%lld", (long long)value);
            else k += snprintf(out + k, outlen - k, "%g", value);
            s += vl + 1;
        }
        else if (!strncmp(s, "{epoch}", 7)) { k += snprintf(out + k, outlen - k, "%d", r->epoch); s += 6; }
        else if (!strncmp(s, "{step}", 6)) { k += snprintf(out + k, outlen - k, "%lld", (long long)r->step); s += 5; }
        else out[k++] = *s;
    }
    out[k < outlen ? k : outlen - 1] = 0;
}


/* one instance's parameters, under their full names, in a safetensors file of their own */
static int save_model(Program *p, const char *owner, const char *path) {
    StTensor *ts = calloc(p->params.n + 1, sizeof *ts);
    int nt = 0;
    for (int i = 0; i < p->params.n; i++) {
        Param *pr = &p->params.items[i];
        if (strcmp(pr->owner, owner)) continue;
        ts[nt] = (StTensor){ .name = pr->name, .ndim = pr->ndim, .data = pr->data };
        memcpy(ts[nt].dims, pr->shape, pr->ndim * sizeof *pr->shape);
        nt++;
    }
    StMeta meta[] = { { "format", "gmc-model-1" }, { "program", p->path }, { "instance", owner } };
    char err[512];
    int rc = st_write(path, ts, nt, meta, 3, err, sizeof err);
    free(ts);
    if (rc != 0) fail(err);
    return rc;
}

static const char *save_var;      /* the sampling loop's counter while its saves run */
static double save_value;

/* writes one tensor as an .npy array or a .png grid */
static int save_tensor(Run *r, const SaveAction *sa, const float *x, int ndim, const int64_t *shape) {
    char path[1024], err[512];
    expand_path_var(r, sa->path, save_var, save_value, path, sizeof path);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    int rc;
    if (sa->kind == SAVE_NPY) {
        rc = npy_write(path, x, ndim, shape, err, sizeof err);
    } else {
        /* channels-last images are written channel-major, as the PNG writer takes them */
        int ch = ndim == 4 ? (int)shape[3] : 1;
        int64_t count = shape[0], h = shape[1], w = shape[2], hw = h * w;
        const float *planar = x;
        float *tmp = NULL;
        if (ch > 1) {
            planar = tmp = malloc(count * hw * ch * sizeof *tmp);
            for (int64_t i = 0; i < count; i++)
                for (int64_t p = 0; p < hw; p++)
                    for (int k = 0; k < ch; k++) tmp[(i * ch + k) * hw + p] = x[(i * hw + p) * ch + k];
        }
        /* images in [0, 1] or [-1, 1] are shown as such; anything else is min-max scaled */
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t k = 0; k < numel; k++) { lo = fminf(lo, x[k]); hi = fmaxf(hi, x[k]); }
        if (lo >= 0 && hi <= 1) { lo = 0; hi = 1; }
        else if (lo >= -1 && hi <= 1) { lo = -1; hi = 1; }
        rc = png_write_grid(path, planar, (int)count, ch, (int)h, (int)w, sa->rows, 0, lo, hi, err, sizeof err);
        free(tmp);
    }
    if (rc != 0) { fail(err); return -1; }
    printf("wrote %s\n", path);
    return 0;
}

static int do_saves(Run *r, Compiled *c) {
    for (int i = 0; i < c->bg.nsaves; i++) {
        SaveAction *sa = &c->bg.saves[i];
        if (sa->when && *plan_node(c->plan, sa->when - 1) == 0) continue;   /* an if at run time */
        if (sa->kind == SAVE_MODEL) {
            char path[1024];
            expand_path_var(r, sa->path, save_var, save_value, path, sizeof path);
            if (save_model(r->p, sa->owner, path) != 0) return -1;
            printf("wrote %s\n", path);
            continue;
        }
        IrNode *n = &c->bg.g.nodes[sa->node];
        if (save_tensor(r, sa, plan_node(c->plan, sa->node), n->ndim, n->shape) != 0) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* checkpoints: weights, optimiser state, RNG counters and the position in the data, so that a
 * resumed run continues exactly as if it had never stopped */

static const char *meta_u64(char *buf, size_t n, unsigned long long v) { snprintf(buf, n, "%llu", v); return buf; }

/* Where a train block's checkpoints go: out/checkpoints, or out/checkpoints/NAME in a program
 * of several blocks, so that each block's last weights stay for the blocks that use its
 * instances (M04's greedy pretraining) and steps numbered from 0 by each never collide. */
static void ckpt_dir(const Program *p, const Train *t, const char *out_dir, char *dir, int len) {
    if (p->ntrains > 1 && t) snprintf(dir, len, "%s/checkpoints/%s", out_dir, t->name);
    else snprintf(dir, len, "%s/checkpoints", out_dir);
}

/* deletes the oldest step_*.safetensors beyond the newest `keep` */
static void prune_checkpoints(const char *cmd_dir, int keep) {
    struct dirent **list;
    int n = scandir(cmd_dir, &list, NULL, alphasort);
    if (n < 0) return;
    int seen = 0;
    for (int i = n - 1; i >= 0; i--) {
        const char *name = list[i]->d_name;
        size_t len = strlen(name);
        if (!strncmp(name, "step_", 5) && len > 12 && !strcmp(name + len - 12, ".safetensors") && ++seen > keep) {
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", cmd_dir, name);
            unlink(path);
        }
        free(list[i]);
    }
    free(list);
}

static int save_checkpoint(Run *r) {
    Program *p = r->p;
    int np = p->params.n, nt = 0, cap = np * (1 + OPT_SLOTS) + 8 + 16;
    StTensor *ts = calloc(cap, sizeof *ts);
    char **names = calloc(cap, sizeof *names);
    for (int i = 0; i < np; i++) {
        Param *pr = &p->params.items[i];
        ts[nt] = (StTensor){ .name = pr->name, .ndim = pr->ndim, .data = pr->data };
        memcpy(ts[nt].dims, pr->shape, pr->ndim * sizeof *pr->shape);
        nt++;
        int o = r->param_opt[i];
        if (o < 0) continue;
        for (int k = 0; k < OPT_SLOTS; k++) {
            const char *slot = optim_slot_name(&r->t->opt[o], k);
            if (!slot) break;
            char buf[512];
            snprintf(buf, sizeof buf, "optimizer/%s/%s/%s", r->t->opt[o].name, slot, pr->name);
            names[nt] = strdup(buf);
            ts[nt] = (StTensor){ .name = names[nt], .ndim = pr->ndim, .data = r->state + r->state_off[i] + k * pr->size };
            memcpy(ts[nt].dims, pr->shape, pr->ndim * sizeof *pr->shape);
            nt++;
        }
    }
    /* history pools (CycleGAN's image pools): their contents, and capacities in the metadata */
    char hist_names[16][32], hist_caps[512] = "";
    for (int h = 0; h < history_pools(); h++) {
        int64_t count, n;
        const float *data = history_contents(h, &count, &n);
        if (!data || nt >= cap) continue;
        snprintf(hist_names[h], sizeof hist_names[h], "history/%d", h);
        ts[nt++] = (StTensor){ .name = hist_names[h], .ndim = 2, .dims = { count, n }, .data = data };
        size_t l = strlen(hist_caps);
        snprintf(hist_caps + l, sizeof hist_caps - l, "%s%d:%d", l ? "," : "", h, history_capacity(h));
    }
    char b[16][64];
    char opt_t[512] = "", opt_u[512] = "";
    for (int o = 0; o < r->t->nopt; o++) {
        size_t l1 = strlen(opt_t), l2 = strlen(opt_u);
        snprintf(opt_t + l1, sizeof opt_t - l1, "%s%lld", o ? "," : "", (long long)r->opt_t[o]);
        snprintf(opt_u + l2, sizeof opt_u - l2, "%s%.17g", o ? "," : "", r->opt_scalars[o].u_product);
    }
    StMeta meta[] = {
        { "format", "gmc-checkpoint-1" }, { "program", p->path }, { "train", r->t->name },
        { "epoch", meta_u64(b[0], 64, r->epoch) }, { "batch", meta_u64(b[1], 64, r->batch) },
        { "step", meta_u64(b[2], 64, r->step) }, { "seed", meta_u64(b[3], 64, r->o->seed) },
        { "rng_graph", meta_u64(b[4], 64, r->rng.counter) }, { "rng_data", meta_u64(b[5], 64, r->data_rng.counter) },
        { "rng_shuffle_epoch", meta_u64(b[6], 64, r->shuffle_counter) },
        { "optimizer_steps", opt_t }, { "optimizer_u_product", opt_u }, { "history", hist_caps },
    };
    char path[1024], err[512], dir[900];
    ckpt_dir(p, r->t, r->o->out_dir, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/step_%08lld.safetensors", dir, (long long)r->step);
    int rc = st_write(path, ts, nt, meta, sizeof meta / sizeof meta[0], err, sizeof err);
    for (int i = 0; i < nt; i++) free(names[i]);
    free(names);
    free(ts);
    if (rc != 0) { fail(err); return -1; }
    /* the pointer to the newest checkpoint is replaced atomically too */
    char latest[1024];
    snprintf(latest, sizeof latest, "%s/latest", dir);
    const char *base = strrchr(path, '/') + 1;
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", base);
    if (write_file_atomic(latest, line, n, err, sizeof err) != 0) { fail(err); return -1; }
    if (p->ntrains > 1) {       /* out/checkpoints/latest: the newest of any block, as "NAME/step_..." */
        snprintf(latest, sizeof latest, "%s/checkpoints/latest", r->o->out_dir);
        n = snprintf(line, sizeof line, "%s/%s\n", r->t->name, base);
        if (write_file_atomic(latest, line, n, err, sizeof err) != 0) { fail(err); return -1; }
    }
    snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
    prune_checkpoints(dir, r->o->keep_checkpoints > 0 ? r->o->keep_checkpoints : 5);
    return 0;
}

/* loads the parameters (those named in the file; all of them unless `partial`) */
static int load_params(Program *p, StFile *f, const char *path, int partial) {
    int missing = 0, found = 0;
    for (int i = 0; i < p->params.n; i++) {
        Param *pr = &p->params.items[i];
        const StTensor *t = st_find(f, pr->name);
        int64_t size = 1;
        if (t) for (int k = 0; k < t->ndim; k++) size *= t->dims[k];
        if (!t && partial) continue;
        if (!t || size != pr->size) {
            fprintf(stderr, "gmc: %s: %s '%s'\n", path, t ? "wrong shape for parameter" : "no parameter", pr->name);
            missing++;
            continue;
        }
        memcpy(pr->data, t->data, size * sizeof(float));
        found++;
    }
    if (partial && !found) { fprintf(stderr, "gmc: %s: holds none of the program's parameters\n", path); return -1; }
    return missing ? -1 : 0;
}

static int meta_ull(StFile *f, const char *path, const char *key, unsigned long long *out) {
    const char *v = st_meta(f, key);
    char *end;
    if (!v || !*v) { fprintf(stderr, "gmc: %s: not a gmc training checkpoint (no '%s')\n", path, key); return -1; }
    *out = strtoull(v, &end, 10);
    if (*end) { fprintf(stderr, "gmc: %s: bad '%s' value '%s'\n", path, key, v); return -1; }
    return 0;
}

/* restores everything save_checkpoint wrote */
static int resume_from(Run *r, const char *path) {
    char err[512];
    StFile *f = st_open(path, err, sizeof err);
    if (!f) { fail(err); return -1; }
    unsigned long long epoch, batch, step, graph, data, shuffle;
    int rc = -1;
    if (load_params(r->p, f, path, 0) != 0 || meta_ull(f, path, "epoch", &epoch) || meta_ull(f, path, "batch", &batch) ||
        meta_ull(f, path, "step", &step) || meta_ull(f, path, "rng_graph", &graph) ||
        meta_ull(f, path, "rng_data", &data) || meta_ull(f, path, "rng_shuffle_epoch", &shuffle))
        goto done;
    const char *train = st_meta(f, "train");
    if (!train || strcmp(train, r->t->name)) {
        fprintf(stderr, "gmc: %s: a checkpoint of train block '%s', not '%s'\n", path, train ? train : "?", r->t->name);
        goto done;
    }
    for (int i = 0; i < r->p->params.n; i++) {
        Param *pr = &r->p->params.items[i];
        int o = r->param_opt[i];
        for (int k = 0; o >= 0 && k < OPT_SLOTS && optim_slot_name(&r->t->opt[o], k); k++) {
            char name[512];
            snprintf(name, sizeof name, "optimizer/%s/%s/%s", r->t->opt[o].name, optim_slot_name(&r->t->opt[o], k), pr->name);
            const StTensor *t = st_find(f, name);
            if (!t) { fprintf(stderr, "gmc: %s: no optimizer state '%s'\n", path, name); goto done; }
            memcpy(r->state + r->state_off[i] + k * pr->size, t->data, pr->size * sizeof(float));
        }
    }
    const char *ts = st_meta(f, "optimizer_steps"), *us = st_meta(f, "optimizer_u_product");
    for (int o = 0; o < r->t->nopt; o++) {
        char *end;
        r->opt_t[o] = ts ? strtoll(ts, &end, 10) : 0;
        r->opt_scalars[o].u_product = us ? strtod(us, (char **)&us) : 0;
        if (ts) ts = *end == ',' ? end + 1 : end;
        if (us && *us == ',') us++;
    }
    /* history pools: "id:capacity,..." in the metadata, contents as history/<id> */
    for (const char *h = st_meta(f, "history"); h && *h; ) {
        char *end;
        int id = (int)strtol(h, &end, 10), capacity = *end == ':' ? (int)strtol(end + 1, &end, 10) : 0;
        char name[32];
        snprintf(name, sizeof name, "history/%d", id);
        const StTensor *t = st_find(f, name);
        if (!t || t->ndim != 2 || history_restore(id, capacity, t->data, t->dims[0], t->dims[1]) != 0) {
            fprintf(stderr, "gmc: %s: bad history pool %d\n", path, id);
            goto done;
        }
        h = *end == ',' ? end + 1 : end;
    }
    r->epoch = (int)epoch;
    r->batch = (int64_t)batch;
    r->step = (int64_t)step;
    r->rng.counter = graph;
    r->data_rng.counter = data;
    r->shuffle_counter = shuffle;
    snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", path);
    rc = 0;
done:
    st_close(f);
    return rc;
}

/* the checkpoint named by DIR/latest (DIR: out/checkpoints, or a block's directory under it);
 * 1 if there is none */
static int latest_in(const char *dir, char *path, int len, int quiet) {
    char latest[1024], err[512];
    unsigned char *text;
    size_t n;
    snprintf(latest, sizeof latest, "%s/latest", dir);
    if (access(latest, F_OK) != 0 && quiet) return 1;
    if (read_file_all(latest, &text, &n, err, sizeof err) != 0) {
        fprintf(stderr, "gmc: no checkpoint: %s (train first, or give --ckpt FILE)\n", err);
        return -1;
    }
    text[strcspn((char *)text, "\r\n")] = 0;
    snprintf(path, len, "%s/%s", dir, (char *)text);
    free(text);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* optimisers */

/* an optimiser's learning rate now: a number, or its schedule evaluated at epoch and step */
static double current_lr(Run *r, int o) {
    Optimizer *opt = &r->t->opt[o];
    if (opt->lr_node < 0 || !r->schedule) return opt->lr;
    BlockGraph *bg = &r->t->schedule;
    for (int k = 0; k < bg->ninputs; k++) {
        float *dst = plan_input(r->schedule, k);
        if (dst) *dst = bg->input_stream[k] == STREAM_EPOCH ? (float)(r->epoch - 1) : (float)r->step;
    }
    plan_run(r->schedule, &r->rng);
    return *plan_node(r->schedule, opt->lr_node);
}

/* One optimiser update of every parameter a step trains, as one parallel loop over all
 * their elements laid end to end (small parameters no longer run one after another, and the
 * threads wake once per update): the update is elementwise, so any split gives the same. */
typedef struct UpdateJob {
    const Optimizer *opt;
    const OptStep *st;
    int n;
    float **w, **state;
    const float **g;
    int64_t *start;            /* parameter i: elements [start[i], start[i + 1]) of the loop */
} UpdateJob;

static void update_range(void *ctx, int64_t begin, int64_t end) {
    const UpdateJob *j = ctx;
    int i = 0;
    while (j->start[i + 1] <= begin) i++;
    for (; i < j->n && j->start[i] < end; i++) {
        int64_t lo = begin > j->start[i] ? begin - j->start[i] : 0, size = j->start[i + 1] - j->start[i];
        int64_t hi = end < j->start[i + 1] ? end - j->start[i] : size;
        optim_update(j->opt, j->st, j->w[i] + lo, j->g[i] + lo, j->state[i] + lo, hi - lo, size);
    }
}

static void apply_optimizer(Run *r, Compiled *c) {
    BlockGraph *bg = &c->bg;
    int o = bg->optimizer;
    Optimizer *opt = &r->t->opt[o];
    OptStep st;
    r->lr[o] = current_lr(r, o);
    double t0 = r->o->stats ? now() : 0;
    optim_begin(opt, r->lr[o], ++r->opt_t[o], &r->opt_scalars[o], &st);
    int n = bg->ngrads;
    float *w[n + 1], *state[n + 1];
    const float *g[n + 1];
    int64_t start[n + 2];
    start[0] = 0;
    for (int i = 0; i < n; i++) {
        int pi = bg->grad_param[i];
        Param *pr = &r->p->params.items[pi];
        w[i] = pr->data;
        state[i] = r->state + r->state_off[pi];
        g[i] = plan_node(c->plan, bg->grad_node[i]);
        start[i + 1] = start[i] + pr->size;
    }
    start[n + 1] = INT64_MAX;   /* a sentinel for update_range's search */
    UpdateJob job = { opt, &st, n, w, state, g, start };
    if (start[n] >= 65536) parallel_for(start[n], 16384, update_range, &job);
    else update_range(&job, 0, start[n]);
    if (r->o->stats) r->optimizer_seconds += now() - t0;
}

/* the new values of `state` buffers (batch-norm running statistics) */
static void apply_state(Run *r, Compiled *c) {
    for (int k = 0; k < c->bg.nstate; k++) {
        Param *p = &r->p->params.items[c->bg.state_param[k]];
        memcpy(p->data, plan_node(c->plan, c->bg.state_node[k]), p->size * sizeof(float));
    }
}

static void apply_clips(Run *r, const BlockGraph *bg) {
    for (int k = 0; k < bg->nclips; k++)
        for (int i = 0; i < r->p->params.n; i++) {
            Param *pr = &r->p->params.items[i];
            if (strcmp(pr->owner, bg->clips[k].owner)) continue;
            for (int64_t j = 0; j < pr->size; j++)
                pr->data[j] = fminf(fmaxf(pr->data[j], bg->clips[k].lo), bg->clips[k].hi);
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

/* which optimiser updates each parameter (-1: none); a parameter has one optimiser */
static int assign_optimizers(Run *r) {
    Program *p = r->p;
    for (int i = 0; i < p->params.n; i++) {
        r->param_opt[i] = -1;
        if (!p->params.items[i].trainable || !r->t) continue;
        for (int o = 0; o < r->t->nopt; o++)
            for (int k = 0; k < r->t->opt[o].nowners; k++)
                if (!strcmp(r->t->opt[o].owners[k], p->params.items[i].owner)) {
                    if (r->param_opt[i] >= 0 && r->param_opt[i] != o) {
                        fprintf(stderr, "gmc: parameter %s is trained by two optimizers (%s and %s)\n",
                                p->params.items[i].name, r->t->opt[r->param_opt[i]].name, r->t->opt[o].name);
                        return -1;
                    }
                    r->param_opt[i] = o;
                }
    }
    return 0;
}

static int setup(Run *r, Program *p, Train *t, const RunOptions *o) {
    memset(r, 0, sizeof *r);
    r->p = p;
    r->t = t;
    r->o = o;
    r->jit = o->interpret ? NULL : jit_create();
    exec_stats = (ExecStats){ .enabled = o->stats };
    if (!o->interpret && !r->jit) { fail("cannot create the LLVM JIT"); return -1; }
    char cache_dir[1024];
    if (r->jit && !o->no_cache && kcache_default_dir(cache_dir, sizeof cache_dir) == 0)
        jit_set_disk_cache(r->jit, cache_dir);
    /* three counter ranges of one seed: shuffling, graph noise, per-batch data transforms */
    rng_init(&r->shuffle_rng, o->seed);
    rng_init(&r->rng, o->seed);
    r->rng.counter = 1ull << 40;
    rng_init(&r->data_rng, o->seed);
    r->data_rng.counter = 2ull << 40;
    r->param_opt = calloc(p->params.n + 1, sizeof *r->param_opt);
    r->state_off = calloc(p->params.n + 1, sizeof *r->state_off);
    if (assign_optimizers(r) != 0) return -1;
    int64_t total = 0;
    for (int i = 0; i < p->params.n; i++) {
        r->state_off[i] = total;
        if (r->param_opt[i] >= 0) total += OPT_SLOTS * p->params.items[i].size;
    }
    r->state = calloc(total + 1, sizeof *r->state);
    if (t && t->schedule.g.n) {          /* a few scalar ops: the interpreter is enough */
        int roots[8], n = 0;
        for (int k = 0; k < t->nopt; k++) if (t->opt[k].lr_node >= 0) roots[n++] = t->opt[k].lr_node;
        LowerOptions lo = { .fuse = 1, .interpret = 1 };
        char err[256];
        if (n) r->schedule = plan_build(&t->schedule.g, &p->params, roots, n, t->schedule.ninputs, &lo, NULL, err, sizeof err);
    }
    for (int k = 0; t && k < t->nopt; k++) r->lr[k] = t->opt[k].lr;
    return 0;
}

/* --stats: where the time went, the matrix products' GFLOP/s next to a 1024^3 sgemm timed
 * now on the same machine and threads, how many kernels were compiled, peak memory */
/* one product shape of --stats: [m x k] @ [k x n], transposes, batch, kind, time, GFLOP/s */
static void print_shape(const GemmShape *s, const char *kind) {
    char batch[32] = "";
    if (s->batch > 1) snprintf(batch, sizeof batch, " (x%lld)", (long long)s->batch);
    printf("    %6lld x %6lld x %6lld%s%s%s%s %9.3f s  %7lld calls  %7.1f GFLOP/s\n", (long long)s->m,
           (long long)s->k, (long long)s->n, s->trans_a ? " A^T" : "    ", s->trans_b ? " B^T" : "    ",
           batch, kind, s->seconds, (long long)s->calls,
           s->seconds > 0 ? 2.0 * s->m * s->n * s->k * s->batch * s->calls / s->seconds / 1e9 : 0);
}

static void print_stats(Run *r) {
    int nplans = r->ncache, kernels = 0, compiled = 0, reductions = 0;
    for (int i = 0; i < nplans; i++) {
        const Plan *pl = r->cache[i].plan;
        compiled += pl->ncompiled;
        for (int s = 0; s < pl->nsteps; s++)   /* the kernels the steps run (fusion drops some) */
            if (pl->steps[s].kind == STEP_KERNEL) {
                kernels++;
                reductions += pl->kernels[pl->steps[s].kernel]->reduce != KR_NONE;
            }
    }
    double total = r->optimizer_seconds, gemm_s = 0, gemm_flops = 0;
    for (int g = 0; g < SG_COUNT; g++) { total += exec_stats.seconds[g]; gemm_s += exec_stats.flops[g] > 0 ? exec_stats.seconds[g] : 0; gemm_flops += exec_stats.flops[g]; }
    printf("stats: %d compiled blocks, %d kernel calls per pass in all (%d elementwise, %d reductions), "
           "%d distinct kernels compiled or loaded (the rest shared)\n", nplans, kernels, kernels - reductions, reductions, compiled);
    JitStats js = jit_stats(r->jit);
    if (r->jit) {
        char pruned[64] = "";
        if (js.pruned) snprintf(pruned, sizeof pruned, ", %d least recently used files pruned", js.pruned);
        printf("  kernel cache on disk: %d kernels loaded, %d compiled (%d stored)%s%s, %.2f s in all\n", js.loaded,
               js.compiled, js.stored, r->o->no_cache ? ", --no-cache" : "", pruned, js.seconds);
    }
    if (r->jit) {   /* CPU time, not wall clock: steady when the machine is shared */
        double jit = js.cpu_build + js.cpu_opt + js.cpu_codegen + js.cpu_link;
        printf("  compile CPU time (all threads): %.2f s = graphs %.2f + lowering %.2f + LLVM IR %.2f + optimisation %.2f"
               " + machine code %.2f + linking %.2f\n", r->graph_cpu + r->plan_cpu - js.cpu_caller + jit, r->graph_cpu,
               r->plan_cpu - js.cpu_caller, js.cpu_build, js.cpu_opt, js.cpu_codegen, js.cpu_link);
    }
    printf("  %-22s %9s  %7s  %9s  %s\n", "work", "seconds", "share", "calls", "GFLOP/s");
    for (int g = 0; g < SG_COUNT; g++) {
        if (!exec_stats.calls[g]) continue;
        printf("  %-22s %9.3f  %5.1f %%  %9lld", stat_group_name(g), exec_stats.seconds[g],
               total > 0 ? 100 * exec_stats.seconds[g] / total : 0, (long long)exec_stats.calls[g]);
        if (exec_stats.flops[g] > 0 && exec_stats.seconds[g] > 0) printf("  %7.1f", exec_stats.flops[g] / exec_stats.seconds[g] / 1e9);
        printf("\n");
    }
    if (r->optimizer_seconds > 0)
        printf("  %-22s %9.3f  %5.1f %%\n", "optimizer", r->optimizer_seconds, 100 * r->optimizer_seconds / total);
    /* the matrix products that took longest, by shape */
    GemmShape sh[256];
    int nsh = exec_stats.nshapes;
    memcpy(sh, exec_stats.shapes, nsh * sizeof *sh);
    for (int i = 0; i < nsh; i++)
        for (int j = i + 1; j < nsh; j++)
            if (sh[j].seconds > sh[i].seconds) { GemmShape t = sh[i]; sh[i] = sh[j]; sh[j] = t; }
    if (nsh) printf("  slowest matrix product shapes ([m x k] @ [k x n]):\n");
    for (int i = 0; i < nsh && i < 5; i++) print_shape(&sh[i], sh[i].conv ? " conv" : "");
    /* every product of 100 MFLOP or more a call, largest first: bench/bench.py sets each
     * against OpenBLAS sgemm on the same shape (the per-layer target) */
    for (int i = 0; i < nsh; i++)
        for (int j = i + 1; j < nsh; j++)
            if (sh[j].m * sh[j].n * sh[j].k > sh[i].m * sh[i].n * sh[i].k) { GemmShape t = sh[i]; sh[i] = sh[j]; sh[j] = t; }
    int nlarge = 0;
    for (int i = 0; i < nsh; i++) nlarge += 2.0 * sh[i].m * sh[i].n * sh[i].k >= 1e8;
    if (nlarge) printf("  matrix products of 100 MFLOP or more a call ([m x k] @ [k x n]; conv: fwd, wgrad, dgrad):\n");
    static const char *mode[4] = { "", " conv fwd", " conv wgrad", " conv dgrad" };
    for (int i = 0; i < nsh; i++)
        if (2.0 * sh[i].m * sh[i].n * sh[i].k >= 1e8) print_shape(&sh[i], mode[sh[i].conv >= 0 && sh[i].conv <= 3 ? sh[i].conv : 0]);
    /* the kernels that took longest */
    KernelTime kt[256];
    int nkt = exec_stats.nkernels;
    memcpy(kt, exec_stats.kernels, nkt * sizeof *kt);
    for (int i = 0; i < nkt; i++)
        for (int j = i + 1; j < nkt; j++)
            if (kt[j].seconds > kt[i].seconds) { KernelTime t = kt[i]; kt[i] = kt[j]; kt[j] = t; }
    if (nkt) printf("  slowest kernels:\n");
    for (int i = 0; i < nkt && i < 8; i++) {
        char dims[128] = "";
        int at = 0;
        for (int d = 0; d < kt[i].k->ndim && at < 100; d++)
            at += snprintf(dims + at, sizeof dims - at, "%s%lld", d ? "x" : "", (long long)kt[i].k->dims[d]);
        printf("    %-28s %-22s %s %9.3f s  %7lld calls\n", kt[i].k->name, dims,
               kt[i].k->reduce ? "reduce" : "      ", kt[i].seconds, (long long)kt[i].calls);
    }
    int n = 1024;
    float *a = calloc((size_t)n * n, sizeof *a), *b = calloc((size_t)n * n, sizeof *b), *c = calloc((size_t)n * n, sizeof *c);
    for (int i = 0; i < n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    openblas_set_num_threads(r->o->threads);     /* OpenBLAS's own threads, for the reference */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);   /* warm up */
    double t0 = now();
    for (int rep = 0; rep < 5; rep++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double ref = 5 * 2.0 * n * n * n / (now() - t0) / 1e9;
    openblas_set_num_threads(1);
    free(a); free(b); free(c);
    double gemm = gemm_s > 0 ? gemm_flops / gemm_s / 1e9 : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("  matrix products: %.1f GFLOP/s, %.0f %% of OpenBLAS sgemm 1024^3 here (%.1f GFLOP/s, %d threads)\n",
           gemm, ref > 0 ? 100 * gemm / ref : 0, ref, r->o->threads);
    int64_t kept = 0, temps = 0;
    int in_place = 0, remat = 0;
    for (int i = 0; i < nplans; i++) {
        kept += r->cache[i].plan->kept_floats;
        temps += r->cache[i].plan->temp_floats;
        in_place += r->cache[i].plan->in_place;
        remat += r->cache[i].plan->rematerialised;
    }
    printf("  buffers: %.1f MB (%.1f kept by the blocks, %.1f of scratch they share), %.1f MB with a buffer each; "
           "%d kernels write in place, %d window buffers recomputed\n", (kept + plan_scratch_floats()) * 4e-6,
           kept * 4e-6, plan_scratch_floats() * 4e-6, temps * 4e-6, in_place, remat);
    for (int i = 0; i < nplans; i++) {
        PlanMemory m = plan_memory_profile(r->cache[i].plan);
        printf("    block at line %d, batch %d: arena %.1f MB (%.1f kept after a run); at its peak "
               "(step %d of %d): im2col %.1f, col2im %.1f, products %.1f, kernels %.1f MB\n",
               r->cache[i].block->loc.line, r->cache[i].batch, m.arena * 4e-6, m.kept * 4e-6, m.peak_step,
               r->cache[i].plan->nsteps, m.peak_im2col * 4e-6, m.peak_col2im * 4e-6, m.peak_gemm * 4e-6,
               m.peak_other * 4e-6);
    }
    printf("  peak resident memory: %.1f MB\n", ru.ru_maxrss / 1024.0);
}

static void teardown(Run *r) {
    if (r->o && r->o->stats && r->ncache) print_stats(r);
    for (int i = 0; i < r->ncache; i++) { plan_free(r->cache[i].plan); ir_free(&r->cache[i].bg.g); }
    if (r->jit) jit_destroy(r->jit);
    if (r->metrics) fclose(r->metrics);
    plan_free(r->schedule);
    for (int si = 0; si < 16; si++) free(r->history[si]);
    for (int s = 0; s < 8; s++) free(r->order[s]);
    free(r->state); free(r->state_off); free(r->param_opt);
    for (int e = 0; e < 16; e++)
        if (r->every_sp[e]) { sema_free_sample(r->every_sp[e]); free(r->every_sp[e]); }
}

/* batch b of every stream a training step reads: the main stream's examples b*bs.., and for
 * other streams the same positions in their own order, wrapping around a shorter stream */
static void fill_step_inputs(Run *r, Compiled *c, int64_t start, int n) {
    for (int k = 0; k < c->bg.ninputs; k++) {
        int s = c->bg.input_stream[k];
        if (s < 0) { fill_input(r, c, k, NULL, 0, n); continue; }
        int64_t size = r->data[s]->n, idx[4096];
        if (start + n <= size) { fill_input(r, c, k, r->order[s], start, n); continue; }
        for (int i = 0; i < n && i < 4096; i++) idx[i] = r->order[s][(start + i) % size];
        fill_input(r, c, k, idx, 0, n);
    }
}

/* this epoch's order of every training stream, drawn in stream order from shuffle_rng */
static void draw_orders(Run *r) {
    for (int s = 0; s < r->t->nstream; s++) {
        if (!r->data[s]) continue;
        int64_t n = r->data[s]->n;
        r->order[s] = realloc(r->order[s], (n + 1) * sizeof *r->order[s]);
        for (int64_t i = 0; i < n; i++) r->order[s][i] = i;
        if (r->t->stream[s].spec.shuffle) rng_shuffle(&r->shuffle_rng, r->order[s], n);
    }
}

/* runs a validate block over its whole stream; prints the batch-weighted mean of each report */
static int validate(Run *r, Node *block) {
    Compiled *c = compiled(r, block, 0, 0);
    if (!c) return -1;
    int s = first_stream(&c->bg);
    const Dataset *d = s >= 0 ? r->data[s] : NULL;
    int64_t n = d ? d->n : 1, bs = d ? r->t->stream[s].spec.batch : 1;
    double sums[16] = { 0 };
    for (int64_t start = 0; start < n; start += bs) {
        int b = (int)(start + bs <= n ? bs : n - start);
        Compiled *cb = compiled(r, block, d ? b : 0, 0);
        if (!cb) return -1;
        fill_step_inputs(r, cb, start, b);
        plan_run(cb->plan, &r->rng);
        for (int k = 0; k < cb->bg.nreports; k++) sums[k] += *plan_node(cb->plan, cb->bg.report_node[k]) * b;
    }
    for (int k = 0; k < c->bg.nreports; k++) {
        printf("%s%s %.4f", k ? ", " : "  validation: ", c->bg.report_name[k], sums[k] / n);
        if (r->nval < 16) { r->val_name[r->nval] = c->bg.report_name[k]; r->val_value[r->nval++] = sums[k] / n; }
    }
    printf("\n");
    return 0;
}

/* Data a hook or a sampling procedure reads (test images to translate or reconstruct): the
 * first batch of each of its streams, the same every time. */
static int fill_first_batches(Run *r, Compiled *c) {
    for (int k = 0; k < c->bg.ninputs; k++) {
        int s = c->bg.input_stream[k];
        if (s < 0) { fill_input(r, c, k, NULL, 0, 0); continue; }
        if (!r->data[s]) {
            char err[512];
            r->data[s] = data_load(&r->t->stream[s].spec, err, sizeof err);
            if (!r->data[s]) { fail(err); return -1; }
        }
        int n = c->bg.batch ? c->bg.batch : r->t->stream[s].spec.batch;
        if (n > r->data[s]->n) {
            fprintf(stderr, "gmc: %s has %lld examples, fewer than the batch of %d\n", r->t->stream[s].name,
                    (long long)r->data[s]->n, n);
            return -1;
        }
        int64_t *idx = malloc(n * sizeof *idx);
        for (int i = 0; i < n; i++) idx[i] = i;
        fill_input(r, c, k, idx, 0, n);
        free(idx);
    }
    return 0;
}

static int run_stages(Run *r, Node *sample, SampleProgram *sp);

/* an `every` hook whose top-level `for` runs at run time (sampling a DDPM's 1000 steps with
 * the weights of the moment): its stages, as for a sampling procedure */
static int run_every_staged(Run *r, Node *block) {
    int e = 0;
    while (e < r->t->neverys && r->t->everys[e] != block) e++;
    if (!r->every_sp[e]) {
        r->every_sp[e] = calloc(1, sizeof *r->every_sp[e]);
        if (sema_build_staged(r->p, r->t, block, r->every_sp[e]) != 0) {
            free(r->every_sp[e]);
            r->every_sp[e] = NULL;
            return -1;
        }
    }
    SampleProgram *sp = r->every_sp[e];
    if (run_stages(r, block, sp) != 0) return -1;
    for (int i = 0; i < sp->nstages; i++) apply_clips(r, &sp->stages[i].bg);
    for (int i = 0; i < sp->nstages; i++)
        if (sp->stages[i].bg.checkpoint) return save_checkpoint(r) != 0 ? -1 : 0;
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
    if (sema_sample_has_loops(block)) return run_every_staged(r, block);
    Compiled *c = compiled(r, block, 0, 0);
    if (!c || fill_first_batches(r, c) != 0) return -1;
    plan_run(c->plan, &r->rng);
    apply_clips(r, &c->bg);
    for (int k = 0; k < c->bg.nreports; k++)      /* a logging hook: `report name: value` */
        printf("%s%s %.6g%s", k ? ", " : by_epoch ? "  " : fmt_at_step(r->step), c->bg.report_name[k],
               *plan_node(c->plan, c->bg.report_node[k]), k == c->bg.nreports - 1 ? "\n" : "");
    if (do_saves(r, c) != 0) return -1;
    if (c->bg.checkpoint && save_checkpoint(r) != 0) return -1;
    return 0;
}

static const char *step_name(Train *t, int si) {
    return t->steps[si]->name ? t->steps[si]->name : t->nsteps == 1 ? "loss" : fmt_step(si);
}

/* metrics.csv, loss_curve.png; metrics_NAME.csv ... for block NAME of a program of several */
static const char *out_name(Run *r, const char *stem, const char *ext) {
    static char b[2][320];
    static int k;
    k ^= 1;
    if (r->p->ntrains > 1) snprintf(b[k], sizeof b[k], "%s_%s.%s", stem, r->t->name, ext);
    else snprintf(b[k], sizeof b[k], "%s.%s", stem, ext);
    return b[k];
}

/* metrics.csv: one row per iteration with every step's loss, and validation values at epoch
 * ends; appended to on --resume */
static void metrics_open(Run *r, int append) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", r->o->out_dir, out_name(r, "metrics", "csv"));
    r->metrics = fopen(path, append ? "a" : "w");
    if (!r->metrics) { fprintf(stderr, "gmc: cannot write %s: %s\n", path, strerror(errno)); return; }
    if (append) return;
    fprintf(r->metrics, "epoch,step,time_s");
    for (int si = 0; si < r->t->nsteps; si++) fprintf(r->metrics, ",%s", step_name(r->t, si));
    for (int o = 0; o < r->t->nopt; o++) fprintf(r->metrics, ",lr/%s", r->t->opt[o].name);
    fprintf(r->metrics, ",validation\n");
}

/* remembers this iteration's losses for the loss curve */
static void history_add(Run *r, const double *loss) {
    if (r->nhistory == r->caphistory) {
        r->caphistory = r->caphistory ? 2 * r->caphistory : 1024;
        for (int si = 0; si < r->t->nsteps; si++) r->history[si] = realloc(r->history[si], r->caphistory * sizeof(double));
    }
    for (int si = 0; si < r->t->nsteps; si++) r->history[si][r->nhistory] = loss[si];
    r->nhistory++;
}

/* loss_curve.png: every step's loss over this run's iterations */
static void plot_history(Run *r) {
    if (!r->nhistory) return;
    PlotSeries s[16];
    for (int si = 0; si < r->t->nsteps; si++) s[si] = (PlotSeries){ step_name(r->t, si), r->history[si] };
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", r->o->out_dir, out_name(r, "loss_curve", "png"));
    if (plot_losses(path, s, r->t->nsteps, r->nhistory, err, sizeof err) != 0) fail(err);
}

static void metrics_row(Run *r, const double *loss, const char *validation) {
    if (!r->metrics) return;
    fprintf(r->metrics, "%d,%lld,%.3f", r->epoch, (long long)r->step, now() - r->t_start);
    for (int si = 0; si < r->t->nsteps; si++) fprintf(r->metrics, ",%.6g", loss[si]);
    for (int o = 0; o < r->t->nopt; o++) fprintf(r->metrics, ",%.6g", r->lr[o]);
    fprintf(r->metrics, ",%s\n", validation ? validation : "");
}

/* one run of step si on batch `b` of the epoch's order; returns its loss, NAN on failure */
static int run_step(Run *r, int si, int64_t start, int n, double *loss_out) {
    Compiled *c = compiled(r, r->t->steps[si], n, 1);
    if (!c) return 1;
    fill_step_inputs(r, c, start, n);
    plan_run(c->plan, &r->rng);
    float loss = *plan_node(c->plan, c->bg.loss);
    if (!isfinite(loss)) {
        Node *st = r->t->steps[si];
        fprintf(stderr, "\ngmc: training diverged at epoch %d, step %lld: the loss of step '%s' (%s:%d) is %s; "
                "parameters were not updated. Last good checkpoint: %s\n", r->epoch, (long long)r->step + 1,
                st->name ? st->name : "step", st->loc.file, st->loc.line, isnan(loss) ? "nan" : "inf",
                r->last_ckpt[0] ? r->last_ckpt : "none yet");
        return 3;
    }
    /* a non-finite gradient with a finite loss (0 * inf somewhere) is stopped here too,
     * before it reaches the weights */
    for (int i = 0; i < c->bg.ngrads; i++) {
        const float *g = plan_node(c->plan, c->bg.grad_node[i]);
        float probe = 0;
        int64_t size = r->p->params.items[c->bg.grad_param[i]].size;
        for (int64_t k = 0; k < size; k++) probe += g[k] - g[k];     /* NaN iff some g is inf or NaN */
        if (probe != 0 || isnan(probe)) {
            Node *st = r->t->steps[si];
            fprintf(stderr, "\ngmc: training diverged at epoch %d, step %lld: the gradient of step '%s' (%s:%d) with respect to %s "
                    "is not finite (the loss was %g); parameters were not updated. Last good checkpoint: %s\n",
                    r->epoch, (long long)r->step + 1, st->name ? st->name : "step", st->loc.file, st->loc.line,
                    r->p->params.items[c->bg.grad_param[i]].name, loss, r->last_ckpt[0] ? r->last_ckpt : "none yet");
            return 3;
        }
    }
    apply_optimizer(r, c);
    apply_state(r, c);
    apply_clips(r, &c->bg);
    *loss_out = loss;
    return 0;
}

/* Instances taken from an earlier train block (`E1 = ae1.E1`) start from that block's latest
 * checkpoint, so weights carry over from block to block. */
static int load_imported(Run *r) {
    Program *p = r->p;
    Train *t = r->t;
    for (int k = 0; k < t->ninst; k++) {
        Instance *in = &t->inst[k];
        if (!in->from) continue;
        Train *src = &p->trains[in->from - 1];
        char dir[900], path[1024], err[512];
        ckpt_dir(p, src, r->o->out_dir, dir, sizeof dir);
        int rc = latest_in(dir, path, sizeof path, 1);
        if (rc > 0) {
            fprintf(stderr, "gmc: train block '%s' uses %s of train block '%s', which has no checkpoint under %s: train it first (gmc %s --run %s)\n",
                    t->name, in->name, src->name, dir, p->path, src->name);
            return -1;
        }
        if (rc < 0) return -1;
        StFile *f = st_open(path, err, sizeof err);
        if (!f) { fail(err); return -1; }
        int n = 0, bad = 0;
        for (int i = 0; i < p->params.n; i++) {
            Param *pr = &p->params.items[i];
            if (strcmp(pr->owner, in->name)) continue;
            const StTensor *st = st_find(f, pr->name);
            int64_t size = 1;
            for (int d = 0; st && d < st->ndim; d++) size *= st->dims[d];
            if (!st || size != pr->size) {
                fprintf(stderr, "gmc: %s: %s '%s'\n", path, st ? "wrong shape for parameter" : "no parameter", pr->name);
                bad = 1;
                continue;
            }
            memcpy(pr->data, st->data, size * sizeof(float));
            n++;
        }
        st_close(f);
        if (bad) return -1;
        printf("%s: weights of train block %s from %s\n", in->name, src->name, path);
    }
    return 0;
}

int run_train(Program *p, Train *t, const RunOptions *o) {
    Run run, *r = &run;
    if (!t->nsteps) {           /* fine for --check and --summary, not for training */
        diag_error(t->node->loc, "train block '%s' has no step to run", t->name);
        return 1;
    }
    if (setup(r, p, t, o) != 0) { teardown(r); return 2; }
    int status = 0;
    if (mkdir_p(o->out_dir) != 0) {
        fprintf(stderr, "gmc: cannot create %s: %s\n", o->out_dir, strerror(errno));
        teardown(r);
        return 2;
    }
    if (load_streams(r) != 0) { teardown(r); return 2; }
    if (sema_init_params(p, o->seed) != 0 || load_imported(r) != 0) { teardown(r); return 2; }
    Compiled *first = compiled(r, t->steps[0], 0, 1);
    if (!first) { teardown(r); return 1; }
    /* an epoch is one pass over the stream the first step reads */
    int main_stream = first_stream(&first->bg);
    if (main_stream < 0) { fail("the first step reads no data stream"); teardown(r); return 1; }
    const Dataset *d = r->data[main_stream];
    int bs = t->stream[main_stream].spec.batch;
    int64_t per_iter = 0;                  /* batches one iteration consumes (repeats draw fresh ones) */
    for (int si = 0; si < t->nsteps; si++) if (t->repeat[si] > per_iter) per_iter = t->repeat[si];
    int64_t nbatches = data_num_batches(d, &t->stream[main_stream].spec);   /* honours drop_last */
    if (nbatches == 0) {
        fprintf(stderr, "gmc: stream '%s' has %lld examples, fewer than one batch of %d\n", t->stream[main_stream].name, (long long)d->n, bs);
        teardown(r);
        return 2;
    }
    if (o->limit_batches > 0 && o->limit_batches < nbatches) nbatches = o->limit_batches;
    int64_t iters_per_epoch = (nbatches + per_iter - 1) / per_iter;

    r->epoch = 1;
    int resumed = 0;
    if (o->resume) {
        char path[1024];
        char dir[900];
        ckpt_dir(p, t, o->out_dir, dir, sizeof dir);
        int rc = o->ckpt ? (snprintf(path, sizeof path, "%s", o->ckpt), 0) : latest_in(dir, path, sizeof path, 1);
        if (rc < 0) { teardown(r); return 2; }
        if (rc == 0) {
            if (resume_from(r, path) != 0) { teardown(r); return 2; }
            printf("resuming %s from %s: epoch %d, batch %lld, step %lld\n", t->name, path, r->epoch,
                   (long long)r->batch, (long long)r->step);
            resumed = 1;
        } else printf("no checkpoint under %s: starting afresh\n", dir);
    }
    metrics_open(r, resumed);
    int64_t total_iters = t->max_steps ? t->max_steps : t->epochs * iters_per_epoch;
    printf("training %s: %s%lld iterations of batches of %d (%lld per epoch)\n", t->name,
           t->max_steps ? "" : fmt_epochs(t->epochs), (long long)total_iters, bs, (long long)iters_per_epoch);
    r->t_start = now();
    double last_loss[16] = { 0 };
    for (; !status && (t->max_steps ? r->step < t->max_steps : r->epoch <= t->epochs); r->epoch++) {
        /* the epoch's order: regenerated from its recorded RNG position after a resume */
        if (resumed) r->shuffle_rng.counter = r->shuffle_counter;
        r->shuffle_counter = r->shuffle_rng.counter;
        draw_orders(r);
        if (resumed && r->batch >= nbatches) { resumed = 0; r->batch = 0; continue; }   /* that epoch was complete */
        if (!resumed) r->batch = 0;
        resumed = 0;
        double t0 = now(), last_print = t0, sum[16] = { 0 };
        int64_t count[16] = { 0 }, first_batch = r->batch;
        r->nval = 0;
        while (r->batch < nbatches && !status && !(t->max_steps && r->step >= t->max_steps)) {
            int64_t b0 = r->batch;
            for (int si = 0; si < t->nsteps && !status; si++)
                for (int k = 0; k < t->repeat[si] && !status; k++) {
                    int64_t b = (b0 + k) % nbatches, start = b * bs;
                    int n = data_batch_len(d, &t->stream[main_stream].spec, b);
                    double loss;
                    status = run_step(r, si, start, n, &loss);
                    if (status) break;
                    sum[si] += loss; count[si]++;
                    last_loss[si] = loss;
                    if (r->step == 0 && si == 0 && k == 0) printf("first step loss %.4f\n", loss);
                }
            if (status) break;
            r->step++;
            r->batch += per_iter;
            metrics_row(r, last_loss, NULL);
            history_add(r, last_loss);
            double tn = now();
            int last = r->batch >= nbatches || (t->max_steps && r->step >= t->max_steps);
            if (tn - last_print > 1 || last) {
                double rate = (r->batch - first_batch) / per_iter / (tn - t0);
                int64_t left = total_iters - r->step;
                printf("%sepoch %d  step %lld/%lld  %.1f steps/s  ETA %.0f s ", isatty(1) ? "\r" : "", r->epoch,
                       (long long)((r->batch + per_iter - 1) / per_iter), (long long)iters_per_epoch, rate, left > 0 ? left / rate : 0.0);
                for (int si = 0; si < t->nsteps; si++)
                    printf(" %s %.4f", step_name(t, si), count[si] ? sum[si] / count[si] : NAN);
                printf(isatty(1) && !last ? "" : "\n");
                fflush(stdout);
                last_print = tn;
            }
            for (int e = 0; e < t->neverys && !status; e++)
                if (run_every(r, t->everys[e], 0) != 0) status = 2;
        }
        if (status) break;
        if (r->batch < nbatches) break;        /* stopped by `steps` inside the epoch */
        printf("epoch %d done in %.2f s: train loss %.4f\n", r->epoch, now() - t0, count[0] ? sum[0] / count[0] : NAN);
        for (int v = 0; v < t->nvalidates && !status; v++)
            if (validate(r, t->validates[v]) != 0) status = 2;
        if (r->nval) {
            char buf[512] = "";
            for (int k = 0; k < r->nval; k++) {
                size_t l = strlen(buf);
                snprintf(buf + l, sizeof buf - l, "%s%s=%.6g", k ? ";" : "", r->val_name[k], r->val_value[k]);
            }
            metrics_row(r, last_loss, buf);
        }
        for (int e = 0; e < t->neverys && !status; e++)
            if (run_every(r, t->everys[e], 1) != 0) status = 2;
        plot_history(r);
        fflush(stdout);
    }
    if (!status) {
        /* the end of a run is always checkpointed, so it can be sampled and resumed */
        if (r->epoch > 1) r->epoch--;
        if (!r->last_ckpt[0] || strstr(r->last_ckpt, fmt_stepfile(r->step)) == NULL) status = save_checkpoint(r) ? 2 : 0;
        printf("\nfinished %s in %.1f s: %lld steps", t->name, now() - r->t_start, (long long)r->step);
        for (int si = 0; si < t->nsteps; si++) printf(", last %s %.4f", step_name(t, si), last_loss[si]);
        plot_history(r);
        printf("\n  wrote %s/%s, ", o->out_dir, out_name(r, "metrics", "csv"));
        printf("%s/%s and %s\n", o->out_dir, out_name(r, "loss_curve", "png"), r->last_ckpt);
    }
    teardown(r);
    return status;
}

/* A sampling procedure that reads data goes through all of it in batches, like a validation:
 * a save whose first axis is the batch collects every batch into one .npy array (every test
 * sneaker translated); .png grids and saves that do not depend on the batch come from the
 * first batch. Memory stays that of one batch. */
static int sample_over_data(Run *r, Node *sample) {
    Compiled *c = compiled(r, sample, 0, 0);
    int s0 = first_stream(&c->bg);
    const Dataset *d = r->data[s0];
    const DataSpec *spec = &r->t->stream[s0].spec;
    int64_t nb = data_num_batches(d, spec), bs = spec->batch;
    int nsaves = c->bg.nsaves;
    float *acc[BLOCK_MAX_SAVES] = { 0 };
    int64_t rows[BLOCK_MAX_SAVES] = { 0 }, row_size[BLOCK_MAX_SAVES] = { 0 };
    draw_orders(r);                                 /* unshuffled streams: in file order */
    int status = 0;
    for (int64_t b = 0; b < nb && !status; b++) {
        int n = data_batch_len(d, spec, b);
        Compiled *cb = compiled(r, sample, n, 0);
        if (!cb) { status = 1; break; }
        fill_step_inputs(r, cb, b * bs, n);
        plan_run(cb->plan, &r->rng);
        for (int i = 0; i < nsaves && !status; i++) {
            SaveAction *sa = &cb->bg.saves[i];
            if (sa->when && *plan_node(cb->plan, sa->when - 1) == 0) continue;
            if (sa->kind == SAVE_MODEL) { if (b == 0 && do_saves(r, cb) != 0) status = 2; continue; }
            IrNode *nd = &cb->bg.g.nodes[sa->node];
            const float *x = plan_node(cb->plan, sa->node);
            int per_batch = sa->kind == SAVE_NPY && nd->ndim >= 1 && nd->shape[0] == n;
            if (!per_batch) {
                if (b == 0 && save_tensor(r, sa, x, nd->ndim, nd->shape) != 0) status = 2;
                continue;
            }
            row_size[i] = ir_numel(nd) / n;
            acc[i] = realloc(acc[i], (rows[i] + n) * row_size[i] * sizeof(float));
            memcpy(acc[i] + rows[i] * row_size[i], x, n * row_size[i] * sizeof(float));
            rows[i] += n;
        }
    }
    for (int i = 0; i < nsaves && !status; i++) {
        if (!acc[i]) continue;
        IrNode *nd = &c->bg.g.nodes[c->bg.saves[i].node];
        int64_t shape[IR_MAXDIM];
        memcpy(shape, nd->shape, nd->ndim * sizeof *shape);
        shape[0] = rows[i];
        if (save_tensor(r, &c->bg.saves[i], acc[i], nd->ndim, shape) != 0) status = 2;
    }
    for (int i = 0; i < BLOCK_MAX_SAVES; i++) free(acc[i]);
    return status;
}

static int uses_params(const IrGraph *g) {
    for (int i = 0; i < g->n; i++) if (g->nodes[i].op == IR_PARAM) return 1;
    return 0;
}

/* A sampling procedure with loops: its stages in order, a loop's stage once per value of its
 * counter; tensors move between stages and iterations through registers. */
static int run_stages(Run *r, Node *sample, SampleProgram *sp) {
    int ns = sp->nstages, status = 0;
    Compiled *cs = calloc(ns, sizeof *cs);
    float **reg = calloc(sp->nregs + 1, sizeof *reg);
    int64_t *reg_size = calloc(sp->nregs + 1, sizeof *reg_size);
    for (int i = 0; i < sp->nregs; i++) {
        reg_size[i] = 1;
        for (int d = 0; d < sp->regs[i].ndim; d++) reg_size[i] *= sp->regs[i].shape[d];
        reg[i] = calloc(reg_size[i] + 1, sizeof **reg);
    }
    for (int i = 0; i < ns && !status; i++) {
        cs[i].block = sample;
        cs[i].bg = sp->stages[i].bg;
        if (compile_plan(r, &cs[i]) != 0 || fill_first_batches(r, &cs[i]) != 0) status = 1;
    }
    for (int i = 0; i < ns && !status; i++) {
        SampleStage *st = &sp->stages[i];
        Compiled *c = &cs[i];
        int64_t n = st->loop ? st->nvalues : 1;
        double t0 = now();
        for (int64_t it = 0; it < n && !status; it++) {
            for (int k = 0; k < c->bg.ninputs; k++) {
                float *dst = plan_input(c->plan, k);
                if (!dst) continue;
                if (c->bg.input_stream[k] == STREAM_COUNTER) *dst = (float)st->values[it];
                else if (c->bg.input_stream[k] == STREAM_CARRY) {
                    int g = c->bg.input_part[k];
                    memcpy(dst, reg[g], reg_size[g] * sizeof(float));
                }
            }
            plan_run(c->plan, &r->rng);
            save_var = st->loop ? st->counter : NULL;
            save_value = st->loop ? st->values[it] : 0;
            if (do_saves(r, c) != 0) status = 2;
            save_var = NULL;
            for (int j = 0; j < c->bg.ncarry; j++) {
                int g = c->bg.carry_reg[j];
                memcpy(reg[g], plan_node(c->plan, c->bg.carry_node[j]), reg_size[g] * sizeof(float));
            }
            for (int k = 0; k < c->bg.nreports && it == n - 1; k++)   /* a stage's reports: its last run */
                printf("%s%s %.6g%s", k ? ", " : "  ", c->bg.report_name[k], *plan_node(c->plan, c->bg.report_node[k]),
                       k == c->bg.nreports - 1 ? "\n" : "");
        }
        if (st->loop && !status)
            printf("loop over %s: %lld iterations in %.2f s\n", st->counter, (long long)n, now() - t0);
    }
    for (int i = 0; i < ns; i++) plan_free(cs[i].plan);
    for (int i = 0; i < sp->nregs; i++) free(reg[i]);
    free(reg);
    free(reg_size);
    free(cs);
    return status;
}

/* Weights for a sampling procedure: --ckpt FILE, or the latest checkpoint; in a program of
 * several train blocks, each block's latest checkpoint gives the instances that block uses, in
 * program order, so an instance has the weights of the last block that trained or used it.
 * have[i] is set for each parameter loaded; `from` describes where they came from. */
static int load_sample_weights(Program *p, const RunOptions *o, char *have, char *from, int len) {
    char path[1024], dir[900], err[512];
    int files = 0;
    for (int b = 0; b < (o->ckpt || p->ntrains <= 1 ? 1 : p->ntrains); b++) {
        Train *t = o->ckpt || p->ntrains <= 1 ? NULL : &p->trains[b];
        if (o->ckpt) snprintf(path, sizeof path, "%s", o->ckpt);
        else {
            ckpt_dir(p, t, o->out_dir, dir, sizeof dir);
            int rc = latest_in(dir, path, sizeof path, t != NULL);
            if (rc < 0) return -1;
            if (rc > 0) continue;         /* a block not trained yet */
        }
        StFile *f = st_open(path, err, sizeof err);
        if (!f) { fail(err); return -1; }
        int found = 0;
        for (int i = 0; i < p->params.n; i++) {
            Param *pr = &p->params.items[i];
            int used = !t;
            for (int k = 0; t && k < t->ninst && !used; k++) used = !strcmp(t->inst[k].name, pr->owner);
            const StTensor *st = used ? st_find(f, pr->name) : NULL;
            if (!st) continue;
            int64_t size = 1;
            for (int k = 0; k < st->ndim; k++) size *= st->dims[k];
            if (size != pr->size) {
                fprintf(stderr, "gmc: %s: wrong shape for parameter '%s'\n", path, pr->name);
                st_close(f);
                return -1;
            }
            memcpy(pr->data, st->data, size * sizeof(float));
            have[i] = 1;
            found++;
        }
        st_close(f);
        if (!found && !t) { fprintf(stderr, "gmc: %s: holds none of the program's parameters\n", path); return -1; }
        size_t l = files ? strlen(from) : 0;
        snprintf(from + l, len - l, "%s%s", files ? ", " : "", path);
        files++;
    }
    if (!files) {
        fprintf(stderr, "gmc: no checkpoint of any train block under %s/checkpoints (train first, or give --ckpt FILE)\n", o->out_dir);
        return -1;
    }
    return 0;
}

/* 2 (after a message) if graph g uses a parameter that was not loaded */
static int missing_params(Program *p, const IrGraph *g, const char *have, const char *from, Node *sample) {
    for (int k = 0; k < g->n; k++) {
        const IrNode *n = &g->nodes[k];
        if (n->op == IR_PARAM && !have[n->slot]) {
            fprintf(stderr, "gmc: %s: no parameter '%s', which %s uses\n", from, p->params.items[n->slot].name, sample->name);
            return 2;
        }
    }
    return 0;
}

int run_sample(Program *p, Node *sample, const RunOptions *o) {
    Run run, *r = &run;
    char path[4096];
    /* the graphs first: a procedure that uses no parameter needs no checkpoint */
    int staged = sema_sample_has_loops(sample), need_ckpt = 0;
    SampleProgram *sp = NULL;
    if (staged) {
        sp = calloc(1, sizeof *sp);
        if (sema_build_sample(p, sample, sp) != 0) { free(sp); return 1; }
        for (int i = 0; i < sp->nstages; i++) need_ckpt |= uses_params(&sp->stages[i].bg.g);
    } else {
        BlockGraph bg;
        if (sema_build_block(p, NULL, sample, 0, 0, &bg) != 0) return 1;
        need_ckpt = uses_params(&bg.g);
        ir_free(&bg.g);
    }
    if (!need_ckpt && !o->ckpt) {
        if (setup(r, p, p->ntrains ? &p->trains[0] : NULL, o) != 0) { teardown(r); return 2; }
        printf("sampling %s\n", sample->name);
        int status;
        if (staged) status = run_stages(r, sample, sp);
        else {
            Compiled *c = compiled(r, sample, 0, 0);
            status = c ? 0 : 1;
            if (c && fill_first_batches(r, c) != 0) status = 2;
            if (!status && first_stream(&c->bg) >= 0) status = sample_over_data(r, sample);
            else if (!status) {
                plan_run(c->plan, &r->rng);
                status = do_saves(r, c) ? 2 : 0;
            }
        }
        if (sp) { sema_free_sample(sp); free(sp); }
        teardown(r);
        return status;
    }
    char *have = calloc(p->params.n + 1, 1);
    if (load_sample_weights(p, o, have, path, sizeof path) != 0) {
        free(have);
        if (sp) { sema_free_sample(sp); free(sp); }
        return 2;
    }
    if (setup(r, p, p->ntrains ? &p->trains[0] : NULL, o) != 0) { free(have); teardown(r); return 2; }
    printf("sampling %s from %s\n", sample->name, path);
    /* a file may hold only some models (only the generator): the parameters the procedure
     * uses must all be there */
    int status = 0;
    for (int i = 0; i < (sp ? sp->nstages : 0) && !status; i++)
        status = missing_params(p, &sp->stages[i].bg.g, have, path, sample);
    Compiled *c = NULL;
    if (!sp && !status) {
        c = compiled(r, sample, 0, 0);
        status = c ? missing_params(p, &c->bg.g, have, path, sample) : 1;
    }
    free(have);
    if (sp) {
        if (!status) status = run_stages(r, sample, sp);
        sema_free_sample(sp);
        free(sp);
    } else {
        if (!status && fill_first_batches(r, c) != 0) status = 2;
        if (!status && first_stream(&c->bg) >= 0) status = sample_over_data(r, sample);
        else if (!status) {
            plan_run(c->plan, &r->rng);
            status = do_saves(r, c) ? 2 : 0;
        }
    }
    teardown(r);
    return status;
}

int run_grad_dump(Program *p, Train *t, const char **feeds, int nfeeds, const char *step_name,
                  int training, const char *path, const RunOptions *o) {
    Node *step = t->steps[0];
    if (step_name) {
        step = NULL;
        for (int i = 0; i < t->nsteps; i++)
            if (t->steps[i]->name && !strcmp(t->steps[i]->name, step_name)) step = t->steps[i];
        if (!step) { fprintf(stderr, "gmc: train block '%s' has no step '%s'\n", t->name, step_name); return 2; }
    }
    Run run, *r = &run;
    if (setup(r, p, t, o) != 0) return 2;
    r->keep_leaves = 1;
    if (sema_init_params(p, o->seed) != 0) { teardown(r); return 2; }
    char err[512];
    float *x[8] = { 0 };
    int ndim[8] = { 0 }, dump_name[8] = { 0 }, batch = 0, rc = 2;
    int64_t dims[8][8];
    for (int k = 0; k < nfeeds; k++) {
        if (npy_read(feeds[k], &x[k], &ndim[k], dims[k], err, sizeof err) != 0) { fail(err); goto out; }
        if (k == 0) batch = (int)dims[0][0];
    }
    Compiled *c = compiled(r, step, batch, training);
    if (!c) { rc = 1; goto out; }
    /* data inputs take the feeds in the order the train block declares its streams (and a
     * stream's parts: x, then labels); the counters (epoch, step) read 0 */
    int order[8], ndata = 0;
    for (int k = 0; k < c->bg.ninputs; k++) {
        float *dst = plan_input(c->plan, k);
        if (c->bg.input_stream[k] < 0) { if (dst) *dst = 0; continue; }
        int j = ndata++;
        for (; j > 0; j--) {
            int q = order[j - 1];
            if (c->bg.input_stream[q] < c->bg.input_stream[k] ||
                (c->bg.input_stream[q] == c->bg.input_stream[k] && c->bg.input_part[q] < c->bg.input_part[k])) break;
            order[j] = q;
        }
        order[j] = k;
    }
    for (int f = 0; f < ndata && f < nfeeds; f++) {
        int k = order[f];
        dump_name[k] = f;
        const IrNode *in = NULL;
        for (int i = 0; i < c->bg.g.n; i++)
            if (c->bg.g.nodes[i].op == IR_INPUT && c->bg.g.nodes[i].slot == k) in = &c->bg.g.nodes[i];
        int64_t have = 1;
        for (int d = 0; d < ndim[f]; d++) have *= dims[f][d];
        if (in && ir_numel(in) != have) {
            fprintf(stderr, "gmc: %s: %lld values, the step's data input %d needs %lld\n", feeds[f], (long long)have, f + 1, (long long)ir_numel(in));
            goto out;
        }
        float *dst = plan_input(c->plan, k);
        if (dst) memcpy(dst, x[f], have * sizeof(float));
    }
    if (ndata != nfeeds) {
        fprintf(stderr, "gmc: the step reads %d data input%s, --feed gave %d\n", ndata, ndata == 1 ? "" : "s", nfeeds);
        goto out;
    }
    plan_run(c->plan, &r->rng);
    /* everything the cross-check needs: parameters, input, noise draws, loss, gradients */
    int cap = 2 * p->params.n + c->bg.g.n + 4, nt = 0, nnoise = 0;
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
        if (nd->op == IR_INPUT && c->bg.input_stream[nd->slot] < 0)
            snprintf(buf, sizeof buf, "input/%s", c->bg.input_stream[nd->slot] == STREAM_EPOCH ? "epoch" : "step");
        else if (nd->op == IR_INPUT) snprintf(buf, sizeof buf, dump_name[nd->slot] ? "input/%d" : "input/x", dump_name[nd->slot]);
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
    rc = st_write(path, ts, nt, NULL, 0, err, sizeof err) ? 2 : 0;
    if (rc != 0) fail(err);
    for (int i = 0; i < cap; i++) free(names[i]);
    free(names);
    free(ts);
out:
    for (int k = 0; k < nfeeds; k++) free(x[k]);
    teardown(r);
    return rc;
}
