/* ir.h: the tensor graph. Nodes have static shapes (the batch axis is a concrete size) and
 * are created in topological order: a node's inputs always have smaller ids. Gradients are
 * ordinary nodes built by autodiff.c, so they can be lowered, fused and differentiated again. */
#ifndef GMC_IR_H
#define GMC_IR_H
#include <stdint.h>
#include <stdio.h>
#include "ast.h"
#include "conv.h"

#define IR_MAXDIM 8

typedef enum IrOp {
    /* leaves */
    IR_INPUT,      /* fed by the runtime from a data batch; slot = input index */
    IR_PARAM,      /* a parameter (trainable or state); slot = index in the ParamTable */
    IR_CONST,      /* every element = value */
    IR_DATA,       /* a constant tensor; slot = index in the graph's constant table */
    IR_NORMAL,     /* fresh N(0,1) draws each execution; filled by the runtime */
    IR_UNIFORM,    /* fresh U[0,1) draws */
    /* elementwise unary */
    IR_NEG, IR_EXP, IR_LOG, IR_LOG1P, IR_SQRT, IR_RSQRT, IR_ABS, IR_SIGN, IR_TANH, IR_SIGMOID,
    IR_SOFTPLUS, IR_ERF, IR_SIN, IR_COS, IR_FLOOR,
    /* elementwise binary, numpy broadcasting */
    IR_ADD, IR_SUB, IR_MUL, IR_DIV, IR_MAX, IR_MIN, IR_POW,
    IR_GT, IR_GE, IR_LT, IR_LE, IR_EQ, IR_NE,
    IR_WHERE,      /* in[0] != 0 ? in[1] : in[2], broadcasting */
    /* movement */
    IR_RESHAPE,    /* same elements, new shape */
    IR_TRANSPOSE,  /* out axis i = in axis perm[i] */
    IR_BROADCAST,  /* same ndim as the input; size-1 axes expand to shape */
    /* reductions over axes_mask; reduced axes are dropped from the shape */
    IR_SUM, IR_MAXR, IR_MINR,
    /* matrix product: [.., M, K] @ [K, N] (batch axes on a only), or [B.., M, K] @ [B.., K, N]
     * (the same batch axes on both); trans_a / trans_b transpose the last two axes of an
     * operand (trans_a only where a is a matrix or b is batched too) */
    IR_MATMUL,
    /* regions */
    IR_PAD,        /* zeros around: axis i gets lo[i] before and hi[i] after */
    IR_SLICE,      /* the block of the node's shape starting at lo[i] on axis i */
    IR_CONCAT,     /* in[0] and in[1] joined along `axis` */
    /* sliding windows over channels-last images (conv.h), executed by the runtime */
    IR_IM2COL,     /* [N, H, W, C] -> [N, Ho, Wo, kh*kw*C], the window `win` at every point */
    IR_COL2IM,     /* its adjoint: [N, Ho, Wo, kh*kw*C] -> [N, H, W, C], taps summed back */
    /* a history of past inputs kept by the runtime (CycleGAN's image pool); slot = pool id,
     * axis = capacity; no gradient flows through it */
    IR_HISTORY,
    /* rows picked by index, executed by the runtime: ids hold whole numbers (as floats)
     *   IR_GATHER:  in[0] table [V, r...], in[1] ids [s...] -> [s..., r...]; an id outside
     *               0..V-1 gives a row of NaNs
     *   IR_SCATTER: its adjoint: in[0] values [s..., r...], in[1] ids [s...] -> [V, r...],
     *               each row of values added into row id (ids outside 0..V-1 are dropped) */
    IR_GATHER, IR_SCATTER,
    /* running sums and products along `axis` (from the end of the axis if `reverse`),
     * executed by the runtime in double precision */
    IR_CUMSUM, IR_CUMPROD,
    IR_STOPGRAD,   /* the value of in[0], a constant to the gradient */
    IR_NUM_OPS
} IrOp;

typedef struct IrNode {
    IrOp op;
    int ndim;
    int64_t shape[IR_MAXDIM];
    int nin;
    int in[3];
    float value;             /* IR_CONST */
    int slot;                /* IR_INPUT, IR_PARAM, IR_DATA */
    unsigned axes_mask;      /* reductions: bit i set = axis i of the input is reduced */
    int perm[IR_MAXDIM];     /* IR_TRANSPOSE */
    int trans_a, trans_b;    /* IR_MATMUL */
    int64_t lo[IR_MAXDIM];   /* IR_PAD: zeros before; IR_SLICE: start */
    int64_t hi[IR_MAXDIM];   /* IR_PAD: zeros after */
    int axis;                /* IR_CONCAT, IR_CUMSUM, IR_CUMPROD */
    int reverse;             /* IR_CUMSUM, IR_CUMPROD */
    ConvWindow win;          /* IR_IM2COL, IR_COL2IM */
    Loc loc;                 /* source of the expression that made it, for messages */
} IrNode;

typedef struct IrGraph {
    IrNode *nodes;
    int n, cap;
    float **consts;          /* IR_DATA payloads (owned) */
    int nconsts;
} IrGraph;

/* Parameters live outside graphs: one table per program, shared by every graph built from
 * it, so a model instance's weights are the same storage in every step. */
typedef enum Init { INIT_ZEROS, INIT_ONES, INIT_GLOROT_UNIFORM, INIT_GLOROT_NORMAL,
                    INIT_HE_UNIFORM, INIT_HE_NORMAL, INIT_LECUN_UNIFORM, INIT_LECUN_NORMAL,
                    INIT_NORMAL, INIT_UNIFORM, INIT_CONSTANT, INIT_ORTHOGONAL,
                    INIT_FILE /* a tensor of a user's safetensors file (param_file.c) */ } Init;

typedef struct Param {
    const char *name;        /* "E.dense_1.W" */
    const char *owner;       /* model instance name: "E" */
    int ndim;
    int64_t shape[IR_MAXDIM];
    int64_t size;
    Init init;
    float init_a, init_b;    /* std / limits / constant, by init kind */
    int trainable;
    float *data;
    Loc loc;
    const char *file, *tensor;   /* INIT_FILE: the safetensors file and the tensor's name */
    int nperm, perm[IR_MAXDIM];  /* INIT_FILE: axis i of the param is the tensor's axis perm[i] */
} Param;

typedef struct ParamTable { Param *items; int n, cap; } ParamTable;

int64_t ir_numel(const IrNode *n);
const char *ir_op_name(IrOp op);
int ir_is_elementwise(IrOp op);
int ir_is_unary(IrOp op);
int ir_is_binary(IrOp op);

void ir_init(IrGraph *g);
void ir_free(IrGraph *g);
/* Builders return the new node's id. Shape errors are programming errors here: sema checks
 * user-facing shapes first and reports them with locations. */
int ir_leaf(IrGraph *g, IrOp op, int ndim, const int64_t *shape, int slot);
int ir_const(IrGraph *g, float v, int ndim, const int64_t *shape);
int ir_data(IrGraph *g, float *payload, int ndim, const int64_t *shape);   /* takes payload */
int ir_unary(IrGraph *g, IrOp op, int a);
int ir_binary(IrGraph *g, IrOp op, int a, int b);   /* -1 if shapes do not broadcast */
int ir_where(IrGraph *g, int c, int a, int b);      /* -1 if shapes do not broadcast */
int ir_reshape(IrGraph *g, int a, int ndim, const int64_t *shape);
int ir_transpose(IrGraph *g, int a, const int *perm);
int ir_broadcast(IrGraph *g, int a, int ndim, const int64_t *shape);
int ir_reduce(IrGraph *g, IrOp op, int a, unsigned axes_mask);
int ir_matmul(IrGraph *g, int a, int b, int trans_a, int trans_b);  /* -1 on mismatch */
/* Regions. ir_pad / ir_slice take per-axis counts (ndim of a); ir_slice returns -1 if the
 * block does not lie inside a, ir_concat if the shapes differ off `axis`. */
int ir_pad(IrGraph *g, int a, const int64_t *before, const int64_t *after);
int ir_slice(IrGraph *g, int a, const int64_t *start, const int64_t *shape);
int ir_concat(IrGraph *g, int a, int b, int axis);
/* Windows over a channels-last image a [N, H, W, C]: -1 unless a has rank 4 and at least
 * one window fits. ir_col2im maps cols [N, Ho, Wo, kh*kw*C] back onto an image of h x w;
 * -1 unless the window over h x w gives exactly that Ho x Wo grid. */
int ir_im2col(IrGraph *g, int a, const ConvWindow *win);
int ir_col2im(IrGraph *g, int cols, const ConvWindow *win, int64_t h, int64_t w);

/* ir_conv.c: the convolution family as compositions of the ops above, all channels-last.
 * Shapes are the caller's to check (the builtins report them with locations).
 *   conv2d: x [N, H, W, C], w [kh, kw, C/groups, O] (Keras) -> [N, Ho, Wo, O]
 *   conv2d_transpose: x [N, H, W, C], w [kh, kw, O, C] (Keras) -> [N, ho, wo, O], where the
 *     window over ho x wo must give the H x W grid (conv_transpose_out_size)
 *   pool2d: the max (is_max) or mean of every window; a mean counts only the taps inside
 *     the image, a max ignores the outside ones (TensorFlow's rules for "same")
 *   upsample2d: by integer factors, nearest neighbour or bilinear (half-pixel centres, as
 *     TensorFlow 2 and torch with align_corners=False) */
int ir_conv2d(IrGraph *g, int x, int w, const ConvWindow *win, int groups);
int ir_conv2d_transpose(IrGraph *g, int x, int w, const ConvWindow *win, int64_t ho, int64_t wo);
int ir_pool2d(IrGraph *g, int x, const ConvWindow *win, int is_max);
int ir_upsample2d(IrGraph *g, int x, int fy, int fx, int bilinear);

/* Sum g over broadcast axes so it has `shape` (the inverse of implicit broadcasting). */
int ir_history(IrGraph *g, int a, int pool, int capacity);
/* -1 if the shapes do not fit (see IR_GATHER, IR_SCATTER; rows = V) */
int ir_gather(IrGraph *g, int table, int ids);
int ir_scatter(IrGraph *g, int values, int ids, int64_t rows);
int ir_scan(IrGraph *g, IrOp op, int a, int axis, int reverse);     /* IR_CUMSUM, IR_CUMPROD */
int ir_unbroadcast(IrGraph *g, int a, int ndim, const int64_t *shape);
/* numpy broadcasting of two shapes; returns ndim or -1 */
int ir_broadcast_shape(int na, const int64_t *sa, int nb, const int64_t *sb, int64_t *out);
void ir_print(const IrGraph *g, FILE *f);

/* autodiff.c: reverse mode. Adds the gradient of scalar node `loss` with respect to each node
 * in wrt[0..n-1] to the graph; grads[i] gets the id (a zero constant if unreachable). */
void ir_grad(IrGraph *g, int loss, const int *wrt, int n, int *grads);

int params_add(ParamTable *t, const char *name, const char *owner, int ndim,
               const int64_t *shape, Init init, float a, float b, int trainable, Loc loc);
int params_find(const ParamTable *t, const char *name);
/* orthogonal.c: a (rows x cols, row-major) holds max(rows, cols) x min(rows, cols) standard
 * normal draws; replaces it with Keras's orthogonal matrix from them: orthonormal columns
 * (rows >= cols) or rows, the QR's Q with R's diagonal made positive */
void orthogonal_matrix(float *a, int64_t rows, int64_t cols);
#endif
