/* test_kernels.c: the LLVM JIT against the reference interpreter (and against hand-computed
 * values) over every kernel op and loop shape: broadcasting, transposes, reductions over
 * inner/outer/several axes, post epilogues, scalar outputs, begin/end splits, in-place. */
#include "check.h"
#include "kernel.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUF 8
#define BUFSZ (1 << 17)
#define OUT 6            /* the usual output buffer; it starts as a sentinel */
#define EXACT 1e-6       /* float ops that must agree (all but rounding of libm-like calls) */
#define ULPS 2e-6        /* exp/log/tanh/erf/pow may differ in the last ulps (libmvec) */

static Jit *jit;
static float *bufs_ref[NBUF], *bufs_jit[NBUF], *bufs_split[NBUF], *init[NBUF];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng_state = 88172645463325252ull;
static float urand(float lo, float hi) {   /* xorshift: same data on every run */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

/* b0: [-3,3]; b1: (0.05,4] positive; b2: like b0, equal to it at every 4th element; b3: a 0/1
 * mask with some -0; b4, b5: [-1,1]; b6, b7: outputs, filled with a sentinel. */
static void make_inputs(void) {
    for (int b = 0; b < NBUF; b++) init[b] = malloc(BUFSZ * sizeof(float));
    for (int i = 0; i < BUFSZ; i++) {
        init[0][i] = urand(-3, 3);
        init[1][i] = urand(0.05f, 4);
        init[2][i] = i % 4 == 0 ? init[0][i] : urand(-3, 3);
        init[3][i] = i % 7 == 0 ? -0.0f : urand(0, 1) < 0.5f ? 0.0f : 1.0f;
        init[4][i] = urand(-1, 1);
        init[5][i] = urand(-1, 1);
        init[6][i] = init[7][i] = 12345.0f;
    }
    for (int b = 0; b < NBUF; b++) {
        bufs_ref[b] = malloc(BUFSZ * sizeof(float));
        bufs_jit[b] = malloc(BUFSZ * sizeof(float));
        bufs_split[b] = malloc(BUFSZ * sizeof(float));
    }
}

static void reset(void) {
    for (int b = 0; b < NBUF; b++) {
        memcpy(bufs_ref[b], init[b], BUFSZ * sizeof(float));
        memcpy(bufs_jit[b], init[b], BUFSZ * sizeof(float));
        memcpy(bufs_split[b], init[b], BUFSZ * sizeof(float));
    }
}

static void free_expr(KExpr *e) {
    if (!e) return;
    for (int i = 0; i < 3; i++) free_expr(e->arg[i]);
    free(e);
}

static void free_kernel(Kernel *k) {
    free_expr(k->body);
    free_expr(k->post);
    free(k);
}

/* A kernel writing buffer OUT row-major over its output dims. */
static Kernel *kernel(const char *name, int ndim, int nout, const int64_t *dims, KReduce r,
                      KExpr *body, KExpr *post) {
    Kernel *k = calloc(1, sizeof *k);
    snprintf(k->name, sizeof k->name, "%.63s", name);
    k->ndim = ndim;
    k->nout = nout;
    if (ndim) memcpy(k->dims, dims, (size_t)ndim * sizeof *dims);
    k->reduce = r;
    k->body = body;
    k->post = post;
    k->out_buf = OUT;
    int64_t s = 1;
    for (int d = nout - 1; d >= 0; d--) {
        k->out_stride[d] = s;
        s *= dims[d];
    }
    return k;
}

/* strides for a load: varargs list of ndim strides */
static KExpr *load(int buf, int64_t off, int ndim, int64_t s0, int64_t s1, int64_t s2, int64_t s3) {
    int64_t s[4] = {s0, s1, s2, s3};
    return kx_load(buf, off, s, ndim);
}
#define L1(b, s0) load(b, 0, 1, s0, 0, 0, 0)
#define L2(b, s0, s1) load(b, 0, 2, s0, s1, 0, 0)
#define L3(b, s0, s1, s2) load(b, 0, 3, s0, s1, s2, 0)

static int same(float a, float b, double rtol) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (a == b) return 1;
    return check_close(a, b, rtol, 1e-30);
}

/* Compares all buffers of got with the reference; describes the first mismatch, or how many
 * values agree only within rtol rather than bit for bit. */
static int compare(float **got, double rtol, char *why, size_t n) {
    long inexact = 0;
    double worst = 0;
    for (int b = 0; b < NBUF; b++)
        for (int i = 0; i < BUFSZ; i++) {
            if (!same(got[b][i], bufs_ref[b][i], rtol)) {
                snprintf(why, n, "b%d[%d]: got %.9g want %.9g", b, i, (double)got[b][i],
                         (double)bufs_ref[b][i]);
                return 0;
            }
            if (memcmp(&got[b][i], &bufs_ref[b][i], sizeof(float)) != 0 && !isnan(got[b][i])) {
                double rel = fabs((double)got[b][i] - bufs_ref[b][i]) / fabs((double)bufs_ref[b][i]);
                inexact++;
                if (rel > worst) worst = rel;
            }
        }
    if (inexact) snprintf(why, n, "%ld values differ, by at most %.2g relative", inexact, worst);
    else snprintf(why, n, "all equal");
    return 1;
}

/* Runs k with the interpreter, the JIT in one call and the JIT in two calls (split on dim 0),
 * and checks that all three agree; frees k. */
static void run_case(const char *what, Kernel *k, double rtol) {
    char err[512] = "", why1[160], why2[160];
    KernelFn fn = NULL;
    int64_t n0 = k->nout ? k->dims[0] : 1, mid = n0 / 3;
    reset();
    kernel_interpret(k, bufs_ref, 0, n0);
    if (jit_compile(jit, &k, 1, &fn, err, sizeof err) != 0 || !fn) {
        CHECK(0, "%s: compiles (%s)", what, err);
        free_kernel(k);
        return;
    }
    kernel_run(fn, k, bufs_jit, 0, n0);
    if (k->nout) {
        kernel_run(fn, k, bufs_split, 0, mid);
        kernel_run(fn, k, bufs_split, mid, n0);
    } else {
        kernel_run(fn, k, bufs_split, 0, 0);   /* an empty range writes nothing */
        kernel_run(fn, k, bufs_split, 0, 1);
    }
    int ok1 = compare(bufs_jit, rtol, why1, sizeof why1);
    int ok2 = compare(bufs_split, rtol, why2, sizeof why2);
    CHECK(ok1 && ok2, "%s: jit == interpreter (one call: %s; split at %lld: %s)", what, why1,
          (long long)mid, why2);
    free_kernel(k);
}

/* Kernels that cut the same loops differently have one key (jit_kernel_key), and the body
 * compiled for one runs the others: a bias add over [4 x 8 x 16 x 24] and over
 * [16 x 32 x 24] (outer dims of 128 and 512 points times 24 per row), a row sum over
 * [40 x 96] and [100 x 96], each run split on dim 0 like the thread pool does. Kernels whose
 * code differs have different keys. */
static void test_shared_code(void) {
    char err[512] = "", why[160];
    KExpr *bias4 = kx_bin(KE_MAX, kx_bin(KE_ADD, load(0, 0, 4, 3072, 384, 24, 1), load(4, 0, 4, 0, 0, 0, 1)),
                          kx_const(0));
    KExpr *bias3 = kx_bin(KE_MAX, kx_bin(KE_ADD, load(0, 0, 3, 768, 24, 1, 0), load(4, 0, 3, 0, 0, 1, 0)),
                          kx_const(0));
    Kernel *pairs[3][2] = {
        {kernel("bias4", 4, 4, (int64_t[]){4, 8, 16, 24}, KR_NONE, bias4, NULL),
         kernel("bias3", 3, 3, (int64_t[]){16, 32, 24}, KR_NONE, bias3, NULL)},
        {kernel("rows40", 2, 1, (int64_t[]){40, 96}, KR_SUM, L2(1, 96, 1), NULL),
         kernel("rows100", 2, 1, (int64_t[]){100, 96}, KR_SUM, L2(1, 96, 1), NULL)},
        {kernel("exp64", 1, 1, (int64_t[]){64}, KR_NONE, kx_un(KE_EXP, L1(0, 1)), NULL),
         kernel("exp5000", 1, 1, (int64_t[]){5000}, KR_NONE, kx_un(KE_EXP, L1(0, 1)), NULL)},
    };
    for (int i = 0; i < 3; i++) {
        Kernel *a = pairs[i][0], *b = pairs[i][1];
        char *ka = jit_kernel_key(a), *kb = jit_kernel_key(b);
        KernelFn fn = NULL;
        int rc = jit_compile(jit, &a, 1, &fn, err, sizeof err);
        b->outer_scale = jit_outer_scale(b);
        int ok = ka && kb && !strcmp(ka, kb) && rc == 0 && fn;
        if (ok) {
            int64_t n0 = b->dims[0], mid = n0 / 3;
            reset();
            kernel_interpret(b, bufs_ref, 0, n0);
            kernel_run(fn, b, bufs_jit, 0, mid);
            kernel_run(fn, b, bufs_jit, mid, n0);
            ok = compare(bufs_jit, ULPS, why, sizeof why);
        }
        CHECK(ok, "shared code: %s's body runs %s (keys %s; %s)", a->name, b->name,
              ka && kb && !strcmp(ka, kb) ? "equal" : "differ", rc ? err : ok ? why : "mismatch");
        free(ka);
        free(kb);
    }
    /* what changes code changes the key: a row of 24 against one of 32, 8 points against 64
     * (no 16-lane tier), a constant, a strided read */
    Kernel *diff[4][2] = {
        {kernel("r24", 2, 1, (int64_t[]){40, 24}, KR_SUM, L2(1, 24, 1), NULL),
         kernel("r32", 2, 1, (int64_t[]){40, 32}, KR_SUM, L2(1, 32, 1), NULL)},
        {kernel("e8", 1, 1, (int64_t[]){8}, KR_NONE, kx_un(KE_EXP, L1(0, 1)), NULL),
         kernel("e64", 1, 1, (int64_t[]){64}, KR_NONE, kx_un(KE_EXP, L1(0, 1)), NULL)},
        {kernel("c2", 1, 1, (int64_t[]){64}, KR_NONE, kx_bin(KE_MUL, L1(0, 1), kx_const(2)), NULL),
         kernel("c3", 1, 1, (int64_t[]){64}, KR_NONE, kx_bin(KE_MUL, L1(0, 1), kx_const(3)), NULL)},
        {kernel("s1", 1, 1, (int64_t[]){64}, KR_NONE, L1(0, 1), NULL),
         kernel("s2", 1, 1, (int64_t[]){64}, KR_NONE, L1(0, 2), NULL)},
    };
    for (int i = 0; i < 4; i++) {
        char *ka = jit_kernel_key(diff[i][0]), *kb = jit_kernel_key(diff[i][1]);
        CHECK(ka && kb && strcmp(ka, kb), "different code, different keys: %s, %s", diff[i][0]->name,
              diff[i][1]->name);
        free(ka);
        free(kb);
        free_kernel(diff[i][0]);
        free_kernel(diff[i][1]);
    }
    for (int i = 0; i < 3; i++) free_kernel(pairs[i][0]), free_kernel(pairs[i][1]);
}

static int transcendental(KOp op) {
    return op == KE_EXP || op == KE_LOG || op == KE_LOG1P || op == KE_TANH || op == KE_SIGMOID ||
           op == KE_SOFTPLUS || op == KE_ERF || op == KE_SIN || op == KE_COS || op == KE_POW;
}

static void test_every_op(void) {
    const int64_t d2[2] = {37, 53};
    char what[64];
    for (KOp op = KE_NEG; op <= KE_FLOOR; op++) {
        int positive = op == KE_LOG || op == KE_SQRT || op == KE_RSQRT || op == KE_LOG1P;
        KExpr *x = L2(positive ? 1 : 0, 53, 1);
        if (op == KE_EXP || op == KE_TANH || op == KE_SIGMOID || op == KE_SOFTPLUS || op == KE_ERF)
            x = kx_bin(KE_MUL, x, kx_const(op == KE_EXP ? 10.0f : 12.0f));   /* wide range */
        snprintf(what, sizeof what, "unary %s [37 x 53]", kop_name(op));
        run_case(what, kernel(what, 2, 2, d2, KR_NONE, kx_un(op, x), NULL),
                 transcendental(op) ? ULPS : EXACT);
    }
    for (KOp op = KE_ADD; op <= KE_NE; op++) {
        KExpr *a = op == KE_POW ? L2(1, 53, 1) : L2(0, 53, 1);
        snprintf(what, sizeof what, "binary %s [37 x 53]", kop_name(op));
        run_case(what, kernel(what, 2, 2, d2, KR_NONE, kx_bin(op, a, L2(2, 53, 1)), NULL),
                 transcendental(op) ? ULPS : EXACT);
    }
    run_case("select on a 0/1/-0 mask", kernel("sel", 2, 2, d2, KR_NONE,
             kx_select(L2(3, 53, 1), L2(0, 53, 1), kx_un(KE_NEG, L2(2, 53, 1))), NULL), EXACT);
    run_case("select on a comparison", kernel("sel2", 2, 2, d2, KR_NONE,
             kx_select(kx_bin(KE_GT, L2(0, 53, 1), kx_const(0.5f)), L2(0, 53, 1),
                       kx_bin(KE_MUL, L2(2, 53, 1), kx_const(0.25f))), NULL), EXACT);
    run_case("index and const", kernel("idx", 2, 2, d2, KR_NONE,
             kx_bin(KE_ADD, kx_bin(KE_MUL, kx_index(0), kx_const(1000)), kx_index(1)), NULL), EXACT);
}

static void test_shapes(void) {
    const int64_t mnist[2] = {128, 784}, d3[3] = {5, 1, 7}, row[2] = {1, 784}, big1[1] = {1001};
    const int64_t small[2] = {3, 5}, d3b[3] = {4, 5, 6};
    run_case("row broadcast add [128 x 784]", kernel("bias", 2, 2, mnist, KR_NONE,
             kx_bin(KE_ADD, L2(0, 784, 1), L2(4, 0, 1)), NULL), EXACT);
    run_case("column broadcast mul [128 x 784]", kernel("colb", 2, 2, mnist, KR_NONE,
             kx_bin(KE_MUL, L2(0, 784, 1), L2(4, 1, 0)), NULL), EXACT);
    run_case("transposed load [37 x 53]", kernel("tr", 2, 2, (int64_t[]){37, 53}, KR_NONE,
             kx_bin(KE_SUB, L2(0, 1, 37), L2(1, 53, 1)), NULL), EXACT);
    Kernel *k = kernel("trout", 2, 2, (int64_t[]){37, 53}, KR_NONE, kx_un(KE_EXP, L2(0, 53, 1)), NULL);
    k->out_stride[0] = 1;
    k->out_stride[1] = 37;
    run_case("transposed store [37 x 53]", k, ULPS);
    k = kernel("rev", 1, 1, big1, KR_NONE, kx_un(KE_NEG, load(0, 1000, 1, -1, 0, 0, 0)), NULL);
    run_case("reversed load (stride -1) [1001]", k, EXACT);
    k = kernel("off", 1, 1, big1, KR_NONE, load(2, 17, 1, 3, 0, 0, 0), NULL);
    k->out_offset = 5;
    k->out_stride[0] = 2;
    run_case("offsets and strided output [1001]", k, EXACT);
    run_case("dims of 1 [5 x 1 x 7]", kernel("ones", 3, 3, d3, KR_NONE,
             kx_bin(KE_MUL, L3(0, 7, 99, 1), L3(4, 0, 0, 1)), NULL), EXACT);
    run_case("leading 1 [1 x 784]", kernel("lead1", 2, 2, row, KR_NONE,
             kx_un(KE_SIGMOID, L2(0, 0, 1)), NULL), ULPS);
    run_case("merged contiguous [4 x 5 x 6]", kernel("merge3", 3, 3, d3b, KR_NONE,
             kx_bin(KE_ADD, L3(0, 30, 6, 1), L3(2, 30, 6, 1)), NULL), EXACT);
    run_case("index on a contiguous [4 x 5 x 6]", kernel("mergeidx", 3, 3, d3b, KR_NONE,
             kx_bin(KE_ADD, L3(0, 30, 6, 1), kx_index(1)), NULL), EXACT);
    run_case("partly broadcast [4 x 5 x 6]", kernel("merge3b", 3, 3, d3b, KR_NONE,
             kx_bin(KE_ADD, L3(0, 30, 6, 1), L3(2, 0, 6, 1)), NULL), EXACT);
    run_case("tiny [3 x 5]", kernel("tiny", 2, 2, small, KR_NONE,
             kx_un(KE_TANH, L2(0, 5, 1)), NULL), ULPS);
    run_case("1001 (not a multiple of 8)", kernel("odd", 1, 1, big1, KR_NONE,
             kx_un(KE_SOFTPLUS, kx_bin(KE_MUL, L1(0, 1), kx_const(30))), NULL), ULPS);
    /* the renderer leaves out vector tiers and the scalar tail where no point can be left for
     * them: rows that merge into dim 0 run multiples of the row (24: 16 + 8 lanes, no tail;
     * 64: 16 lanes only), unmerged rows run exactly their length (40: 32 + 8; 20: 16 + tail) */
    run_case("rows of 24 merged [5 x 24]", kernel("r24", 2, 2, (int64_t[]){5, 24}, KR_NONE,
             kx_bin(KE_ADD, L2(0, 24, 1), kx_const(1)), NULL), EXACT);
    run_case("rows of 64 merged [6 x 64]", kernel("r64", 2, 2, (int64_t[]){6, 64}, KR_NONE,
             kx_bin(KE_MUL, L2(0, 64, 1), L2(2, 64, 1)), NULL), EXACT);
    run_case("transposed rows of 40 [9 x 40]", kernel("t40", 2, 2, (int64_t[]){9, 40}, KR_NONE,
             kx_bin(KE_SUB, L2(0, 1, 9), kx_index(1)), NULL), EXACT);
    run_case("transposed rows of 20 [7 x 20]", kernel("t20", 2, 2, (int64_t[]){7, 20}, KR_NONE,
             kx_bin(KE_SUB, L2(0, 1, 7), kx_index(1)), NULL), EXACT);
    run_case("sum keeping rows of 48 [6 x 48 | 5]", kernel("k48", 3, 2, (int64_t[]){6, 48, 5},
             KR_SUM, L3(0, 1, 6, 6 * 48), NULL), EXACT);
    run_case("sum keeping rows of 72 [3 x 72 | 4]", kernel("k72", 3, 2, (int64_t[]){3, 72, 4},
             KR_MAX, L3(0, 72 * 4, 4, 1), NULL), EXACT);
    /* copies of contiguous rows run as memmove calls in kernel_interpret (kernel_copy.c),
     * not compiled: checked here against the JIT's code for the same kernels */
    k = kernel("copy3", 3, 3, (int64_t[]){5, 3, 40}, KR_NONE, L3(0, 200, 40, 1), NULL);
    k->out_stride[0] = 250;             /* into the second part of a concat along dim 0 rows */
    k->out_stride[1] = 80;
    k->out_offset = 40;
    CHECK(kernel_is_row_copy(k), "a copy of rows of 40 is a row copy");
    run_case("row copy into a concat's part [5 x 3 x 40]", k, EXACT);
    k = kernel("copy1", 1, 1, big1, KR_NONE, load(2, 7, 1, 1, 0, 0, 0), NULL);
    k->out_offset = 3;
    run_case("row copy of one row [1001]", k, EXACT);
    k = kernel("notcopy", 2, 2, (int64_t[]){40, 8}, KR_NONE, L2(0, 8, 1), NULL);
    CHECK(!kernel_is_row_copy(k), "rows of 8 are left to the JIT");
    run_case("short rows [40 x 8]", k, EXACT);
    k = kernel("inplace", 2, 2, mnist, KR_NONE,
               kx_bin(KE_ADD, kx_bin(KE_MUL, L2(0, 784, 1), kx_const(0.9f)), L2(2, 784, 1)), NULL);
    k->out_buf = 0;
    run_case("in-place update b0 = 0.9*b0 + b2 [128 x 784]", k, EXACT);
    k = kernel("inplace2", 1, 1, big1, KR_NONE, kx_bin(KE_MUL, L1(4, 1), L1(4, 1)), NULL);
    k->out_buf = 4;
    run_case("in-place square b4 = b4*b4 [1001]", k, EXACT);
    run_case("post on an elementwise kernel", kernel("epi", 2, 2, mnist, KR_NONE, L2(0, 784, 1),
             kx_bin(KE_MAX, kx_acc(), L2(4, 784, 1))), EXACT);
    run_case("scalar kernel, ndim 0", kernel("scalar0", 0, 0, NULL, KR_NONE,
             kx_bin(KE_ADD, load(0, 3, 0, 0, 0, 0, 0), kx_const(1)), NULL), EXACT);
}

static void test_reductions(void) {
    static const KReduce reds[3] = {KR_SUM, KR_MAX, KR_MIN};
    static const char *names[3] = {"sum", "max", "min"};
    char what[96];
    for (int r = 0; r < 3; r++) {
        snprintf(what, sizeof what, "%s over the inner axis [128 | 784]", names[r]);
        run_case(what, kernel(what, 2, 1, (int64_t[]){128, 784}, reds[r], L2(0, 784, 1), NULL), EXACT);
        snprintf(what, sizeof what, "%s over the outer axis [784 | 128]", names[r]);
        run_case(what, kernel(what, 2, 1, (int64_t[]){784, 128}, reds[r], L2(0, 1, 784), NULL), EXACT);
        snprintf(what, sizeof what, "%s over two axes [6 | 35 x 33]", names[r]);
        run_case(what, kernel(what, 3, 1, (int64_t[]){6, 35, 33}, reds[r],
                 kx_bin(KE_MUL, L3(0, 1155, 33, 1), L3(4, 0, 1, 0)), NULL), EXACT);
        snprintf(what, sizeof what, "%s to a scalar [| 40 x 33]", names[r]);
        run_case(what, kernel(what, 2, 0, (int64_t[]){40, 33}, reds[r], L2(0, 33, 1), NULL), EXACT);
    }
    run_case("sum keeping two axes [9 x 41 | 13]", kernel("keep2", 3, 2, (int64_t[]){9, 41, 13},
             KR_SUM, kx_bin(KE_MUL, L3(0, 13 * 41, 1, 41), L3(2, 0, 13, 1)), NULL), EXACT);
    run_case("sum over the middle axis [7 x 37 | 11] (outer-axis style)",
             kernel("mid", 3, 2, (int64_t[]){7, 37, 11}, KR_SUM, L3(0, 11 * 37, 1, 37), NULL), EXACT);
    run_case("sum over no dims [40 x 9 |]", kernel("rnone", 2, 2, (int64_t[]){40, 9}, KR_SUM,
             L2(0, 9, 1), kx_bin(KE_MUL, kx_acc(), kx_const(3))), EXACT);
    run_case("sum over a dim of 1 [128 | 1]", kernel("r1", 2, 1, (int64_t[]){128, 1}, KR_SUM,
             L2(0, 1, 5), NULL), EXACT);
    run_case("sum over an empty dim [10 | 0]", kernel("r0", 2, 1, (int64_t[]){10, 0}, KR_SUM,
             L2(0, 1, 1), kx_bin(KE_ADD, kx_acc(), kx_const(2))), EXACT);
    run_case("max over an empty dim gives -inf [10 | 0]", kernel("m0", 2, 1, (int64_t[]){10, 0},
             KR_MAX, L2(0, 1, 1), NULL), EXACT);
    run_case("mean-centred post loading another buffer [128 | 784]",
             kernel("meanc", 2, 1, (int64_t[]){128, 784}, KR_SUM, L2(0, 784, 1),
                    kx_bin(KE_SUB, kx_bin(KE_MUL, kx_acc(), kx_const(1.0f / 784)), L2(5, 1, 12345))),
             EXACT);   /* a post load's stride over a reduced dim is ignored */
    run_case("logsumexp-style post [50 | 10]", kernel("lse", 2, 1, (int64_t[]){50, 10}, KR_SUM,
             kx_un(KE_EXP, L2(0, 10, 1)), kx_un(KE_LOG, kx_acc())), ULPS);
    run_case("post with index and select [33 | 17]", kernel("pidx", 2, 1, (int64_t[]){33, 17},
             KR_MAX, kx_bin(KE_MUL, L2(0, 17, 1), kx_index(1)),
             kx_select(kx_bin(KE_GT, kx_index(0), kx_const(10)), kx_acc(), kx_un(KE_NEG, kx_acc()))),
             EXACT);
    run_case("scalar sum with post [| 1000]", kernel("ssum", 1, 0, (int64_t[]){1000}, KR_SUM,
             kx_bin(KE_MUL, L1(0, 1), L1(2, 1)), kx_un(KE_SQRT, kx_un(KE_ABS, kx_acc()))), EXACT);
    Kernel *k = kernel("tout", 2, 1, (int64_t[]){130, 24}, KR_SUM, L2(0, 24, 1), NULL);
    k->out_stride[0] = 3;
    k->out_offset = 2;
    run_case("reduction to a strided output [130 | 24]", k, EXACT);
}

/* Values worked out by hand; NaN semantics of max/min and the stable formulas. */
static void test_hand_values(void) {
    char err[256];
    float x[8] = {1, 2, 3, 4, 5, 6, NAN, -0.0f}, y[8] = {10, -20, 30, NAN, 1, 0, 2, 0};
    float out[16], big[4] = {-100, 100, 0, -0.0f}, o[4][4];
    float *b[8] = {x, y, out, big, o[0], o[1], o[2], o[3]};
    Kernel *k[7];
    k[0] = kernel("add23", 2, 2, (int64_t[]){2, 3}, KR_NONE, kx_bin(KE_ADD, L2(0, 3, 1), L2(1, 3, 1)), NULL);
    k[1] = kernel("rowsum", 2, 1, (int64_t[]){2, 3}, KR_SUM, L2(0, 3, 1), NULL);
    k[1]->out_offset = 6;
    k[2] = kernel("maxnan", 1, 1, (int64_t[]){8}, KR_NONE, kx_bin(KE_MAX, L1(0, 1), L1(1, 1)), NULL);
    k[2]->out_offset = 8;
    k[3] = kernel("sigm", 1, 1, (int64_t[]){4}, KR_NONE, kx_un(KE_SIGMOID, L1(3, 1)), NULL);
    k[4] = kernel("softp", 1, 1, (int64_t[]){4}, KR_NONE, kx_un(KE_SOFTPLUS, L1(3, 1)), NULL);
    k[5] = kernel("sign", 1, 1, (int64_t[]){4}, KR_NONE, kx_un(KE_SIGN, L1(3, 1)), NULL);
    k[6] = kernel("maxred", 1, 0, (int64_t[]){8}, KR_MAX, L1(0, 1), NULL);
    for (int i = 0; i < 7; i++) k[i]->out_buf = i < 3 ? 2 : i + 1;
    KernelFn fn[7];
    int rc = jit_compile(jit, k, 7, fn, err, sizeof err);
    CHECK(rc == 0, "seven kernels in one module compile (%s)", rc ? err : "ok");
    if (rc != 0) return;
    for (int interp = 0; interp < 2; interp++) {
        const char *who = interp ? "interpreter" : "jit";
        for (int i = 0; i < 16; i++) out[i] = -1;
        memset(o, 0, sizeof o);
        for (int i = 0; i < 7; i++) {
            int64_t n = k[i]->nout ? k[i]->dims[0] : 1;
            if (interp) kernel_interpret(k[i], b, 0, n);
            else kernel_run(fn[i], k[i], b, 0, n);
        }
        CHECK(out[0] == 11 && out[1] == -18 && out[2] == 33 && isnan(out[3]) && out[4] == 6 &&
              out[5] == 6, "%s: [2x3] add by hand", who);
        CHECK(out[6] == 6 && out[7] == 15, "%s: row sums by hand (6, 15)", who);
        CHECK(out[8] == 10 && out[9] == 2 && out[10] == 30 && isnan(out[11]) && out[12] == 5 &&
              out[13] == 6 && isnan(out[14]) && out[15] == 0,
              "%s: max propagates NaN from either side", who);
        CHECK(o[0][0] > 0 && o[0][0] < 1e-40f && o[0][1] == 1 && o[0][2] == 0.5f && o[0][3] == 0.5f,
              "%s: sigmoid(-100, 100, 0, -0) = (%g, %g, %g, %g)", who, (double)o[0][0],
              (double)o[0][1], (double)o[0][2], (double)o[0][3]);
        CHECK(o[1][0] > 0 && o[1][0] < 1e-40f && o[1][1] == 100 &&
              check_close(o[1][2], log(2.0), 1e-7, 0) && o[1][3] == o[1][2],
              "%s: softplus(-100, 100, 0, -0) = (%g, %g, %g, %g)", who, (double)o[1][0],
              (double)o[1][1], (double)o[1][2], (double)o[1][3]);
        CHECK(o[2][0] == -1 && o[2][1] == 1 && o[2][2] == 0 && o[2][3] == 0,
              "%s: sign(-100, 100, 0, -0)", who);
        CHECK(isnan(o[3][0]), "%s: max-reduction over values with a NaN is NaN", who);
    }
    for (int i = 0; i < 7; i++) free_kernel(k[i]);
}

static void test_api(void) {
    char err[256] = "";
    KernelFn fn;
    Kernel *bad = kernel("bad", 1, 1, (int64_t[]){4}, KR_NONE, kx_acc(), NULL);
    int rc = jit_compile(jit, &bad, 1, &fn, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "acc"), "acc in a body is an error, not a crash (%s)", err);
    free_kernel(bad);
    bad = kernel("bad2", 2, 1, (int64_t[]){4, 4}, KR_NONE, L2(0, 4, 1), NULL);
    rc = jit_compile(jit, &bad, 1, &fn, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "reduc"), "reduced dims without a reduction are an error (%s)", err);
    free_kernel(bad);

    /* the same kernel names twice on one Jit: modules get their own prefixes */
    Kernel *k = kernel("twice", 1, 1, (int64_t[]){9}, KR_NONE, kx_bin(KE_ADD, L1(0, 1), kx_const(1)), NULL);
    KernelFn f1, f2;
    int ok = jit_compile(jit, &k, 1, &f1, err, sizeof err) == 0 &&
             jit_compile(jit, &k, 1, &f2, err, sizeof err) == 0;
    CHECK(ok && f1 && f2 && f1 != f2, "compiling one kernel twice on one Jit (%s)", ok ? "ok" : err);

    char *ir = jit_dump_llvm(&k, 1, 0), *opt = jit_dump_llvm(&k, 1, 1);
    CHECK(strstr(ir, "define void @gmc0_0_twice") && strstr(opt, "<8 x float>"),
          "jit_dump_llvm: plain and optimised IR (vector chunks of 8)");
    free(ir);
    free(opt);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    Kernel *p = kernel("k3_add", 2, 2, (int64_t[]){128, 784}, KR_NONE,
                       kx_bin(KE_ADD, L2(2, 784, 1), L2(4, 0, 1)), NULL);
    p->out_buf = 5;
    kernel_print(p, f);
    Kernel *r = kernel("k4_mean", 2, 1, (int64_t[]){128, 784}, KR_SUM, L2(2, 784, 1),
                       kx_bin(KE_MUL, kx_acc(), kx_const(0.5f)));
    kernel_print(r, f);
    fclose(f);
    for (char *c = text; *c; c++)   /* one line per check */
        if (*c == '\n' && c[1]) *c = '|';
    CHECK(strstr(text, "kernel k3_add [128 x 784] -> buf 5[784*i0 + i1] = "
                       "add(load b2[784*i0 + i1], load b4[i1])") &&
          strstr(text, "kernel k4_mean [128] sum [784] -> buf 6[i0] = mul(acc, 0.5) with acc = "
                       "sum(load b2[784*i0 + i1])"),
          "kernel_print: %s", text);
    free(text);
    free_kernel(p);
    free_kernel(r);
    free_kernel(k);
}

static void test_compile_time(void) {
    enum { N = 50 };
    Kernel *ks[N];
    KernelFn fns[N];
    char err[256] = "";
    for (int i = 0; i < N; i++) {
        KOp un = (KOp)(KE_NEG + i % (KE_FLOOR - KE_NEG + 1));
        KOp bin = (KOp)(KE_ADD + i % (KE_NE - KE_ADD + 1));
        KExpr *e = kx_bin(bin, kx_un(un, L2(1, 64, 1)), L2(2, 0, 1));
        if (i % 3 == 0)
            ks[i] = kernel("red", 2, 1, (int64_t[]){64, 100 + i}, (KReduce)(1 + i % 3), e, NULL);
        else
            ks[i] = kernel("ew", 2, 2, (int64_t[]){64, 100 + i}, KR_NONE, e, NULL);
    }
    double t0 = now();
    int rc = jit_compile(jit, ks, N, fns, err, sizeof err);
    double t1 = now();
    int rc2 = 0;
    for (int i = 0; i < 10; i++) rc2 |= jit_compile(jit, &ks[i], 1, &fns[i], err, sizeof err);
    double t2 = now();
    CHECK(rc == 0 && rc2 == 0, "compile time: %d small kernels in one module %.3f s (%s); "
          "10 more one per module %.3f s", N, t1 - t0, t1 - t0 < 2 ? "< 2 s" : "SLOW", t2 - t1);
    for (int i = 0; i < N; i++) free_kernel(ks[i]);
}

/* best-of-n seconds for one call */
static double time_call(KernelFn fn, const Kernel *k, float **b, int64_t n0, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (fn) kernel_run(fn, k, b, 0, n0);
        else kernel_interpret(k, b, 0, n0);
        double t = now() - t0;
        if (t < best) best = t;
    }
    return best;
}

static void test_throughput(void) {
    const int64_t n = 1 << 20;
    /* 64-byte aligned, as a runtime should allocate: misaligned rows cost up to 2x */
    float *a = aligned_alloc(64, n * sizeof *a), *b = aligned_alloc(64, n * sizeof *b);
    float *c = aligned_alloc(64, n * sizeof *c);
    for (int64_t i = 0; i < n; i++) a[i] = urand(-1, 1), b[i] = urand(-1, 1);
    float *bufs[3] = {a, b, c};
    char err[256];
    Kernel *ks[4];
    ks[0] = kernel("add1m", 1, 1, (int64_t[]){n}, KR_NONE, kx_bin(KE_ADD, L1(0, 1), L1(1, 1)), NULL);
    ks[1] = kernel("sumrows", 2, 1, (int64_t[]){1024, 1024}, KR_SUM, L2(0, 1024, 1), NULL);
    ks[2] = kernel("sumcols", 2, 1, (int64_t[]){1024, 1024}, KR_SUM, L2(0, 1, 1024), NULL);
    ks[3] = kernel("sigm1m", 1, 1, (int64_t[]){n}, KR_NONE, kx_un(KE_SIGMOID, L1(0, 1)), NULL);
    for (int i = 0; i < 4; i++) ks[i]->out_buf = 2;
    KernelFn fns[4];
    if (jit_compile(jit, ks, 4, fns, err, sizeof err) != 0) {
        CHECK(0, "throughput kernels compile (%s)", err);
        return;
    }
    const char *what[4] = {"elementwise add of 1M floats", "sum of 1024x1024 over the last axis",
                           "sum of 1024x1024 over the first axis", "sigmoid of 1M floats"};
    double bytes[4] = {12.0 * n, 4.0 * n, 4.0 * n, 8.0 * n};
    for (int i = 0; i < 4; i++) {
        int64_t n0 = ks[i]->dims[0];
        double tj = time_call(fns[i], ks[i], bufs, n0, 20), ti = time_call(NULL, ks[i], bufs, n0, 3);
        float *keep = malloc(n * sizeof *keep);
        kernel_run(fns[i], ks[i], bufs, 0, n0);
        memcpy(keep, c, n * sizeof *c);
        kernel_interpret(ks[i], bufs, 0, n0);
        int same_out = 1;
        for (int64_t e = 0; e < (i == 1 || i == 2 ? 1024 : n); e++)
            same_out &= same(keep[e], c[e], ULPS);
        CHECK(same_out, "throughput, %s: jit %.2f GB/s (%.3f ms), interpreter %.2f GB/s (%.3f ms)",
              what[i], bytes[i] / tj * 1e-9, tj * 1e3, bytes[i] / ti * 1e-9, ti * 1e3);
        free(keep);
    }
    for (int i = 0; i < 4; i++) free_kernel(ks[i]);
    free(a), free(b), free(c);
}

int main(void) {
    jit = jit_create();
    CHECK(jit != NULL, "jit_create");
    if (!jit) CHECK_DONE();
    make_inputs();
    test_every_op();
    test_shapes();
    test_reductions();
    test_hand_values();
    test_api();
    test_shared_code();
    test_compile_time();
    if (!getenv("GMC_TEST_QUICK")) test_throughput();
    jit_destroy(jit);
    for (int b = 0; b < NBUF; b++) free(init[b]), free(bufs_ref[b]), free(bufs_jit[b]), free(bufs_split[b]);
    CHECK_DONE();
}
