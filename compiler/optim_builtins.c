/* optim_builtins.c: optimiser declarations in train blocks: `optimizer opt = adam(G, lr: 2e-4)`.
 * The update rules themselves live in the runtime (runtime/train.c). */
#include <stdio.h>
#include <string.h>
#include "sema_internal.h"

static Value optimizer_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (!c->train) { diag_error(a->loc, "optimizers are declared in train blocks"); return error_value; }
    if (c->train->nopt == 8) { diag_error(a->loc, "too many optimizers"); return error_value; }
    Optimizer *o = &c->train->opt[c->train->nopt];
    memset(o, 0, sizeof *o);
    o->kind = "adam";
    o->lr = 1e-3f; o->beta1 = 0.9f; o->beta2 = 0.999f; o->eps = 1e-7f;   /* Keras defaults */
    o->loc = a->loc;
    for (int i = 0; i < a->npos; i++) {
        if (a->pos[i].kind != V_INSTANCE) {
            diag_error(a->pos_loc[i], "adam() takes the model instances it trains, got a %s", kind_name(a->pos[i].kind));
            return error_value;
        }
        if (o->nowners < 16) o->owners[o->nowners++] = a->pos[i].name;
    }
    if (!o->nowners) { diag_error(a->loc, "adam() needs at least one model instance to train"); return error_value; }
    static const char *keys[] = { "lr", "beta1", "beta2", "eps" };
    float *fields[] = { &o->lr, &o->beta1, &o->beta2, &o->eps };
    for (int k = 0; k < 4; k++) {
        Loc l;
        Value *v = named(a, keys[k], &l);
        double x;
        if (!v) continue;
        if (want_num(*v, l, keys[k], &x) < 0) return error_value;
        *fields[k] = (float)x;
    }
    if (no_other_named(a, "adam") < 0) return error_value;
    return (Value){ .kind = V_OPT, .index = c->train->nopt++ };
}


const BuiltinDef optimizer_builtins[] = {
    { "adam", optimizer_call, 0, -1 },
    { NULL, NULL, 0, -1 },
};
