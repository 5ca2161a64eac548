/* main.c: the gmc command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>
#include <xmmintrin.h>
#include "diag.h"
#include "program.h"
#include "plan.h"
#include "train.h"
#include "threads.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: gmc FILE.gm [--check | --summary | --run [NAME] | --sample NAME] [options]\n"
        "  --check            parse and analyse only\n"
        "  --summary          per-layer output shapes and parameter counts\n"
        "  --run [NAME]       train every train block (or the one named)\n"
        "  --sample NAME      run a sampling procedure from a checkpoint\n"
        "options:\n"
        "  --set NAME=VALUE   override a const, a sample argument or `epochs` (repeatable)\n"
        "  --seed N           random seed (default 0)\n"
        "  --out DIR          where checkpoints, images and arrays go (default out)\n"
        "  --threads N        threads for kernels and OpenBLAS (default: all cores)\n"
        "  --ckpt FILE        checkpoint for --sample or --resume (default: DIR/checkpoints/latest)\n"
        "  --resume           continue training from the latest checkpoint under --out\n"
        "  --keep N           keep the newest N checkpoints (default 5)\n"
        "  --dump-ir          print each block's IR graph\n"
        "  --dump-kernels     print the kernels of each compiled block\n"
        "  --stats            after training: time per kind of work, GFLOP/s against OpenBLAS\n"
        "                     sgemm measured in the same run, kernels compiled, peak memory\n"
        "  --dump-llvm        print the optimised LLVM IR of each block's kernels\n"
        "  --no-fuse          one kernel per op (the unfused reference path)\n"
        "  --interpret        run kernels with the reference interpreter, not the JIT\n"
        "  --no-cache         compile every kernel, neither reading nor writing the kernel\n"
        "                     cache ($XDG_CACHE_HOME/gmc, else ~/.cache/gmc, kept under\n"
        "                     $GMC_KERNEL_CACHE_MB megabytes, default 64, least recently\n"
        "                     used entries pruned first)\n"
        "  --limit-batches N  stop each epoch after N batches (quick checks)\n"
        "  --grad-dump FILE --feed X.npy   one forward/backward of the first step on X,\n"
        "                     parameters, noise, loss and gradients written to FILE;\n"
        "                     --feed again for each further data input of the step,\n"
        "                     --step NAME for another step (of any train block),\n"
        "                     --eval to build it with\n"
        "                     training = 0 (no dropout or noise, running statistics)\n");
}

/* Debian's OpenBLAS does not recognise this machine's AVX-512 CPU and would fall back to
 * generic kernels; the core type is read once when the library loads, so set it and
 * re-execute ourselves before any BLAS call. */
static void select_openblas_kernels(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("GMC_NO_REEXEC")) return;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[4096];
    int avx512 = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) { avx512 = strstr(line, " avx512f") && strstr(line, " avx512bw"); break; }
    fclose(f);
    if (!avx512) return;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    /* OpenBLAS's idle threads yield-spin for 2^28 cycles by default, stealing the cores from
     * gmc's own kernels between matrix products; 2^16 keeps them ready but lets go sooner */
    if (!getenv("OPENBLAS_THREAD_TIMEOUT")) setenv("OPENBLAS_THREAD_TIMEOUT", "16", 1);
    setenv("GMC_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);   /* if it fails we simply run with the default kernels */
}

int main(int argc, char **argv) {
    select_openblas_kernels(argv);
    /* Flush denormals to zero: optimiser moments of parameters whose gradients vanish decay
     * into denormal range, where every multiply is ~100x slower (an epoch of the MLP VAE
     * slowed from 3.5 s to 12 s without this). Threads started later inherit the mode. */
    _mm_setcsr(_mm_getcsr() | 0x8040);
    const char *file = NULL, *mode = NULL, *name = NULL, *grad_dump = NULL, *feed[8], *dump_step = NULL;
    int nfeed = 0, dump_eval = 0;
    Override ov[64];
    int nov = 0, dump_ir = 0, dump_llvm = 0;
    RunOptions o = { .out_dir = "out", .fuse = 1, .threads = (int)sysconf(_SC_NPROCESSORS_ONLN) };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_ARG() do { if (!next) { fprintf(stderr, "gmc: %s needs a value\n", a); return 2; } i++; } while (0)
        if (!strcmp(a, "--check") || !strcmp(a, "--summary")) mode = a + 2;
        else if (!strcmp(a, "--run")) { mode = "run"; if (next && next[0] != '-') name = argv[++i]; }
        else if (!strcmp(a, "--sample")) { NEED_ARG(); mode = "sample"; name = next; }
        else if (!strcmp(a, "--set")) {
            NEED_ARG();
            char *eq = strchr(next, '=');
            if (!eq || eq == next || nov == 64) { fprintf(stderr, "gmc: --set wants NAME=VALUE, got '%s'\n", next); return 2; }
            *eq = 0;
            ov[nov++] = (Override){ next, eq + 1 };
        }
        else if (!strcmp(a, "--seed")) { NEED_ARG(); o.seed = strtoull(next, NULL, 10); }
        else if (!strcmp(a, "--out")) { NEED_ARG(); o.out_dir = next; }
        else if (!strcmp(a, "--threads")) { NEED_ARG(); o.threads = atoi(next); if (o.threads < 1) { fprintf(stderr, "gmc: --threads must be positive\n"); return 2; } }
        else if (!strcmp(a, "--ckpt")) { NEED_ARG(); o.ckpt = next; }
        else if (!strcmp(a, "--resume")) o.resume = 1;
        else if (!strcmp(a, "--keep")) { NEED_ARG(); o.keep_checkpoints = atoi(next); if (o.keep_checkpoints < 1) { fprintf(stderr, "gmc: --keep must be positive\n"); return 2; } }
        else if (!strcmp(a, "--limit-batches")) { NEED_ARG(); o.limit_batches = atoi(next); }
        else if (!strcmp(a, "--grad-dump")) { NEED_ARG(); grad_dump = next; mode = "grad-dump"; }
        else if (!strcmp(a, "--feed")) {
            NEED_ARG();
            if (nfeed == 8) { fprintf(stderr, "gmc: at most 8 --feed files\n"); return 2; }
            feed[nfeed++] = next;
        }
        else if (!strcmp(a, "--step")) { NEED_ARG(); dump_step = next; }
        else if (!strcmp(a, "--eval")) dump_eval = 1;
        else if (!strcmp(a, "--dump-ir")) dump_ir = 1;
        else if (!strcmp(a, "--dump-kernels")) o.dump_kernels = 1;
        else if (!strcmp(a, "--stats")) o.stats = 1;
        else if (!strcmp(a, "--dump-llvm")) dump_llvm = 1;
        else if (!strcmp(a, "--no-fuse")) o.fuse = 0;
        else if (!strcmp(a, "--interpret")) o.interpret = 1;
        else if (!strcmp(a, "--no-cache")) o.no_cache = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "gmc: unknown option %s\n", a); usage(stderr); return 2; }
        else if (!file) file = a;
        else { fprintf(stderr, "gmc: more than one input file (%s, %s)\n", file, a); return 2; }
    }
    if (!file) { usage(stderr); return 2; }
    if (!mode) mode = "check";
    if (access(file, R_OK) != 0) { fprintf(stderr, "gmc: cannot read %s\n", file); return 2; }
    /* OpenBLAS runs single-threaded: gmc's pool splits the products in blocks fixed by their
     * shapes (runtime/gemm.c), so results do not depend on the thread count */
    openblas_set_num_threads(1);
    threads_start(o.threads);

    Program *p = sema_load(file, ov, nov);
    if (!p) return 1;
    if (sema_check_overrides(p) != 0) return 2;
    if (dump_ir || dump_llvm) {
        for (int t = 0; t < p->ntrains; t++)
            for (int s = 0; s < p->trains[t].nsteps; s++) {
                BlockGraph bg;
                if (sema_build_block(p, &p->trains[t], p->trains[t].steps[s], 0, 1, &bg) != 0) return 1;
                const char *sname = p->trains[t].steps[s]->name;
                if (dump_ir) {
                    printf("# train %s, step %s\n", p->trains[t].name, sname ? sname : "0");
                    ir_print(&bg.g, stdout);
                    /* what the nodes are for: the parameters by name, the loss, each gradient */
                    for (int i = 0; i < bg.g.n; i++)
                        if (bg.g.nodes[i].op == IR_PARAM)
                            printf("# %%%d = param #%d %s\n", i, bg.g.nodes[i].slot, p->params.items[bg.g.nodes[i].slot].name);
                    if (bg.loss >= 0) printf("# loss: %%%d\n", bg.loss);
                    for (int k = 0; k < bg.ngrads; k++)
                        printf("# gradient of %s: %%%d\n", p->params.items[bg.grad_param[k]].name, bg.grad_node[k]);
                }
                if (dump_llvm) {
                    printf("; train %s, step %s\n", p->trains[t].name, sname ? sname : "0");
                    int roots[600], n = 0;
                    roots[n++] = bg.loss;
                    for (int k = 0; k < bg.ngrads; k++) roots[n++] = bg.grad_node[k];
                    LowerOptions lo = { .fuse = o.fuse, .interpret = 1 };
                    char err[256];
                    Plan *pl = plan_build(&bg.g, &p->params, roots, n, bg.ninputs, &lo, NULL, err, sizeof err);
                    char *text = pl ? jit_dump_llvm(pl->kernels, pl->nkernels, 1) : NULL;
                    if (text) fputs(text, stdout);
                    free(text);
                    plan_free(pl);
                }
                ir_free(&bg.g);
            }
        return 0;
    }
    if (!strcmp(mode, "check")) { printf("%s: ok\n", file); return 0; }
    if (!strcmp(mode, "summary")) return sema_summary(p, stdout) ? 1 : 0;
    if (!strcmp(mode, "sample")) {
        Node *s = sema_find_sample(p, name);
        if (!s) { fprintf(stderr, "gmc: %s has no sample procedure '%s'\n", file, name); return 2; }
        return run_sample(p, s, &o);
    }
    if (!p->ntrains) { fprintf(stderr, "gmc: %s has no train block\n", file); return 2; }
    if (!strcmp(mode, "grad-dump")) {
        /* --step NAME: the first train block with a step of that name */
        Train *t = &p->trains[0];
        for (int k = p->ntrains - 1; dump_step && k >= 0; k--)
            for (int s = 0; s < p->trains[k].nsteps; s++)
                if (p->trains[k].steps[s]->name && !strcmp(p->trains[k].steps[s]->name, dump_step)) t = &p->trains[k];
        return run_grad_dump(p, t, feed, nfeed, dump_step, !dump_eval, grad_dump, &o);
    }
    int ran = 0;
    for (int t = 0; t < p->ntrains; t++) {
        if (name && strcmp(name, p->trains[t].name)) continue;
        int rc = run_train(p, &p->trains[t], &o);
        if (rc) return rc == 3 ? 1 : rc;
        ran++;
    }
    if (!ran) { fprintf(stderr, "gmc: %s has no train block '%s'\n", file, name); return 2; }
    return 0;
}
