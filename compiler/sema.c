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
#include "param_file.h"

/* ---------------------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------------------- */
/* arguments */

static Value eval(Ctx *c, Scope *s, Node *e);
static Scope *train_scopes[8];     /* each train block's own statements, in program order */

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
    if (is_array_like(a) && is_array_like(b)) return array_binary(op, a, b, e->loc);   /* folded */
    if (a.kind == V_ARRAY && b.kind == V_TENSOR && c->g) a = tensor_value(array_tensor(c, a));
    if (b.kind == V_ARRAY && a.kind == V_TENSOR && c->g) b = tensor_value(array_tensor(c, b));
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
    if (!strcmp(op, "%")) {      /* Python's modulo, a - floor(a / b) * b: the loop counter's parity */
        Value q = tensor_binary(c, IR_DIV, a, b, e->loc, "operator '%'");
        if (q.kind == V_ERROR) return q;
        Value f = located(c, ir_unary(c->g, IR_FLOOR, q.node), e->loc);
        Value m = tensor_binary(c, IR_MUL, f, b, e->loc, "operator '%'");
        return m.kind == V_ERROR ? m : tensor_binary(c, IR_SUB, a, m, e->loc, "operator '%'");
    }
    if (!strcmp(op, "or")) {     /* on 0/1 tensors: max */
        return tensor_binary(c, IR_MAX, tensor_binary(c, IR_NE, a, num_value(0, 1), e->loc, "operator 'or'"),
                             tensor_binary(c, IR_NE, b, num_value(0, 1), e->loc, "operator 'or'"), e->loc, "operator 'or'");
    }
    diag_error(e->loc, "operator '%s' does not apply to tensors", op);
    return error_value;
}

/* ---------------------------------------------------------------------------------------- */
/* layers and models */

static Value exec_body(Ctx *c, Scope *s, NodeList *body, int *returned);

static const char *stdlib_dir(void);

static int in_library;      /* evaluating a standard-library layer called by the user */

static int in_stdlib(Loc loc) {
    const char *dir = stdlib_dir();
    size_t n = strlen(dir);
    return loc.file && !strncmp(loc.file, dir, n) && loc.file[n] == '/';
}

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
    /* a library layer sees the library and the builtins, not the program's names */
    Scope *globals = c->prog->globals;
    Scope *s = scope_new(in_stdlib(layer->loc) ? globals->parent : globals);
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
    /* a standard-library layer called from the user's program: errors inside it are reported
     * at this call */
    int library_call = !in_library && in_stdlib(layer->loc) && !in_stdlib(loc);
    if (library_call) { in_library = 1; diag_library_call(loc, layer->name); }
    c->depth++;
    int returned = 0;
    Value r = exec_body(c, s, &layer->list2, &returned);
    c->depth--;
    if (library_call) { in_library = 0; diag_library_call(loc, NULL); }
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
    int64_t batch = -1, first_batch = -1;
    for (int i = 0; i < inputs->n && first_batch < 0; i++)
        if (a->pos[i].kind == V_TENSOR && c->g->nodes[a->pos[i].node].ndim >= 1)
            first_batch = c->g->nodes[a->pos[i].node].shape[0];
    for (int i = 0; i < inputs->n; i++) {
        Node *in = inputs->items[i];
        int x = as_tensor(c, a->pos[i], a->pos_loc[i], fmt("model %s", model->name));
        if (x < 0) return error_value;
        /* a scalar for an input of one number per example (`t: int`), such as a sampling
         * loop's counter, is the same for every example of the batch */
        if (c->g->nodes[x].ndim == 0 && in->list.n == 0 && first_batch > 0) {
            int64_t one = 1;
            x = ir_broadcast(c->g, ir_reshape(c->g, x, 1, &one), 1, &first_batch);
        }
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
    if (out->ninputs == BLOCK_MAX_INPUTS) { diag_error(e->loc, "too many inputs in one block"); return error_value; }
    out->input_stream[out->ninputs] = marker;
    return located(c, ir_leaf(c->g, IR_INPUT, 0, NULL, out->ninputs++), e->loc);
}

/* `ae1.E1`: the instance E1 of train block ae1, with the weights that block trained. A train
 * block names it at its top (`E1 = ae1.E1`), so that the runtime knows to load it; only blocks
 * before it qualify. Sampling procedures may name any block's instances. */
static Value train_instance(Ctx *c, Value v, Node *e) {
    Program *p = c->prog;
    Train *from = &p->trains[v.index];
    if (c->train && !c->sample) {
        int here = (int)(c->train - p->trains);
        if (c->g) {
            diag_error(e->loc, "take the instance of another train block at the top of this one, `%s = %s.%s`, and use that name here",
                       e->name, from->name, e->name);
            return error_value;
        }
        if (v.index >= here) {
            diag_error(e->loc, v.index == here ? "'%s' is this train block: name its instance '%s' directly"
                                               : "train block '%s' comes after this one: a block can use the instances of the blocks before it",
                       from->name, e->name);
            return error_value;
        }
    }
    Scope *ts = train_scopes[v.index];
    char list[256] = "";
    for (int i = 0; ts && i < ts->n; i++) {
        if (ts->b[i].v.kind != V_INSTANCE) continue;
        if (ts->b[i].name == e->name || !strcmp(ts->b[i].name, e->name)) {
            Value r = ts->b[i].v;
            r.index = v.index + 1;
            return r;
        }
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", l ? ", " : "", ts->b[i].name);
    }
    diag_error(e->loc, "train block '%s' has no model instance '%s'%s%s%s", from->name, e->name,
               list[0] ? " (it has " : "", list, list[0] ? ")" : "");
    return error_value;
}

/* x.shape, x.ndim of a tensor (compile-time, the batch axis included); out.mu of a model's
 * named outputs (`return mu: m, logvar: v`) */
static Value attribute(Ctx *c, Scope *s, Node *e) {
    /* train blocks have names of their own, seen only before a dot (`ae1.E1`): a value of the
     * same name that has attributes wins */
    if (e->a->kind == N_NAME) {
        Value *b = scope_get(s, e->a->name);
        if (!b || (b->kind != V_TENSOR && b->kind != V_TUPLE && b->kind != V_ARRAY))
            for (int i = 0; i < c->prog->ntrains; i++)
                if (!strcmp(c->prog->trains[i].name, e->a->name))
                    return train_instance(c, (Value){ .kind = V_TRAIN, .index = i, .name = e->a->name }, e);
    }
    Value v = eval(c, s, e->a);
    if (v.kind == V_ERROR) return v;
    const char *name = e->name;
    if (v.kind == V_TENSOR) {
        IrNode *n = &c->g->nodes[v.node];
        if (!strcmp(name, "shape")) {
            Value r = array_value(n->ndim);
            for (int i = 0; i < n->ndim; i++) r.arr[i] = (double)n->shape[i];
            return r;
        }
        if (!strcmp(name, "ndim")) return num_value(n->ndim, 1);
        if (!strcmp(name, "size")) return num_value((double)ir_numel(n), 1);
        diag_error(e->loc, "a tensor has no attribute '%s' (it has .shape, .ndim and .size)", name);
        return error_value;
    }
    if (v.kind == V_ARRAY) {          /* a.shape, a.ndim, a.size of a compile-time array */
        int d[IR_MAXDIM], nd = array_shape(v, d);
        if (!strcmp(name, "size")) return num_value(v.n, 1);
        if (!strcmp(name, "ndim")) return num_value(nd, 1);
        if (!strcmp(name, "shape")) {
            Value r = array_value(nd);
            for (int i = 0; i < nd; i++) r.arr[i] = d[i];
            return r;
        }
        diag_error(e->loc, "an array has no attribute '%s' (it has .shape, .ndim and .size)", name);
        return error_value;
    }
    if (v.kind == V_TUPLE && v.names) {
        for (int i = 0; i < v.n; i++)
            if (v.names[i] && !strcmp(v.names[i], name)) return v.items[i];
        char list[256] = "";
        for (int i = 0; i < v.n; i++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", v.names[i] ? v.names[i] : "?");
        }
        diag_error(e->loc, "no output named '%s' (the outputs are %s)", name, list);
        return error_value;
    }
    if (v.kind == V_TUPLE) {
        diag_error(e->loc, "'.%s': these outputs have no names; name them in the model, `return %s: ...`, or unpack them", name, name);
        return error_value;
    }
    diag_error(e->loc, "a %s has no attribute '%s'%s", kind_name(v.kind), name,
               v.kind == V_INSTANCE ? " (use weights(\"layer.param\") for a parameter)" : "");
    return error_value;
}

static Value index_expr(Ctx *c, Scope *s, Node *e) {
    Value base = eval(c, s, e->a);
    if (base.kind == V_ERROR) return base;
    IndexItem it[IR_MAXDIM + 1];
    int n = e->list.n;
    if (n > IR_MAXDIM) { diag_error(e->loc, "too many indices"); return error_value; }
    for (int i = 0; i < n; i++) {
        Node *x = e->list.items[i];
        it[i] = (IndexItem){ .is_slice = x->kind == N_SLICE, .loc = x->loc };
        if (x->kind != N_SLICE) {
            it[i].v = eval(c, s, x);
            if (it[i].v.kind == V_ERROR) return error_value;
            continue;
        }
        Node *parts[3] = { x->a, x->b, x->c };
        for (int k = 0; k < 3; k++) {
            if (!parts[k]) continue;
            Value b = eval(c, s, parts[k]);
            if (b.kind == V_ERROR) return b;
            if (b.kind == V_TENSOR) { diag_error(parts[k]->loc, "slice bounds must be known at compile time, got a tensor"); return error_value; }
            if (want_int(b, parts[k]->loc, "a slice bound", &it[i].bound[k]) < 0) return error_value;
            it[i].has[k] = 1;
        }
    }
    switch (base.kind) {
    case V_ARRAY: return array_index(c, base, it, n, e->loc);
    case V_TENSOR: return tensor_index(c, base, it, n, e->loc);
    case V_TUPLE: {
        int64_t k;
        if (n != 1 || it[0].is_slice || want_int(it[0].v, it[0].loc, "a tuple index", &k) < 0) {
            if (n != 1 || it[0].is_slice) diag_error(e->loc, "a tuple takes one whole-number index");
            return error_value;
        }
        if (k < -base.n || k >= base.n) { diag_error(it[0].loc, "index %lld is out of range for a tuple of %d", (long long)k, base.n); return error_value; }
        return base.items[k < 0 ? k + base.n : k];
    }
    default:
        diag_error(e->loc, "a %s cannot be indexed", kind_name(base.kind));
        return error_value;
    }
}

/* a data stream read by a block: an input of its graph, one per stream and part */
static Value stream_input(Ctx *c, const Value *v, const char *name, Loc loc) {
    if (!c->g || !c->out) { diag_error(loc, "data stream '%s' can only be used inside a step or validate block", name); return error_value; }
    BlockGraph *out = c->out;
    int part = v->n;
    for (int i = 0; i < out->ninputs; i++)
        if (out->input_stream[i] == v->index && out->input_part[i] == part)
            for (int k = 0; k < c->g->n; k++)
                if (c->g->nodes[k].op == IR_INPUT && c->g->nodes[k].slot == i) return tensor_value(k);
    if (out->ninputs == BLOCK_MAX_INPUTS) { diag_error(loc, "too many data streams in one block"); return error_value; }
    DataSpec *d = &c->train->stream[v->index].spec;
    int64_t shape[IR_MAXDIM];
    int nd = part ? d->ndim2 : d->ndim;
    shape[0] = c->batch > 0 ? c->batch : d->batch;
    memcpy(shape + 1, part ? d->shape2 : d->shape, nd * sizeof *shape);
    out->input_stream[out->ninputs] = v->index;
    out->input_part[out->ninputs] = part;
    int id = ir_leaf(c->g, IR_INPUT, nd + 1, shape, out->ninputs++);
    return located(c, id, loc);
}

/* [[1, 2], [3, 4]]: arrays of one shape stacked along a new first axis */
static Value stack_literal(Value t, Node *e) {
    if ((int64_t)t.n * t.items[0].n > (1 << 24)) { diag_error(e->loc, "an array of more than %d numbers", 1 << 24); return error_value; }
    if (t.items[0].andim + 1 > IR_MAXDIM) { diag_error(e->loc, "an array has at most %d axes", IR_MAXDIM); return error_value; }
    int bad;
    Value r = array_stack(t.items, t.n, &bad);
    if (bad < 0) return r;
    diag_error(e->list.items[bad]->loc, "ragged array: row %d is %s, row 0 an array of shape %s", bad,
               t.items[bad].kind == V_ARRAY ? fmt("an array of shape %s", array_shape_str(t.items[bad])) : fmt("a %s", kind_name(t.items[bad].kind)),
               array_shape_str(t.items[0]));
    return error_value;
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
        if (v->kind == V_NONE) { diag_error(e->loc, "'%s' has no value here (a conditional param that is off, or a name assigned in one branch of an if on a run-time value)", e->name); return error_value; }
        if (v->kind == V_STREAM) return stream_input(c, v, e->name, e->loc);
        return *v;
    }
    case N_BINOP: return binop(c, s, e);
    case N_UNOP: {
        Value a = eval(c, s, e->a);
        if (a.kind == V_ERROR) return a;
        if (a.kind == V_ARRAY) return array_unary(e->name, a, e->loc);
        if (!strcmp(e->name, "not")) {
            if (a.kind == V_NUM) return num_value(a.num == 0, 1);
            if (a.kind == V_TENSOR) return tensor_binary(c, IR_EQ, a, num_value(0, 1), e->loc, "'not'");
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
        int numbers = 1;
        for (int i = 0; i < e->list.n; i++) {
            t.items[i] = eval(c, s, e->list.items[i]);
            if (t.items[i].kind == V_ERROR) return error_value;
            numbers &= t.items[i].kind == V_NUM;
        }
        if (e->is_array && numbers) {        /* [0.1, 0.2]: a compile-time array */
            Value arr = array_value(t.n);
            for (int i = 0; i < t.n; i++) {
                arr.arr[i] = t.items[i].num;
                arr.is_int &= t.items[i].is_int;
            }
            return arr;
        }
        if (e->is_array && t.n && t.items[0].kind == V_ARRAY) return stack_literal(t, e);
        if (e->is_array)
            for (int i = 0; i < t.n; i++)
                if (t.items[i].kind == V_ARRAY) {
                    diag_error(e->list.items[i]->loc, "an array's rows must all be arrays of one shape: element %d is an array, element 0 a %s",
                               i, kind_name(t.items[0].kind));
                    return error_value;
                }
        return t;
    }
    case N_ATTR: return attribute(c, s, e);
    case N_INDEX: return index_expr(c, s, e);
    case N_SLICE:
        diag_error(e->loc, "a slice (a:b) is only valid inside [ ]");
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
    if (init.kind == V_ERROR) { scope_set(s, st->name, error_value); return -1; }
    if (init.kind == V_NUM) init = (Value){ .kind = V_INIT, .init = INIT_CONSTANT, .ia = (float)init.num };
    if (init.kind == V_BUILTIN && init.builtin->init >= 0) {      /* a bare name: glorot_uniform */
        Args no_args = { .loc = st->a->loc };
        init = init_value(init.builtin, &no_args);
    }
    if (init.kind != V_INIT) { diag_error(st->a->loc, "param '%s' needs an initializer (glorot_uniform, zeros, ...), got a %s", st->name, kind_name(init.kind)); return -1; }
    const char *name = fmt("%s.%s", c->pc->prefix, st->name);
    int idx = params_find(&c->prog->params, name);
    if (idx < 0) {
        idx = params_add(&c->prog->params, name, c->pc->owner, st->list.n, shape, init.init, init.ia, init.ib,
                         st->kind == N_PARAM, st->loc);
        if (init.init == INIT_FILE && param_file_attach(&c->prog->params.items[idx], st->name, &init, st->a->loc) < 0) {
            scope_set(s, st->name, error_value);      /* reported once, not again at each use */
            return -1;
        }
    }
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

/* `E = Encoder()` at the top of a train block declares instance E; `E1 = ae1.E1` takes one
 * from an earlier block (its name stays E1 whatever it is bound to: parameters are named by
 * instance). An instance name belongs to one block, so that its weights have one origin. */
static int declare_instance(Ctx *c, Node *st, Value *v) {
    Train *t = c->train;
    Program *p = c->prog;
    if (!v->name) {
        v->name = st->list.items[0]->name;
        for (Train *o = p->trains; o < t; o++)
            for (int k = 0; k < o->ninst; k++)
                if (!o->inst[k].from && !strcmp(o->inst[k].name, v->name)) {
                    diag_error(st->loc, "instance '%s' is already declared in train block '%s': write `%s = %s.%s` to use its weights, or choose another name",
                               v->name, o->name, v->name, o->name, v->name);
                    diag_note(o->inst[k].loc, "'%s' is declared here", v->name);
                    return -1;
                }
    }
    for (int k = 0; k < t->ninst; k++)
        if (!strcmp(t->inst[k].name, v->name)) return 0;     /* the same instance again */
    if (t->ninst == 32) { diag_error(st->loc, "too many model instances in one train block"); return -1; }
    t->inst[t->ninst++] = (Instance){ v->name, v->decl, st->loc, v->index };
    return 0;
}

static int assign_stmt(Ctx *c, Scope *s, Node *st) {
    Value v = eval(c, s, st->a);
    if (v.kind == V_ERROR) {    /* the names stand for the error: no second message at each use */
        for (int i = 0; i < st->list.n; i++) scope_set(s, st->list.items[i]->name, error_value);
        return -1;
    }
    if (v.kind == V_DATA && c->train && (!c->g || c->out)) return bind_stream(c, s, st, v);
    if (st->list.n == 1 && c->g) {
        int r = state_update(c, s, st, v);
        if (r) return r < 0 ? -1 : 0;
    }
    if (st->list.n == 1) {
        if (v.kind == V_INSTANCE && c->train && !c->g && declare_instance(c, st, &v) < 0) return -1;
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

/* "{name}" in a save's path: a compile-time number or string (a const, a sample argument, a
 * compile-time loop's variable) is filled in now; {epoch}, {step} and a sampling loop's
 * counter when the file is written. NULL after an error. */
static const char *interpolate(Ctx *c, Scope *s, const char *text, Loc loc) {
    char out[1024];
    size_t k = 0;
    for (const char *p = text; *p; p++) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (!close) { if (k < sizeof out - 1) out[k++] = *p; continue; }
        char name[128];
        size_t len = (size_t)(close - p - 1);
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p + 1);
        const char *id = ast_intern(name);
        Value *v = scope_get(s, id);
        int runtime = (!strcmp(name, "epoch") || !strcmp(name, "step")) && !v;
        if (runtime || (c->counter && !strcmp(name, c->counter))) {
            k += (size_t)snprintf(out + k, sizeof out - k, "{%s}", name);
        } else if (v && v->kind == V_NUM) {
            if (v->num == floor(v->num) && fabs(v->num) < 1e15) k += (size_t)snprintf(out + k, sizeof out - k, "%lld", (long long)v->num);
            else k += (size_t)snprintf(out + k, sizeof out - k, "%g", v->num);
        } else if (v && v->kind == V_STR) {
            k += (size_t)snprintf(out + k, sizeof out - k, "%s", v->str);
        } else {
            Loc at = { loc.file, loc.line, loc.col + 1 + (int)(p - text) };
            if (v) diag_error(at, "'{%s}' in a path: '%s' is a %s, not a number or string known at compile time", name, name, kind_name(v->kind));
            else diag_error(at, "'{%s}' in a path: no const, argument or loop variable named '%s' (the run-time names are {epoch}, {step} and a sampling loop's variable)", name, name);
            return NULL;
        }
        if (k >= sizeof out) k = sizeof out - 1;
        p = close;
    }
    out[k < sizeof out ? k : sizeof out - 1] = 0;
    return ast_intern(out);
}

static int save_stmt(Ctx *c, Scope *s, Node *st) {
    BlockGraph *out = c->out;
    SaveAction sa = { .kind = SAVE_GRID_PNG, .rows = 0, .loc = st->loc };
    Node *e = st->a;
    Value path = eval(c, s, st->b);
    if (path.kind == V_ERROR) return -1;
    if (path.kind != V_STR) { diag_error(st->b->loc, "save ... to needs a file name string"); return -1; }
    path.str = interpolate(c, s, path.str, st->b->loc);
    if (!path.str) return -1;
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
        if (out->nsaves == BLOCK_MAX_SAVES) { diag_error(st->loc, "too many saves in one block"); return -1; }
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
    if (out->nsaves == BLOCK_MAX_SAVES) { diag_error(st->loc, "too many saves in one block"); return -1; }
    out->saves[out->nsaves++] = sa;
    return 0;
}

static int stmt(Ctx *c, Scope *s, Node *st, Value *ret, int *returned);

static int same_value(const Value *a, const Value *b) {
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case V_TENSOR: return a->node == b->node;
    case V_NUM: return a->num == b->num;
    case V_STR: return !strcmp(a->str, b->str);
    default: return !memcmp(a, b, sizeof *a);
    }
}

/* saves [from, to) happen only where scalar node `cond` is not 0 */
static void condition_saves(Ctx *c, int from, int to, int cond) {
    for (int i = from; i < to; i++) {
        SaveAction *sa = &c->out->saves[i];
        sa->when = 1 + (sa->when ? ir_binary(c->g, IR_MUL, sa->when - 1, cond) : cond);
    }
}

/* `if c { ... } else { ... }` where c is a tensor known only at run time (a sampling loop's
 * counter): both branches are built, and each name they assign takes where(c, then, else);
 * saves inside happen only on their side of the condition. */
static int select_if(Ctx *c, Scope *s, Node *st, Value cond, Value *ret, int *returned) {
    int x = cond.node;
    if (ir_numel(&c->g->nodes[x]) != 1) {
        diag_error(st->a->loc, "an if on a run-time value needs a scalar condition, got a tensor of shape %s; use where(c, a, b) to choose elementwise",
                   node_shape(c, x));
        return -1;
    }
    x = ir_reshape(c->g, x, 0, NULL);
    BlockGraph *out = c->out;
    int loss0 = out ? out->loss : -1, reports0 = out ? out->nreports : 0, saves0 = out ? out->nsaves : 0;
    int n0 = s->n;
    Binding *snap = xmalloc((n0 + 1) * sizeof *snap);
    memcpy(snap, s->b, n0 * sizeof *snap);
    int failed = 0;
    c->select_depth++;
    for (int i = 0; i < st->list.n && !*returned; i++) if (stmt(c, s, st->list.items[i], ret, returned) < 0) failed = 1;
    int nthen = s->n, saves1 = out ? out->nsaves : 0;
    Binding *then = xmalloc((nthen + 1) * sizeof *then);
    memcpy(then, s->b, nthen * sizeof *then);
    s->n = n0;
    memcpy(s->b, snap, n0 * sizeof *snap);
    for (int i = 0; i < st->list2.n && !*returned; i++) if (stmt(c, s, st->list2.items[i], ret, returned) < 0) failed = 1;
    c->select_depth--;
    if (failed) return -1;
    if (*returned) { diag_error(st->loc, "return inside an if on a run-time value: both branches are built, so the if cannot choose what to return"); return -1; }
    if (out && (out->loss != loss0 || out->nreports != reports0)) {
        diag_error(st->loc, "minimize and report cannot be inside an if on a run-time value");
        return -1;
    }
    if (out && out->nsaves > saves0) {     /* then-saves: [saves0, saves1), else-saves after */
        condition_saves(c, saves0, saves1, x);
        condition_saves(c, saves1, out->nsaves, ir_binary(c->g, IR_EQ, x, ir_const(c->g, 0, 0, NULL)));
    }
    /* merge what either branch assigned: where(x, then, else) */
    for (int i = 0; i < nthen; i++) {
        const char *name = then[i].name;
        Value tv = then[i].v, *ev = NULL;
        for (int k = 0; k < s->n; k++) if (s->b[k].name == name) ev = &s->b[k].v;
        if (!ev) { scope_set(s, name, none); continue; }     /* created by the then branch only */
        if (same_value(&tv, ev)) continue;
        if ((tv.kind == V_TENSOR || tv.kind == V_NUM) && (ev->kind == V_TENSOR || ev->kind == V_NUM)) {
            int a = as_tensor(c, tv, st->loc, "if"), b = as_tensor(c, *ev, st->loc, "if");
            int r = ir_where(c->g, x, a, b);
            if (r < 0) {
                diag_error(st->loc, "'%s' is %s in one branch and %s in the other: an if on a run-time value needs shapes that broadcast",
                           name, node_shape(c, a), node_shape(c, b));
                return -1;
            }
            Value nv = located(c, r, st->loc);
            nv.state = ev->state;
            *ev = nv;
            continue;
        }
        if (tv.kind == V_NONE || ev->kind == V_NONE) { *ev = none; continue; }
        diag_error(st->loc, "'%s' is a %s in one branch and a %s in the other of an if on a run-time value", name, kind_name(tv.kind), kind_name(ev->kind));
        return -1;
    }
    /* names only the else branch created */
    for (int k = n0; k < s->n; k++) {
        int in_then = 0;
        for (int i = 0; i < nthen; i++) if (then[i].name == s->b[k].name) in_then = 1;
        if (!in_then) s->b[k].v = none;
    }
    free(snap);
    free(then);
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
                if (x->kind == N_NAMEDARG) {
                    if (!r.names) r.names = xmalloc(st->list.n * sizeof *r.names);
                    r.names[i] = x->name;
                }
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
        if (cond.kind == V_TENSOR) return select_if(c, s, st, cond, ret, returned);
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
        if (r.kind == V_ARRAY) { int d[IR_MAXDIM]; array_shape(r, d); n = d[0]; }   /* its rows */
        else if (r.kind == V_TUPLE) n = r.n;      /* for t in range(...), [..], (..) */
        else if (want_int(r, st->a->loc, "a for loop bound (for i in N, or an array)", &n) < 0) return -1;
        for (int64_t i = 0; i < n && !*returned; i++) {
            scope_set(s, st->name, r.kind == V_ARRAY ? array_row(r, (int)i) : r.kind == V_TUPLE ? r.items[i] : num_value((double)i, 1));
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
    /* a library layer stops at its first error: the rest would only repeat it */
    for (int i = 0; i < body->n && !*returned && !(failed && in_library); i++)
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
        diag_error(imp->loc, "unknown module '%s' (the standard modules are std.nn, std.losses, std.seq and std.flow)", imp->name);
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

/* one value of an --set array: a number, or [v, v, ...] of numbers or of arrays of one shape
 * (commas optional); -1 where the text is not one */
static int parse_set_value(const char **pp, Value *out, int depth) {
    const char *p = *pp;
    char *end;
    while (*p == ' ') p++;
    if (*p != '[') {
        double v = strtod(p, &end);
        if (end == p) return -1;
        *out = num_value(v, v == floor(v));
        *pp = end;
        return 0;
    }
    if (depth == IR_MAXDIM) return -1;
    Value *items = NULL;
    int n = 0, numbers = 1;
    for (p++;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ']') break;
        Value v;
        if (parse_set_value(&p, &v, depth + 1) < 0) { free(items); return -1; }
        items = realloc(items, (size_t)(n + 1) * sizeof *items);
        items[n++] = v;
        numbers &= v.kind == V_NUM;
    }
    *pp = p + 1;
    if (numbers) {
        *out = array_value(n);
        for (int i = 0; i < n; i++) {
            out->arr[i] = items[i].num;
            out->is_int &= items[i].is_int;
        }
        free(items);
        return 0;
    }
    int bad;
    *out = array_stack(items, n, &bad);
    free(items);
    return bad < 0 ? 0 : -1;
}

static Value override_value(const char *text) {
    char *end;
    double x = strtod(text, &end);
    if (*text && !*end) return num_value(x, !strpbrk(text, ".eE"));
    if (text[0] == '[') {          /* --set betas=[0.1,0.2], --set "k=[[1, 2], [3, 4]]": an array */
        const char *p = text;
        Value arr;
        if (parse_set_value(&p, &arr, 0) == 0 && !*p) return arr;
    }
    return (Value){ .kind = V_STR, .str = ast_intern(text) };
}

/* a name bound in scope s itself, not in its parents */
static Value *own_binding(Scope *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (s->b[i].name == name) return &s->b[i].v;
    return NULL;
}

static int declare(Program *p, Scope *g, Node *prog, int is_stdlib) {
    int errors = 0;
    Ctx c = { .prog = p };
    for (int i = 0; i < prog->list2.n; i++) {
        Node *d = prog->list2.items[i];
        if (d->kind != N_IMPORT && d->kind != N_TRAIN && d->kind != N_SAMPLE &&
            own_binding(g, d->name) && !is_stdlib) {
            Value *old = own_binding(g, d->name);
            if (old->kind == V_LAYER || old->kind == V_MODEL) {
                diag_error(d->loc, "'%s' is already defined", d->name);
                if (old->decl) diag_note(old->decl->loc, "'%s' was defined here", d->name);
                errors++;
                continue;
            }
        }
        switch (d->kind) {
        case N_IMPORT: if (import_module(p, is_stdlib ? g : g->parent, d) < 0) errors++; break;
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

static Scope *sample_scope;

/* Sampling procedures see the first train block's names (its streams) and every block's model
 * instances. */
static Scope *scope_for(Program *p, Train **t, int sample) {
    if (!*t || sample) {
        if (!p->ntrains) return (Scope *)p->globals;
        *t = &p->trains[0];
        if (!sample_scope) {
            sample_scope = scope_new(train_scopes[0]);
            for (int k = 1; k < p->ntrains; k++)
                for (int i = 0; train_scopes[k] && i < train_scopes[k]->n; i++) {
                    Binding *b = &train_scopes[k]->b[i];
                    if (b->v.kind == V_INSTANCE && !own_binding(train_scopes[0], b->name) && !own_binding(sample_scope, b->name))
                        scope_set(sample_scope, b->name, b->v);
                }
        }
        return sample_scope;
    }
    return train_scopes[*t - p->trains];
}

int sema_build_block(Program *p, Train *t, Node *block, int batch, int training, BlockGraph *out) {
    memset(out, 0, sizeof *out);
    ir_init(&out->g);
    out->loss = -1;
    out->batch = batch;
    Scope *ts = scope_for(p, &t, block->kind == N_SAMPLE);
    Ctx c = { .prog = p, .train = t, .g = &out->g, .out = out, .batch = batch, .training = training,
              .sample = block->kind == N_SAMPLE };
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

/* ---- sampling procedures with run-time loops -------------------------------------------- */

/* the statements of a sampling procedure or an `every` hook */
static const NodeList *block_body(const Node *block) {
    return block->kind == N_SAMPLE ? &block->list2 : &block->list;
}

int sema_sample_has_loops(const Node *block) {
    if (block->kind != N_SAMPLE && block->kind != N_EVERY) return 0;
    const NodeList *body = block_body(block);
    for (int i = 0; i < body->n; i++)
        if (body->items[i]->kind == N_FOR) return 1;
    return 0;
}

static SampleStage *new_stage(SampleProgram *sp, Node *at) {
    if (sp->nstages == (int)(sizeof sp->stages / sizeof sp->stages[0])) {
        diag_error(at->loc, "too many loops in one sampling procedure");
        return NULL;
    }
    SampleStage *st = &sp->stages[sp->nstages++];
    memset(st, 0, sizeof *st);
    ir_init(&st->bg.g);
    st->bg.loss = -1;
    return st;
}

/* the register that holds `name` with node's shape (a new one if the shape differs) */
static int register_for(SampleProgram *sp, const char *name, const IrNode *n, Loc loc) {
    for (int i = sp->nregs - 1; i >= 0; i--)
        if (sp->regs[i].name == name && sp->regs[i].ndim == n->ndim && !memcmp(sp->regs[i].shape, n->shape, n->ndim * sizeof *n->shape))
            return i;
    if (sp->nregs == (int)(sizeof sp->regs / sizeof sp->regs[0])) { diag_error(loc, "too many tensors carried between loops"); return -1; }
    sp->regs[sp->nregs].name = name;
    sp->regs[sp->nregs].ndim = n->ndim;
    memcpy(sp->regs[sp->nregs].shape, n->shape, sizeof n->shape);
    return sp->nregs++;
}

static int carry_out(SampleProgram *sp, BlockGraph *bg, const char *name, int node, Loc loc) {
    int reg = register_for(sp, name, &bg->g.nodes[node], loc);
    if (reg < 0) return -1;
    if (bg->ncarry == BLOCK_MAX_CARRY) { diag_error(loc, "too many tensors carried between loops"); return -1; }
    bg->carry_reg[bg->ncarry] = reg;
    bg->carry_node[bg->ncarry++] = node;
    return 0;
}

/* The end of a stage: every tensor the procedure has named (alone, or in a tuple as
 * "name#i") goes to a register. */
static int end_stage(SampleProgram *sp, SampleStage *st, Scope *s, Loc loc) {
    BlockGraph *bg = &st->bg;
    for (int i = 0; i < s->n; i++) {
        Value *v = &s->b[i].v;
        if (v->kind == V_TENSOR && carry_out(sp, bg, s->b[i].name, v->node, loc) < 0) return -1;
        if (v->kind == V_TUPLE)
            for (int k = 0; k < v->n; k++)
                if (v->items[k].kind == V_TENSOR && carry_out(sp, bg, fmt("%s#%d", s->b[i].name, k), v->items[k].node, loc) < 0) return -1;
    }
    return 0;
}

static int carry_in(SampleProgram *sp, SampleStage *st, const char *name, Value *v, Loc loc) {
    SampleStage *prev = st - 1;
    BlockGraph *bg = &st->bg;
    int reg = -1;
    for (int k = 0; k < prev->bg.ncarry; k++)
        if (prev->bg.carry_node[k] == v->node && sp->regs[prev->bg.carry_reg[k]].name == name) reg = prev->bg.carry_reg[k];
    if (reg < 0) { *v = none; return 0; }
    if (bg->ninputs == BLOCK_MAX_INPUTS) { diag_error(loc, "too many tensors carried into a loop"); return -1; }
    bg->input_stream[bg->ninputs] = STREAM_CARRY;
    bg->input_part[bg->ninputs] = reg;
    int x = ir_leaf(&bg->g, IR_INPUT, sp->regs[reg].ndim, sp->regs[reg].shape, bg->ninputs++);
    Value nv = tensor_value(x);
    nv.state = v->state;
    *v = nv;
    return 0;
}

/* The start of a stage: each tensor the procedure has named is read from its register. */
static int begin_stage(SampleProgram *sp, SampleStage *st, Scope *s, Loc loc) {
    for (int i = 0; i < s->n; i++) {
        Value *v = &s->b[i].v;
        if (v->kind == V_TENSOR && carry_in(sp, st, s->b[i].name, v, loc) < 0) return -1;
        if (v->kind != V_TUPLE) continue;
        Value *items = xmalloc(v->n * sizeof *items);
        memcpy(items, v->items, v->n * sizeof *items);
        v->items = items;
        for (int k = 0; k < v->n; k++)
            if (items[k].kind == V_TENSOR && carry_in(sp, st, fmt("%s#%d", s->b[i].name, k), &items[k], loc) < 0) return -1;
    }
    return 0;
}

static void stage_ctx(Ctx *c, SampleStage *st) {
    c->g = &st->bg.g;
    c->out = &st->bg;
}

/* `for t in VALUES { body }` at the top of a sampling procedure: the body becomes one graph */
static int loop_stage(Ctx *c, SampleProgram *sp, Scope *s, Node *loop) {
    Value r = eval(c, s, loop->a);
    if (r.kind == V_ERROR) return -1;
    int64_t n;
    if (r.kind == V_TENSOR) { diag_error(loop->a->loc, "the values a loop runs over must be known at compile time (a number, range(...) or an array), got a tensor"); return -1; }
    if (r.kind == V_TUPLE || (r.kind == V_ARRAY && r.andim > 1)) {
        /* for G in (G1, G2), for row in a 2-D array: over values that are not numbers, unrolled */
        int returned = 0;
        Value ret = none;
        return stmt(c, s, loop, &ret, &returned);
    }
    if (r.kind == V_ARRAY) n = r.n;
    else if (want_int(r, loop->a->loc, "a for loop bound (for i in N, or an array)", &n) < 0) return -1;
    if (n < 0) n = 0;
    SampleStage *prev = &sp->stages[sp->nstages - 1];
    /* a stream the procedure bound (`w, y = chars | batch(1)`) enters the loop as the tensor
     * of its first batch, so the loop can replace it */
    for (int i = 0; i < s->n; i++)
        if (s->b[i].v.kind == V_STREAM) {
            Value t = stream_input(c, &s->b[i].v, s->b[i].name, loop->loc);
            if (t.kind == V_ERROR) return -1;
            s->b[i].v = t;
        }
    if (end_stage(sp, prev, s, loop->loc) < 0) return -1;
    SampleStage *st = new_stage(sp, loop);
    if (!st) return -1;
    st->loop = 1;
    st->counter = loop->name;
    st->nvalues = n;
    st->values = xmalloc((size_t)(n ? n : 1) * sizeof *st->values);
    for (int64_t i = 0; i < n; i++) st->values[i] = r.kind == V_ARRAY ? r.arr[i] : (double)i;
    stage_ctx(c, st);
    if (begin_stage(sp, st, s, loop->loc) < 0) return -1;
    /* the counter: a scalar input the runtime sets before each iteration */
    BlockGraph *bg = &st->bg;
    if (bg->ninputs == BLOCK_MAX_INPUTS) { diag_error(loop->loc, "too many tensors carried into a loop"); return -1; }
    bg->input_stream[bg->ninputs] = STREAM_COUNTER;
    int counter = ir_leaf(&bg->g, IR_INPUT, 0, NULL, bg->ninputs++);
    scope_set(s, loop->name, located(c, counter, loop->loc));
    int nin = bg->ninputs;
    const char *saved_counter = c->counter;
    c->counter = loop->name;
    int returned = 0, failed = 0;
    Value ret = none;
    for (int i = 0; i < loop->list.n && !returned; i++)
        if (stmt(c, s, loop->list.items[i], &ret, &returned) < 0) failed = 1;
    c->counter = saved_counter;
    if (returned) { diag_error(loop->loc, "return is not valid in a sampling procedure"); return -1; }
    if (failed) return -1;
    /* after the loop the counter holds its last value, as in Python */
    scope_set(s, loop->name, n ? num_value(st->values[n - 1], r.kind != V_ARRAY || r.is_int) : none);
    if (end_stage(sp, st, s, loop->loc) < 0) return -1;
    /* what an iteration reads from a register, it must leave there, with the same shape */
    for (int k = 0; k < nin; k++) {
        if (bg->input_stream[k] != STREAM_CARRY) continue;
        int reg = bg->input_part[k], found = 0;
        const char *name = sp->regs[reg].name;
        for (int j = 0; j < bg->ncarry; j++) {
            if (sp->regs[bg->carry_reg[j]].name != name) continue;
            IrNode *b = &bg->g.nodes[bg->carry_node[j]];
            if (b->ndim != sp->regs[reg].ndim || memcmp(b->shape, sp->regs[reg].shape, b->ndim * sizeof *b->shape)) {
                diag_error(loop->loc, "'%s' has shape %s before the loop and %s after its body: what a loop carries must keep its shape",
                           name, shape_str(sp->regs[reg].ndim, sp->regs[reg].shape), shape_str(b->ndim, b->shape));
                return -1;
            }
            bg->carry_reg[j] = reg;
            found = 1;
        }
        if (!found) {
            diag_error(loop->loc, "'%s' is a tensor before the loop and not after its body: a loop must leave what it carries a tensor of the same shape", name);
            return -1;
        }
    }
    SampleStage *next = new_stage(sp, loop);
    if (!next) return -1;
    stage_ctx(c, next);
    return begin_stage(sp, next, s, loop->loc);
}

int sema_build_sample(Program *p, Node *sample, SampleProgram *sp) {
    return sema_build_staged(p, NULL, sample, sp);
}

/* A sampling procedure, or an `every` hook of train block t, whose top-level `for` loops run
 * at run time: its stages */
int sema_build_staged(Program *p, Train *t, Node *sample, SampleProgram *sp) {
    memset(sp, 0, sizeof *sp);
    Scope *ts = scope_for(p, &t, sample->kind == N_SAMPLE);
    Scope *s = scope_new(ts);
    int errors0 = diag_errors();
    SampleStage *st = new_stage(sp, sample);
    Ctx c = { .prog = p, .train = t, .sample = sample->kind == N_SAMPLE };
    stage_ctx(&c, st);
    for (int i = 0; sample->kind == N_SAMPLE && i < sample->list.n; i++) {
        Node *f = sample->list.items[i];
        const Override *ov = find_override(p, f->name);
        Value v = ov ? override_value(ov->value) : f->a ? eval(&c, s, f->a) : error_value;
        if (!ov && !f->a) diag_error(f->loc, "sample argument '%s' needs a default value", f->name);
        scope_set(s, f->name, v);
    }
    int returned = 0;
    Value ret = none;
    const NodeList *body = block_body(sample);
    for (int i = 0; i < body->n && !returned; i++) {
        Node *x = body->items[i];
        if (x->kind == N_FOR) {
            if (loop_stage(&c, sp, s, x) < 0) break;
        } else stmt(&c, s, x, &ret, &returned);
    }
    if (returned) diag_error(sample->loc, "return is not valid in this block");
    if (diag_errors() != errors0) { sema_free_sample(sp); return -1; }
    return 0;
}

void sema_free_sample(SampleProgram *sp) {
    for (int i = 0; i < sp->nstages; i++) {
        ir_free(&sp->stages[i].bg.g);
        free(sp->stages[i].values);
    }
    sp->nstages = 0;
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
                if (sema_sample_has_loops(blk)) {       /* an `every` hook with run-time loops */
                    SampleProgram *sp = xmalloc(sizeof *sp);
                    if (sema_build_staged(p, t, blk, sp) == 0) sema_free_sample(sp);
                    free(sp);
                    continue;
                }
                sema_build_block(p, t, blk, 0, l == 0, &bg);
                ir_free(&bg.g);
            }
    }
    for (int i = 0; i < p->nsamples; i++) {
        if (sema_sample_has_loops(p->samples[i])) {
            SampleProgram *sp = xmalloc(sizeof *sp);
            if (sema_build_sample(p, p->samples[i], sp) == 0) sema_free_sample(sp);
            free(sp);
            continue;
        }
        BlockGraph bg;
        sema_build_block(p, NULL, p->samples[i], 0, 0, &bg);
        ir_free(&bg.g);
    }
}

Program *sema_load(const char *path, Override *ov, int nov) {
    Node *ast = parse_file(ast_intern(path));
    if (!ast) return NULL;
    Program *p = xmalloc(sizeof *p);
    sample_scope = NULL;
    p->path = path;
    p->ast = ast;
    p->overrides = ov;
    p->noverrides = nov;
    /* builtins <- the standard library's declarations <- the program's: a program's names
     * shadow the library's, and library layers resolve names in their own scope only */
    Scope *lib = scope_new(builtin_scope());
    Scope *g = scope_new(lib);
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

static int init_param(Param *pr, Rng *rng) {
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
        return 0;
    }
    case INIT_FILE: return param_file_fill(pr);
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
        return 0;
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
    return 0;
}

int sema_init_params(Program *p, uint64_t seed) {
    for (int i = 0; i < p->params.n; i++) {
        Rng rng;
        rng_init(&rng, seed * 1000003u + (uint64_t)i * 7919u + 1);   /* one stream per parameter */
        if (init_param(&p->params.items[i], &rng) != 0) return -1;
    }
    return 0;
}

int sema_summary(Program *p, FILE *f) {
    for (int ti = 0; ti < p->ntrains; ti++) {
        Train *t = &p->trains[ti];
        for (int k = 0; k < t->ninst; k++) {
            Instance *in = &t->inst[k];
            /* trainable here: named by one of this block's optimizers. An instance taken from
             * an earlier block (`E1 = ae1.E1`) and left out of them is frozen in this one, and
             * so is one the block declares but gives to none (M28's VGG); a block with no
             * optimizer at all (a model written to be summarised) counts what it declares as
             * trainable, as its layers say */
            int optimised = !in->from && t->nopt == 0;
            for (int o = 0; o < t->nopt; o++)
                for (int j = 0; j < t->opt[o].nowners; j++) optimised |= !strcmp(t->opt[o].owners[j], in->name);
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
                    if (p->params.items[i].trainable && optimised) total += p->params.items[i].size;
                    else frozen += p->params.items[i].size;
                }
            if (in->from)
                fprintf(f, "Model: %s (instance %s of train block %s, in block %s)\n", in->model->name, in->name,
                        p->trains[in->from - 1].name, t->name);
            else fprintf(f, "Model: %s (instance %s)\n", in->model->name, in->name);
            fprintf(f, "%-32s %-24s %12s\n", "Layer", "Output shape", "Param #");
            fprintf(f, "%.*s\n", 70, "======================================================================");
            for (int i = 0; i < c.nrows; i++) {
                char shp[128];
                int n = snprintf(shp, sizeof shp, "(None");
                for (int d = 1; d < rows[i].ndim; d++) n += snprintf(shp + n, sizeof shp - n, ", %lld", (long long)rows[i].shape[d]);
                snprintf(shp + n, sizeof shp - n, ")");
                fprintf(f, "%-32s %-24s %12lld\n", rows[i].name, shp, (long long)params_under(p, rows[i].name));
            }
            /* a parameter the model body creates itself (StyleGAN's constant input) is no
             * layer's: a row of its own, with its shape (no batch axis) */
            size_t ol = strlen(in->name);
            for (int i = 0; i < p->params.n; i++) {
                Param *pr = &p->params.items[i];
                if (strcmp(pr->owner, in->name) || strncmp(pr->name, in->name, ol) ||
                    pr->name[ol] != '.' || strchr(pr->name + ol + 1, '.')) continue;
                char shp[128];
                int n = snprintf(shp, sizeof shp, "(");
                for (int d = 0; d < pr->ndim; d++)
                    n += snprintf(shp + n, sizeof shp - n, d ? ", %lld" : "%lld", (long long)pr->shape[d]);
                snprintf(shp + n, sizeof shp - n, ")");
                fprintf(f, "%-32s %-24s %12lld\n", pr->name, shp, (long long)pr->size);
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
