/* optim_builtins.c: optimiser declarations in train blocks, e.g.
 *     optimizer opt = adam(G, F, lr: 2e-4, beta1: 0.5)
 * with Keras's defaults, or PyTorch's where they differ when `torch: true` is given.
 * The update rules live in runtime/optim.c. */
#include <stdio.h>
#include <string.h>
#include "sema_internal.h"

typedef struct Defaults { float lr, eps, rho, weight_decay; } Defaults;

/* Keras 3 defaults, then PyTorch's */
static const Defaults keras_defaults[] = {
    [OPT_SGD] = { 0.01f, 0, 0, 0 },
    [OPT_RMSPROP] = { 1e-3f, 1e-7f, 0.9f, 0 },
    [OPT_ADAM] = { 1e-3f, 1e-7f, 0, 0 },
    [OPT_ADAMW] = { 1e-3f, 1e-7f, 0, 0.004f },
    [OPT_NADAM] = { 1e-3f, 1e-7f, 0, 0 },
};
static const Defaults torch_defaults[] = {
    [OPT_SGD] = { 0.01f, 0, 0, 0 },
    [OPT_RMSPROP] = { 1e-2f, 1e-8f, 0.99f, 0 },
    [OPT_ADAM] = { 1e-3f, 1e-8f, 0, 0 },
    [OPT_ADAMW] = { 1e-3f, 1e-8f, 0, 0.01f },
    [OPT_NADAM] = { 2e-3f, 1e-8f, 0, 0 },
};

static int number_arg(Args *a, const char *key, float *out) {
    Loc l;
    Value *v = named(a, key, &l);
    double x;
    if (!v) return 0;
    if (want_num(*v, l, key, &x) < 0) return -1;
    *out = (float)x;
    return 0;
}

static int flag_arg(Args *a, const char *key, int *out) {
    float x = (float)*out;
    if (number_arg(a, key, &x) < 0) return -1;
    *out = x != 0;
    return 0;
}

static Value optimizer_call(Ctx *c, Args *a, const BuiltinDef *def) {
    const char *fn = def->name;
    if (!c->train) { diag_error(a->loc, "optimizers are declared in train blocks"); return error_value; }
    if (c->train->nopt == 8) { diag_error(a->loc, "too many optimizers"); return error_value; }
    Optimizer *o = &c->train->opt[c->train->nopt];
    memset(o, 0, sizeof *o);
    o->kind = (OptKind)def->op;
    o->lr_node = -1;
    o->loc = a->loc;
    if (flag_arg(a, "torch", &o->torch) < 0) return error_value;
    const Defaults *d = o->torch ? &torch_defaults[o->kind] : &keras_defaults[o->kind];
    o->lr = d->lr; o->eps = d->eps; o->rho = d->rho; o->weight_decay = d->weight_decay;
    o->beta1 = 0.9f; o->beta2 = 0.999f;
    for (int i = 0; i < a->npos; i++) {
        if (a->pos[i].kind != V_INSTANCE) {
            diag_error(a->pos_loc[i], "%s() takes the model instances it trains, got a %s", fn, kind_name(a->pos[i].kind));
            return error_value;
        }
        if (o->nowners < 16) o->owners[o->nowners++] = a->pos[i].name;
    }
    if (!o->nowners) { diag_error(a->loc, "%s() needs at least one model instance to train", fn); return error_value; }
    Loc lr_loc;
    Value *lr = named(a, "lr", &lr_loc);
    if (lr && lr->kind == V_TENSOR) {          /* a schedule: a scalar function of epoch/step */
        IrNode *n = &c->g->nodes[lr->node];
        if (ir_numel(n) != 1) { diag_error(lr_loc, "lr must be a number or a scalar schedule, got shape %s", node_shape(c, lr->node)); return error_value; }
        o->lr_node = lr->node;
        o->lr = 0;
    } else if (lr) {
        double x;
        if (want_num(*lr, lr_loc, "lr", &x) < 0) return error_value;
        o->lr = (float)x;
    }
    if (number_arg(a, "eps", &o->eps) < 0) return error_value;
    switch (o->kind) {
    case OPT_SGD:
        if (number_arg(a, "momentum", &o->momentum) < 0 || flag_arg(a, "nesterov", &o->nesterov) < 0) return error_value;
        break;
    case OPT_RMSPROP:
        if (number_arg(a, "rho", &o->rho) < 0 || number_arg(a, "alpha", &o->rho) < 0 ||
            number_arg(a, "momentum", &o->momentum) < 0 || flag_arg(a, "centered", &o->centered) < 0) return error_value;
        break;
    case OPT_ADAM: case OPT_ADAMW: case OPT_NADAM:
        if (number_arg(a, "beta1", &o->beta1) < 0 || number_arg(a, "beta2", &o->beta2) < 0) return error_value;
        break;
    }
    if ((o->kind != OPT_ADAM || o->torch) && number_arg(a, "weight_decay", &o->weight_decay) < 0) return error_value;
    if (o->kind == OPT_ADAM && !o->torch && named(a, "weight_decay", NULL)) {
        diag_error(a->loc, "adam(): use adamw() for weight decay (or torch: true for PyTorch's coupled L2 decay)");
        return error_value;
    }
    if (no_other_named(a, fn) < 0) return error_value;
    if (o->lr < 0 || o->eps < 0 || o->momentum < 0 || o->beta1 < 0 || o->beta1 >= 1 || o->beta2 < 0 || o->beta2 >= 1) {
        diag_error(a->loc, "%s(): lr, eps and momentum must not be negative, and betas must lie in [0, 1)", fn);
        return error_value;
    }
    if (o->nesterov && o->momentum == 0) { diag_error(a->loc, "sgd(): nesterov needs a momentum"); return error_value; }
    return (Value){ .kind = V_OPT, .index = c->train->nopt++ };
}

/* clip_weights(D, -0.01, 0.01): after the block's update, every parameter of D is clipped to
 * [lo, hi] (WGAN's critic) */
static Value clip_call(Ctx *c, Args *a, const BuiltinDef *def) {
    (void)def;
    double lo, hi;
    if (!c->out || !c->train) { diag_error(a->loc, "clip_weights() is a hook: use it in a step or an every block"); return error_value; }
    if (a->npos != 3 || a->pos[0].kind != V_INSTANCE) {
        diag_error(a->loc, "clip_weights(instance, lo, hi) takes a model instance and two numbers");
        return error_value;
    }
    if (want_num(a->pos[1], a->pos_loc[1], "lo", &lo) < 0 || want_num(a->pos[2], a->pos_loc[2], "hi", &hi) < 0) return error_value;
    if (lo > hi) { diag_error(a->pos_loc[1], "clip_weights(): lo %g is above hi %g", lo, hi); return error_value; }
    if (c->out->nclips == 8) { diag_error(a->loc, "too many clip_weights() in one block"); return error_value; }
    c->out->clips[c->out->nclips].owner = a->pos[0].name;
    c->out->clips[c->out->nclips].lo = (float)lo;
    c->out->clips[c->out->nclips++].hi = (float)hi;
    return none;
}

const BuiltinDef optimizer_builtins[] = {
    { "clip_weights", clip_call, 0, -1 },
    { "sgd", optimizer_call, OPT_SGD, -1 },
    { "rmsprop", optimizer_call, OPT_RMSPROP, -1 },
    { "adam", optimizer_call, OPT_ADAM, -1 },
    { "adamw", optimizer_call, OPT_ADAMW, -1 },
    { "nadam", optimizer_call, OPT_NADAM, -1 },
    { NULL, NULL, 0, -1 },
};
