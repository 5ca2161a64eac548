/* model_builtins.c: built-ins that look into the model instance being evaluated.
 * weights("dense_1.W") is the tensor of a parameter already created in this instance, for
 * weight tying: a decoder layer using an encoder kernel transposed (seed model M03). */
#include <stdio.h>
#include <string.h>
#include "sema_internal.h"

static Value weights_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    if (a->npos != 1 || a->pos[0].kind != V_STR || a->nnamed) {
        diag_error(a->loc, "weights(\"layer.param\") takes the name of a parameter of this model, e.g. weights(\"dense_1.W\")");
        return error_value;
    }
    if (!c->pc || !c->g) { diag_error(a->loc, "weights() looks up a parameter of the model being built: use it inside a model"); return error_value; }
    const char *name = fmt("%s.%s", c->pc->owner, a->pos[0].str);
    int idx = params_find(&c->prog->params, name);
    if (idx < 0) {
        diag_error(a->pos_loc[0], "no parameter '%s' in this model (yet): a layer's parameters exist once it has been called", a->pos[0].str);
        return error_value;
    }
    Param *p = &c->prog->params.items[idx];
    for (int i = 0; i < c->g->n; i++)       /* one leaf per parameter per graph */
        if (c->g->nodes[i].op == IR_PARAM && c->g->nodes[i].slot == idx) return tensor_value(i);
    return located(c, ir_leaf(c->g, IR_PARAM, p->ndim, p->shape, idx), a->loc);
}

const BuiltinDef model_builtins[] = {
    { "weights", weights_call, 0, -1 },
    { NULL, NULL, 0, -1 },
};
