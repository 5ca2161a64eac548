/* sema.c: semantic analysis. The program is evaluated symbolically: numbers and strings are
 * compile-time values, tensors are IR nodes, and calls of layers and models are inlined, so a
 * block (a training step, a validation, a sampling procedure) becomes one IR graph with static
 * shapes. Parameters are created at the first call of a layer inside a model instance and
 * named by instance and call order ("E.dense_1.W"), so every later call of the same instance
 * reuses them. Errors are reported with locations and evaluation continues where it can. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include <limits.h>
#include "rng.h"
#include "sema_internal.h"

/* ---------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------- */
/* arguments */

static Value eval(Ctx *c, Scope *s, Node *e);

static int eval_args(Ctx *c, Scope *s, Node *call, Args *a) {
    memset(a, 0, sizeof *a);
    a->loc = call->loc;
    for (int i = 0; i < call->list.n; i++) {
        Node *arg = call->list.items[i];
        if (arg->kind == N_NAMEDARG) {
            if (a->nnamed == 16) { diag_error(arg->loc, "too many arguments"); return -1; }
            a->names[a->nnamed] = arg->name;
            a->named_loc[a->nnamed] = arg->loc;
            a->named[a->nnamed++] = eval(c, s, arg->a);
        } else {
            if (a->npos == 16) { diag_error(arg->loc, "too many arguments"); return -1; }
            a->pos_loc[a->npos] = arg->loc;
            a->pos[a->npos++] = eval(c, s, arg);
        }
    }
    for (int i = 0; i < a->npos; i++) if (a->pos[i].kind == V_ERROR) return -1;
    for (int i = 0; i < a->nnamed; i++) if (a->named[i].kind == V_ERROR) return -1;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* tensors */

static Value num_binary(const char *op, double x, double y, int both_int, Loc loc) {
    double r;
    switch (op[0]) {
    case '+': r = x + y; break;
    case '-': r = x - y; break;
    case '*': if (op[1] == '*') { r = pow(x, y); both_int = both_int && y >= 0; } else r = x * y; break;
    case '/': r = x / y; both_int = 0; break;
    case '%':
        if (y == 0) { diag_error(loc, "modulo by zero"); return error_value; }
        r = fmod(x, y); break;
    case '<': r = op[1] == '=' ? x <= y : x < y; both_int = 1; break;
    case '>': r = op[1] == '=' ? x >= y : x > y; both_int = 1; break;
    case '=': r = x == y; both_int = 1; break;
    case '!': r = x != y; both_int = 1; break;
    case 'a': r = x != 0 && y != 0; both_int = 1; break;
    case 'o': r = x != 0 || y != 0; both_int = 1; break;
    default: diag_error(loc, "operator '%s' does not apply to numbers", op); return error_value;
    }
    return num_value(r, both_int);
}

static Value binop(Ctx *c, Scope *s, Node *e) {
    Value a = eval(c, s, e->a), b = eval(c, s, e->b);
    if (a.kind == V_ERROR || b.kind == V_ERROR) return error_value;
    const char *op = e->name;
    if (a.kind == V_NUM && b.kind == V_NUM) return num_binary(op, a.num, b.num, a.is_int && b.is_int, e->loc);
    if (a.kind == V_STR && b.kind == V_STR && op[0] == '+')
        return (Value){ .kind = V_STR, .str = fmt("%s%s", a.str, b.str) };
    if (a.kind == V_STR && b.kind == V_STR && (!strcmp(op, "==") || !strcmp(op, "!=")))
        return num_value((strcmp(a.str, b.str) == 0) == (op[0] == '='), 1);
    if ((a.kind != V_TENSOR && a.kind != V_NUM) || (b.kind != V_TENSOR && b.kind != V_NUM)) {
        diag_error(e->loc, "operator '%s' cannot combine a %s and a %s", op, kind_name(a.kind), kind_name(b.kind));
        return error_value;
    }
    if (need_graph(c, e->loc, fmt("operator '%s'", op)) < 0) return error_value;
    if (!strcmp(op, "@")) {
        int x = as_tensor(c, a, e->loc, "@"), y = as_tensor(c, b, e->loc, "@");
        if (x < 0 || y < 0) return error_value;
        int r = ir_matmul(c->g, x, y, 0, 0);
        if (r < 0) {
            IrNode *nx = &c->g->nodes[x], *ny = &c->g->nodes[y];
            int inner = nx->ndim >= 2 && ny->ndim >= 2 && nx->shape[nx->ndim - 1] != ny->shape[ny->ndim - 2];
            diag_error(e->loc, "matrix product: %s @ %s: %s", node_shape(c, x), node_shape(c, y),
                       inner ? "inner dimensions differ" : "the right operand must be a matrix, or have the left one's batch axes");
            return error_value;
        }
        return located(c, r, e->loc);
    }
    static const struct { const char *op; IrOp ir; } ops[] = {
        { "+", IR_ADD }, { "-", IR_SUB }, { "*", IR_MUL }, { "/", IR_DIV }, { "**", IR_POW },
        { "<", IR_LT }, { ">", IR_GT }, { "<=", IR_LE }, { ">=", IR_GE }, { "==", IR_EQ },
        { "!=", IR_NE }, { "and", IR_MUL },
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(op, ops[i].op)) return tensor_binary(c, ops[i].ir, a, b, e->loc, fmt("operator '%s'", op));
    diag_error(e->loc, "operator '%s' does not apply to tensors", op);
    return error_value;
}

/* ---------------------------------------------------------------------------------------- */
/* layers and models */

static Value exec_body(Ctx *c, Scope *s, NodeList *body, int *returned);

static const char *next_scope_name(ParamCtx *pc, const char *layer) {
    for (int i = 0; i < pc->ncounters; i++)
        if (pc->counters[i].name == layer) {
            int k = pc->counters[i].count++;
            return fmt("%s.%s_%d", pc->prefix, layer, k);
        }
    if (pc->ncounters < 64) pc->counters[pc->ncounters++] = (Counter){ layer, 1 };
    return fmt("%s.%s", pc->prefix, layer);
}

/* parameters whose names start with prefix + "." (a layer's, and its sub-layers') */
static int64_t params_under(Program *p, const char *prefix) {
    int64_t n = 0;
    size_t len = strlen(prefix);
    for (int i = 0; i < p->params.n; i++)
        if (!strncmp(p->params.items[i].name, prefix, len) && p->params.items[i].name[len] == '.')
            n += p->params.items[i].size;
    return n;
}

static Value call_layer(Ctx *c, Node *layer, Args *a, Loc loc) {
    if (c->depth > 64) { diag_error(loc, "calls nested too deeply (recursive layer '%s'?)", layer->name); return error_value; }
    Scope *s = scope_new((Scope *)c->prog->globals);
    NodeList *formals = &layer->list;
    if (a->npos > formals->n) {
        diag_error(a->pos_loc[formals->n], "layer '%s' takes %d argument%s, got %d", layer->name,
                   formals->n, formals->n == 1 ? "" : "s", a->npos);
        return error_value;
    }
    for (int i = 0; i < formals->n; i++) {
        Node *f = formals->items[i];
        Value *v = i < a->npos ? &a->pos[i] : named(a, f->name, NULL);
        if (v) { scope_set(s, f->name, *v); continue; }
        if (!f->a) {
            diag_error(loc, "layer '%s' needs argument '%s'", layer->name, f->name);
            return error_value;
        }
        Ctx dc = *c;
        dc.init_context = 1;     /* defaults such as `init = glorot_uniform` */
        Value d = eval(&dc, s, f->a);
        if (d.kind == V_ERROR) return error_value;
        scope_set(s, f->name, d);
    }
    if (no_other_named(a, layer->name) < 0) return error_value;

    ParamCtx pc = { 0 }, *saved = c->pc;
    if (c->pc) {
        pc.prefix = next_scope_name(c->pc, layer->name);
        pc.owner = c->pc->owner;
        c->pc = &pc;
    }
    int first_param = c->prog->params.n, at_model_level = c->rows && c->depth == c->model_depth;
    c->depth++;
    int returned = 0;
    Value r = exec_body(c, s, &layer->list2, &returned);
    c->depth--;
    c->pc = saved;
    if (r.kind != V_ERROR && !returned) { diag_error(layer->loc, "layer '%s' does not return a value", layer->name); r = error_value; }
    if (at_model_level && r.kind == V_TENSOR && c->nrows < 256) {
        SummaryRow *row = &c->rows[c->nrows++];
        IrNode *n = &c->g->nodes[r.node];
        row->name = pc.prefix ? pc.prefix : layer->name;
        row->ndim = n->ndim;
        memcpy(row->shape, n->shape, sizeof row->shape);
        (void)first_param;
    }
    return r;
}

static Value call_instance(Ctx *c, Value inst, Args *a, Loc loc) {
    Node *model = inst.decl;
    NodeList *inputs = &model->list;
    if (a->npos != inputs->n || a->nnamed) {
        diag_error(loc, "model %s takes %d input%s, got %d", model->name, inputs->n,
                   inputs->n == 1 ? "" : "s", a->npos + a->nnamed);
        return error_value;
    }
    if (need_graph(c, loc, fmt("calling %s", inst.name)) < 0) return error_value;
    Scope *s = scope_new((Scope *)c->prog->globals);
    int64_t batch = -1;
    for (int i = 0; i < inputs->n; i++) {
        Node *in = inputs->items[i];
        int x = as_tensor(c, a->pos[i], a->pos_loc[i], fmt("model %s", model->name));
        if (x < 0) return error_value;
        IrNode *n = &c->g->nodes[x];
        int64_t dims[IR_MAXDIM];
        int nd = in->list.n, ok = nd + 1 == n->ndim;
        for (int k = 0; k < nd && k < IR_MAXDIM - 1; k++) {
            Value d = eval(c, s, in->list.items[k]);
            if (want_int(d, in->list.items[k]->loc, "input dimension", &dims[k]) < 0) return error_value;
            if (ok && dims[k] != n->shape[k + 1]) ok = 0;
        }
        if (!ok || (batch >= 0 && n->shape[0] != batch)) {
            diag_error(a->pos_loc[i], "model %s expects %s of shape [batch%s%s, got %s", model->name,
                       in->name, nd ? ", " : "]", nd ? shape_str(nd, dims) + 1 : "", node_shape(c, x));
            return error_value;
        }
        batch = n->shape[0];
        scope_set(s, in->name, tensor_value(x));
    }
    ParamCtx pc = { .prefix = inst.name, .owner = inst.name }, *saved = c->pc;
    c->pc = &pc;
    int saved_model_depth = c->model_depth;
    c->model_depth = c->depth + 1;
    c->depth++;
    int returned = 0;
    Value r = exec_body(c, s, &model->list2, &returned);
    c->depth--;
    c->pc = saved;
    c->model_depth = saved_model_depth;
    if (r.kind != V_ERROR && !returned) { diag_error(model->loc, "model %s does not return a value", model->name); return error_value; }
    return r;
}

static Value eval_call(Ctx *c, Scope *s, Node *e) {
    Value f = eval(c, s, e->a);
    if (f.kind == V_ERROR) return error_value;
    Args a;
    if (eval_args(c, s, e, &a) < 0) return error_value;
    switch (f.kind) {
    case V_BUILTIN: return builtin_call(c, f.builtin, &a);
    case V_LAYER: return call_layer(c, f.decl, &a, e->loc);
    case V_INSTANCE: return call_instance(c, f, &a, e->loc);
    case V_MODEL:
        if (!c->train || c->g) {
            diag_error(e->loc, "model %s is instantiated in a train block, as `name = %s()`", f.decl->name, f.decl->name);
            return error_value;
        }
        if (a.npos || a.nnamed) { diag_error(e->loc, "%s() takes no arguments when instantiated", f.decl->name); return error_value; }
        return (Value){ .kind = V_INSTANCE, .decl = f.decl };
    case V_INIT:
        if (c->init_context) return f;
        /* fallthrough */
    default:
        diag_error(e->loc, "a %s cannot be called", kind_name(f.kind));
        return error_value;
    }
}

/* `epoch` and `step` in a train block: scalar inputs the runtime fills before each run, so
 * loss weights and learning rates can follow schedules */
static Value counter_input(Ctx *c, Node *e) {
    if (!c->g || !c->out) {
        diag_error(e->loc, "'%s' changes during training: use it in a step, or in an optimizer's lr", e->name);
        return error_value;
    }
    int marker = !strcmp(e->name, "epoch") ? STREAM_EPOCH : STREAM_STEP;
    BlockGraph *out = c->out;
    for (int i = 0; i < out->ninputs; i++)
        if (out->input_stream[i] == marker)
            for (int k = 0; k < c->g->n; k++)
                if (c->g->nodes[k].op == IR_INPUT && c->g->nodes[k].slot == i) return tensor_value(k);
    if (out->ninputs == 8) { diag_error(e->loc, "too many inputs in one block"); return error_value; }
    out->input_stream[out->ninputs] = marker;
    return located(c, ir_leaf(c->g, IR_INPUT, 0, NULL, out->ninputs++), e->loc);
}

static Value eval(Ctx *c, Scope *s, Node *e) {
    switch (e->kind) {
    case N_NUM: return num_value(e->num, e->is_int);
    case N_STR: return (Value){ .kind = V_STR, .str = e->name };
    case N_NAME: {
        Value *v = scope_get(s, e->name);
        if (!v && c->train && (!strcmp(e->name, "epoch") || !strcmp(e->name, "step")))
            return counter_input(c, e);
        /* `training`: 1 while building a training step, 0 in validation, hooks and sampling,
         * so dropout, noise and normalisation specialise at compile time */
        if (!v && !strcmp(e->name, "training")) return num_value(c->training, 1);
        if (!v) { diag_error(e->loc, "unknown name '%s'", e->name); return error_value; }
        if (v->kind == V_NONE) { diag_error(e->loc, "'%s' has no value here (a conditional param that is off?)", e->name); return error_value; }
        if (v->kind == V_STREAM) {
            if (!c->g || !c->out) { diag_error(e->loc, "data stream '%s' can only be used inside a step or validate block", e->name); return error_value; }
            BlockGraph *out = c->out;
            int part = v->n;
            for (int i = 0; i < out->ninputs; i++)
                if (out->input_stream[i] == v->index && out->input_part[i] == part)
                    for (int k = 0; k < c->g->n; k++)
                        if (c->g->nodes[k].op == IR_INPUT && c->g->nodes[k].slot == i) return tensor_value(k);
            if (out->ninputs == 8) { diag_error(e->loc, "too many data streams in one block"); return error_value; }
            DataSpec *d = &c->train->stream[v->index].spec;
            int64_t shape[IR_MAXDIM];
            int nd = part ? d->ndim2 : d->ndim;
            shape[0] = c->batch > 0 ? c->batch : d->batch;
            memcpy(shape + 1, part ? d->shape2 : d->shape, nd * sizeof *shape);
            out->input_stream[out->ninputs] = v->index;
            out->input_part[out->ninputs] = part;
            int id = ir_leaf(c->g, IR_INPUT, nd + 1, shape, out->ninputs++);
            return located(c, id, e->loc);
        }
        return *v;
    }
    case N_BINOP: return binop(c, s, e);
    case N_UNOP: {
        Value a = eval(c, s, e->a);
        if (a.kind == V_ERROR) return a;
        if (!strcmp(e->name, "not")) {
            if (a.kind == V_NUM) return num_value(a.num == 0, 1);
            diag_error(e->loc, "'not' applies to numbers");
            return error_value;
        }
        if (a.kind == V_NUM) return num_value(-a.num, a.is_int);
        int x = as_tensor(c, a, e->loc, "unary '-'");
        return x < 0 ? error_value : located(c, ir_unary(c->g, IR_NEG, x), e->loc);
    }
    case N_CALL: return eval_call(c, s, e);
    case N_COND: {
        Value cond = eval(c, s, e->c);
        if (cond.kind == V_ERROR) return cond;
        if (cond.kind != V_NUM) { diag_error(e->c->loc, "a condition must be a number known at compile time, got a %s", kind_name(cond.kind)); return error_value; }
        return eval(c, s, cond.num != 0 ? e->a : e->b);
    }
    case N_TUPLE: {
        Value t = { .kind = V_TUPLE, .n = e->list.n };
        t.items = xmalloc(e->list.n * sizeof *t.items);
        for (int i = 0; i < e->list.n; i++) {
            t.items[i] = eval(c, s, e->list.items[i]);
            if (t.items[i].kind == V_ERROR) return error_value;
        }
        return t;
    }
    case N_ATTR:
        diag_error(e->loc, "'.%s': attributes are not supported yet", e->name);
        return error_value;
    case N_INDEX:
        diag_error(e->loc, "indexing is not supported yet");
        return error_value;
    case N_NAMEDARG:
        diag_error(e->loc, "a named argument '%s:' is only valid in a call", e->name);
        return error_value;
    default:
        diag_error(e->loc, "expected an expression");
        return error_value;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* statements */

static int param_stmt(Ctx *c, Scope *s, Node *st) {
    if (st->b) {
        Value cond = eval(c, s, st->b);
        if (cond.kind == V_ERROR) return -1;
        if (cond.kind != V_NUM) { diag_error(st->b->loc, "a param condition must be a number known at compile time"); return -1; }
        if (cond.num == 0) { scope_set(s, st->name, none); return 0; }
    }
    if (!c->pc) {
        diag_error(st->loc, "param '%s' is created outside a model: call this layer from a model body", st->name);
        return -1;
    }
    int64_t shape[IR_MAXDIM];
    if (st->list.n > IR_MAXDIM) { diag_error(st->loc, "param '%s' has too many dimensions", st->name); return -1; }
    for (int i = 0; i < st->list.n; i++) {
        Value d = eval(c, s, st->list.items[i]);
        if (want_int(d, st->list.items[i]->loc, "param dimension", &shape[i]) < 0) return -1;
        if (shape[i] < 1) { diag_error(st->list.items[i]->loc, "param dimension must be positive, got %lld", (long long)shape[i]); return -1; }
    }
    Ctx ic = *c;
    ic.init_context = 1;
    Value init = eval(&ic, s, st->a);
    if (init.kind == V_ERROR) return -1;
    if (init.kind == V_NUM) init = (Value){ .kind = V_INIT, .init = INIT_CONSTANT, .ia = (float)init.num };
    if (init.kind == V_BUILTIN && init.builtin->init >= 0) {      /* a bare name: glorot_uniform */
        Args no_args = { .loc = st->a->loc };
        init = init_value(init.builtin, &no_args);
    }
    if (init.kind != V_INIT) { diag_error(st->a->loc, "param '%s' needs an initializer (glorot_uniform, zeros, ...), got a %s", st->name, kind_name(init.kind)); return -1; }
    const char *name = fmt("%s.%s", c->pc->prefix, st->name);
    int idx = params_find(&c->prog->params, name);
    if (idx < 0)
        idx = params_add(&c->prog->params, name, c->pc->owner, st->list.n, shape, init.init, init.ia, init.ib,
                         st->kind == N_PARAM, st->loc);
    Param *p = &c->prog->params.items[idx];
    if (p->ndim != st->list.n || memcmp(p->shape, shape, p->ndim * sizeof *shape)) {
        diag_error(st->loc, "param '%s' was created with shape %s and is now asked for with shape %s (an instance called on inputs of another size?)",
                   name, shape_str(p->ndim, p->shape), shape_str(st->list.n, shape));
        return -1;
    }
    /* one leaf per parameter per graph, so a shared instance's gradients meet in one adjoint */
    int leaf = -1;
    for (int i = 0; i < c->g->n && leaf < 0; i++)
        if (c->g->nodes[i].op == IR_PARAM && c->g->nodes[i].slot == idx) leaf = i;
    if (leaf < 0) leaf = ir_leaf(c->g, IR_PARAM, p->ndim, p->shape, idx);
    Value v = located(c, leaf, st->loc);
    if (st->kind == N_STATE) v.state = idx + 1;
    scope_set(s, st->name, v);
    return 0;
}

/* `name = value` where name is a `state` of this layer: the buffer takes the value after the
 * block runs (in training; evaluation reads the buffer and never writes it) */
static int state_update(Ctx *c, Scope *s, Node *st, Value v) {
    Value *old = NULL;
    for (int i = 0; i < s->n; i++) if (s->b[i].name == st->list.items[0]->name) old = &s->b[i].v;
    if (!old || !old->state) return 0;
    Param *p = &c->prog->params.items[old->state - 1];
    int x = as_tensor(c, v, st->a->loc, "a state update");
    if (x < 0) return -1;
    IrNode *n = &c->g->nodes[x];
    if (ir_numel(n) != p->size) {
        diag_error(st->a->loc, "state '%s' has shape %s, the new value has shape %s", st->list.items[0]->name,
                   shape_str(p->ndim, p->shape), node_shape(c, x));
        return -1;
    }
    if (c->out && c->training) {
        BlockGraph *out = c->out;
        int k = 0;
        while (k < out->nstate && out->state_param[k] != old->state - 1) k++;
        if (k == 64) { diag_error(st->loc, "too many state updates in one block"); return -1; }
        out->state_param[k] = old->state - 1;
        out->state_node[k] = ir_reshape(c->g, x, p->ndim, p->shape);
        if (k == out->nstate) out->nstate++;
    }
    Value nv = tensor_value(x);
    nv.state = old->state;
    *old = nv;
    return 1;
}

/* `x = pipeline | batch(n)` in a train, validate or hook block, or `x, y = ...` for a data set
 * of pairs (labels, text targets, the B side of unpaired domains): each name becomes one
 * tensor of the stream. Rebuilding a block for another batch size finds the same stream. */
static int bind_stream(Ctx *c, Scope *s, Node *st, Value v) {
    Train *t = c->train;
    DataSpec *d = v.data;
    int parts = d->nparts > 1 ? d->nparts : 1;
    if (st->list.n != parts) {
        if (parts == 2) diag_error(st->loc, "this data set yields two tensors (x and its labels, targets or second domain): write `x, y = ...`");
        else diag_error(st->loc, "cannot unpack a data set of one tensor into %d names", st->list.n);
        return -1;
    }
    if (!d->batch) { diag_error(st->a->loc, "a %s stream must be batched: add `| batch(n)`", c->out ? "validation" : "training"); return -1; }
    const char *name = st->list.items[0]->name;
    int idx = -1;
    for (int i = 0; i < t->nstream; i++)
        if (t->stream[i].name == name && !memcmp(&t->stream[i].spec, d, sizeof *d)) idx = i;
    if (idx < 0) {
        if (t->nstream == 8) { diag_error(st->loc, "too many data streams"); return -1; }
        t->stream[t->nstream] = (Stream){ name, *d };
        idx = t->nstream++;
    }
    for (int i = 0; i < parts; i++) scope_set(s, st->list.items[i]->name, (Value){ .kind = V_STREAM, .index = idx, .n = i });
    return 0;
}

static int assign_stmt(Ctx *c, Scope *s, Node *st) {
    Value v = eval(c, s, st->a);
    if (v.kind == V_ERROR) return -1;
    if (v.kind == V_DATA && c->train && (!c->g || c->out)) return bind_stream(c, s, st, v);
    if (st->list.n == 1 && c->g) {
        int r = state_update(c, s, st, v);
        if (r) return r < 0 ? -1 : 0;
    }
    if (st->list.n == 1) {
        if (v.kind == V_INSTANCE) {
            v.name = st->list.items[0]->name;
            if (c->train && c->train->ninst < 32)
                c->train->inst[c->train->ninst++] = (Instance){ v.name, v.decl, st->loc };
        }
        scope_set(s, st->list.items[0]->name, v);
        return 0;
    }
    if (v.kind != V_TUPLE || v.n != st->list.n) {
        diag_error(st->loc, "cannot unpack %s into %d names", v.kind == V_TUPLE ? fmt("%d values", v.n) : fmt("a %s", kind_name(v.kind)), st->list.n);
        return -1;
    }
    for (int i = 0; i < v.n; i++) scope_set(s, st->list.items[i]->name, v.items[i]);
    return 0;
}

static int scalar_tensor(Ctx *c, Value v, Loc loc, const char *what) {
    int x = as_tensor(c, v, loc, what);
    if (x < 0) return -1;
    if (ir_numel(&c->g->nodes[x]) != 1) {
        diag_error(loc, "%s must be a scalar, got a tensor of shape %s (reduce it with mean() or sum())", what, node_shape(c, x));
        return -1;
    }
    return ir_reshape(c->g, x, 0, NULL);
}

static int save_stmt(Ctx *c, Scope *s, Node *st) {
    BlockGraph *out = c->out;
    SaveAction sa = { .kind = SAVE_GRID_PNG, .rows = 0, .loc = st->loc };
    Node *e = st->a;
    Value path = eval(c, s, st->b);
    if (path.kind == V_ERROR) return -1;
    if (path.kind != V_STR) { diag_error(st->b->loc, "save ... to needs a file name string"); return -1; }
    sa.path = path.str;
    size_t len = strlen(path.str);
    int png = len > 4 && !strcmp(path.str + len - 4, ".png");
    int npy = len > 4 && !strcmp(path.str + len - 4, ".npy");
    int model = len > 12 && !strcmp(path.str + len - 12, ".safetensors");
    if (!png && !npy && !model) {
        diag_error(st->b->loc, "save: the file name must end in .png (an image grid), .npy (an array) or .safetensors (a model's weights)");
        return -1;
    }
    Value v;
    if (model) {       /* `save G to "generator.safetensors"`: one instance's weights alone */
        v = eval(c, s, e);
        if (v.kind == V_ERROR) return -1;
        if (v.kind != V_INSTANCE) { diag_error(e->loc, "a .safetensors file holds a model instance's weights, got a %s", kind_name(v.kind)); return -1; }
        if (out->nsaves == 16) { diag_error(st->loc, "too many saves in one block"); return -1; }
        sa.kind = SAVE_MODEL;
        sa.node = -1;
        sa.owner = v.name;
        out->saves[out->nsaves++] = sa;
        return 0;
    }
    if (e->kind == N_CALL && e->a->kind == N_NAME && !strcmp(e->a->name, "grid")) {
        Args a;
        if (eval_args(c, s, e, &a) < 0) return -1;
        Loc l;
        Value *rows = named(&a, "rows", &l);
        int64_t r = 0;
        if (rows && want_int(*rows, l, "rows", &r) < 0) return -1;
        if (no_other_named(&a, "grid") < 0) return -1;
        if (a.npos != 1) { diag_error(e->loc, "grid(images, rows: n) takes one tensor"); return -1; }
        if (!png) { diag_error(st->b->loc, "grid() images are saved to a .png file"); return -1; }
        v = a.pos[0];
        sa.rows = (int)r;
    } else {
        v = eval(c, s, e);
    }
    if (v.kind == V_ERROR) return -1;
    int x = as_tensor(c, v, e->loc, "save");
    if (x < 0) return -1;
    IrNode *n = &c->g->nodes[x];
    if (png && !(n->ndim == 3 || (n->ndim == 4 && (n->shape[3] == 1 || n->shape[3] == 3)))) {
        diag_error(e->loc, "an image grid needs images of shape [n, h, w] or [n, h, w, 1 or 3], got %s", node_shape(c, x));
        return -1;
    }
    sa.node = x;
    sa.kind = npy ? SAVE_NPY : SAVE_GRID_PNG;
    if (out->nsaves == 16) { diag_error(st->loc, "too many saves in one block"); return -1; }
    out->saves[out->nsaves++] = sa;
    return 0;
}

static int stmt(Ctx *c, Scope *s, Node *st, Value *ret, int *returned) {
    switch (st->kind) {
    case N_ASSIGN: return assign_stmt(c, s, st);
    case N_PARAM: case N_STATE: return param_stmt(c, s, st);
    case N_RETURN: {
        Value r;
        if (st->list.n == 1) r = eval(c, s, st->list.items[0]->kind == N_NAMEDARG ? st->list.items[0]->a : st->list.items[0]);
        else {
            r = (Value){ .kind = V_TUPLE, .n = st->list.n, .items = xmalloc(st->list.n * sizeof(Value)) };
            for (int i = 0; i < st->list.n; i++) {
                Node *x = st->list.items[i];
                r.items[i] = eval(c, s, x->kind == N_NAMEDARG ? x->a : x);
                if (r.items[i].kind == V_ERROR) { r = error_value; break; }
            }
        }
        *ret = r;
        *returned = 1;
        return r.kind == V_ERROR ? -1 : 0;
    }
    case N_EXPR: {
        Value v = eval(c, s, st->a);
        return v.kind == V_ERROR ? -1 : 0;
    }
    case N_MINIMIZE: {
        if (!c->out || !c->train) { diag_error(st->loc, "minimize is only valid in a step of a train block"); return -1; }
        if (c->out->loss >= 0) { diag_error(st->loc, "a step minimizes one loss; add the terms, or use another step"); return -1; }
        Value v = eval(c, s, st->a);
        if (v.kind == V_ERROR) return -1;
        int x = scalar_tensor(c, v, st->a->loc, "the loss");
        if (x < 0) return -1;
        Value *o = scope_get(s, st->name);
        if (!o || o->kind != V_OPT) {
            diag_error(st->loc, o ? "'%s' is not an optimizer" : "unknown optimizer '%s'", st->name);
            return -1;
        }
        c->out->loss = x;
        c->out->optimizer = o->index;
        return 0;
    }
    case N_REPORT: {
        if (!c->out) { diag_error(st->loc, "report is only valid in train blocks"); return -1; }
        Value v = eval(c, s, st->a);
        if (v.kind == V_ERROR) return -1;
        int x = scalar_tensor(c, v, st->a->loc, "a reported value");
        if (x < 0) return -1;
        if (c->out->nreports == 16) { diag_error(st->loc, "too many reports in one block"); return -1; }
        c->out->report_name[c->out->nreports] = st->name ? st->name : "value";
        c->out->report_node[c->out->nreports++] = x;
        return 0;
    }
    case N_SAVE:
        if (!c->out) { diag_error(st->loc, "save is only valid in train and sample blocks"); return -1; }
        return save_stmt(c, s, st);
    case N_CHECKPOINT:
        if (!c->out) { diag_error(st->loc, "checkpoint is only valid in train blocks"); return -1; }
        c->out->checkpoint = 1;
        return 0;
    case N_IF: {
        Value cond = eval(c, s, st->a);
        if (cond.kind == V_ERROR) return -1;
        if (cond.kind != V_NUM) { diag_error(st->a->loc, "an if condition must be a number known at compile time"); return -1; }
        NodeList *body = cond.num != 0 ? &st->list : &st->list2;
        for (int i = 0; i < body->n && !*returned; i++)
            if (stmt(c, s, body->items[i], ret, returned) < 0) return -1;
        return 0;
    }
    case N_FOR: {
        Value r = eval(c, s, st->a);
        if (r.kind == V_ERROR) return -1;
        int64_t n;
        if (want_int(r, st->a->loc, "a for loop bound (for i in N)", &n) < 0) return -1;
        for (int64_t i = 0; i < n && !*returned; i++) {
            scope_set(s, st->name, num_value((double)i, 1));
            for (int k = 0; k < st->list.n && !*returned; k++)
                if (stmt(c, s, st->list.items[k], ret, returned) < 0) return -1;
        }
        return 0;
    }
    default:
        diag_error(st->loc, "this statement is not valid here");
        return -1;
    }
}

static Value exec_body(Ctx *c, Scope *s, NodeList *body, int *returned) {
    Value ret = none;
    int failed = 0;
    for (int i = 0; i < body->n && !*returned; i++)
        if (stmt(c, s, body->items[i], &ret, returned) < 0) failed = 1;
    return failed ? error_value : ret;
}

/* ---------------------------------------------------------------------------------------- */
/* loading: files, imports, declarations, train blocks */

static const char *stdlib_dir(void) {
    static char dir[PATH_MAX];
    const char *env = getenv("GMC_STDLIB");
    if (env) return env;
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(dir, sizeof dir, "%s/stdlib", exe);
        if (access(dir, R_OK) == 0) return dir;
        snprintf(dir, sizeof dir, "%s/../share/gmc/stdlib", exe);
        if (access(dir, R_OK) == 0) return dir;
    }
    return "/usr/local/share/gmc/stdlib";
}

static int declare(Program *p, Scope *g, Node *prog, int is_stdlib);

static int import_module(Program *p, Scope *g, Node *imp) {
    if (strncmp(imp->name, "std.", 4) != 0) {
        diag_error(imp->loc, "unknown module '%s' (the standard modules are std.nn and std.losses)", imp->name);
        return -1;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%.3000s/%.200s.gm", stdlib_dir(), imp->name + 4);
    if (access(path, R_OK) != 0) {
        diag_error(imp->loc, "unknown module '%s' (no file %s)", imp->name, path);
        return -1;
    }
    Node *ast = parse_file(ast_intern(path));
    if (!ast) return -1;
    return declare(p, g, ast, 1);
}

static const Override *find_override(Program *p, const char *name) {
    for (int i = 0; i < p->noverrides; i++)
        if (!strcmp(p->overrides[i].name, name)) return &p->overrides[i];
    return NULL;
}

static Value override_value(const char *text) {
    char *end;
    double x = strtod(text, &end);
    if (*text && !*end) return num_value(x, !strpbrk(text, ".eE"));
    return (Value){ .kind = V_STR, .str = ast_intern(text) };
}

static int declare(Program *p, Scope *g, Node *prog, int is_stdlib) {
    int errors = 0;
    Ctx c = { .prog = p };
    for (int i = 0; i < prog->list2.n; i++) {
        Node *d = prog->list2.items[i];
        if (d->kind != N_IMPORT && d->kind != N_TRAIN && d->kind != N_SAMPLE &&
            scope_get(g, d->name) && scope_get(g, d->name)->kind != V_BUILTIN && !is_stdlib) {
            Value *old = scope_get(g, d->name);
            if (old->kind == V_LAYER || old->kind == V_MODEL) {
                diag_error(d->loc, "'%s' is already defined", d->name);
                errors++;
                continue;
            }
        }
        switch (d->kind) {
        case N_IMPORT: if (import_module(p, g, d) < 0) errors++; break;
        case N_CONST: case N_DATA: {
            const Override *ov = d->kind == N_CONST ? find_override(p, d->name) : NULL;
            Value v = ov ? override_value(ov->value) : eval(&c, g, d->a);
            if (v.kind == V_ERROR) { errors++; v = error_value; }
            if (d->kind == N_DATA && v.kind != V_DATA && v.kind != V_ERROR) {
                diag_error(d->a->loc, "data '%s' must be a data set such as fashion_mnist(split: \"train\"), got a %s", d->name, kind_name(v.kind));
                errors++;
            }
            scope_set(g, d->name, v);
            break;
        }
        case N_LAYER: scope_set(g, d->name, (Value){ .kind = V_LAYER, .decl = d }); break;
        case N_MODEL: scope_set(g, d->name, (Value){ .kind = V_MODEL, .decl = d }); break;
        case N_TRAIN:
            if (p->ntrains == 8) { diag_error(d->loc, "too many train blocks"); errors++; break; }
            p->trains[p->ntrains++] = (Train){ .name = d->name, .node = d };
            break;
        case N_SAMPLE:
            if (p->nsamples == 16) { diag_error(d->loc, "too many sample procedures"); errors++; break; }
            p->samples[p->nsamples++] = d;
            break;
        default:
            diag_error(d->loc, "expected a declaration (import, const, data, layer, model, train, sample)");
            errors++;
        }
    }
    return errors ? -1 : 0;
}

/* The train block's own statements: instances, optimizers, streams, settings, and the
 * blocks it runs. Returns the scope in which its blocks are evaluated. */
static Scope *train_scope(Program *p, Train *t) {
    Scope *s = scope_new((Scope *)p->globals);
    Ctx c = { .prog = p, .train = t };
    t->epochs = 1;
    for (int i = 0; i < t->node->list2.n; i++) {
        Node *st = t->node->list2.items[i];
        switch (st->kind) {
        case N_ASSIGN: assign_stmt(&c, s, st); break;
        case N_OPTIMIZER: {
            /* evaluated against the schedule graph, so that lr may depend on epoch and step */
            if (!t->schedule.g.nodes) { ir_init(&t->schedule.g); t->schedule.loss = -1; }
            c.g = &t->schedule.g;
            c.out = &t->schedule;
            Value v = eval(&c, s, st->a);
            c.g = NULL;
            c.out = NULL;
            if (v.kind == V_OPT) {
                t->opt[v.index].name = st->name;
                scope_set(s, st->name, v);
            } else if (v.kind != V_ERROR) diag_error(st->a->loc, "optimizer '%s' must be an optimizer such as adam(...), got a %s", st->name, kind_name(v.kind));
            break;
        }
        case N_SETTING: {
            const Override *ov = find_override(p, st->name);
            Value v = ov ? override_value(ov->value) : eval(&c, s, st->a);
            int64_t n;
            if (v.kind == V_ERROR || want_int(v, st->a->loc, st->name, &n) < 0) break;
            if (n < 0) { diag_error(st->a->loc, "%s must not be negative", st->name); break; }
            if (!strcmp(st->name, "epochs")) t->epochs = (int)n;
            else if (!strcmp(st->name, "steps")) t->max_steps = n;
            else diag_error(st->loc, "unknown setting '%s' (epochs or steps)", st->name);
            break;
        }
        case N_STEP:
            if (t->nsteps == 16) { diag_error(st->loc, "too many steps"); break; }
            t->repeat[t->nsteps] = 1;
            t->steps[t->nsteps++] = st;
            break;
        case N_REPEAT: {
            /* `repeat N { step ... }`: each step inside runs N times per iteration, each time
             * on a fresh batch (WGAN's n_critic) */
            Value v = eval(&c, s, st->a);
            int64_t n;
            if (v.kind == V_ERROR || want_int(v, st->a->loc, "a repeat count", &n) < 0) break;
            if (n < 1 || n > 1000) { diag_error(st->a->loc, "a repeat count must be in 1..1000, got %lld", (long long)n); break; }
            for (int k = 0; k < st->list.n; k++) {
                Node *inner = st->list.items[k];
                if (inner->kind != N_STEP) { diag_error(inner->loc, "a repeat block holds steps only"); continue; }
                if (t->nsteps == 16) { diag_error(inner->loc, "too many steps"); break; }
                t->repeat[t->nsteps] = (int)n;
                t->steps[t->nsteps++] = inner;
            }
            break;
        }
        case N_VALIDATE: if (t->nvalidates < 8) t->validates[t->nvalidates++] = st; break;
        case N_EVERY: if (t->neverys < 16) t->everys[t->neverys++] = st; break;
        default: diag_error(st->loc, "this statement is not valid at the top of a train block"); break;
        }
    }
    /* --set epochs=N / steps=N apply whether or not the block states them */
    const Override *ov = find_override(p, "epochs");
    if (ov) t->epochs = atoi(ov->value);
    if ((ov = find_override(p, "steps"))) t->max_steps = atoll(ov->value);
    return s;
}

static Scope *train_scopes[8];

static Scope *scope_for(Program *p, Train **t) {
    if (!*t) {
        if (!p->ntrains) return (Scope *)p->globals;
        *t = &p->trains[0];
    }
    return train_scopes[*t - p->trains];
}

int sema_build_block(Program *p, Train *t, Node *block, int batch, int training, BlockGraph *out) {
    memset(out, 0, sizeof *out);
    ir_init(&out->g);
    out->loss = -1;
    out->batch = batch;
    Scope *ts = scope_for(p, &t);
    Ctx c = { .prog = p, .train = t, .g = &out->g, .out = out, .batch = batch, .training = training };
    Scope *s = scope_new(ts);
    int errors0 = diag_errors();
    if (block->kind == N_SAMPLE) {
        for (int i = 0; i < block->list.n; i++) {
            Node *f = block->list.items[i];
            const Override *ov = find_override(p, f->name);
            Value v = ov ? override_value(ov->value) : f->a ? eval(&c, s, f->a) : error_value;
            if (!ov && !f->a) diag_error(f->loc, "sample argument '%s' needs a default value", f->name);
            scope_set(s, f->name, v);
        }
    }
    NodeList *body = block->kind == N_SAMPLE ? &block->list2 : &block->list;
    int returned = 0;
    exec_body(&c, s, body, &returned);
    if (returned) diag_error(block->loc, "return is not valid in this block");
    if (block->kind == N_STEP && out->loss < 0 && diag_errors() == errors0)
        diag_error(block->loc, "this step minimizes nothing: add `minimize LOSS with OPTIMIZER`");
    if (diag_errors() != errors0) return -1;
    /* gradients of the loss with respect to the optimiser's trainable parameters */
    if (out->loss >= 0) {
        Optimizer *o = &t->opt[out->optimizer];
        int wrt[512], n = 0;
        for (int i = 0; i < out->g.n; i++) {
            IrNode *nd = &out->g.nodes[i];
            if (nd->op != IR_PARAM || !p->params.items[nd->slot].trainable) continue;
            const char *owner = p->params.items[nd->slot].owner;
            int owned = 0;
            for (int k = 0; k < o->nowners; k++) if (!strcmp(o->owners[k], owner)) owned = 1;
            int dup = 0;
            for (int k = 0; k < n; k++) if (out->grad_param[k] == nd->slot) dup = 1;
            if (owned && !dup && n < 512) { out->grad_param[n] = nd->slot; wrt[n++] = i; }
        }
        int grads[512];
        ir_grad(&out->g, out->loss, wrt, n, grads);
        memcpy(out->grad_node, grads, n * sizeof *grads);
        out->ngrads = n;
        if (n == 0) {
            diag_error(block->loc, "the loss does not depend on any parameter that optimizer '%s' trains", o->name);
            return -1;
        }
    }
    return 0;
}

Node *sema_find_sample(Program *p, const char *name) {
    for (int i = 0; i < p->nsamples; i++)
        if (!strcmp(p->samples[i]->name, name)) return p->samples[i];
    return NULL;
}

/* Every model body is evaluated once on a batch of one, even if no block calls it, so its
 * errors are reported; the parameters it creates are dropped again. */
static void check_models(Program *p) {
    for (int i = 0; i < p->ast->list2.n; i++) {
        Node *m = p->ast->list2.items[i];
        if (m->kind != N_MODEL) continue;
        IrGraph g;
        ir_init(&g);
        Ctx c = { .prog = p, .g = &g };
        Args a = { .loc = m->loc };
        int ok = 1;
        for (int k = 0; k < m->list.n && k < 16; k++) {
            Node *in = m->list.items[k];
            int64_t shape[IR_MAXDIM] = { 1 };
            for (int d = 0; d < in->list.n && d < IR_MAXDIM - 1; d++) {
                Value v = eval(&c, (Scope *)p->globals, in->list.items[d]);
                if (v.kind == V_ERROR || want_int(v, in->list.items[d]->loc, "input dimension", &shape[d + 1]) < 0) ok = 0;
                else if (shape[d + 1] < 1) { diag_error(in->list.items[d]->loc, "input dimension must be positive"); ok = 0; }
            }
            a.pos_loc[a.npos] = in->loc;
            a.pos[a.npos++] = tensor_value(ir_leaf(&g, IR_INPUT, in->list.n + 1, shape, k));
        }
        int nparams = p->params.n;
        if (ok) call_instance(&c, (Value){ .kind = V_INSTANCE, .decl = m, .name = ast_intern(fmt("__check_%s", m->name)) }, &a, m->loc);
        for (int k = nparams; k < p->params.n; k++) free(p->params.items[k].data);
        p->params.n = nparams;
        ir_free(&g);
    }
}

/* every block is built once with the streams' batch sizes, which checks every shape */
static void check_blocks(Program *p) {
    check_models(p);
    if (diag_errors()) return;
    for (int ti = 0; ti < p->ntrains; ti++) {
        Train *t = &p->trains[ti];
        Node **lists[3] = { t->steps, t->validates, t->everys };
        int counts[3] = { t->nsteps, t->nvalidates, t->neverys };
        for (int l = 0; l < 3; l++)
            for (int i = 0; i < counts[l]; i++) {
                BlockGraph bg;
                Node *blk = lists[l][i];
                if (blk->kind == N_EVERY) {
                    Value cnt = eval(&(Ctx){ .prog = p }, train_scopes[ti], blk->a);
                    int64_t n;
                    if (cnt.kind != V_ERROR) want_int(cnt, blk->a->loc, "every", &n);
                }
                sema_build_block(p, t, blk, 0, l == 0, &bg);
                ir_free(&bg.g);
            }
    }
    for (int i = 0; i < p->nsamples; i++) {
        BlockGraph bg;
        sema_build_block(p, NULL, p->samples[i], 0, 0, &bg);
        ir_free(&bg.g);
    }
}

Program *sema_load(const char *path, Override *ov, int nov) {
    Node *ast = parse_file(ast_intern(path));
    if (!ast) return NULL;
    Program *p = xmalloc(sizeof *p);
    p->path = path;
    p->ast = ast;
    p->overrides = ov;
    p->noverrides = nov;
    Scope *g = scope_new(builtin_scope());
    p->globals = g;
    declare(p, g, ast, 0);
    if (diag_errors()) return NULL;
    for (int i = 0; i < p->ntrains; i++) train_scopes[i] = train_scope(p, &p->trains[i]);
    if (diag_errors()) return NULL;
    check_blocks(p);
    return diag_errors() ? NULL : p;
}


int sema_check_overrides(Program *p) {
    Node *ast = p->ast;
    for (int i = 0; i < p->noverrides; i++) {
        Override *ov = p->overrides;
        int found = !strcmp(ov[i].name, "epochs") || !strcmp(ov[i].name, "steps");
        for (int k = 0; k < ast->list2.n; k++)
            if (ast->list2.items[k]->kind == N_CONST && !strcmp(ast->list2.items[k]->name, ov[i].name)) found = 1;
        for (int k = 0; k < p->nsamples; k++)
            for (int a = 0; a < p->samples[k]->list.n; a++)
                if (!strcmp(p->samples[k]->list.items[a]->name, ov[i].name)) found = 1;
        if (!found) {
            fprintf(stderr, "gmc: --set %s: the program has no const, sample argument or setting named '%s'\n", ov[i].name, ov[i].name);
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */

static void init_param(Param *pr, Rng *rng) {
    int64_t fan_in = 1, fan_out = 1;
    if (pr->ndim >= 2) {
        int64_t receptive = 1;
        for (int i = 0; i < pr->ndim - 2; i++) receptive *= pr->shape[i];
        fan_in = pr->shape[pr->ndim - 2] * receptive;
        fan_out = pr->shape[pr->ndim - 1] * receptive;
    } else if (pr->ndim == 1) fan_in = fan_out = pr->shape[0];
    double limit = 0, std = 0;
    int uniform = 0;
    switch (pr->init) {
    case INIT_ZEROS: case INIT_ONES: case INIT_CONSTANT: {
        float v = pr->init == INIT_ONES ? 1 : pr->init == INIT_CONSTANT ? pr->init_a : 0;
        for (int64_t i = 0; i < pr->size; i++) pr->data[i] = v;
        return;
    }
    case INIT_GLOROT_UNIFORM: uniform = 1; limit = sqrt(6.0 / (fan_in + fan_out)); break;
    case INIT_GLOROT_NORMAL: std = sqrt(2.0 / (fan_in + fan_out)); break;
    case INIT_HE_UNIFORM: uniform = 1; limit = sqrt(6.0 / fan_in); break;
    case INIT_HE_NORMAL: std = sqrt(2.0 / fan_in); break;
    case INIT_LECUN_UNIFORM: uniform = 1; limit = sqrt(3.0 / fan_in); break;
    case INIT_LECUN_NORMAL: std = sqrt(1.0 / fan_in); break;
    case INIT_ORTHOGONAL: {       /* Keras: over [prod(shape[:-1]), shape[-1]], times the gain */
        int64_t cols = pr->ndim ? pr->shape[pr->ndim - 1] : 1, rows = cols ? pr->size / cols : 0;
        rng_normal(rng, pr->data, pr->size);
        orthogonal_matrix(pr->data, rows, cols);
        for (int64_t i = 0; i < pr->size; i++) pr->data[i] *= pr->init_a;
        return;
    }
    case INIT_NORMAL: std = pr->init_a; break;
    case INIT_UNIFORM: uniform = 1; limit = pr->init_a; break;
    }
    if (uniform) {
        rng_uniform(rng, pr->data, pr->size);
        for (int64_t i = 0; i < pr->size; i++) pr->data[i] = (float)((2 * pr->data[i] - 1) * limit);
    } else {
        /* Keras's *_normal initialisers draw from a normal truncated at 2 std */
        int truncated = pr->init != INIT_NORMAL;
        double scale = truncated ? std / 0.87962566103423978 : std;
        for (int64_t i = 0; i < pr->size; i++) {
            float z;
            do rng_normal(rng, &z, 1); while (truncated && fabsf(z) > 2);
            pr->data[i] = (float)(z * scale);
        }
    }
}

void sema_init_params(Program *p, uint64_t seed) {
    for (int i = 0; i < p->params.n; i++) {
        Rng rng;
        rng_init(&rng, seed * 1000003u + (uint64_t)i * 7919u + 1);   /* one stream per parameter */
        init_param(&p->params.items[i], &rng);
    }
}

int sema_summary(Program *p, FILE *f) {
    for (int ti = 0; ti < p->ntrains; ti++) {
        Train *t = &p->trains[ti];
        for (int k = 0; k < t->ninst; k++) {
            Instance *in = &t->inst[k];
            IrGraph g;
            ir_init(&g);
            SummaryRow rows[256];
            Ctx c = { .prog = p, .train = t, .g = &g, .rows = rows, .model_depth = 1 };
            Args a = { .loc = in->loc };
            for (int i = 0; i < in->model->list.n; i++) {
                Node *inp = in->model->list.items[i];
                int64_t shape[IR_MAXDIM] = { 1 };
                for (int d = 0; d < inp->list.n; d++) {
                    Value v = eval(&c, (Scope *)p->globals, inp->list.items[d]);
                    shape[d + 1] = v.kind == V_NUM ? (int64_t)v.num : 1;
                }
                a.pos[a.npos++] = tensor_value(ir_leaf(&g, IR_INPUT, inp->list.n + 1, shape, i));
            }
            int first = p->params.n;
            (void)first;
            Value r = call_instance(&c, (Value){ .kind = V_INSTANCE, .decl = in->model, .name = in->name }, &a, in->loc);
            int64_t total = 0, frozen = 0;
            for (int i = 0; i < p->params.n; i++)
                if (!strcmp(p->params.items[i].owner, in->name)) {
                    if (p->params.items[i].trainable) total += p->params.items[i].size;
                    else frozen += p->params.items[i].size;
                }
            fprintf(f, "Model: %s (instance %s)\n", in->model->name, in->name);
            fprintf(f, "%-32s %-24s %12s\n", "Layer", "Output shape", "Param #");
            fprintf(f, "%.*s\n", 70, "======================================================================");
            for (int i = 0; i < c.nrows; i++) {
                char shp[128];
                int n = snprintf(shp, sizeof shp, "(None");
                for (int d = 1; d < rows[i].ndim; d++) n += snprintf(shp + n, sizeof shp - n, ", %lld", (long long)rows[i].shape[d]);
                snprintf(shp + n, sizeof shp - n, ")");
                fprintf(f, "%-32s %-24s %12lld\n", rows[i].name, shp, (long long)params_under(p, rows[i].name));
            }
            fprintf(f, "%.*s\n", 70, "======================================================================");
            fprintf(f, "Total params: %lld\nTrainable params: %lld\nNon-trainable params: %lld\n\n",
                    (long long)(total + frozen), (long long)total, (long long)frozen);
            ir_free(&g);
            if (r.kind == V_ERROR) return -1;
        }
    }
    return 0;
}
