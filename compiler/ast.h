/* ast.h: the abstract syntax tree the parser builds (grammar/gm.y) and sema reads.
 * Every node carries its source location for diagnostics. */
#ifndef GMC_AST_H
#define GMC_AST_H

typedef struct Loc { const char *file; int line, col; } Loc;

typedef enum NodeKind {
    /* expressions */
    N_NUM,       /* num, is_int, name = source spelling ("784", "1e-3"); `true`/`false` are
                    N_NUM 1/0 with is_int set and name "true"/"false" */
    N_STR,       /* name = contents, escapes resolved, "{...}" kept verbatim */
    N_NAME,      /* name */
    N_BINOP,     /* op in "+ - * / @ % ** < > <= >= == != and or", a, b */
    N_UNOP,      /* op in "- not", a */
    N_CALL,      /* a = callee (N_NAME or N_ATTR), list = args (exprs or N_NAMEDARG); `x | f(a)` is
                    desugared to f(x, a) and `x | f` to f(x), with `piped` set */
    N_NAMEDARG,  /* name: a */
    N_ATTR,      /* a.name */
    N_INDEX,     /* a[list]: list items are exprs or N_SLICE */
    N_SLICE,     /* lo:hi:step inside [ ]: a, b, c (each NULL when left out) */
    N_TUPLE,     /* list: (a, b) or bracketed array [a, b, c] (is_array set) */
    N_COND,      /* `a if c else b` */
    /* statements */
    N_ASSIGN,    /* list = targets (N_NAME), a = value */
    N_RETURN,    /* list = values (exprs or N_NAMEDARG for named outputs) */
    N_PARAM,     /* `param W[d0, d1] = init if cond`: name, list = dims, a = init, b = cond (or NULL) */
    N_STATE,     /* `state s[d] = init`: same fields as N_PARAM */
    N_EXPR,      /* a = expression statement */
    N_MINIMIZE,  /* `minimize a with name` (name = optimizer) */
    N_SAVE,      /* `save a to b` */
    N_CHECKPOINT,/* `checkpoint` */
    N_REPORT,    /* `report name: a` or `report a` (name NULL) */
    N_OPTIMIZER, /* `optimizer name = a` (a is a call) */
    N_SETTING,   /* `epochs 10`, `steps 4000`: name = keyword, a = value */
    N_STEP,      /* `step name { list }` (name may be NULL) */
    N_REPEAT,    /* `repeat a { list }` */
    N_EVERY,     /* `every a epoch|epochs|step|steps { list }`: name = "epoch" or "step" */
    N_VALIDATE,  /* `validate name { list }` (name may be NULL) */
    N_IF,        /* `if a { list } else { list2 }` */
    N_FOR,       /* `for name in a { list }` */
    /* declarations */
    N_IMPORT,    /* `import std.nn`: name = "std.nn" */
    N_CONST,     /* `const name = a` */
    N_DATA,      /* `data name = a` */
    N_ARG,       /* formal argument of a layer/sample: name, a = default (or NULL) */
    N_INPUT,     /* model input: `name[d0, d1]` or `name: int[d]`: name, list = dims, is_int */
    N_LAYER,     /* `layer name(list of N_ARG) { list2 }` */
    N_MODEL,     /* `model name(list of N_INPUT) { list2 }` */
    N_TRAIN,     /* `train name { list2 }` */
    N_SAMPLE,    /* `sample name(list of N_ARG) { list2 }` */
    N_PROGRAM    /* list2 = declarations */
} NodeKind;

typedef struct Node Node;
typedef struct NodeList { Node **items; int n, cap; } NodeList;

struct Node {
    NodeKind kind;
    Loc loc;            /* where the construct starts (operator position for N_BINOP) */
    const char *name;   /* identifier, string contents, operator spelling, keyword */
    double num;
    int is_int;         /* N_NUM written without '.' or exponent; N_INPUT of int type */
    int is_array;       /* N_TUPLE written with [ ] */
    int piped;          /* N_CALL produced by `|` */
    Node *a, *b, *c;
    NodeList list, list2;
};

Node *ast_new(NodeKind kind, Loc loc);
void nodelist_push(NodeList *l, Node *n);
const char *ast_intern(const char *s);   /* strings live for the whole run */
const char *ast_kind_name(NodeKind k);  /* "NUM", "CALL", ... (the enumerator without N_) */
void ast_free(Node *n);                 /* a node and everything under it; NULL is fine */

/* Parse one file; reports syntax errors through diag and returns NULL if there were any. */
Node *parse_file(const char *path);
/* Parse text held in memory (tests, stdlib); `path` is used in diagnostics. */
Node *parse_string(const char *path, const char *text);

#endif
