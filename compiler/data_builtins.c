/* data_builtins.c: data pipelines: sources (fashion_mnist, mnist) and transforms (scale,
 * shuffle, batch). A pipeline is a DataSpec that the runtime's data.c loads. */
#include <stdio.h>
#include <string.h>
#include "sema_internal.h"

enum { SOURCE, SCALE, SHUFFLE, BATCH };

static Value data_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)c;
    const char *fn = def->name;
    DataSpec *d;
    if (def->op == SOURCE) {
        d = xmalloc(sizeof *d);
        d->source = fn;
        d->split = "train";
        d->loc = a->loc;
        d->ndim = 2;
        d->shape[0] = d->shape[1] = 28;
        Loc l;
        Value *v = named(a, "split", &l);
        if (v) {
            if (v->kind != V_STR || (strcmp(v->str, "train") && strcmp(v->str, "test"))) {
                diag_error(l, "split must be \"train\" or \"test\"");
                return error_value;
            }
            d->split = v->str;
        }
        if ((v = named(a, "dir", &l))) {
            if (v->kind != V_STR) { diag_error(l, "dir must be a string"); return error_value; }
            d->dir = v->str;
        }
        if (no_other_named(a, fn) < 0) return error_value;
        if (a->npos) { diag_error(a->pos_loc[0], "%s() takes only named arguments (split:, dir:)", fn); return error_value; }
        return (Value){ .kind = V_DATA, .data = d };
    }
    if (a->npos < 1 || a->pos[0].kind != V_DATA) {
        diag_error(a->loc, "%s() applies to a data set (e.g. `images | %s`), got %s", fn,
                   fn, a->npos ? fmt("a %s", kind_name(a->pos[0].kind)) : "nothing");
        return error_value;
    }
    d = xmalloc(sizeof *d);
    *d = *a->pos[0].data;
    if (def->op == SCALE) {
        double lo, hi;
        if (a->npos != 3) { diag_error(a->loc, "scale(lo, hi) takes 2 arguments, got %d", a->npos - 1); return error_value; }
        if (want_num(a->pos[1], a->pos_loc[1], "scale bound", &lo) < 0 ||
            want_num(a->pos[2], a->pos_loc[2], "scale bound", &hi) < 0) return error_value;
        d->scaled = 1; d->lo = (float)lo; d->hi = (float)hi;
    } else if (def->op == SHUFFLE) {
        if (a->npos != 1) { diag_error(a->pos_loc[1], "shuffle takes no arguments"); return error_value; }
        d->shuffle = 1;
    } else {
        int64_t n;
        if (a->npos != 2) { diag_error(a->loc, "batch(n) takes 1 argument, got %d", a->npos - 1); return error_value; }
        if (want_int(a->pos[1], a->pos_loc[1], "batch size", &n) < 0) return error_value;
        if (n < 1 || n > 1000000) { diag_error(a->pos_loc[1], "batch size must be positive"); return error_value; }
        d->batch = (int)n;
    }
    return (Value){ .kind = V_DATA, .data = d };
}


const BuiltinDef data_builtins[] = {
    { "fashion_mnist", data_call, SOURCE, -1 },
    { "mnist", data_call, SOURCE, -1 },
    { "scale", data_call, SCALE, -1 },
    { "shuffle", data_call, SHUFFLE, -1 },
    { "batch", data_call, BATCH, -1 },
    { NULL, NULL, 0, -1 },
};
