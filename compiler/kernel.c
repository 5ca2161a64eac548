/* kernel.c: building kernel expressions and printing kernels for --dump-kernels. */
#include "kernel.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static KExpr *kx_new(KOp op) {
    KExpr *e = calloc(1, sizeof *e);
    if (!e) {
        fprintf(stderr, "gmc: out of memory building a kernel expression\n");
        abort();
    }
    e->op = op;
    return e;
}

/* Misusing an op's arity is a bug in the caller: fail loudly rather than build a bad tree. */
static void need_arity(KOp op, int arity) {
    int actual = op <= KE_INDEX ? 0 : op <= KE_FLOOR ? 1 : op <= KE_NE ? 2 : 3;
    if (op < 0 || op >= KE_NUM_OPS || actual != arity) {
        fprintf(stderr, "gmc: kernel op %d used with %d operands\n", (int)op, arity);
        abort();
    }
}

KExpr *kx_const(float v) {
    KExpr *e = kx_new(KE_CONST);
    e->value = v;
    return e;
}

KExpr *kx_load(int buf, int64_t offset, const int64_t *stride, int ndim) {
    KExpr *e = kx_new(KE_LOAD);
    e->buf = buf;
    e->offset = offset;
    for (int d = 0; d < ndim && d < K_MAXDIM; d++) e->stride[d] = stride[d];
    return e;
}

KExpr *kx_acc(void) { return kx_new(KE_ACC); }

KExpr *kx_index(int axis) {
    KExpr *e = kx_new(KE_INDEX);
    e->axis = axis;
    return e;
}

KExpr *kx_un(KOp op, KExpr *a) {
    need_arity(op, 1);
    KExpr *e = kx_new(op);
    e->arg[0] = a;
    return e;
}

KExpr *kx_bin(KOp op, KExpr *a, KExpr *b) {
    need_arity(op, 2);
    KExpr *e = kx_new(op);
    e->arg[0] = a;
    e->arg[1] = b;
    return e;
}

KExpr *kx_select(KExpr *c, KExpr *a, KExpr *b) {
    KExpr *e = kx_new(KE_SELECT);
    e->arg[0] = c;
    e->arg[1] = a;
    e->arg[2] = b;
    return e;
}

static const char *const kop_names[KE_NUM_OPS] = {
    [KE_CONST] = "const", [KE_LOAD] = "load", [KE_ACC] = "acc", [KE_INDEX] = "index",
    [KE_NEG] = "neg", [KE_EXP] = "exp", [KE_LOG] = "log", [KE_LOG1P] = "log1p",
    [KE_SQRT] = "sqrt", [KE_RSQRT] = "rsqrt", [KE_ABS] = "abs", [KE_SIGN] = "sign",
    [KE_TANH] = "tanh", [KE_SIGMOID] = "sigmoid", [KE_SOFTPLUS] = "softplus", [KE_ERF] = "erf", [KE_SIN] = "sin", [KE_COS] = "cos",
    [KE_FLOOR] = "floor", [KE_ADD] = "add", [KE_SUB] = "sub", [KE_MUL] = "mul",
    [KE_DIV] = "div", [KE_MAX] = "max", [KE_MIN] = "min", [KE_POW] = "pow", [KE_GT] = "gt",
    [KE_GE] = "ge", [KE_LT] = "lt", [KE_LE] = "le", [KE_EQ] = "eq", [KE_NE] = "ne",
    [KE_SELECT] = "select",
};

const char *kop_name(KOp op) {
    return op >= 0 && op < KE_NUM_OPS && kop_names[op] ? kop_names[op] : "?";
}

/* An affine index such as `784*i0 + i1 + 3` over the first n dims. */
static void print_index(FILE *f, int64_t offset, const int64_t *stride, int n) {
    int terms = 0;
    for (int d = 0; d < n; d++) {
        int64_t s = stride[d];
        if (s == 0) continue;
        if (terms) fputs(s < 0 ? " - " : " + ", f);
        else if (s < 0) fputs("-", f);
        int64_t m = s < 0 ? -s : s;
        if (m != 1) fprintf(f, "%" PRId64 "*", m);
        fprintf(f, "i%d", d);
        terms++;
    }
    if (offset != 0 || terms == 0) {
        if (terms) fprintf(f, " %c %" PRId64, offset < 0 ? '-' : '+', offset < 0 ? -offset : offset);
        else fprintf(f, "%" PRId64, offset);
    }
}

/* n: how many leading dims a load may index (all dims in the body, output dims in post) */
static void print_expr(FILE *f, const KExpr *e, int n) {
    if (!e) { fputs("<null>", f); return; }
    switch (e->op) {
    case KE_CONST: fprintf(f, "%g", (double)e->value); return;
    case KE_ACC: fputs("acc", f); return;
    case KE_INDEX: fprintf(f, "index(i%d)", e->axis); return;
    case KE_LOAD:
        fprintf(f, "load b%d[", e->buf);
        print_index(f, e->offset, e->stride, n);
        fputs("]", f);
        return;
    default: break;
    }
    int arity = e->op <= KE_FLOOR ? 1 : e->op <= KE_NE ? 2 : 3;
    fprintf(f, "%s(", kop_name(e->op));
    for (int i = 0; i < arity; i++) {
        if (i) fputs(", ", f);
        print_expr(f, e->arg[i], n);
    }
    fputs(")", f);
}

static void print_dims(FILE *f, const int64_t *dims, int n) {
    fputs("[", f);
    for (int d = 0; d < n; d++) fprintf(f, "%s%" PRId64, d ? " x " : "", dims[d]);
    fputs("]", f);
}

/* e.g. `kernel k4_mean [128] sum [784] -> buf 6[i0] = mul(acc, 0.5) with acc = sum(...)` */
void kernel_print(const Kernel *k, FILE *f) {
    static const char *const reduce_names[] = {"none", "sum", "max", "min"};
    const char *red = k->reduce >= KR_SUM && k->reduce <= KR_MIN ? reduce_names[k->reduce] : NULL;
    fprintf(f, "kernel %s ", k->name);
    print_dims(f, k->dims, k->nout);
    if (red) {
        fprintf(f, " %s ", red);
        print_dims(f, k->dims + k->nout, k->ndim - k->nout);
    }
    fprintf(f, " -> buf %d[", k->out_buf);
    print_index(f, k->out_offset, k->out_stride, k->nout);
    fputs("] = ", f);
    if (k->post) {
        print_expr(f, k->post, k->nout);
        fputs(" with acc = ", f);
    }
    if (red) fprintf(f, "%s(", red);
    print_expr(f, k->body, k->ndim);
    if (red) fputs(")", f);
    fputs("\n", f);
}

int kernel_load_like(const Kernel *k, const KExpr *e, int bias) {
    if (!e || e->op != KE_LOAD || e->offset != 0 || k->arg_offset[e->buf] != 0) return 0;
    for (int d = 0; d < k->ndim; d++)
        if (e->stride[d] != (bias ? d == k->ndim - 1 : k->out_stride[d])) return 0;
    return 1;
}
