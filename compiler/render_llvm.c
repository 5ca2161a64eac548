/* render_llvm.c: kernels to LLVM IR, optimised (a short pass list, see PASSES) for the host
 * CPU and run by ORC LLJIT.
 *
 * Shape of the code. Adjacent dims that every access walks as one row-major block are merged
 * first (an elementwise [128 x 784] kernel becomes one loop of 100352). The innermost output
 * dim (the "jam" dim) then runs W points at a time with explicit <W x float> vectors (W = 16
 * or 32, then 8, then a scalar tail). A lane is one output point, so a reduction keeps one
 * accumulator per lane and adds in exactly the interpreter's order, yet runs vectorised.
 * Lanes that are not contiguous in memory use llvm.masked.gather/scatter.
 * We vectorise ourselves and keep LLVM's loop vectoriser off because it cannot vectorise an
 * in-order float reduction, and because an in-place update (out_buf equal to an input with
 * identical indexing) would fail its runtime alias checks; within one chunk every load comes
 * before the store, which keeps in-place updates correct without any noalias promise.
 *
 * Math follows kernel_interp.c formula for formula. Scalar exp/log/pow/sqrt/floor/fabs are
 * LLVM intrinsics (exp/log/pow become libm calls); tanh/erf/log1p are libm calls. On vectors,
 * when glibc's libmvec can be loaded, exp/log/log1p/tanh/erf/pow call its SIMD variants,
 * which differ from libm by a few ulp (GMC_LIBMVEC=0 turns them off: then the JIT agrees with
 * the interpreter bit for bit); without libmvec a vector exp is one expf call per lane. */
#include "kernel.h"
#include "kernel_cache.h"
#include "threads.h"
#include <llvm/Config/llvm-config.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Chunk sizes, in lanes, tried widest first along the jam dim (measured on AVX-512):
 * 16 is best for elementwise kernels, equal to 32 on 64-byte aligned buffers and better on
 * misaligned ones, and best by far when lanes are gathered (strided); a reduction that loads
 * whole vectors gains from 32, i.e. more accumulators in flight (2x on aligned buffers). */
#define MAX_LANES 32
#define NARROW_LANES 8
#define WIDE_LANES 16
#define WIDE_REDUCE_LANES 32

struct Jit {
    LLVMOrcLLJITRef lljit;
    LLVMTargetMachineRef tm;   /* the host machine the IR is optimised for */
    int nmodules;              /* names carry the module number: unique across calls */
    char **keys;               /* open-addressing table of compiled kernels by canonical text */
    KernelFn *cached;
    size_t ncached, capcached;
    char *disk_dir;            /* the kernel cache on disk (kernel_cache.c); NULL: off */
    char *disk_prefix;         /* what decides the code besides the kernel: LLVM, CPU, build */
    int pruned;                /* the disk cache has been checked against its cap */
    char (*groups)[33];        /* the object files from the disk cache or compiled, by hash */
    int ngroups, capgroups;
    JitStats stats;
};

static uint64_t key_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;          /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

KernelFn jit_cached(Jit *j, const char *key) {
    if (!j || !j->capcached) return NULL;
    for (size_t i = key_hash(key) & (j->capcached - 1); j->keys[i]; i = (i + 1) & (j->capcached - 1))
        if (!strcmp(j->keys[i], key)) return j->cached[i];
    return NULL;
}

void jit_cache(Jit *j, const char *key, KernelFn fn) {
    if (!j || jit_cached(j, key)) return;
    if (2 * (j->ncached + 1) > j->capcached) {     /* grow and rehash at half full */
        size_t cap = j->capcached ? 2 * j->capcached : 256;
        char **keys = calloc(cap, sizeof *keys);
        KernelFn *fns = calloc(cap, sizeof *fns);
        for (size_t i = 0; i < j->capcached; i++) {
            if (!j->keys[i]) continue;
            size_t k = key_hash(j->keys[i]) & (cap - 1);
            while (keys[k]) k = (k + 1) & (cap - 1);
            keys[k] = j->keys[i];
            fns[k] = j->cached[i];
        }
        free(j->keys); free(j->cached);
        j->keys = keys; j->cached = fns; j->capcached = cap;
    }
    size_t i = key_hash(key) & (j->capcached - 1);
    while (j->keys[i]) i = (i + 1) & (j->capcached - 1);
    j->keys[i] = strdup(key);
    j->cached[i] = fn;
    j->ncached++;
}

/* ---- host setup ---------------------------------------------------------------------- */

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;
static unsigned libmvec_widths;   /* bit w set: libmvec has w-lane variants usable here */

static int has_feature(const char *features, const char *name) {
    size_t n = strlen(name);
    for (const char *p = features; (p = strstr(p, name)) != NULL; p += n)
        if ((p == features || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

/* Code generator options, set once for the process. Loop strength reduction rewrites our
 * loops' index arithmetic, which x86 addressing (base + index*4) already covers: without it
 * the kernels' loops come out the same or a register shorter, and machine code costs a third
 * less (M14: 0.60 -> 0.40 s CPU for 292 kernels). Part of the disk cache's key. */
static const char *CODEGEN_OPTS = "-disable-lsr";

static void llvm_init(void) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMInitializeNativeAsmParser();
    const char *argv[] = {"gmc", CODEGEN_OPTS};
    LLVMParseCommandLineOptions(2, argv, NULL);
    const char *env = getenv("GMC_LIBMVEC");
    if (env && strcmp(env, "0") == 0) return;
#if defined(__x86_64__)
    /* libmvec resolves through the process symbol search once loaded globally */
    if (LLVMLoadLibraryPermanently("libmvec.so.1") != 0) return;
    char *features = LLVMGetHostCPUFeatures();
    libmvec_widths = 1u << 4;                                   /* 'b': SSE, xmm */
    if (has_feature(features, "+avx2")) libmvec_widths |= 1u << 8;      /* 'd': ymm */
    if (has_feature(features, "+avx512f")) libmvec_widths |= 1u << 16;  /* 'e': zmm */
    LLVMDisposeMessage(features);
#endif
}

static void set_err(char *err, int errlen, const char *fmt, ...) {
    if (!err || errlen <= 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, (size_t)errlen, fmt, ap);
    va_end(ap);
}

/* Reports and consumes an LLVM error; returns -1 so callers can `return llvm_err(...)`. */
static int llvm_err(LLVMErrorRef e, const char *what, char *err, int errlen) {
    char *msg = LLVMGetErrorMessage(e);
    set_err(err, errlen, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return -1;
}

static LLVMTargetMachineRef host_machine(char *err, int errlen) {
    char *triple = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName();
    char *features = LLVMGetHostCPUFeatures(), *msg = NULL;
    LLVMTargetRef target;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &msg) != 0)
        set_err(err, errlen, "no LLVM target for %s: %s", triple, msg ? msg : "?");
    else
        tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive,
                                     LLVMRelocPIC, LLVMCodeModelJITDefault);
    if (msg) LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return tm;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "gmc: out of memory in the LLVM renderer\n");
        abort();
    }
    return p;
}

/* ---- checking a kernel before rendering it --------------------------------------------- */

static int arity(KOp op) { return op <= KE_INDEX ? 0 : op <= KE_FLOOR ? 1 : op <= KE_NE ? 2 : 3; }

static int check_expr(const Kernel *k, const KExpr *e, int in_post, char *err, int errlen) {
    if (!e) { set_err(err, errlen, "kernel %s: missing operand", k->name); return -1; }
    if (e->op < 0 || e->op >= KE_NUM_OPS) {
        set_err(err, errlen, "kernel %s: bad op %d", k->name, (int)e->op);
        return -1;
    }
    if (e->op == KE_ACC && !in_post) {
        set_err(err, errlen, "kernel %s: acc outside post", k->name);
        return -1;
    }
    if (e->op == KE_INDEX && (e->axis < 0 || e->axis >= (in_post ? k->nout : k->ndim))) {
        set_err(err, errlen, "kernel %s: index axis %d out of range", k->name, e->axis);
        return -1;
    }
    if (e->op == KE_LOAD && e->buf < 0) {
        set_err(err, errlen, "kernel %s: load from buffer %d", k->name, e->buf);
        return -1;
    }
    for (int i = 0; i < arity(e->op); i++)
        if (check_expr(k, e->arg[i], in_post, err, errlen) != 0) return -1;
    return 0;
}

static int check_kernel(const Kernel *k, char *err, int errlen) {
    if (k->ndim < 0 || k->ndim > K_MAXDIM || k->nout < 0 || k->nout > k->ndim) {
        set_err(err, errlen, "kernel %s: bad dims (ndim %d, nout %d)", k->name, k->ndim, k->nout);
        return -1;
    }
    if (k->reduce < KR_NONE || k->reduce > KR_MIN || (k->reduce == KR_NONE && k->nout < k->ndim)) {
        set_err(err, errlen, "kernel %s: reduced dims without a reduction", k->name);
        return -1;
    }
    for (int d = 0; d < k->ndim; d++)
        if (k->dims[d] < 0) {
            set_err(err, errlen, "kernel %s: negative dim", k->name);
            return -1;
        }
    if (k->out_buf < 0) {
        set_err(err, errlen, "kernel %s: output buffer %d", k->name, k->out_buf);
        return -1;
    }
    if (check_expr(k, k->body, 0, err, errlen) != 0) return -1;
    return k->post ? check_expr(k, k->post, 1, err, errlen) : 0;
}

/* ---- the loop nest after merging dims ------------------------------------------------ */

/* Nest dim p is the original dims first[p]..last[p] run as one row-major loop. */
typedef struct Nest {
    int ndim, nout;
    int64_t dims[K_MAXDIM];
    int first[K_MAXDIM], last[K_MAXDIM];
    int of[K_MAXDIM];          /* original dim -> nest dim */
    int64_t scale0;            /* begin/end count original dim 0; nest dim 0 runs them * scale0 */
} Nest;

/* An access's stride along nest dim p: that of its last original dim that is not of extent 1
 * (dims of extent 1 only ever see index 0). */
static int64_t nest_stride(const Kernel *k, const Nest *n, int p, const int64_t *stride) {
    for (int d = n->last[p]; d >= n->first[p]; d--)
        if (k->dims[d] != 1) return stride[d];
    return 0;
}

static int can_extend(const Kernel *k, const Nest *n, int p, int d, const int64_t *stride) {
    return n->dims[p] == 1 || k->dims[d] == 1 ||
           nest_stride(k, n, p, stride) == stride[d] * k->dims[d];
}

static int loads_extend(const Kernel *k, const Nest *n, int p, int d, const KExpr *e) {
    if (e->op == KE_LOAD) return can_extend(k, n, p, d, e->stride);
    for (int i = 0; i < arity(e->op); i++)
        if (!loads_extend(k, n, p, d, e->arg[i])) return 0;
    return 1;
}

static unsigned indexed_axes(const KExpr *e) {
    unsigned m = e->op == KE_INDEX ? 1u << e->axis : 0;
    for (int i = 0; i < arity(e->op); i++) m |= indexed_axes(e->arg[i]);
    return m;
}

static void build_nest(const Kernel *k, Nest *n) {
    unsigned indexed = indexed_axes(k->body) | (k->post ? indexed_axes(k->post) : 0);
    memset(n, 0, sizeof *n);
    for (int d = 0; d < k->ndim; d++) {
        int p = n->ndim - 1, out = d < k->nout;
        /* an index() needs its axis as a loop of its own */
        int merge = p >= 0 && (n->last[p] < k->nout) == out &&
                    !(indexed & ((2u << d) - (1u << n->first[p]))) &&
                    loads_extend(k, n, p, d, k->body) &&
                    (!out || ((!k->post || loads_extend(k, n, p, d, k->post)) &&
                              can_extend(k, n, p, d, k->out_stride)));
        if (merge) {
            n->dims[p] *= k->dims[d];
            n->last[p] = d;
        } else {
            p = n->ndim++;
            n->first[p] = n->last[p] = d;
            n->dims[p] = k->dims[d];
            if (out) n->nout++;
        }
        n->of[d] = p;
    }
    n->scale0 = 1;
    if (n->nout > 0)
        for (int d = 1; d <= n->last[0]; d++) n->scale0 *= k->dims[d];
}

/* ---- the key: what decides a kernel's code ------------------------------------------ */

typedef struct KeyText { char *s; size_t n, cap; } KeyText;

static void key_put(KeyText *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
        if (m >= 0 && t->n + (size_t)m < t->cap) { t->n += (size_t)m; return; }
        t->cap = (t->cap ? 2 * t->cap : 512) + (size_t)(m > 0 ? m : 0);
        t->s = realloc(t->s, t->cap);
        if (!t->s) { fprintf(stderr, "gmc: out of memory in the LLVM renderer\n"); abort(); }
    }
}

/* strides along nest dims 0..scope-1, as emit_address reads them */
static void key_strides(KeyText *t, const Kernel *k, const Nest *n, const int64_t *stride, int scope) {
    for (int p = 0; p < scope; p++) key_put(t, ",%lld", (long long)nest_stride(k, n, p, stride));
}

static void key_expr(KeyText *t, const Kernel *k, const Nest *n, const KExpr *e, int scope) {
    union { float f; uint32_t u; } v = { e->value };
    key_put(t, "(%d", (int)e->op);
    if (e->op == KE_CONST) key_put(t, " %08x", v.u);
    if (e->op == KE_INDEX) key_put(t, " a%d", n->of[e->axis]);
    if (e->op == KE_LOAD) {
        key_put(t, " b%d+%lld", e->buf, (long long)e->offset);
        key_strides(t, k, n, e->stride, scope);
    }
    for (int i = 0; i < arity(e->op); i++) { key_put(t, " "); key_expr(t, k, n, e->arg[i], scope); }
    key_put(t, ")");
}

/* The code of a kernel depends on its loop nest (build_nest), not on how its dims were cut:
 * a relu over [32 x 32 x 32 x 16] and one over [64 x 8192 x 64] are both one loop over all
 * their points and get one compiled body. The key is written from what emit_kernel reads:
 * the nest's dims, every access's offset and nest strides, the expressions. Nest dim 0 runs
 * from begin to end, given at run time already multiplied by scale0 (kernel_run), so scale0
 * only decides which tiers a range can leave points for (is it a multiple of 8, 16, 32?),
 * and nest dim 0's extent only whether it is 1 and which tiers fit (MAX_LANES at most): from
 * MAX_LANES on it is written as MAX_LANES. */
char *jit_kernel_key(const Kernel *k) {
    if (check_kernel(k, NULL, 0) != 0) return NULL;
    Nest n;
    build_nest(k, &n);
    KeyText t = { 0 };
    key_put(&t, "nest %d/%d r%d x%d%d%d", n.ndim, n.nout, (int)k->reduce, n.scale0 % NARROW_LANES == 0,
            n.scale0 % WIDE_LANES == 0, n.scale0 % WIDE_REDUCE_LANES == 0);
    for (int p = 0; p < n.ndim; p++)
        key_put(&t, " %lld", (long long)(p == 0 && n.nout > 0 && n.dims[0] > MAX_LANES ? MAX_LANES : n.dims[p]));
    key_put(&t, " o%d+%lld", k->out_buf, (long long)k->out_offset);
    key_strides(&t, k, &n, k->out_stride, n.nout);
    key_put(&t, " ");
    key_expr(&t, k, &n, k->body, n.ndim);
    key_put(&t, " ");
    if (k->post) key_expr(&t, k, &n, k->post, n.nout);
    else key_put(&t, "_");
    return t.s;
}

int64_t jit_outer_scale(const Kernel *k) {
    if (k->nout == 0 || check_kernel(k, NULL, 0) != 0) return 1;
    Nest n;
    build_nest(k, &n);
    return n.scale0;
}

/* ---- IR generation ------------------------------------------------------------------- */

typedef struct Gen {
    LLVMContextRef cx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef f32, i64, i32, void_t;
    const Kernel *k;
    Nest n;
    LLVMValueRef fn;
    LLVMValueRef *base;             /* buffer base pointers, loaded once at entry */
    LLVMValueRef idx[K_MAXDIM];     /* i64 index of each nest dim at the current point */
    LLVMValueRef acc_slot[MAX_LANES + 1];
    LLVMValueRef acc;               /* what KE_ACC stands for in post */
    int jam;                        /* nest dim run `lanes` points at a time; -1: none */
    int wide;                       /* the widest chunk for this kernel */
    int lanes;                      /* 1: scalar code */
} Gen;

static LLVMValueRef i64c(Gen *g, int64_t v) { return LLVMConstInt(g->i64, (unsigned long long)v, 1); }
static LLVMValueRef i32c(Gen *g, int v) { return LLVMConstInt(g->i32, (unsigned long long)v, 1); }

static LLVMTypeRef val_type(Gen *g) {
    return g->lanes == 1 ? g->f32 : LLVMVectorType(g->f32, (unsigned)g->lanes);
}

/* sums accumulate in double: exact enough that a loss over thousands of terms does not
 * carry float32 rounding noise, and still vectorised */
static LLVMTypeRef acc_type(Gen *g) {
    LLVMTypeRef e = g->k->reduce == KR_SUM ? LLVMDoubleTypeInContext(g->cx) : g->f32;
    return g->lanes == 1 ? e : LLVMVectorType(e, (unsigned)g->lanes);
}

static LLVMValueRef splat(Gen *g, LLVMValueRef s) {
    if (g->lanes == 1) return s;
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(s), (unsigned)g->lanes);
    LLVMValueRef v = LLVMBuildInsertElement(g->b, LLVMGetUndef(vt), s, i32c(g, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(g->i32, (unsigned)g->lanes));
    return LLVMBuildShuffleVector(g->b, v, LLVMGetUndef(vt), zeros, "");
}

static LLVMValueRef fconst(Gen *g, float x) {
    LLVMValueRef c = LLVMConstReal(g->f32, (double)x), v[MAX_LANES];
    if (g->lanes == 1) return c;
    for (int l = 0; l < g->lanes; l++) v[l] = c;
    return LLVMConstVector(v, (unsigned)g->lanes);
}

/* lanes lo..lo+n-1 of a (and b, if given, after a's lanes) as a new vector */
static LLVMValueRef shuffle(Gen *g, LLVMValueRef a, LLVMValueRef b, int lo, int n) {
    LLVMValueRef mask[2 * MAX_LANES];
    for (int l = 0; l < n; l++) mask[l] = i32c(g, lo + l);
    return LLVMBuildShuffleVector(g->b, a, b ? b : LLVMGetUndef(LLVMTypeOf(a)),
                                  LLVMConstVector(mask, (unsigned)n), "");
}

static void add_fn_attr(Gen *g, LLVMValueRef fn, const char *name) {
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->cx, kind, 0));
}

static LLVMValueRef call_intrinsic(Gen *g, const char *name, LLVMValueRef *args, int nargs) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef ty = LLVMTypeOf(args[0]);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, &ty, 1);
    return LLVMBuildCall2(g->b, LLVMIntrinsicGetType(g->cx, id, &ty, 1), fn, args,
                          (unsigned)nargs, "");
}

/* A pure float function of nargs arguments of type ty (a libm or libmvec symbol). */
static LLVMValueRef call_pure(Gen *g, const char *name, LLVMTypeRef ty, LLVMValueRef *args,
                              int nargs) {
    LLVMTypeRef params[2] = {ty, ty};
    LLVMTypeRef fty = LLVMFunctionType(ty, params, (unsigned)nargs, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(g->mod, name);
    if (!fn) {
        fn = LLVMAddFunction(g->mod, name, fty);
        add_fn_attr(g, fn, "nounwind");
        add_fn_attr(g, fn, "readnone");   /* errno is of no interest to kernels */
    }
    return LLVMBuildCall2(g->b, fty, fn, args, (unsigned)nargs, "");
}

typedef struct MathFn {
    const char *intrinsic;   /* NULL: none in LLVM */
    const char *libm;        /* also the libmvec base name */
    int nargs;
} MathFn;
static const MathFn m_exp = {"llvm.exp", "expf", 1}, m_log = {"llvm.log", "logf", 1},
                    m_pow = {"llvm.pow", "powf", 2}, m_tanh = {NULL, "tanhf", 1},
                    m_erf = {NULL, "erff", 1}, m_log1p = {NULL, "log1pf", 1},
                    m_sin = {"llvm.sin", "sinf", 1}, m_cos = {"llvm.cos", "cosf", 1};

/* libmvec variant for w lanes: _ZGV<isa>N<w><v per arg>_<name> (the x86 vector ABI) */
static LLVMValueRef call_libmvec(Gen *g, const MathFn *m, LLVMValueRef *args, int w) {
    char name[64];
    snprintf(name, sizeof name, "_ZGV%cN%d%s_%s", w == 16 ? 'e' : w == 8 ? 'd' : 'b', w,
             m->nargs == 2 ? "vv" : "v", m->libm);
    LLVMTypeRef wt = LLVMVectorType(g->f32, (unsigned)w);
    LLVMValueRef parts[MAX_LANES];
    int nparts = g->lanes / w;
    for (int i = 0; i < nparts; i++) {
        LLVMValueRef a[2];
        for (int j = 0; j < m->nargs; j++) a[j] = shuffle(g, args[j], NULL, i * w, w);
        parts[i] = call_pure(g, name, wt, a, m->nargs);
    }
    for (int n = nparts, width = w; n > 1; n /= 2, width *= 2)   /* concatenate pairwise */
        for (int i = 0; i < n / 2; i++)
            parts[i] = shuffle(g, parts[2 * i], parts[2 * i + 1], 0, 2 * width);
    return parts[0];
}

static LLVMValueRef call_math(Gen *g, const MathFn *m, LLVMValueRef *args) {
    if (g->lanes > 1)
        for (int w = 16; w >= 4; w /= 2)
            if ((libmvec_widths & (1u << w)) && g->lanes % w == 0)
                return call_libmvec(g, m, args, w);
    if (m->intrinsic) return call_intrinsic(g, m->intrinsic, args, m->nargs);
    if (g->lanes == 1) return call_pure(g, m->libm, g->f32, args, m->nargs);
    LLVMValueRef r = LLVMGetUndef(val_type(g));   /* no vector form: one libm call per lane */
    for (int l = 0; l < g->lanes; l++) {
        LLVMValueRef a[2];
        for (int j = 0; j < m->nargs; j++) a[j] = LLVMBuildExtractElement(g->b, args[j], i32c(g, l), "");
        r = LLVMBuildInsertElement(g->b, r, call_pure(g, m->libm, g->f32, a, m->nargs), i32c(g, l), "");
    }
    return r;
}

static LLVMValueRef math1(Gen *g, const MathFn *m, LLVMValueRef x) { return call_math(g, m, &x); }

static LLVMValueRef to_float(Gen *g, LLVMValueRef cond) {   /* i1 -> 1.0f / 0.0f */
    return LLVMBuildUIToFP(g->b, cond, val_type(g), "");
}

/* max/min as in kernel_interp.c: (isnan(a) || a > b) ? a : b */
static LLVMValueRef emit_maxmin(Gen *g, LLVMValueRef a, LLVMValueRef b, int is_max) {
    LLVMValueRef a_nan = LLVMBuildFCmp(g->b, LLVMRealUNO, a, a, "");
    LLVMValueRef cmp = LLVMBuildFCmp(g->b, is_max ? LLVMRealOGT : LLVMRealOLT, a, b, "");
    return LLVMBuildSelect(g->b, LLVMBuildOr(g->b, a_nan, cmp, ""), a, b, "");
}

static LLVMValueRef emit_sigmoid(Gen *g, LLVMValueRef x) {
    LLVMValueRef e = math1(g, &m_exp, LLVMBuildFNeg(g->b, call_intrinsic(g, "llvm.fabs", &x, 1), ""));
    LLVMValueRef d = LLVMBuildFAdd(g->b, fconst(g, 1.0f), e, "");
    LLVMValueRef pos = LLVMBuildFCmp(g->b, LLVMRealOGE, x, fconst(g, 0.0f), "");
    return LLVMBuildSelect(g->b, pos, LLVMBuildFDiv(g->b, fconst(g, 1.0f), d, ""),
                           LLVMBuildFDiv(g->b, e, d, ""), "");
}

static LLVMValueRef emit_softplus(Gen *g, LLVMValueRef x) {
    LLVMValueRef e = math1(g, &m_exp, LLVMBuildFNeg(g->b, call_intrinsic(g, "llvm.fabs", &x, 1), ""));
    return LLVMBuildFAdd(g->b, emit_maxmin(g, x, fconst(g, 0.0f), 1), math1(g, &m_log1p, e), "");
}

/* offset + sum_p idx[p] * stride_p over nest dims p < scope; *lane: stride along the jam dim */
static LLVMValueRef emit_address(Gen *g, int64_t offset, const int64_t *stride, int scope,
                                 int64_t *lane) {
    LLVMValueRef at = i64c(g, offset);
    *lane = 0;
    for (int p = 0; p < scope; p++) {
        int64_t s = nest_stride(g->k, &g->n, p, stride);
        if (s == 0) continue;
        if (p == g->jam) *lane = s;
        LLVMValueRef t = s == 1 ? g->idx[p] : LLVMBuildNSWMul(g->b, g->idx[p], i64c(g, s), "");
        at = LLVMBuildNSWAdd(g->b, at, t, "");
    }
    return at;
}

static LLVMValueRef element_ptr(Gen *g, int buf, LLVMValueRef at) {
    return LLVMBuildInBoundsGEP2(g->b, g->f32, g->base[buf], &at, 1, "");
}

/* The addresses of the lanes of a strided access: base + at + l*stride. */
static LLVMValueRef lane_ptrs(Gen *g, int buf, LLVMValueRef at, int64_t stride) {
    LLVMValueRef step[MAX_LANES];
    for (int l = 0; l < g->lanes; l++) step[l] = i64c(g, l * stride);
    LLVMValueRef ix = LLVMBuildNSWAdd(g->b, splat(g, at), LLVMConstVector(step, (unsigned)g->lanes), "");
    return LLVMBuildInBoundsGEP2(g->b, g->f32, g->base[buf], &ix, 1, "");
}

/* llvm.masked.gather (value == NULL) or .scatter of value, all lanes on: one IR instruction
 * rather than a load per lane, which keeps the optimiser fast. */
static LLVMValueRef gather_scatter(Gen *g, const char *name, LLVMValueRef ptrs, LLVMValueRef value) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef vt = val_type(g), pt = LLVMTypeOf(ptrs);
    LLVMTypeRef types[2] = {vt, pt};   /* the overloaded types */
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, types, 2);
    LLVMValueRef ones[MAX_LANES];
    for (int l = 0; l < g->lanes; l++) ones[l] = LLVMConstInt(LLVMInt1TypeInContext(g->cx), 1, 0);
    LLVMValueRef mask = LLVMConstVector(ones, (unsigned)g->lanes);
    LLVMValueRef gather[4] = {ptrs, i32c(g, 4), mask, LLVMGetUndef(vt)};
    LLVMValueRef scatter[4] = {value, ptrs, i32c(g, 4), mask};
    return LLVMBuildCall2(g->b, LLVMIntrinsicGetType(g->cx, id, types, 2), fn,
                          value ? scatter : gather, 4, "");
}

static LLVMValueRef emit_load(Gen *g, const KExpr *e, int scope) {
    int64_t lane;
    LLVMValueRef at = emit_address(g, e->offset, e->stride, scope, &lane);
    if (g->lanes == 1 || lane == 0)
        return splat(g, LLVMBuildLoad2(g->b, g->f32, element_ptr(g, e->buf, at), ""));
    if (lane == 1) {
        LLVMTypeRef vt = val_type(g);
        LLVMValueRef p = LLVMBuildBitCast(g->b, element_ptr(g, e->buf, at), LLVMPointerType(vt, 0), "");
        LLVMValueRef v = LLVMBuildLoad2(g->b, vt, p, "");
        LLVMSetAlignment(v, 4);
        return v;
    }
    return gather_scatter(g, "llvm.masked.gather", lane_ptrs(g, e->buf, at, lane), 0);
}

static LLVMValueRef emit_index(Gen *g, int axis) {
    int p = g->n.of[axis];
    LLVMValueRef i = splat(g, g->idx[p]);
    if (g->lanes > 1 && p == g->jam) {
        LLVMValueRef step[MAX_LANES];
        for (int l = 0; l < g->lanes; l++) step[l] = i64c(g, l);
        i = LLVMBuildNSWAdd(g->b, i, LLVMConstVector(step, (unsigned)g->lanes), "");
    }
    return LLVMBuildSIToFP(g->b, i, val_type(g), "");
}

static LLVMValueRef emit_expr(Gen *g, const KExpr *e, int scope) {
    LLVMValueRef a = NULL, b = NULL, x[2];
    switch (e->op) {
    case KE_CONST: return fconst(g, e->value);
    case KE_LOAD: return emit_load(g, e, scope);
    case KE_ACC: return g->acc;
    case KE_INDEX: return emit_index(g, e->axis);
    case KE_SELECT: {
        LLVMValueRef c = emit_expr(g, e->arg[0], scope);
        LLVMValueRef t = emit_expr(g, e->arg[1], scope), f = emit_expr(g, e->arg[2], scope);
        return LLVMBuildSelect(g->b, LLVMBuildFCmp(g->b, LLVMRealUNE, c, fconst(g, 0.0f), ""), t, f, "");
    }
    default: break;
    }
    a = emit_expr(g, e->arg[0], scope);
    if (arity(e->op) == 2) b = emit_expr(g, e->arg[1], scope);
    x[0] = a;
    x[1] = b;
    switch (e->op) {
    case KE_NEG: return LLVMBuildFNeg(g->b, a, "");
    case KE_EXP: return math1(g, &m_exp, a);
    case KE_LOG: return math1(g, &m_log, a);
    case KE_LOG1P: return math1(g, &m_log1p, a);
    case KE_SQRT: return call_intrinsic(g, "llvm.sqrt", x, 1);
    case KE_RSQRT: return LLVMBuildFDiv(g->b, fconst(g, 1.0f), call_intrinsic(g, "llvm.sqrt", x, 1), "");
    case KE_ABS: return call_intrinsic(g, "llvm.fabs", x, 1);
    case KE_SIGN: {
        LLVMValueRef pos = LLVMBuildFCmp(g->b, LLVMRealOGT, a, fconst(g, 0.0f), "");
        LLVMValueRef neg = LLVMBuildFCmp(g->b, LLVMRealOLT, a, fconst(g, 0.0f), "");
        return LLVMBuildSelect(g->b, pos, fconst(g, 1.0f),
                               LLVMBuildSelect(g->b, neg, fconst(g, -1.0f), a, ""), "");
    }
    case KE_TANH: return math1(g, &m_tanh, a);
    case KE_SIGMOID: return emit_sigmoid(g, a);
    case KE_SOFTPLUS: return emit_softplus(g, a);
    case KE_ERF: return math1(g, &m_erf, a);
    case KE_SIN: return math1(g, &m_sin, a);
    case KE_COS: return math1(g, &m_cos, a);
    case KE_FLOOR: return call_intrinsic(g, "llvm.floor", x, 1);
    case KE_ADD: return LLVMBuildFAdd(g->b, a, b, "");
    case KE_SUB: return LLVMBuildFSub(g->b, a, b, "");
    case KE_MUL: return LLVMBuildFMul(g->b, a, b, "");
    case KE_DIV: return LLVMBuildFDiv(g->b, a, b, "");
    case KE_MAX: return emit_maxmin(g, a, b, 1);
    case KE_MIN: return emit_maxmin(g, a, b, 0);
    case KE_POW: return call_math(g, &m_pow, x);
    case KE_GT: return to_float(g, LLVMBuildFCmp(g->b, LLVMRealOGT, a, b, ""));
    case KE_GE: return to_float(g, LLVMBuildFCmp(g->b, LLVMRealOGE, a, b, ""));
    case KE_LT: return to_float(g, LLVMBuildFCmp(g->b, LLVMRealOLT, a, b, ""));
    case KE_LE: return to_float(g, LLVMBuildFCmp(g->b, LLVMRealOLE, a, b, ""));
    case KE_EQ: return to_float(g, LLVMBuildFCmp(g->b, LLVMRealOEQ, a, b, ""));
    case KE_NE: return to_float(g, LLVMBuildFCmp(g->b, LLVMRealUNE, a, b, ""));
    default: return fconst(g, NAN);   /* unreachable: check_kernel rejects other ops */
    }
}

static void emit_store(Gen *g, LLVMValueRef v) {
    const Kernel *k = g->k;
    int64_t lane;
    LLVMValueRef at = emit_address(g, k->out_offset, k->out_stride, g->n.nout, &lane);
    if (g->lanes == 1) {
        LLVMBuildStore(g->b, v, element_ptr(g, k->out_buf, at));
    } else if (lane == 1) {
        LLVMValueRef p = LLVMBuildBitCast(g->b, element_ptr(g, k->out_buf, at),
                                          LLVMPointerType(val_type(g), 0), "");
        LLVMSetAlignment(LLVMBuildStore(g->b, v, p), 4);
    } else {   /* lanes overlapping in memory are written in lane order: the last one stays */
        gather_scatter(g, "llvm.masked.scatter", lane_ptrs(g, k->out_buf, at, lane), v);
    }
}

/* A counted loop i = lo, lo+step, ... while i + step <= hi. After loop_end, `i` holds the
 * first index not run, where a loop over the rest can start. */
typedef struct Loop {
    LLVMBasicBlockRef head, exit;
    LLVMValueRef i;
    int64_t step;
} Loop;

static void loop_begin(Gen *g, Loop *L, LLVMValueRef lo, LLVMValueRef hi, int64_t step) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(g->cx, g->fn, "body");
    L->head = LLVMAppendBasicBlockInContext(g->cx, g->fn, "loop");
    L->exit = LLVMAppendBasicBlockInContext(g->cx, g->fn, "done");
    L->step = step;
    LLVMBuildBr(g->b, L->head);
    LLVMPositionBuilderAtEnd(g->b, L->head);
    L->i = LLVMBuildPhi(g->b, g->i64, "i");
    LLVMAddIncoming(L->i, &lo, &pre, 1);
    LLVMValueRef more = step == 1 ? LLVMBuildICmp(g->b, LLVMIntSLT, L->i, hi, "")
        : LLVMBuildICmp(g->b, LLVMIntSLE, LLVMBuildNSWAdd(g->b, L->i, i64c(g, step), ""), hi, "");
    LLVMBuildCondBr(g->b, more, body, L->exit);
    LLVMPositionBuilderAtEnd(g->b, body);
}

/* !llvm.loop !{self, !{"llvm.loop.vectorize.enable", i1 false}}: our loops are vectorised
 * already or must keep their order, and LLVM 14's loop vectoriser runs at O3 even when the
 * pass builder options switch it off; it would only add runtime alias checks to the tails. */
static LLVMValueRef no_vectorize_md(Gen *g) {
    const char *key = "llvm.loop.vectorize.enable";
    LLVMMetadataRef hint[2] = {
        LLVMMDStringInContext2(g->cx, key, strlen(key)),
        LLVMValueAsMetadata(LLVMConstInt(LLVMInt1TypeInContext(g->cx), 0, 0))};
    LLVMMetadataRef self = LLVMTemporaryMDNode(g->cx, NULL, 0);
    LLVMMetadataRef ops[2] = {self, LLVMMDNodeInContext2(g->cx, hint, 2)};
    LLVMMetadataRef id = LLVMMDNodeInContext2(g->cx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(self, id);   /* also frees the temporary */
    return LLVMMetadataAsValue(g->cx, id);
}

static void loop_end(Gen *g, Loop *L) {
    LLVMValueRef next = LLVMBuildNSWAdd(g->b, L->i, i64c(g, L->step), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->b);
    LLVMValueRef br = LLVMBuildBr(g->b, L->head);
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(g->cx, "llvm.loop", 9), no_vectorize_md(g));
    LLVMAddIncoming(L->i, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(g->b, L->exit);
}

/* One output point (or `lanes` of them along the jam dim) at the current indices. */
static void emit_point(Gen *g) {
    const Kernel *k = g->k;
    LLVMValueRef v;
    if (k->reduce == KR_NONE) {
        v = emit_expr(g, k->body, g->n.ndim);
    } else {
        LLVMValueRef slot = g->acc_slot[g->lanes];
        float init = k->reduce == KR_SUM ? 0.0f : k->reduce == KR_MAX ? -INFINITY : INFINITY;
        LLVMValueRef init_v = fconst(g, init);
        if (k->reduce == KR_SUM) init_v = LLVMConstFPExt(init_v, acc_type(g));
        LLVMBuildStore(g->b, init_v, slot);
        Loop loops[K_MAXDIM];
        for (int p = g->n.nout; p < g->n.ndim; p++) {   /* reduced dims, row-major */
            loop_begin(g, &loops[p], i64c(g, 0), i64c(g, g->n.dims[p]), 1);
            g->idx[p] = loops[p].i;
        }
        LLVMValueRef x = emit_expr(g, k->body, g->n.ndim);
        LLVMValueRef acc = LLVMBuildLoad2(g->b, acc_type(g), slot, "");
        acc = k->reduce == KR_SUM ? LLVMBuildFAdd(g->b, acc, LLVMBuildFPExt(g->b, x, acc_type(g), ""), "")
                                  : emit_maxmin(g, acc, x, k->reduce == KR_MAX);
        LLVMBuildStore(g->b, acc, slot);
        for (int p = g->n.ndim - 1; p >= g->n.nout; p--) loop_end(g, &loops[p]);
        v = LLVMBuildLoad2(g->b, acc_type(g), slot, "");
        if (k->reduce == KR_SUM) v = LLVMBuildFPTrunc(g->b, v, val_type(g), "");
    }
    if (k->post) {
        g->acc = v;
        v = emit_expr(g, k->post, g->n.nout);
    }
    emit_store(g, v);
}

/* Loops over output nest dims p.. ; the innermost runs vector chunks, then a scalar tail. */
static void emit_outputs(Gen *g, int p, LLVMValueRef begin, LLVMValueRef end) {
    LLVMValueRef lo = i64c(g, 0), hi = i64c(g, g->n.dims[p]);
    if (p == 0) {   /* the caller has scaled the range already (kernel_run) */
        lo = begin;
        hi = end;
    }
    Loop L;
    if (p < g->n.nout - 1) {
        loop_begin(g, &L, lo, hi, 1);
        g->idx[p] = L.i;
        emit_outputs(g, p + 1, begin, end);
        loop_end(g, &L);
        return;
    }
    /* A tier runs only where points can be left for it, and so does the scalar tail: along
     * p > 0 a chunk runs exactly dims[p] points (a row of 64 runs 32 lanes twice and needs
     * neither the 8-lane tier nor the tail); along nest dim 0, which the threads split by
     * the original dim 0, some multiple of scale0. Dead tiers cost machine code time. */
    int64_t rem = g->n.dims[p];     /* p > 0: the points left after the tiers so far */
    int prev = 0;                   /* p == 0: the width of the last tier run (0: none) */
    const int tiers[2] = {g->wide, NARROW_LANES};
    for (int t = 0; t < 2 && p == g->jam; t++) {
        int w = tiers[t];
        if (g->n.dims[p] < w || (p > 0 ? rem < w : prev && g->n.scale0 % prev == 0)) continue;
        g->lanes = w;
        loop_begin(g, &L, lo, hi, g->lanes);
        g->idx[p] = L.i;
        emit_point(g);
        loop_end(g, &L);
        lo = L.i;
        rem %= w;
        prev = w;
    }
    if (p == g->jam && (p > 0 ? rem == 0 : prev && g->n.scale0 % prev == 0)) return;
    g->lanes = 1;
    loop_begin(g, &L, lo, hi, 1);
    g->idx[p] = L.i;
    emit_point(g);
    loop_end(g, &L);
}

/* Does e load lanes that are neither one vector nor one broadcast value? */
static int gathers(Gen *g, const KExpr *e, int scope) {
    if (e->op == KE_LOAD && g->jam >= 0 && g->jam < scope) {
        int64_t s = nest_stride(g->k, &g->n, g->jam, e->stride);
        return s != 0 && s != 1;
    }
    for (int i = 0; i < arity(e->op); i++)
        if (gathers(g, e->arg[i], scope)) return 1;
    return 0;
}

static int max_buf(const KExpr *e) {
    int m = e->op == KE_LOAD ? e->buf : -1;
    for (int i = 0; i < arity(e->op); i++) {
        int a = max_buf(e->arg[i]);
        if (a > m) m = a;
    }
    return m;
}

static void sanitize_name(char *dst, size_t n, int module, int i, const char *name) {
    int len = snprintf(dst, n, "gmc%d_%d_", module, i);
    for (size_t j = 0; name[j] && (size_t)len + 1 < n; j++, len++) {
        char c = name[j];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        dst[len] = ok ? c : '_';
    }
    dst[len] = '\0';
}

/* void name(float *const *bufs, int64_t begin, int64_t end) */
static void emit_kernel(Gen *g, const Kernel *k, const char *name) {
    LLVMTypeRef fptr = LLVMPointerType(g->f32, 0);
    LLVMTypeRef params[3] = {LLVMPointerType(fptr, 0), g->i64, g->i64};
    g->k = k;
    build_nest(k, &g->n);
    g->jam = g->n.nout > 0 && g->n.dims[g->n.nout - 1] >= NARROW_LANES ? g->n.nout - 1 : -1;
    g->wide = k->reduce != KR_NONE && !gathers(g, k->body, g->n.ndim) ? WIDE_REDUCE_LANES : WIDE_LANES;
    g->fn = LLVMAddFunction(g->mod, name, LLVMFunctionType(g->void_t, params, 3, 0));
    add_fn_attr(g, g->fn, "nounwind");
    LLVMValueRef bufs = LLVMGetParam(g->fn, 0), begin = LLVMGetParam(g->fn, 1);
    LLVMValueRef end = LLVMGetParam(g->fn, 2);
    LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->cx, g->fn, "entry"));

    int nbuf = k->out_buf;
    if (max_buf(k->body) > nbuf) nbuf = max_buf(k->body);
    if (k->post && max_buf(k->post) > nbuf) nbuf = max_buf(k->post);
    g->base = xcalloc((size_t)nbuf + 1, sizeof *g->base);
    for (int i = 0; i <= nbuf; i++) {   /* unused ones are deleted by the optimiser */
        LLVMValueRef ix = i64c(g, i);
        LLVMValueRef p = LLVMBuildInBoundsGEP2(g->b, fptr, bufs, &ix, 1, "");
        g->base[i] = LLVMBuildLoad2(g->b, fptr, p, "buf");
    }
    memset(g->acc_slot, 0, sizeof g->acc_slot);
    if (k->reduce != KR_NONE) {   /* accumulators live in allocas; mem2reg makes them phis */
        LLVMTypeRef e = k->reduce == KR_SUM ? LLVMDoubleTypeInContext(g->cx) : g->f32;
        g->acc_slot[1] = LLVMBuildAlloca(g->b, e, "acc");
        const int tiers[2] = {g->wide, NARROW_LANES};
        for (int t = 0; t < 2; t++)
            g->acc_slot[tiers[t]] = LLVMBuildAlloca(g->b, LLVMVectorType(e, (unsigned)tiers[t]), "acc");
    }

    if (g->n.nout == 0) {   /* one scalar, written when the range is not empty */
        LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(g->cx, g->fn, "run");
        LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->cx, g->fn, "done");
        LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, begin, end, ""), run, done);
        LLVMPositionBuilderAtEnd(g->b, run);
        g->lanes = 1;
        emit_point(g);
        LLVMBuildBr(g->b, done);
        LLVMPositionBuilderAtEnd(g->b, done);
    } else {
        emit_outputs(g, 0, begin, end);
    }
    LLVMBuildRetVoid(g->b);
    free(g->base);
    g->base = NULL;
}

/* Builds the module of kernels ks (already checked) in context cx, for machine tm. */
static LLVMModuleRef build_module(LLVMContextRef cx, LLVMTargetMachineRef tm,
                                  Kernel *const *ks, int n, int module, char (*names)[96]) {
    Gen g;
    memset(&g, 0, sizeof g);
    g.cx = cx;
    g.mod = LLVMModuleCreateWithNameInContext("gmc_kernels", cx);
    g.b = LLVMCreateBuilderInContext(cx);
    g.f32 = LLVMFloatTypeInContext(cx);
    g.i64 = LLVMInt64TypeInContext(cx);
    g.i32 = LLVMInt32TypeInContext(cx);
    g.void_t = LLVMVoidTypeInContext(cx);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(g.mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(g.mod, layout);
    LLVMDisposeTargetData(layout);
    for (int i = 0; i < n; i++) {
        if (!names[i][0]) sanitize_name(names[i], sizeof names[i], module, i, ks[i]->name);
        emit_kernel(&g, ks[i], names[i]);
    }
    LLVMDisposeBuilder(g.b);
    return g.mod;
}

/* The passes our IR needs, not LLVM's whole O3 pipeline: kernels arrive vectorised and
 * unrolled by hand, so what is left is accumulators out of memory (sroa), redundant address
 * arithmetic (early-cse, gvn, instcombine) and invariant code out of loops (licm). Same kernel
 * speed as default<O3> here (CPU time of the VAE's and CycleGAN's kernels, --threads 1),
 * a seventh of its optimisation time (CycleGAN: 0.10 s instead of 0.70 s for 225 kernels),
 * though machine code then takes a little longer (0.8 s instead of 0.6 s). */
static const char *PASSES =
    "function(sroa,early-cse<memssa>,instcombine,simplifycfg,loop-mssa(licm),gvn,instcombine,"
    "simplifycfg)";

/* Verifies, then optimises (PASSES). */
static int optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int run_passes, char *err,
                    int errlen) {
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg) != 0) {
        set_err(err, errlen, "invalid LLVM IR: %s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return -1;
    }
    if (msg) LLVMDisposeMessage(msg);
    if (!run_passes) return 0;
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(mod, PASSES, tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    return e ? llvm_err(e, "LLVM optimisation failed", err, errlen) : 0;
}

static int check_all(Kernel *const *ks, int n, char *err, int errlen) {
    for (int i = 0; i < n; i++)
        if (check_kernel(ks[i], err, errlen) != 0) return -1;
    return 0;
}

/* ---- the JIT ------------------------------------------------------------------------- */

Jit *jit_create(void) {
    char err[256] = "";
    pthread_once(&llvm_once, llvm_init);
    Jit *j = xcalloc(1, sizeof *j);
    LLVMTargetMachineRef jit_tm = host_machine(err, sizeof err);
    j->tm = host_machine(err, sizeof err);
    if (!j->tm || !jit_tm) goto fail;
    /* the JIT compiles for the same machine the IR was optimised for (CPU, features, codegen -O3) */
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
        builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm));
    jit_tm = NULL;
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->lljit, builder);
    if (e) { llvm_err(e, "cannot create the LLVM JIT", err, sizeof err); goto fail; }
    /* libm (and libmvec) functions resolve against the running process */
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
        &gen, LLVMOrcLLJITGetGlobalPrefix(j->lljit), NULL, NULL);
    if (e) { llvm_err(e, "cannot search the process for symbols", err, sizeof err); goto fail; }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->lljit), gen);
    return j;
fail:
    fprintf(stderr, "gmc: %s\n", err);
    if (jit_tm) LLVMDisposeTargetMachine(jit_tm);
    jit_destroy(j);
    return NULL;
}

void jit_destroy(Jit *j) {
    if (!j) return;
    if (j->lljit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
        if (e) LLVMConsumeError(e);
    }
    if (j->tm) LLVMDisposeTargetMachine(j->tm);
    free(j->disk_dir);
    free(j->disk_prefix);
    free(j->groups);
    for (size_t i = 0; i < j->capcached; i++) free(j->keys[i]);
    free(j->keys);
    free(j->cached);
    free(j);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {   /* this thread's CPU time: steady on a loaded machine */
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int compile_module(Jit *j, Kernel *const *ks, int n, KernelFn *fns, char *err, int errlen);

int jit_compile(Jit *j, Kernel *const *ks, int n, KernelFn *fns, char *err, int errlen) {
    double t0 = seconds_now(), c0 = cpu_now();
    int rc = compile_module(j, ks, n, fns, err, errlen);
    j->stats.seconds += seconds_now() - t0;
    j->stats.cpu_caller += cpu_now() - c0;
    return rc;
}

/* all n kernels in one module: the fastest way to compile many */
static int compile_module(Jit *j, Kernel *const *ks, int n, KernelFn *fns, char *err, int errlen) {
    if (check_all(ks, n, err, errlen) != 0) return -1;
    for (int i = 0; i < n; i++) ks[i]->outer_scale = jit_outer_scale(ks[i]);
    if (n == 0) return 0;
    j->stats.compiled += n;
    char (*names)[96] = xcalloc((size_t)n, sizeof *names);
    double c0 = cpu_now();
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod = build_module(LLVMOrcThreadSafeContextGetContext(tsc), j->tm, ks, n,
                                     j->nmodules++, names);
    double c1 = cpu_now();
    int rc = optimise(mod, j->tm, 1, err, errlen);
    double c2 = cpu_now();
    j->stats.cpu_build += c1 - c0;
    j->stats.cpu_opt += c2 - c1;
    if (rc != 0) {
        LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsc);
        free(names);
        return -1;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc);   /* the module keeps its context alive */
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->lljit, LLVMOrcLLJITGetMainJITDylib(j->lljit), tsm);
    if (e) rc = llvm_err(e, "cannot add kernels to the JIT", err, errlen);
    for (int i = 0; rc == 0 && i < n; i++) {   /* the first lookup compiles the module */
        LLVMOrcExecutorAddress addr = 0;
        e = LLVMOrcLLJITLookup(j->lljit, &addr, names[i]);
        if (e) rc = llvm_err(e, "JIT lookup failed", err, errlen);
        else fns[i] = (KernelFn)(uintptr_t)addr;
    }
    j->stats.cpu_codegen += cpu_now() - c2;
    free(names);
    return rc;
}

/* ---- the kernel cache on disk -------------------------------------------------------- */

void jit_set_disk_cache(Jit *j, const char *dir) {
    if (!j) return;
    free(j->disk_dir);
    j->disk_dir = dir ? strdup(dir) : NULL;
    if (!j->disk_prefix) {
        /* The build's date and time stand for the code generator's own version: a rebuilt
         * render_llvm.c (or kernel.h) never reads entries another build wrote. */
        char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
        char *triple = LLVMGetTargetMachineTriple(j->tm);
        size_t n = strlen(cpu) + strlen(features) + strlen(triple) + 256;
        j->disk_prefix = xcalloc(n, 1);
        snprintf(j->disk_prefix, n, "gmc kernel; llvm %s; %s; %s; %s; libmvec %x; %s; built %s %s\n",
                 LLVM_VERSION_STRING, triple, cpu, features, libmvec_widths, CODEGEN_OPTS,
                 __DATE__, __TIME__);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(features);
        LLVMDisposeMessage(triple);
    }
}

JitStats jit_stats(const Jit *j) { return j ? j->stats : (JitStats){ 0 }; }

/* The kernels missing from the disk cache are compiled GROUP_KERNELS to a module, one
 * object file per group: machine code for one module of 16 kernels costs about a third less
 * than for 16 modules of one (the code generator's per-module setup), and the groups keep
 * both threads busy. The group sizes depend only on the number of kernels, not on the
 * threads, so the code does not either. On disk a group's object is one entry (.o, keyed
 * by the hash of its kernels' keys) and each kernel has an entry of its own (.k, keyed by
 * the kernel) naming its group, so lookups stay per kernel: a program that shares a kernel
 * with another finds it. A kernel's symbol carries its group's hash too, so the same kernel
 * compiled into two groups (its first group's entry damaged, say) is two symbols, never a
 * duplicate definition in the JIT. */
enum { GROUP_KERNELS = 16 };

static const char *GROUP_KEY = "gmc kernel group ";

static int have_group(const Jit *j, const char *g) {
    for (int i = 0; i < j->ngroups; i++)
        if (!memcmp(j->groups[i], g, 32)) return 1;
    return 0;
}

static void note_group(Jit *j, const char *g) {
    if (j->ngroups == j->capgroups) {
        j->capgroups = j->capgroups ? 2 * j->capgroups : 64;
        j->groups = realloc(j->groups, (size_t)j->capgroups * sizeof *j->groups);
        if (!j->groups) { fprintf(stderr, "gmc: out of memory in the LLVM renderer\n"); abort(); }
    }
    memcpy(j->groups[j->ngroups], g, 33);
    j->ngroups++;
}

/* adds an object file to the JIT (its symbols are linked on their first lookup) */
static int add_object(Jit *j, const void *obj, size_t n, char *err, int errlen) {
    double c0 = cpu_now();
    LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRangeCopy(obj, n, "gmc_kernels");
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(j->lljit, LLVMOrcLLJITGetMainJITDylib(j->lljit), mb);
    j->stats.cpu_link += cpu_now() - c0;
    return e ? llvm_err(e, "cannot add kernels to the JIT", err, errlen) : 0;
}

static int lookup(Jit *j, const char *name, KernelFn *fn, char *err, int errlen) {
    double c0 = cpu_now();
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->lljit, &addr, name);
    j->stats.cpu_link += cpu_now() - c0;
    if (e) return llvm_err(e, "JIT lookup failed", err, errlen);
    *fn = (KernelFn)(uintptr_t)addr;
    return 0;
}

static void symbol_name(char *out, size_t n, const char *kernel_hash, const char *group_hash) {
    snprintf(out, n, "gmck_%s_%.16s", kernel_hash, group_hash);
}

/* kernel i from the disk cache: its entry names a group, whose object is added to the JIT
 * unless it is there already. 0: found; -1: a miss (no entry, a damaged one, no group). */
static int load_cached(Jit *j, const char *full, const char *kernel_hash, KernelFn *fn) {
    size_t size = 0;
    unsigned char *rec = kcache_load(j->disk_dir, full, "k", &size);
    char group[33], key[64], name[96], err[256];
    int ok = rec && size == 32;
    if (ok) { memcpy(group, rec, 32); group[32] = '\0'; }
    free(rec);
    if (!ok) return -1;
    if (!have_group(j, group)) {
        snprintf(key, sizeof key, "%s%s", GROUP_KEY, group);
        unsigned char *obj = kcache_load(j->disk_dir, key, "o", &size);
        ok = obj && add_object(j, obj, size, err, sizeof err) == 0;
        free(obj);
        if (!ok) return -1;
        note_group(j, group);
    }
    symbol_name(name, sizeof name, kernel_hash, group);
    return lookup(j, name, fn, err, sizeof err);
}

/* the groups of kernels missing from the disk cache, compiled on the thread pool: each group
 * is its own module in its own context, and each chunk of groups gets its own TargetMachine,
 * so the threads share nothing in LLVM */
typedef struct CompileJob {
    Kernel *const *ks;
    const int *which;              /* the kernels to compile: ks[which[m]] */
    const int *first;              /* group g is which[first[g] .. first[g + 1]) */
    char (*names)[96];             /* symbol of kernel ks[i] */
    LLVMMemoryBufferRef *objs;     /* per group */
    int *rc;
    double (*t)[3];                /* CPU time of building, optimising, emitting */
    char (*errs)[256];
} CompileJob;

static void compile_groups(void *ctx, int64_t begin, int64_t end) {
    CompileJob *job = ctx;
    LLVMTargetMachineRef tm = host_machine(job->errs[begin], sizeof job->errs[begin]);
    for (int64_t g = begin; g < end; g++) {
        int n = job->first[g + 1] - job->first[g];
        Kernel **ks = xcalloc((size_t)n, sizeof *ks);
        char (*names)[96] = xcalloc((size_t)n, sizeof *names);
        for (int m = 0; m < n; m++) {
            int i = job->which[job->first[g] + m];
            ks[m] = job->ks[i];
            memcpy(names[m], job->names[i], sizeof names[m]);
        }
        job->objs[g] = NULL;
        job->rc[g] = -1;
        if (tm) {
            LLVMContextRef cx = LLVMContextCreate();
            double c0 = cpu_now();
            LLVMModuleRef mod = build_module(cx, tm, ks, n, 0, names);
            double c1 = cpu_now();
            job->rc[g] = optimise(mod, tm, 1, job->errs[g], sizeof job->errs[g]);
            double c2 = cpu_now();
            char *msg = NULL;
            if (job->rc[g] == 0 && LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &job->objs[g])) {
                set_err(job->errs[g], sizeof job->errs[g], "cannot emit an object file: %s", msg ? msg : "?");
                job->rc[g] = -1;
            }
            if (msg) LLVMDisposeMessage(msg);
            job->t[g][0] = c1 - c0;
            job->t[g][1] = c2 - c1;
            job->t[g][2] = cpu_now() - c2;
            LLVMDisposeModule(mod);
            LLVMContextDispose(cx);
        }
        free(ks);
        free(names);
    }
    if (tm) LLVMDisposeTargetMachine(tm);
}

/* stores group g (its object, then its kernels' entries), adds it to the JIT and finds its
 * kernels */
static int add_group(Jit *j, CompileJob *job, int g, char *const *full, const char *group,
                     KernelFn *fns, char *err, int errlen) {
    const char *start = LLVMGetBufferStart(job->objs[g]);
    size_t size = LLVMGetBufferSize(job->objs[g]);
    int lo = job->first[g], hi = job->first[g + 1];
    char key[64];
    snprintf(key, sizeof key, "%s%s", GROUP_KEY, group);
    if (j->disk_dir && kcache_store(j->disk_dir, key, "o", start, size) == 0)
        for (int m = lo; m < hi; m++)
            if (kcache_store(j->disk_dir, full[job->which[m]], "k", group, 32) == 0) j->stats.stored++;
    if (add_object(j, start, size, err, errlen) != 0) return -1;
    note_group(j, group);
    for (int m = lo; m < hi; m++) {
        int i = job->which[m];
        if (lookup(j, job->names[i], &fns[i], err, errlen) != 0) return -1;
        j->stats.compiled++;
    }
    return 0;
}

int jit_compile_keyed(Jit *j, Kernel *const *ks, const char *const *keys, int n, KernelFn *fns,
                      char *err, int errlen) {
    if (!keys) return jit_compile(j, ks, n, fns, err, errlen);
    if (check_all(ks, n, err, errlen) != 0) return -1;
    for (int i = 0; i < n; i++) ks[i]->outer_scale = jit_outer_scale(ks[i]);
    double t0 = seconds_now(), c0 = cpu_now();
    const char *prefix = j->disk_prefix ? j->disk_prefix : "";
    char **full = xcalloc((size_t)n, sizeof *full), (*hash)[33] = xcalloc((size_t)n, sizeof *hash);
    char (*names)[96] = xcalloc((size_t)n, sizeof *names);
    int *which = xcalloc((size_t)n, sizeof *which), nmiss = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(prefix) + strlen(keys[i]) + 1;
        full[i] = xcalloc(len, 1);
        snprintf(full[i], len, "%s%s", prefix, keys[i]);
        kcache_hash(full[i], hash[i]);
        if (j->disk_dir && load_cached(j, full[i], hash[i], &fns[i]) == 0) j->stats.loaded++;
        else which[nmiss++] = i;
    }
    if (nmiss) {
        int ngroups = (nmiss + GROUP_KERNELS - 1) / GROUP_KERNELS;
        int *first = xcalloc((size_t)ngroups + 1, sizeof *first);
        char (*group)[33] = xcalloc((size_t)ngroups, sizeof *group);
        for (int g = 0; g <= ngroups; g++) first[g] = (int)((int64_t)g * nmiss / ngroups);
        for (int g = 0; g < ngroups; g++) {   /* a group is named by its kernels' keys */
            size_t len = 1;
            for (int m = first[g]; m < first[g + 1]; m++) len += strlen(full[which[m]]) + 1;
            char *all = xcalloc(len, 1), *at = all;
            for (int m = first[g]; m < first[g + 1]; m++) at += sprintf(at, "%s\n", full[which[m]]);
            kcache_hash(all, group[g]);
            free(all);
            for (int m = first[g]; m < first[g + 1]; m++)
                symbol_name(names[which[m]], sizeof names[0], hash[which[m]], group[g]);
        }
        CompileJob job = { ks, which, first, names, xcalloc((size_t)ngroups, sizeof *job.objs),
                           xcalloc((size_t)ngroups, sizeof *job.rc), xcalloc((size_t)ngroups, sizeof *job.t),
                           xcalloc((size_t)ngroups, sizeof *job.errs) };
        parallel_for(ngroups, 1, compile_groups, &job);
        for (int g = 0; g < ngroups; g++) {
            j->stats.cpu_build += job.t[g][0];
            j->stats.cpu_opt += job.t[g][1];
            j->stats.cpu_codegen += job.t[g][2];
            if (rc == 0 && job.rc[g] != 0) { set_err(err, errlen, "%s", job.errs[g]); rc = -1; }
            if (rc == 0) rc = add_group(j, &job, g, full, group[g], fns, err, errlen);
            if (job.objs[g]) LLVMDisposeMemoryBuffer(job.objs[g]);
        }
        free(job.objs); free(job.rc); free(job.t); free(job.errs);
        free(first); free(group);
    }
    if (j->disk_dir && j->stats.stored && !j->pruned) {   /* once a run, after its first stores */
        int removed = kcache_prune(j->disk_dir, kcache_max_bytes());
        if (removed > 0) j->stats.pruned += removed;
        j->pruned = 1;
    }
    for (int i = 0; i < n; i++) free(full[i]);
    free(full); free(hash); free(names); free(which);
    j->stats.seconds += seconds_now() - t0;
    j->stats.cpu_caller += cpu_now() - c0;
    return rc;
}

char *jit_dump_llvm(Kernel *const *ks, int n, int optimized) {
    char err[512] = "";
    char *text = NULL;
    pthread_once(&llvm_once, llvm_init);
    LLVMTargetMachineRef tm = check_all(ks, n, err, sizeof err) == 0 ? host_machine(err, sizeof err) : NULL;
    if (tm) {
        LLVMContextRef cx = LLVMContextCreate();
        char (*names)[96] = xcalloc((size_t)n, sizeof *names);
        LLVMModuleRef mod = build_module(cx, tm, ks, n, 0, names);
        if (optimise(mod, tm, optimized, err, sizeof err) == 0) {
            char *s = LLVMPrintModuleToString(mod);
            text = strdup(s);
            LLVMDisposeMessage(s);
        }
        LLVMDisposeModule(mod);
        LLVMContextDispose(cx);
        LLVMDisposeTargetMachine(tm);
        free(names);
    }
    if (!text) {
        size_t len = strlen(err) + 16;
        text = xcalloc(len, 1);
        snprintf(text, len, "; error: %s\n", err);
    }
    return text;
}
