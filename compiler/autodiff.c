/* autodiff.c: reverse-mode differentiation from IR to IR. Each op's vector-Jacobian product
 * is written with ordinary IR ops, so gradients fuse like any other code and can themselves
 * be differentiated. Adjoints are accumulated by addition in reverse topological order. */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "ir.h"

static int scalar(IrGraph *g, float v) { return ir_const(g, v, 0, NULL); }
static int bin(IrGraph *g, IrOp op, int a, int b) { return ir_binary(g, op, a, b); }

/* adds contribution c (already of the node's shape after unbroadcast) to adj[i] */
static void accumulate(IrGraph *g, int *adj, int i, int c) {
    IrNode n = g->nodes[i];
    c = ir_unbroadcast(g, c, n.ndim, n.shape);
    adj[i] = adj[i] < 0 ? c : bin(g, IR_ADD, adj[i], c);
}

/* view a as a 2-D matrix [rows, last] (batched matmul operands) */
static int as_matrix(IrGraph *g, int a) {
    IrNode *n = &g->nodes[a];
    if (n->ndim == 2) return a;
    int64_t shape[2] = { ir_numel(n) / n->shape[n->ndim - 1], n->shape[n->ndim - 1] };
    return ir_reshape(g, a, 2, shape);
}

static void matmul_vjp(IrGraph *g, int *adj, int i, int gy) {
    IrNode n = g->nodes[i];
    int a = n.in[0], b = n.in[1];
    int da, db;
    if (g->nodes[b].ndim > 2) {          /* batched on both sides: the same rules per matrix */
        if (!n.trans_a && !n.trans_b) { da = ir_matmul(g, gy, b, 0, 1); db = ir_matmul(g, a, gy, 1, 0); }
        else if (!n.trans_a) { da = ir_matmul(g, gy, b, 0, 0); db = ir_matmul(g, gy, a, 1, 0); }
        else if (!n.trans_b) { da = ir_matmul(g, b, gy, 0, 1); db = ir_matmul(g, a, gy, 0, 0); }
        else { da = ir_matmul(g, b, gy, 1, 1); db = ir_matmul(g, gy, a, 1, 1); }
    } else if (!n.trans_a && !n.trans_b) {
        da = ir_matmul(g, gy, b, 0, 1);
        db = ir_matmul(g, as_matrix(g, a), as_matrix(g, gy), 1, 0);
    } else if (!n.trans_a && n.trans_b) {
        da = ir_matmul(g, gy, b, 0, 0);
        db = ir_matmul(g, as_matrix(g, gy), as_matrix(g, a), 1, 0);
    } else if (n.trans_a && !n.trans_b) {
        da = ir_matmul(g, b, gy, 0, 1);
        db = ir_matmul(g, a, gy, 0, 0);
    } else {
        da = ir_matmul(g, b, gy, 1, 1);
        db = ir_matmul(g, gy, a, 1, 1);
    }
    accumulate(g, adj, a, da);
    accumulate(g, adj, b, db);
}

/* the input's shape with reduced axes kept as size 1 */
static int keepdims(IrGraph *g, int y, int x, unsigned mask) {
    IrNode in = g->nodes[x];
    int64_t shape[IR_MAXDIM];
    for (int k = 0; k < in.ndim; k++) shape[k] = (mask >> k & 1) ? 1 : in.shape[k];
    return ir_reshape(g, y, in.ndim, shape);
}

static void node_vjp(IrGraph *g, int *adj, int i) {
    int gy = adj[i];
    IrNode n = g->nodes[i];      /* copy: the node array grows while we build */
    int x = n.in[0], y2 = n.in[1];
    switch (n.op) {
    case IR_INPUT: case IR_PARAM: case IR_CONST: case IR_DATA: case IR_NORMAL: case IR_UNIFORM:
    case IR_SIGN: case IR_FLOOR:
    case IR_GT: case IR_GE: case IR_LT: case IR_LE: case IR_EQ: case IR_NE:
    case IR_HISTORY:     /* past images: constants to whatever reads them */
    case IR_STOPGRAD:
    case IR_NUM_OPS:
        return;
    case IR_NEG: accumulate(g, adj, x, ir_unary(g, IR_NEG, gy)); return;
    case IR_EXP: accumulate(g, adj, x, bin(g, IR_MUL, gy, i)); return;
    case IR_LOG: accumulate(g, adj, x, bin(g, IR_DIV, gy, x)); return;
    case IR_LOG1P:
        accumulate(g, adj, x, bin(g, IR_DIV, gy, bin(g, IR_ADD, x, scalar(g, 1)))); return;
    case IR_SQRT:
        accumulate(g, adj, x, bin(g, IR_DIV, bin(g, IR_MUL, gy, scalar(g, 0.5f)), i)); return;
    case IR_RSQRT: {
        int y3 = bin(g, IR_MUL, bin(g, IR_MUL, i, i), i);
        accumulate(g, adj, x, bin(g, IR_MUL, gy, bin(g, IR_MUL, y3, scalar(g, -0.5f))));
        return;
    }
    case IR_ABS: accumulate(g, adj, x, bin(g, IR_MUL, gy, ir_unary(g, IR_SIGN, x))); return;
    case IR_TANH: {
        int d = bin(g, IR_SUB, scalar(g, 1), bin(g, IR_MUL, i, i));
        accumulate(g, adj, x, bin(g, IR_MUL, gy, d));
        return;
    }
    case IR_SIGMOID: {
        int d = bin(g, IR_MUL, i, bin(g, IR_SUB, scalar(g, 1), i));
        accumulate(g, adj, x, bin(g, IR_MUL, gy, d));
        return;
    }
    case IR_SOFTPLUS: accumulate(g, adj, x, bin(g, IR_MUL, gy, ir_unary(g, IR_SIGMOID, x))); return;
    case IR_ERF: {
        int e = ir_unary(g, IR_EXP, ir_unary(g, IR_NEG, bin(g, IR_MUL, x, x)));
        accumulate(g, adj, x, bin(g, IR_MUL, gy, bin(g, IR_MUL, e, scalar(g, (float)(2 / sqrt(M_PI))))));
        return;
    }
    case IR_SIN: accumulate(g, adj, x, bin(g, IR_MUL, gy, ir_unary(g, IR_COS, x))); return;
    case IR_COS: accumulate(g, adj, x, ir_unary(g, IR_NEG, bin(g, IR_MUL, gy, ir_unary(g, IR_SIN, x)))); return;
    case IR_ADD:
        accumulate(g, adj, x, gy);
        accumulate(g, adj, y2, gy);
        return;
    case IR_SUB:
        accumulate(g, adj, x, gy);
        accumulate(g, adj, y2, ir_unary(g, IR_NEG, gy));
        return;
    case IR_MUL:
        accumulate(g, adj, x, bin(g, IR_MUL, gy, y2));
        accumulate(g, adj, y2, bin(g, IR_MUL, gy, x));
        return;
    case IR_DIV: {
        accumulate(g, adj, x, bin(g, IR_DIV, gy, y2));
        int q = bin(g, IR_DIV, i, y2);              /* a / b^2 = y / b */
        accumulate(g, adj, y2, ir_unary(g, IR_NEG, bin(g, IR_MUL, gy, q)));
        return;
    }
    case IR_MAX: case IR_MIN: {
        /* the gradient goes to a where a wins strictly, else to b (relu'(0) = 0) */
        int win = bin(g, n.op == IR_MAX ? IR_GT : IR_LT, x, y2);
        accumulate(g, adj, x, bin(g, IR_MUL, gy, win));
        accumulate(g, adj, y2, bin(g, IR_MUL, gy, bin(g, IR_SUB, scalar(g, 1), win)));
        return;
    }
    case IR_POW: {
        int da = bin(g, IR_MUL, y2, bin(g, IR_POW, x, bin(g, IR_SUB, y2, scalar(g, 1))));
        accumulate(g, adj, x, bin(g, IR_MUL, gy, da));
        accumulate(g, adj, y2, bin(g, IR_MUL, gy, bin(g, IR_MUL, i, ir_unary(g, IR_LOG, x))));
        return;
    }
    case IR_WHERE: {
        int zero = scalar(g, 0);
        accumulate(g, adj, n.in[1], ir_where(g, x, gy, zero));
        accumulate(g, adj, n.in[2], ir_where(g, x, zero, gy));
        return;
    }
    case IR_RESHAPE: {
        IrNode in = g->nodes[x];
        accumulate(g, adj, x, ir_reshape(g, gy, in.ndim, in.shape));
        return;
    }
    case IR_TRANSPOSE: {
        int inv[IR_MAXDIM];
        for (int k = 0; k < n.ndim; k++) inv[n.perm[k]] = k;
        accumulate(g, adj, x, ir_transpose(g, gy, inv));
        return;
    }
    case IR_BROADCAST:
        accumulate(g, adj, x, gy);   /* accumulate unbroadcasts */
        return;
    case IR_SUM: {
        IrNode in = g->nodes[x];
        accumulate(g, adj, x, ir_broadcast(g, keepdims(g, gy, x, n.axes_mask), in.ndim, in.shape));
        return;
    }
    case IR_MAXR: case IR_MINR: {
        IrNode in = g->nodes[x];
        int yk = ir_broadcast(g, keepdims(g, i, x, n.axes_mask), in.ndim, in.shape);
        int gk = ir_broadcast(g, keepdims(g, gy, x, n.axes_mask), in.ndim, in.shape);
        accumulate(g, adj, x, bin(g, IR_MUL, gk, bin(g, IR_EQ, x, yk)));
        return;
    }
    case IR_MATMUL: matmul_vjp(g, adj, i, gy); return;
    /* pad and slice are each other's adjoints, and so are im2col and col2im */
    case IR_PAD:
        accumulate(g, adj, x, ir_slice(g, gy, n.lo, g->nodes[x].shape));
        return;
    case IR_SLICE: {
        IrNode in = g->nodes[x];
        int64_t after[IR_MAXDIM];
        for (int k = 0; k < n.ndim; k++) after[k] = in.shape[k] - n.lo[k] - n.shape[k];
        accumulate(g, adj, x, ir_pad(g, gy, n.lo, after));
        return;
    }
    case IR_CONCAT: {
        IrNode a = g->nodes[x], b = g->nodes[y2];
        int64_t start[IR_MAXDIM] = { 0 };
        accumulate(g, adj, x, ir_slice(g, gy, start, a.shape));
        start[n.axis] = a.shape[n.axis];
        accumulate(g, adj, y2, ir_slice(g, gy, start, b.shape));
        return;
    }
    case IR_IM2COL: {
        IrNode in = g->nodes[x];
        accumulate(g, adj, x, ir_col2im(g, gy, &n.win, in.shape[1], in.shape[2]));
        return;
    }
    case IR_COL2IM: accumulate(g, adj, x, ir_im2col(g, gy, &n.win)); return;
    /* gather and scatter are each other's adjoints too; ids get no gradient */
    case IR_GATHER: accumulate(g, adj, x, ir_scatter(g, gy, y2, g->nodes[x].shape[0])); return;
    case IR_SCATTER: accumulate(g, adj, x, ir_gather(g, gy, y2)); return;
    /* a running sum's adjoint is the running sum the other way; a running product's is
     * that of gy * y, divided by x (so x must have no zeros) */
    case IR_CUMSUM: accumulate(g, adj, x, ir_scan(g, IR_CUMSUM, gy, n.axis, !n.reverse)); return;
    case IR_CUMPROD: {
        int s = ir_scan(g, IR_CUMSUM, bin(g, IR_MUL, gy, i), n.axis, !n.reverse);
        accumulate(g, adj, x, bin(g, IR_DIV, s, x));
        return;
    }
    }
}

void ir_grad(IrGraph *g, int loss, const int *wrt, int nwrt, int *grads) {
    int n0 = g->n;
    int *adj = malloc(n0 * sizeof *adj);
    for (int i = 0; i < n0; i++) adj[i] = -1;
    /* only nodes on a path to the loss matter; nodes on no path from a wrt node could be
     * skipped too, but DCE in the lowering removes their unused gradients anyway */
    adj[loss] = ir_const(g, 1, g->nodes[loss].ndim, g->nodes[loss].shape);
    for (int i = loss; i >= 0; i--)
        if (adj[i] >= 0) node_vjp(g, adj, i);
    for (int k = 0; k < nwrt; k++) {
        IrNode *w = &g->nodes[wrt[k]];
        grads[k] = adj[wrt[k]] >= 0 ? adj[wrt[k]] : ir_const(g, 0, w->ndim, w->shape);
    }
    free(adj);
}
