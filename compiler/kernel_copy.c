/* kernel_copy.c: kernels that only move rows (the parts of a concat, a slice, a pad's
 * interior, an unrolled LSTM's time steps) run as one memmove per row instead of going
 * through the JIT. They differ from each other only in their shapes and strides, so each
 * would be a kernel of its own to compile: 313 of the character LSTM's 381. A row is the
 * innermost dim, contiguous on both sides; the copy is exact, so this is the interpreter's
 * semantics too. */
#include <string.h>
#include "kernel.h"

int kernel_is_row_copy(const Kernel *k) {
    if (k->reduce != KR_NONE || k->post || !k->body || k->body->op != KE_LOAD) return 0;
    if (k->ndim < 1 || k->nout != k->ndim) return 0;
    int last = k->ndim - 1;
    return k->body->stride[last] == 1 && k->out_stride[last] == 1 && k->dims[last] >= 16;
}

void kernel_copy_rows(const Kernel *k, float *const *bufs, int64_t begin, int64_t end) {
    const KExpr *x = k->body;
    int last = k->ndim - 1;
    int64_t idx[K_MAXDIM] = { 0 }, row = k->dims[last];
    if (last == 0) {              /* one row, split along it */
        if (end > begin)
            memmove(bufs[k->out_buf] + k->out_offset + begin, bufs[x->buf] + x->offset + begin,
                    (size_t)(end - begin) * sizeof(float));
        return;
    }
    for (int d = 1; d < last; d++) if (k->dims[d] <= 0) return;
    for (int64_t i0 = begin; i0 < end; i0++) {
        for (int d = 1; d < last; d++) idx[d] = 0;
        idx[0] = i0;
        for (;;) {
            int64_t from = x->offset, to = k->out_offset;
            for (int d = 0; d < last; d++) {
                from += idx[d] * x->stride[d];
                to += idx[d] * k->out_stride[d];
            }
            memmove(bufs[k->out_buf] + to, bufs[x->buf] + from, (size_t)row * sizeof(float));
            int d = last - 1;
            while (d >= 1 && ++idx[d] == k->dims[d]) idx[d--] = 0;
            if (d < 1) break;
        }
    }
}
