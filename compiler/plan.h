/* plan.h: an executable plan for one graph: buffers, compiled kernels and the ordered list of
 * steps (kernel calls, sgemm calls, random fills, im2col / col2im) that computes the requested
 * root nodes. lower.c builds it from IR; runtime/exec.c runs it. */
#ifndef GMC_PLAN_H
#define GMC_PLAN_H
#include "ir.h"
#include "kernel.h"
#include "rng.h"

typedef enum BufKind { BUF_TEMP, BUF_PARAM, BUF_INPUT, BUF_DATA, BUF_ALIAS } BufKind;

typedef struct Buffer {
    BufKind kind;
    int slot;              /* param / input / const index; aliased buffer for BUF_ALIAS */
    int64_t size;          /* elements */
    float *data;
    /* the memory planner (plan.c): temps live in one arena at `offset` floats from its start,
     * from the step that first writes them to the last step that touches them, or to the end
     * of the run (and after it) when `keep` */
    int64_t offset;        /* -1: not in the arena (params, data, inputs) */
    int first, last;       /* steps; last == INT_MAX when kept */
    int keep;
} Buffer;

typedef enum StepKind { STEP_KERNEL, STEP_GEMM, STEP_NORMAL, STEP_UNIFORM,
                        STEP_IM2COL, STEP_COL2IM, STEP_HISTORY, STEP_GATHER, STEP_SCAN,
                        STEP_CONV } StepKind;

typedef struct PlanStep {
    StepKind kind;
    int kernel;                   /* STEP_KERNEL */
    int a, b, c;                  /* STEP_GEMM buffers: C = op(A) op(B); fills: c;
                                     im2col / col2im: c = f(a) */
    int64_t m, n, k;
    int64_t batch;                /* STEP_GEMM: this many products of consecutive matrices
                                     (0 or 1: one) */
    int trans_a, trans_b;
    ConvGeom geom;                /* STEP_IM2COL, STEP_COL2IM, STEP_CONV */
    int conv;                     /* STEP_CONV: CONV_FWD, CONV_WGRAD or CONV_DGRAD (conv_gemm.h):
                                     c from a and b as that mode says, n filters; m, k, trans_b
                                     as in the products it replaces */
    int has_bias, bias;           /* STEP_CONV forward, STEP_GEMM (one product): buffer bias [n]
                                     added to every row */
    /* STEP_CONV epilogues (conv_gemm.h's ConvEpilogue; conv_fuse.c folds the passes around a
     * convolution into them): forward: relu; input gradient: c = dx * (mask > 0); weight
     * gradient: the bias gradient bgrad [n], a second output. STEP_GEMM (one product, B not
     * transposed, gemm_fuse.c): bgrad [n] = the sums of B's columns, computed with it */
    int relu;
    int has_mask, mask, has_bgrad, bgrad;
    int pool, capacity;           /* STEP_HISTORY: c = history(a), m examples of n floats */
    int scatter;                  /* STEP_GATHER: c = gather(a, ids b) or scatter (1); m ids,
                                     rows of n floats, k rows in the table */
    int prod, reverse;            /* STEP_SCAN: c = running sums (products) of a along the
                                     middle axis of [m, k, n], from its end if reverse */
    int node;                     /* the IR node computed, for --dump-kernels and stats */
} PlanStep;

typedef struct Plan {
    Buffer *bufs;
    int nbufs;
    float **ptrs;                 /* bufs[i].data, the table kernels index */
    Kernel **kernels;
    KernelFn *fns;
    int nkernels;
    int ncompiled;                /* kernels this plan compiled (the rest came from the Jit's cache) */
    PlanStep *steps;
    int nsteps;
    int *node_buf;                /* IR node -> buffer, -1 if inlined or dead */
    int nnodes;
    int *input_buf;               /* input slot -> buffer (-1 if unused) */
    int ninputs;
    float *arena;                 /* what the plan keeps: inputs and roots, readable after a run */
    int64_t arena_floats;         /* the size of the plan's offsets: kept buffers in
                                     [0, kept_floats), the others (dead at the end of every
                                     run) in the scratch shared by all plans after it */
    int64_t kept_floats;
    unsigned scratch_gen;         /* the shared scratch this plan's pointers were set for */
    int rematerialised;           /* window buffers recomputed instead of kept live (lower.c) */
    int64_t temp_floats;          /* what the temps would take with a buffer each */
    int in_place;                 /* elementwise kernels that write over an operand */
} Plan;

typedef struct LowerOptions {
    int fuse;                     /* 0: every op its own kernel (the unfused oracle) */
    int interpret;                /* 1: run kernels with the reference interpreter */
    int no_plan;                  /* 1 (or GMC_NO_PLAN=1 in the environment): every temp gets
                                     memory of its own instead of sharing the arena */
    int keep_leaves;              /* keep noise draws readable after the run (--grad-dump) */
} LowerOptions;

/* Lowers the graph so that every root is materialised; binds PARAM leaves to the parameter
 * table's storage. Returns NULL with a message in err if the JIT fails. */
Plan *plan_build(const IrGraph *g, const ParamTable *params, const int *roots, int nroots,
                 int ninputs, const LowerOptions *opt, Jit *jit, char *err, int errlen);
void plan_free(Plan *p);
/* NULL if not materialised or not kept after the run (roots, inputs, parameters are) */
float *plan_node(const Plan *p, int node);
float *plan_input(const Plan *p, int slot);          /* NULL if the graph ignores the input */
void plan_run(Plan *p, Rng *rng);                    /* runtime/exec.c */

/* plan.c: the buffers step s touches: returns the one it writes (-1: none) and stores the
 * ones it reads in reads[] (at most K_MAXARGS + 2), their count in *nreads */
int plan_step_buffers(const Plan *p, int s, int *reads, int *nreads);
/* the second buffer step s writes (a weight-gradient step's or a product's bias gradient),
 * or -1 */
int plan_step_second_write(const Plan *p, int s);
/* removes the steps a fusion marked in drop[] and the kernels no step runs any more (nothing
 * compiles them, and kernel counts stay true) */
void plan_drop_steps(Plan *p, const char *drop);
/* whether step s reads buffer b; *writes: whether it writes b (either of its outputs) */
int plan_step_reads(const Plan *p, int s, int b, int *writes);
/* assigns every temp an offset in one arena by liveness (greedy, largest first, each into
 * the tightest gap among the buffers live at the same time), or a separate block when
 * planning is off; allocates the memory and fills p->ptrs */
void plan_memory(Plan *p, int enabled);
/* Plans run one at a time, so the temps that die within a run share one scratch, sized for
 * the largest plan; a plan built later may grow it, and plan_run calls this first to point
 * the plan's buffers at the current one (cheap when nothing changed). */
void plan_bind_scratch(Plan *p);
int64_t plan_scratch_floats(void);

/* --stats: a plan's memory in floats: the arena, what of it is kept after a run, and the
 * temps live at the step where most are, by the kind of step that wrote them */
typedef struct PlanMemory {
    int64_t arena, kept;
    int peak_step;
    int64_t peak_im2col, peak_col2im, peak_gemm, peak_other;
} PlanMemory;
PlanMemory plan_memory_profile(const Plan *p);
/* conv_fuse.c: im2col + products, and products + col2im, into STEP_CONV steps where the
 * runtime computes them from the image; returns how many were fused */
int plan_fuse_convs(Plan *p);
/* gemm_fuse.c: a bias added to a plain product's result, added by the product itself, and
 * the column sums of a product's B (a bias gradient) computed by it (the kernels dropped);
 * returns how many */
int plan_fuse_product_bias(Plan *p);

/* --stats: time and work per group of steps, summed over every plan run since the last
 * reset; matrix products also per shape */
typedef enum StatGroup {
    SG_ELEMENTWISE, SG_REDUCTION,            /* gmc's compiled kernels */
    SG_GEMV, SG_OUTER, SG_GEMM_SMALL, SG_GEMM_MEDIUM, SG_GEMM_LARGE,   /* matrix products */
    SG_IM2COL, SG_COL2IM, SG_RANDOM, SG_HISTORY, SG_GATHER, SG_SCAN,
    SG_CONV,                                 /* convolutions as implicit products */
    SG_COUNT
} StatGroup;
typedef struct GemmShape { int64_t m, n, k, batch; int trans_a, trans_b, conv; double seconds; int64_t calls; } GemmShape;
typedef struct KernelTime { const Kernel *k; double seconds; int64_t calls; } KernelTime;
typedef struct ExecStats {
    int enabled;
    double seconds[SG_COUNT];
    int64_t calls[SG_COUNT];
    double flops[SG_COUNT];                  /* matrix products */
    GemmShape shapes[256];
    int nshapes;
    KernelTime kernels[256];                 /* gmc's kernels, the first 256 seen */
    int nkernels;
} ExecStats;
const char *stat_group_name(StatGroup g);
extern ExecStats exec_stats;
void plan_print(const Plan *p, const IrGraph *g, FILE *f);
#endif
