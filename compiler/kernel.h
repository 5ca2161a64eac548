/* kernel.h: the loop-level kernel IR, the one definition of what a kernel computes.
 * Renderers (render_llvm.c for the JIT, and a reference interpreter in kernel_interp.c)
 * print or execute it; they must agree exactly on semantics.
 *
 * A kernel is one loop nest over an iteration space dims[0..ndim-1]. The first `nout` dims
 * are output (parallel) dims, the rest are reduced with `reduce`. At every point of the
 * iteration space the expression `body` is evaluated; loads address buffers affinely:
 *     bufs[buf][offset + sum_d idx[d] * stride[d]]           (d over all ndim dims)
 * For each output point the reduced value acc (or the body value when reduce == KR_NONE)
 * is passed through `post` (an expression where KE_ACC stands for acc; NULL = identity; it
 * may also load buffers, with strides over the output dims only) and stored to
 *     bufs[out_buf][out_offset + sum_{d < nout} idx[d] * out_stride[d]].
 * All buffers are float32. Reductions run sequentially in index order (row-major over the
 * reduced dims) so results are deterministic; sums accumulate in double and round once. */
#ifndef GMC_KERNEL_H
#define GMC_KERNEL_H
#include <stdint.h>
#include <stdio.h>

#define K_MAXDIM 8

typedef enum KOp {
    KE_CONST,    /* value */
    KE_LOAD,     /* buf, offset, stride[] */
    KE_ACC,      /* the reduced value; only inside `post` */
    KE_INDEX,    /* the loop index idx[axis] as a float */
    /* unary: arg[0] */
    KE_NEG, KE_EXP, KE_LOG, KE_LOG1P, KE_SQRT, KE_RSQRT, KE_ABS, KE_SIGN, KE_TANH, KE_SIGMOID,
    KE_SOFTPLUS, KE_ERF, KE_SIN, KE_COS, KE_FLOOR,
    /* binary: arg[0], arg[1] */
    KE_ADD, KE_SUB, KE_MUL, KE_DIV, KE_MAX, KE_MIN, KE_POW,
    KE_GT, KE_GE, KE_LT, KE_LE, KE_EQ, KE_NE,   /* 1.0f if true else 0.0f */
    /* ternary: arg[0] != 0 ? arg[1] : arg[2] */
    KE_SELECT,
    KE_NUM_OPS
} KOp;

typedef struct KExpr KExpr;
struct KExpr {
    KOp op;
    float value;               /* KE_CONST */
    int buf;                   /* KE_LOAD */
    int axis;                  /* KE_INDEX */
    int64_t offset;            /* KE_LOAD */
    int64_t stride[K_MAXDIM];  /* KE_LOAD: one per iteration dim (0 = broadcast) */
    KExpr *arg[3];
};

typedef enum KReduce { KR_NONE, KR_SUM, KR_MAX, KR_MIN } KReduce;

#define K_MAXARGS 64    /* buffers one kernel may touch, its output included: lower.c materialises
                          operands of a fusion that would read more (bound_loads) */

typedef struct Kernel {
    char name[64];
    /* buffer ids in body, post and out_buf are local: slot i of the table the kernel is
     * called with, which the plan fills with buffer args[i] (see lower.c's localise) */
    int nargs;
    int args[K_MAXARGS];
    /* slot i points arg_offset[i] floats into buffer args[i]: lower.c moves the smallest
     * offset of each slot here, so kernels that differ only in where they start in their
     * buffers (slices, concats, time steps of an unrolled loop) share one compiled body */
    int64_t arg_offset[K_MAXARGS];
    int ndim, nout;
    int64_t dims[K_MAXDIM];
    KReduce reduce;
    KExpr *body;
    KExpr *post;               /* may be NULL */
    int out_buf;
    int64_t out_offset;
    int64_t out_stride[K_MAXDIM];
    int64_t outer_scale;       /* set by the JIT (jit_outer_scale): see KernelFn */
} Kernel;

/* Compiled form: computes the output points whose outermost output index idx[0] lies in
 * [begin, end) (so a thread pool can split along dims[0]), called as kernel_run does: with
 * begin and end times outer_scale, the points of its outer loop per index of dim 0 (the dims
 * merged into it), so that kernels differing only in those counts share code. When
 * nout == 0 the kernel writes one scalar and begin/end must be 0/1. */
typedef void (*KernelFn)(float *const *bufs, int64_t begin, int64_t end);

static inline void kernel_run(KernelFn fn, const Kernel *k, float *const *bufs, int64_t begin,
                              int64_t end) {
    fn(bufs, begin * k->outer_scale, end * k->outer_scale);
}

/* kernel.c: construction helpers */
KExpr *kx_const(float v);
KExpr *kx_load(int buf, int64_t offset, const int64_t *stride, int ndim);
KExpr *kx_acc(void);
KExpr *kx_index(int axis);
KExpr *kx_un(KOp op, KExpr *a);
KExpr *kx_bin(KOp op, KExpr *a, KExpr *b);
KExpr *kx_select(KExpr *c, KExpr *a, KExpr *b);
const char *kop_name(KOp op);
void kernel_print(const Kernel *k, FILE *f);   /* readable dump for --dump-kernels */

/* kernel_interp.c: the reference semantics, used by tests and as the unfused oracle */
void kernel_interpret(const Kernel *k, float *const *bufs, int64_t begin, int64_t end);
/* kernel_copy.c: kernels that only copy contiguous rows (of 16 floats or more) are not
 * compiled: kernel_interpret runs them as memmove calls */
int kernel_is_row_copy(const Kernel *k);
/* the load e reads its slot from the slot's start, walking like k's output (bias = 0) or along
 * the last dim only (bias = 1): what the fusers look for in a kernel they fold into a step */
int kernel_load_like(const Kernel *k, const KExpr *e, int bias);
void kernel_copy_rows(const Kernel *k, float *const *bufs, int64_t begin, int64_t end);

/* render_llvm.c: compile kernels with LLVM (for the host CPU, ORC LLJIT) */
typedef struct Jit Jit;
Jit *jit_create(void);
/* Compiles all n kernels in one LLVM module; fills fns[i]. Returns 0 on success, else -1 with
 * a message written to err (size errlen). */
int jit_compile(Jit *j, Kernel *const *ks, int n, KernelFn *fns, char *err, int errlen);
/* Renders the kernels to textual LLVM IR (after optimisation if optimized != 0); caller frees. */
char *jit_dump_llvm(Kernel *const *ks, int n, int optimized);
void jit_destroy(Jit *j);
/* The kernel cache on disk (kernel_cache.c): jit_compile_keyed looks every kernel up by
 * its canonical text (lower.c's kernel_key) in dir, loads the object files it finds and
 * compiles and stores the others, 16 kernels to an object file, the groups spread over the
 * thread pool (threads.h). dir NULL: no disk cache, the same compilation without the files. */
void jit_set_disk_cache(Jit *j, const char *dir);
int jit_compile_keyed(Jit *j, Kernel *const *ks, const char *const *keys, int n, KernelFn *fns,
                      char *err, int errlen);
typedef struct JitStats {       /* this Jit's kernels so far */
    int compiled, loaded, stored;   /* compiled, loaded from the disk cache, stored in it */
    int pruned;                     /* files the disk cache's pruning removed (kcache_prune) */
    double seconds;                 /* spent compiling and loading (wall clock) */
    /* CPU time of this thread by phase: building LLVM IR, optimising it, machine code
     * (instruction selection to object file), linking objects into the JIT */
    double cpu_build, cpu_opt, cpu_codegen, cpu_link;   /* summed over the compiling threads */
    double cpu_caller;              /* the calling thread's CPU time inside the JIT */
} JitStats;
JitStats jit_stats(const Jit *j);
/* The canonical text of what decides a kernel's machine code (its loop nest after merging
 * dims, its accesses' strides along that nest, its expressions), malloc'ed; NULL if the
 * kernel is malformed. Kernels with equal keys run the same compiled body. */
char *jit_kernel_key(const Kernel *k);
/* The points of a kernel's compiled outer loop per index of its dim 0 (1 when nout == 0).
 * jit_compile and jit_compile_keyed store it in the kernels' outer_scale. */
int64_t jit_outer_scale(const Kernel *k);
/* Compiled kernels by canonical text (lower.c's kernel_key): identical kernels compile once. */
KernelFn jit_cached(Jit *j, const char *key);
void jit_cache(Jit *j, const char *key, KernelFn fn);
#endif
