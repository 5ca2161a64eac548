/* kernel_interp.c: the reference semantics of a kernel, in plain C over float32.
 * render_llvm.c emits the same formulas; where a choice exists it is written down here:
 *   max(a, b) = (isnan(a) || a > b) ? a : b      NaN in either operand propagates
 *   min(a, b) = (isnan(a) || a < b) ? a : b
 *   sign(x)   = x > 0 ? 1 : x < 0 ? -1 : x       so sign(+-0) = +-0 and sign(NaN) = NaN
 *   sigmoid   = with e = exp(-|x|): x >= 0 ? 1/(1+e) : e/(1+e)
 *   softplus  = max(x, 0) + log1p(exp(-|x|))
 *   select    = arg0 != 0 ? arg1 : arg2          (NaN counts as true; both arms evaluated)
 *   comparisons are ordered (false on NaN) except ne, which is true on NaN
 *   a max/min reduction folds acc = max(acc, x) starting from -inf/+inf. */
#include "kernel.h"
#include <math.h>

/* The JIT never fuses a*b+c into an fma, so neither may this file: build it in ISO C mode
 * (-std=c11 means -ffp-contract=off for GCC), as the Makefile does. */

static float kmax(float a, float b) { return (isnan(a) || a > b) ? a : b; }
static float kmin(float a, float b) { return (isnan(a) || a < b) ? a : b; }

static float ksigmoid(float x) {
    float e = expf(-fabsf(x));
    return x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

static float ksoftplus(float x) { return kmax(x, 0.0f) + log1pf(expf(-fabsf(x))); }

/* Loads index the first n dims of idx: all of them in the body, the output dims in post. */
static float eval(const KExpr *e, float *const *bufs, const int64_t *idx, int n, float acc) {
    float a = 0, b = 0;
    switch (e->op) {
    case KE_CONST: return e->value;
    case KE_ACC: return acc;
    case KE_INDEX: return (float)idx[e->axis];
    case KE_LOAD: {
        int64_t at = e->offset;
        for (int d = 0; d < n; d++) at += idx[d] * e->stride[d];
        return bufs[e->buf][at];
    }
    case KE_SELECT: {
        /* both arms are evaluated, as the vectorised JIT does: a load guarded by a select
         * must still be in bounds, and this oracle lets sanitizers see it */
        float c = eval(e->arg[0], bufs, idx, n, acc);
        float t = eval(e->arg[1], bufs, idx, n, acc), f = eval(e->arg[2], bufs, idx, n, acc);
        return c != 0 ? t : f;
    }
    default: break;
    }
    a = eval(e->arg[0], bufs, idx, n, acc);
    if (e->op >= KE_ADD) b = eval(e->arg[1], bufs, idx, n, acc);
    switch (e->op) {
    case KE_NEG: return -a;
    case KE_EXP: return expf(a);
    case KE_LOG: return logf(a);
    case KE_LOG1P: return log1pf(a);
    case KE_SQRT: return sqrtf(a);
    case KE_RSQRT: return 1.0f / sqrtf(a);
    case KE_ABS: return fabsf(a);
    case KE_SIGN: return a > 0 ? 1.0f : a < 0 ? -1.0f : a;
    case KE_TANH: return tanhf(a);
    case KE_SIGMOID: return ksigmoid(a);
    case KE_SOFTPLUS: return ksoftplus(a);
    case KE_ERF: return erff(a);
    case KE_SIN: return sinf(a);
    case KE_COS: return cosf(a);
    case KE_FLOOR: return floorf(a);
    case KE_ADD: return a + b;
    case KE_SUB: return a - b;
    case KE_MUL: return a * b;
    case KE_DIV: return a / b;
    case KE_MAX: return kmax(a, b);
    case KE_MIN: return kmin(a, b);
    case KE_POW: return powf(a, b);
    case KE_GT: return a > b ? 1.0f : 0.0f;
    case KE_GE: return a >= b ? 1.0f : 0.0f;
    case KE_LT: return a < b ? 1.0f : 0.0f;
    case KE_LE: return a <= b ? 1.0f : 0.0f;
    case KE_EQ: return a == b ? 1.0f : 0.0f;
    case KE_NE: return a != b ? 1.0f : 0.0f;
    default: return NAN;   /* not an op: kernel_print shows "?" for it */
    }
}

/* Advances idx over dims[from..to) in row-major order; returns 0 once all were visited. */
static int next_index(int64_t *idx, const int64_t *dims, int from, int to) {
    for (int d = to - 1; d >= from; d--) {
        if (++idx[d] < dims[d]) return 1;
        idx[d] = 0;
    }
    return 0;
}

static int empty_range(const int64_t *dims, int from, int to) {
    for (int d = from; d < to; d++)
        if (dims[d] <= 0) return 1;
    return 0;
}

/* The value stored at the output point idx[0..nout). */
static float output_value(const Kernel *k, float *const *bufs, int64_t *idx) {
    float acc;
    double sum = 0;            /* sums accumulate in double, as in the JIT */
    if (k->reduce == KR_NONE) {
        for (int d = k->nout; d < k->ndim; d++) idx[d] = 0;
        acc = eval(k->body, bufs, idx, k->ndim, 0);
    } else {
        acc = k->reduce == KR_SUM ? 0.0f : k->reduce == KR_MAX ? -INFINITY : INFINITY;
        for (int d = k->nout; d < k->ndim; d++) idx[d] = 0;
        if (!empty_range(k->dims, k->nout, k->ndim)) {
            do {
                float v = eval(k->body, bufs, idx, k->ndim, 0);
                if (k->reduce == KR_SUM) sum += v;
                else acc = k->reduce == KR_MAX ? kmax(acc, v) : kmin(acc, v);
            } while (next_index(idx, k->dims, k->nout, k->ndim));
        }
        if (k->reduce == KR_SUM) acc = (float)sum;
    }
    return k->post ? eval(k->post, bufs, idx, k->nout, acc) : acc;
}

void kernel_interpret(const Kernel *k, float *const *bufs, int64_t begin, int64_t end) {
    int64_t idx[K_MAXDIM] = {0};
    if (kernel_is_row_copy(k)) {        /* exact either way; this way fast */
        kernel_copy_rows(k, bufs, begin, end);
        return;
    }
    if (begin >= end || empty_range(k->dims, 1, k->nout)) return;
    if (k->nout == 0) {
        bufs[k->out_buf][k->out_offset] = output_value(k, bufs, idx);
        return;
    }
    for (int64_t i0 = begin; i0 < end; i0++) {
        for (int d = 0; d < k->nout; d++) idx[d] = 0;
        idx[0] = i0;
        do {
            int64_t at = k->out_offset;
            for (int d = 0; d < k->nout; d++) at += idx[d] * k->out_stride[d];
            bufs[k->out_buf][at] = output_value(k, bufs, idx);
        } while (next_index(idx, k->dims, 1, k->nout));
    }
}
