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
} Buffer;

typedef enum StepKind { STEP_KERNEL, STEP_GEMM, STEP_NORMAL, STEP_UNIFORM,
                        STEP_IM2COL, STEP_COL2IM, STEP_HISTORY, STEP_GATHER, STEP_SCAN } StepKind;

typedef struct PlanStep {
    StepKind kind;
    int kernel;                   /* STEP_KERNEL */
    int a, b, c;                  /* STEP_GEMM buffers: C = op(A) op(B); fills: c;
                                     im2col / col2im: c = f(a) */
    int64_t m, n, k;
    int64_t batch;                /* STEP_GEMM: this many products of consecutive matrices
                                     (0 or 1: one) */
    int trans_a, trans_b;
    ConvGeom geom;                /* STEP_IM2COL, STEP_COL2IM */
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
} Plan;

typedef struct LowerOptions {
    int fuse;                     /* 0: every op its own kernel (the unfused oracle) */
    int interpret;                /* 1: run kernels with the reference interpreter */
} LowerOptions;

/* Lowers the graph so that every root is materialised; binds PARAM leaves to the parameter
 * table's storage. Returns NULL with a message in err if the JIT fails. */
Plan *plan_build(const IrGraph *g, const ParamTable *params, const int *roots, int nroots,
                 int ninputs, const LowerOptions *opt, Jit *jit, char *err, int errlen);
void plan_free(Plan *p);
float *plan_node(const Plan *p, int node);          /* NULL if not materialised */
float *plan_input(const Plan *p, int slot);          /* NULL if the graph ignores the input */
void plan_run(Plan *p, Rng *rng);                    /* runtime/exec.c */

/* --stats: time and work per kind of step, summed over every plan run since the last reset */
typedef struct ExecStats {
    int enabled;
    double seconds[16];           /* by StepKind */
    int64_t calls[16];
    double gemm_flops;
} ExecStats;
extern ExecStats exec_stats;
void plan_print(const Plan *p, const IrGraph *g, FILE *f);
#endif
