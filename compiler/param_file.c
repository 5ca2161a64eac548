/* param_file.c: parameters initialised from a user's safetensors file (seed model M28's
 * pretrained VGG):
 *     param W[3, 3, 3, 64] = safetensors(vgg, "features.0.weight", permute: (2, 3, 1, 0))
 * The file is checked while the program is (it opens, parses, holds the tensor as float32, and
 * the tensor, its axes permuted, has the param's shape), so a wrong file is a located error of
 * --check; its data is read when parameters are initialised. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sema_internal.h"
#include "safetensors.h"
#include "param_file.h"

/* files opened so far, by path: one VGG file initialises 32 parameters */
static struct { const char *path; StFile *f; } files[16];
static int nfiles;

static StFile *open_file(const char *path, char *err, int len) {
    for (int i = 0; i < nfiles; i++)
        if (!strcmp(files[i].path, path)) return files[i].f;
    StFile *f = st_open(path, err, len);
    if (f && nfiles < 16) files[nfiles++].path = ast_intern(path), files[nfiles - 1].f = f;
    return f;
}

static const char *dims_str(int n, const int64_t *d) { return shape_str(n, d); }

/* `safetensors(path, tensor, permute: (axes))`: an initialiser value (str: the path, name: the
 * tensor, arr: the permutation, n axes; n = 0 without one) */
Value file_init(Args *a) {
    if (a->npos != 2 || a->pos[0].kind != V_STR || a->pos[1].kind != V_STR) {
        diag_error(a->npos >= 1 && a->pos[0].kind != V_STR ? a->pos_loc[0] : a->npos >= 2 ? a->pos_loc[1] : a->loc,
                   "safetensors(\"FILE.safetensors\", \"tensor name\", permute: (axes)) takes a file and a tensor name");
        return error_value;
    }
    const char *path = a->pos[0].str, *name = a->pos[1].str;
    Loc ploc = a->loc;
    Value *perm = named(a, "permute", &ploc);
    if (no_other_named(a, "safetensors") < 0) return error_value;
    char err[512];
    if (!*path) {
        diag_error(a->pos_loc[0], "safetensors(): the file name is empty (give it with --set?)");
        return error_value;
    }
    StFile *f = open_file(path, err, sizeof err);
    if (!f) { diag_error(a->pos_loc[0], "cannot load parameters: %s", err); return error_value; }
    const StTensor *t = st_find(f, name);
    if (!t) {
        char list[300] = "";
        int n = st_count(f);
        for (int i = 0; i < n && i < 6; i++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", st_get(f, i)->name);
        }
        diag_error(a->pos_loc[1], "%s has no tensor '%s' (it has %d: %s%s)", path, name, n, list, n > 6 ? ", ..." : "");
        return error_value;
    }
    Value v = { .kind = V_INIT, .init = INIT_FILE, .str = path, .name = name };
    if (perm) {
        int n = perm->kind == V_TUPLE || perm->kind == V_ARRAY ? perm->n : -1;
        if (n != t->ndim) {
            diag_error(ploc, "permute: needs %d axes for tensor '%s' of shape %s", t->ndim, name, dims_str(t->ndim, t->dims));
            return error_value;
        }
        v.n = n;
        v.arr = xmalloc((size_t)(n ? n : 1) * sizeof *v.arr);
        int seen[IR_MAXDIM] = { 0 };
        for (int i = 0; i < n; i++) {
            double x;
            if (perm->kind == V_ARRAY) x = perm->arr[i];
            else if (want_num(perm->items[i], ploc, "an axis of permute:", &x) < 0) return error_value;
            int k = (int)x;
            if (k != x || k < 0 || k >= n || seen[k]++) {
                diag_error(ploc, "permute: must order the axes 0..%d, each once (numpy's transpose)", n - 1);
                return error_value;
            }
            v.arr[i] = k;
        }
    }
    return v;
}

/* The param created with a file initialiser: records the file, checks the shape. */
int param_file_attach(Param *p, const char *local, const Value *init, Loc loc) {
    char err[512];
    StFile *f = open_file(init->str, err, sizeof err);
    const StTensor *t = f ? st_find(f, init->name) : NULL;
    if (!t) { diag_error(loc, "cannot load parameter '%s' from %s", local, init->str); return -1; }
    int64_t shape[IR_MAXDIM];
    int n = init->n ? init->n : t->ndim;
    for (int i = 0; i < n && i < IR_MAXDIM; i++) shape[i] = t->dims[init->n ? (int)init->arr[i] : i];
    if (n != p->ndim || memcmp(shape, p->shape, n * sizeof *shape)) {
        diag_error(loc, "tensor '%s' of %s has shape %s%s%s, param '%s' has shape %s", init->name, init->str,
                   dims_str(t->ndim, t->dims), init->n ? ", permuted " : "", init->n ? dims_str(n, shape) : "",
                   local, dims_str(p->ndim, p->shape));
        return -1;
    }
    p->file = init->str;
    p->tensor = init->name;
    p->nperm = init->n;
    for (int i = 0; i < init->n; i++) p->perm[i] = (int)init->arr[i];
    return 0;
}

/* Copies the tensor into the parameter, axes permuted. -1 after a message naming the file. */
int param_file_fill(Param *p) {
    char err[512];
    StFile *f = open_file(p->file, err, sizeof err);
    const StTensor *t = f ? st_find(f, p->tensor) : NULL;
    int64_t size = 1;
    for (int i = 0; t && i < t->ndim; i++) size *= t->dims[i];
    if (!t || size != p->size) {
        fprintf(stderr, "gmc: %s: %s\n", p->file, !f ? err : !t ? "the tensor is gone" : "the tensor changed shape");
        return -1;
    }
    if (!p->nperm) { memcpy(p->data, t->data, size * sizeof(float)); return 0; }
    int64_t stride[IR_MAXDIM], at[IR_MAXDIM] = { 0 }, src = 0;
    stride[t->ndim - 1] = 1;
    for (int i = t->ndim - 2; i >= 0; i--) stride[i] = stride[i + 1] * t->dims[i + 1];
    for (int64_t k = 0; k < size; k++) {       /* param elements in order, an odometer */
        p->data[k] = t->data[src];
        for (int i = p->ndim - 1; i >= 0; i--) {
            int64_t s = stride[p->perm[i]];
            if (++at[i] < p->shape[i]) { src += s; break; }
            src -= s * (p->shape[i] - 1);
            at[i] = 0;
        }
    }
    return 0;
}
