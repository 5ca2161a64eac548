/* sema_internal.h: what the files of semantic analysis share: values, scopes, the evaluation
 * context, call arguments and the registry of built-in functions. sema.c evaluates programs;
 * sema_util.c holds the helpers below; builtins.c (tensor ops and initialisers),
 * data_builtins.c (data pipelines) and optim_builtins.c (optimisers) define built-ins. */
#ifndef GMC_SEMA_INTERNAL_H
#define GMC_SEMA_INTERNAL_H
#include <stdint.h>
#include "diag.h"
#include "program.h"

typedef enum VKind {
    V_NONE, V_NUM, V_STR, V_TENSOR, V_TUPLE, V_LAYER, V_MODEL, V_INSTANCE, V_DATA, V_STREAM,
    V_OPT, V_INIT, V_BUILTIN, V_ARRAY, V_TRAIN, V_ERROR
} VKind;

typedef struct Value Value;
struct Value {
    VKind kind;
    double num;
    int is_int;
    const char *str;
    int node;              /* V_TENSOR */
    Value *items;          /* V_TUPLE */
    const char **names;    /* V_TUPLE of named outputs (`return mu: m, logvar: v`), or NULL */
    double *arr;           /* V_ARRAY: n compile-time numbers (is_int: all whole), row-major */
    int n;
    int andim;             /* V_ARRAY: its shape, andim >= 1 axes (array_value sets [n]) */
    int ashape[IR_MAXDIM];
    Node *decl;            /* V_LAYER, V_MODEL, V_INSTANCE (the model) */
    const char *name;      /* V_INSTANCE, V_BUILTIN, V_OPT */
    const struct BuiltinDef *builtin;   /* V_BUILTIN */
    int index;             /* V_STREAM, V_OPT, V_TRAIN; V_INSTANCE: 1 + the train block it was
                              taken from (`E1 = ae1.E1`), 0 if declared where it is used */
    DataSpec *data;        /* V_DATA */
    int state;             /* V_TENSOR bound by `state`: the parameter index + 1 */
    Init init;             /* V_INIT */
    float ia, ib;
};

extern const Value none, error_value;

typedef struct Binding { const char *name; Value v; } Binding;
typedef struct Scope {
    struct Scope *parent;
    Binding *b;
    int n, cap;
} Scope;

typedef struct Counter { const char *name; int count; } Counter;

/* Where parameters go and how they are named while evaluating a model body. */
typedef struct ParamCtx {
    const char *prefix;    /* "E" or "E.dense_1"; NULL outside models */
    const char *owner;     /* instance name */
    Counter counters[64];
    int ncounters;
} ParamCtx;

typedef struct SummaryRow { const char *name; int ndim; int64_t shape[IR_MAXDIM]; } SummaryRow;

typedef struct Ctx {
    Program *prog;
    Train *train;
    IrGraph *g;            /* NULL when only compile-time values are allowed */
    BlockGraph *out;
    int batch;
    int training;
    int depth;             /* call depth, against runaway recursion */
    ParamCtx *pc;
    int init_context;      /* evaluating a param initialiser */
    SummaryRow *rows;      /* non-NULL while printing a summary */
    int nrows, model_depth;
    const char *counter;   /* the run-time loop's variable in a sample stage ("{t}" in paths) */
    int select_depth;      /* inside an `if` on a run-time value: both branches are built */
    int sample;            /* evaluating a sampling procedure */
} Ctx;

typedef struct Args {
    Value pos[16];
    Loc pos_loc[16];
    int npos;
    const char *names[16];
    Value named[16];
    Loc named_loc[16];
    int nnamed;
    Loc loc;
} Args;


/* A built-in function. `op` parameterises fn (an IrOp, an Init, ...). Where `init` >= 0 the
 * name is also an initialiser of that Init kind inside `param` initialisers and layer
 * defaults (`zeros`, `normal(0.02)`). Each table ends with an entry whose name is NULL. */
typedef struct BuiltinDef BuiltinDef;
typedef Value (*BuiltinFn)(Ctx *c, Args *a, const BuiltinDef *def);
struct BuiltinDef {
    const char *name;
    BuiltinFn fn;
    int op;
    int init;
};
extern const BuiltinDef tensor_builtins[], data_builtins[], optimizer_builtins[], model_builtins[];

/* sema_util.c */
void *xmalloc(size_t n);
const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
const char *shape_str(int ndim, const int64_t *shape);
const char *node_shape(Ctx *c, int node);
const char *kind_name(VKind k);
Scope *scope_new(Scope *parent);
void scope_set(Scope *s, const char *name, Value v);
Value *scope_get(Scope *s, const char *name);
Value num_value(double x, int is_int);
Value tensor_value(int node);
Value *named(Args *a, const char *name, Loc *loc);      /* consumes the named argument */
int no_other_named(Args *a, const char *fn);             /* -1 after an error if any is left */
int want_num(Value v, Loc loc, const char *what, double *out);
int want_int(Value v, Loc loc, const char *what, int64_t *out);
int need_graph(Ctx *c, Loc loc, const char *what);
int as_tensor(Ctx *c, Value v, Loc loc, const char *what);
Value located(Ctx *c, int node, Loc loc);
Value tensor_binary(Ctx *c, IrOp op, Value a, Value b, Loc loc, const char *what);
int axis_of(Value v, Loc loc, int ndim, int *axis);
unsigned axes_mask_of(Value *v, Loc loc, int ndim, int *err);
int dims_of(Args *a, int from, int64_t *dims, const char *fn);
Scope *builtin_scope(void);
Value builtin_call(Ctx *c, const BuiltinDef *def, Args *a);
Value init_value(const BuiltinDef *def, Args *a);        /* builtins.c */

/* arrays.c: compile-time arrays ([0.1, 0.2], range, linspace, cumprod ...). Builtins applied
 * to compile-time values only fold (array_fold); a tensor among the arguments builds IR. */
extern const BuiltinDef array_builtins[];
Value array_value(int n);                                /* zeros, is_int set, shape [n] */
Value array_shaped(int nd, const int *dims);             /* zeros of shape dims[nd] */
int array_shape(Value v, int *dims);                     /* rank and shape; 0 for a number */
const char *array_shape_str(Value v);                    /* "[2, 3]" */
Value array_row(Value a, int i);                         /* a[i]: a number or an array */
Value array_stack(const Value *rows, int n, int *bad);   /* rows of one shape stacked */
int is_array_like(Value v);                              /* a number or an array */
Value array_fold(Ctx *c, const BuiltinDef *def, Args *a, int *handled);
Value array_binary(const char *op, Value a, Value b, Loc loc);
Value array_unary(const char *op, Value a, Loc loc);
int array_tensor(Ctx *c, Value v);                       /* an IR_DATA node [n] */
/* One item of a[...]: a value (a number, an array, a tensor) or a slice lo:hi:step. */
typedef struct IndexItem {
    int is_slice;
    Value v;                 /* not a slice */
    int has[3];              /* slice: lo, hi, step given */
    int64_t bound[3];
    Loc loc;
} IndexItem;
/* a[i], a[lo:hi:step] of a compile-time array (a tensor index gathers at run time), and
 * x[:, 0], x[..., 1:3] of a tensor (slices of step 1 and whole numbers) */
Value array_index(Ctx *c, Value a, IndexItem *it, int n, Loc loc);
Value tensor_index(Ctx *c, Value x, IndexItem *it, int n, Loc loc);
#endif
