/* gm.y: the grammar of .gm programs; builds the AST of compiler/ast.h.
 *
 * Statements end at a TERM token: the scanner (gm.l) turns a newline into TERM only where
 * a statement can end (outside ( ) and [ ], after a token that can end one), and also
 * sends a TERM for `;`, before a `}` and at end of file. So every statement below is
 * followed by exactly one TERM, and a bad statement can be skipped up to the next TERM
 * (or over a whole `{ ... }` body), which lets one run report every syntax error.
 *
 * Precedence, lowest first: `a if c else b`, `|`, or, and, not, comparisons
 * (non-associative), + -, * / % @, unary -, ** (right-associative), postfix call/index/attr.
 * The levels are written out as nonterminals rather than %left/%right so there is nothing
 * for bison to resolve: the grammar has no conflicts at all (%expect 0).
 */

%code requires {
#include <stddef.h>
#include "ast.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* The last token the scanner returned, as far as newlines care. */
enum {
    LAST_TERM,        /* a TERM, or nothing yet: newlines are blank lines */
    LAST_OPEN_BRACE,  /* `{`: no TERM is needed before a `}` that follows */
    LAST_ENDS,        /* a token that can end a statement: a newline is a TERM */
    LAST_CONT         /* an operator, `,`, `=`, `(` ...: the statement goes on */
};

/* What a TERM token stood for, to name it in messages. */
enum { TERM_NEWLINE, TERM_SEMICOLON, TERM_BRACE, TERM_EOF };

typedef struct Bracket { char ch; Loc loc; } Bracket;

/* Everything one parse shares between the scanner and the parser. */
typedef struct ParseState {
    const char *file;           /* interned; every Loc points at it */
    int line, col;              /* position of the next character to scan */
    int end_line, end_col;      /* just past the last token returned */
    int last;                   /* LAST_* */
    Bracket *brackets;          /* open ( [ { not yet closed, innermost last */
    int n_brackets, cap_brackets;
    char tok_text[48];          /* spelling of the last token, for "unexpected ..." */
    int term_kind;              /* TERM_* of the last TERM */
    Node *result;               /* the N_PROGRAM, once accepted */
} ParseState;
}

%code provides {
int yylex(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner);
/* After a syntax error: forget open ( and [ back to the enclosing { and treat the next
 * newline as a TERM, so that error recovery resumes at the end of the current line. */
void gm_lex_recover(ParseState *ps);
/* Parse `len` bytes of `text`; `file` must be interned. NULL if the parser gave up. */
Node *gm_parse(const char *file, const char *text, size_t len);
}

%code {
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "diag.h"

static void yyerror(YYLTYPE *loc, yyscan_t scanner, ParseState *ps, const char *msg);

/* Locations are just the start of a construct: the first symbol's. */
#define YYLLOC_DEFAULT(Cur, Rhs, N) ((Cur) = (N) ? YYRHSLOC(Rhs, 1) : YYRHSLOC(Rhs, 0))

static const char *op(const char *s) { return ast_intern(s); }

static Node *mk_name(Loc loc, const char *name) {
    Node *n = ast_new(N_NAME, loc);
    n->name = name;
    return n;
}

static Node *mk_binop(Loc oploc, const char *spelling, Node *a, Node *b) {
    Node *n = ast_new(N_BINOP, oploc);
    n->name = op(spelling);
    n->a = a;
    n->b = b;
    return n;
}

static Node *mk_unop(Loc loc, const char *spelling, Node *a) {
    Node *n = ast_new(N_UNOP, loc);
    n->name = op(spelling);
    n->a = a;
    return n;
}

/* kind name a: the shape of const, data, setting, report, optimizer, namedarg, attr */
static Node *mk_named(NodeKind kind, Loc loc, const char *name, Node *a) {
    Node *n = ast_new(kind, loc);
    n->name = name;
    n->a = a;
    return n;
}

static Node *mk_block(NodeKind kind, Loc loc, const char *name, Node *a, NodeList body) {
    Node *n = mk_named(kind, loc, name, a);
    n->list = body;
    return n;
}

/* param/state NAME[dims] = init [if cond] */
static Node *mk_param(NodeKind kind, Loc loc, const char *name, NodeList dims, Node *init,
                      Node *cond) {
    Node *n = mk_named(kind, loc, name, init);
    n->list = dims;
    n->b = cond;
    return n;
}

static NodeList list1(Node *n) {
    NodeList l = {0};
    nodelist_push(&l, n);
    return l;
}

static void list_free(NodeList *l) {
    for (int i = 0; i < l->n; i++) ast_free(l->items[i]);
    free(l->items);
    *l = (NodeList){0};
}

/* `x | call` is call with x as its first argument. */
static Node *pipe_into(Node *x, Node *call) {
    NodeList args = list1(x);
    for (int i = 0; i < call->list.n; i++) nodelist_push(&args, call->list.items[i]);
    free(call->list.items);
    call->list = args;
    call->piped = 1;
    return call;
}

static const char *join_dotted(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (!s) { fprintf(stderr, "gmc: out of memory\n"); abort(); }
    memcpy(s, a, na);
    s[na] = '.';
    memcpy(s + na + 1, b, nb + 1);
    const char *interned = ast_intern(s);
    free(s);
    return interned;
}
}

%define api.pure full
%define api.location.type {Loc}
%define parse.error custom
%define parse.lac full
%locations
%param {yyscan_t scanner}
%parse-param {ParseState *ps}
%expect 0

%initial-action { @$ = (Loc){ps->file, 1, 1}; }

%union {
    Node *node;
    NodeList list;
    const char *str;
    int term;
}

%token <str> IDENT "identifier"
%token <str> STRING "string"
%token <node> NUMBER "number"   /* the lexer builds the N_NUM; true/false too */
%token <term> TERM "end of line"

%token IMPORT "import" CONST "const" DATA "data" LAYER "layer" MODEL "model"
       TRAIN "train" SAMPLE "sample" PARAM "param" STATE "state" RETURN "return"
       MINIMIZE "minimize" WITH "with" SAVE "save" TO "to" CHECKPOINT "checkpoint"
       REPORT "report" OPTIMIZER "optimizer" REPEAT "repeat" EVERY "every"
       VALIDATE "validate" IF "if" ELSE "else" FOR "for" IN "in" AND "and" OR "or" NOT "not"
       EPOCH "epoch" EPOCHS "epochs" STEP "step" STEPS "steps"
%token POW "**" LE "<=" GE ">=" EQ "==" NE "!=" LT "<" GT ">"
%token PLUS "+" MINUS "-" STAR "*" SLASH "/" PERCENT "%" AT "@" PIPE "|"
%token ASSIGN "=" COMMA "," COLON ":" DOT "."
%token LPAREN "(" RPAREN ")" LBRACKET "[" RBRACKET "]" LBRACE "{" RBRACE "}"

%type <list> decls stmts block formals formal_list inputs input_list dims expr_list
%type <list> args arg_list targets index_list
%type <node> index_item opt_expr
%type <node> decl formal input stmt if_stmt arg
%type <node> expr pipe_expr pipe_target callee or_expr and_expr not_expr cmp_expr
%type <node> sum term unary power postfix atom
%type <str> dotted softname cmp_op unit

%destructor { ast_free($$); } <node>
%destructor { list_free(&$$); } <list>

%%

program:
    decls {
        Node *n = ast_new(N_PROGRAM, (Loc){ps->file, 1, 1});
        n->list2 = $1;
        ps->result = n;
    }
  ;

/* ---- declarations ------------------------------------------------------------------- */

decls:
    %empty                      { $$ = (NodeList){0}; }
  | decls TERM                  { $$ = $1; }
  | decls decl TERM             { $$ = $1; nodelist_push(&$$, $2); }
  | decls error TERM            { $$ = $1; yyerrok; }
  | decls error block TERM      { $$ = $1; list_free(&$3); yyerrok; }
  ;

decl:
    IMPORT dotted               { $$ = mk_named(N_IMPORT, @1, $2, NULL); }
  | CONST IDENT "=" expr        { $$ = mk_named(N_CONST, @1, $2, $4); }
    /* `data` is also a name: `const data = "dir"`, `--set data=DIR` */
  | CONST DATA "=" expr         { $$ = mk_named(N_CONST, @1, op("data"), $4); }
  | DATA IDENT "=" expr         { $$ = mk_named(N_DATA, @1, $2, $4); }
  | LAYER IDENT "(" formals ")" block {
        $$ = mk_named(N_LAYER, @1, $2, NULL); $$->list = $4; $$->list2 = $6;
    }
  | MODEL IDENT "(" inputs ")" block {
        $$ = mk_named(N_MODEL, @1, $2, NULL); $$->list = $4; $$->list2 = $6;
    }
  | TRAIN IDENT block           { $$ = mk_named(N_TRAIN, @1, $2, NULL); $$->list2 = $3; }
  | SAMPLE IDENT "(" formals ")" block {
        $$ = mk_named(N_SAMPLE, @1, $2, NULL); $$->list = $4; $$->list2 = $6;
    }
  | SAMPLE IDENT block          { $$ = mk_named(N_SAMPLE, @1, $2, NULL); $$->list2 = $3; }
  ;

dotted:
    IDENT                       { $$ = $1; }
  | dotted "." IDENT            { $$ = join_dotted($1, $3); }
  ;

formals:
    %empty                      { $$ = (NodeList){0}; }
  | formal_list opt_comma       { $$ = $1; }
  ;

formal_list:
    formal                      { $$ = list1($1); }
  | formal_list "," formal      { $$ = $1; nodelist_push(&$$, $3); }
  ;

formal:
    IDENT                       { $$ = mk_named(N_ARG, @1, $1, NULL); }
  | IDENT "=" expr              { $$ = mk_named(N_ARG, @1, $1, $3); }
  ;

inputs:
    %empty                      { $$ = (NodeList){0}; }
  | input_list opt_comma        { $$ = $1; }
  ;

input_list:
    input                       { $$ = list1($1); }
  | input_list "," input        { $$ = $1; nodelist_push(&$$, $3); }
  ;

/* x[28, 28] | label: int | t: int[4]. Element types are float unless declared int. */
input:
    IDENT "[" dims "]"          { $$ = mk_named(N_INPUT, @1, $1, NULL); $$->list = $3; }
  | IDENT ":" IDENT             {
        $$ = mk_named(N_INPUT, @1, $1, NULL);
        if (strcmp($3, "int") == 0) $$->is_int = 1;
        else diag_error(@3, "unknown input type '%s': an input is float unless declared "
                            "'int'", $3);
    }
  | IDENT ":" IDENT "[" dims "]" {
        $$ = mk_named(N_INPUT, @1, $1, NULL); $$->list = $5;
        if (strcmp($3, "int") == 0) $$->is_int = 1;
        else diag_error(@3, "unknown input type '%s': an input is float unless declared "
                            "'int'", $3);
    }
  ;

dims:
    %empty                      { $$ = (NodeList){0}; }
  | expr_list opt_comma         { $$ = $1; }
  ;

expr_list:
    expr                        { $$ = list1($1); }
  | expr_list "," expr          { $$ = $1; nodelist_push(&$$, $3); }
  ;

opt_comma: %empty | "," ;

/* ---- statements --------------------------------------------------------------------- */

block:
    "{" stmts "}"               { $$ = $2; }
  ;

stmts:
    %empty                      { $$ = (NodeList){0}; }
  | stmts TERM                  { $$ = $1; }
  | stmts stmt TERM             { $$ = $1; nodelist_push(&$$, $2); }
  | stmts error TERM            { $$ = $1; yyerrok; }
  | stmts error block TERM      { $$ = $1; list_free(&$3); yyerrok; }
  ;

stmt:
    targets "=" expr            { $$ = ast_new(N_ASSIGN, @1); $$->list = $1; $$->a = $3; }
  | RETURN                      { $$ = ast_new(N_RETURN, @1); }
  | RETURN arg_list             { $$ = ast_new(N_RETURN, @1); $$->list = $2; }
  | PARAM IDENT "[" dims "]" "=" expr {
        $$ = mk_param(N_PARAM, @1, $2, $4, $7, NULL);
    }
    /* `= zeros if bias` with no else: the condition belongs to the statement. A
     * conditional initialiser then needs parentheses: `= (a if c else b) if bias`. */
  | PARAM IDENT "[" dims "]" "=" pipe_expr IF pipe_expr {
        $$ = mk_param(N_PARAM, @1, $2, $4, $7, $9);
    }
  | STATE IDENT "[" dims "]" "=" expr {
        $$ = mk_param(N_STATE, @1, $2, $4, $7, NULL);
    }
  | STATE IDENT "[" dims "]" "=" pipe_expr IF pipe_expr {
        $$ = mk_param(N_STATE, @1, $2, $4, $7, $9);
    }
  | MINIMIZE expr WITH IDENT    { $$ = mk_named(N_MINIMIZE, @1, $4, $2); }
  | SAVE expr TO expr           { $$ = mk_named(N_SAVE, @1, NULL, $2); $$->b = $4; }
  | CHECKPOINT                  { $$ = ast_new(N_CHECKPOINT, @1); }
  | REPORT softname ":" expr    { $$ = mk_named(N_REPORT, @1, $2, $4); }
  | REPORT expr                 { $$ = mk_named(N_REPORT, @1, NULL, $2); }
  | OPTIMIZER IDENT "=" expr    { $$ = mk_named(N_OPTIMIZER, @1, $2, $4); }
  | EPOCHS expr                 { $$ = mk_named(N_SETTING, @1, op("epochs"), $2); }
  | STEPS expr                  { $$ = mk_named(N_SETTING, @1, op("steps"), $2); }
  | STEP block                  { $$ = mk_block(N_STEP, @1, NULL, NULL, $2); }
  | STEP IDENT block            { $$ = mk_block(N_STEP, @1, $2, NULL, $3); }
  | REPEAT expr block           { $$ = mk_block(N_REPEAT, @1, NULL, $2, $3); }
  | EVERY expr unit block       { $$ = mk_block(N_EVERY, @1, $3, $2, $4); }
  | VALIDATE block              { $$ = mk_block(N_VALIDATE, @1, NULL, NULL, $2); }
  | VALIDATE IDENT block        { $$ = mk_block(N_VALIDATE, @1, $2, NULL, $3); }
  | if_stmt                     { $$ = $1; }
  | FOR IDENT IN expr block     { $$ = mk_block(N_FOR, @1, $2, $4, $5); }
  | expr                        { $$ = mk_named(N_EXPR, @1, NULL, $1); }
  ;

targets:
    IDENT                       { $$ = list1(mk_name(@1, $1)); }
  | targets "," IDENT           { $$ = $1; nodelist_push(&$$, mk_name(@3, $3)); }
  ;

unit:
    EPOCH                       { $$ = op("epoch"); }
  | EPOCHS                      { $$ = op("epoch"); }
  | STEP                        { $$ = op("step"); }
  | STEPS                       { $$ = op("step"); }
  ;

if_stmt:
    IF expr block               { $$ = mk_block(N_IF, @1, NULL, $2, $3); }
  | IF expr block ELSE block    { $$ = mk_block(N_IF, @1, NULL, $2, $3); $$->list2 = $5; }
  | IF expr block ELSE if_stmt  {
        $$ = mk_block(N_IF, @1, NULL, $2, $3); $$->list2 = list1($5);
    }
  ;

/* ---- expressions -------------------------------------------------------------------- */

expr:
    pipe_expr                   { $$ = $1; }
  | pipe_expr IF pipe_expr ELSE expr {
        $$ = ast_new(N_COND, @1); $$->a = $1; $$->c = $3; $$->b = $5;
    }
  ;

pipe_expr:
    or_expr                     { $$ = $1; }
  | pipe_expr "|" pipe_target   { $$ = pipe_into($1, $3); }
  ;

/* f | f(a, b) | m.f(a): a call without its first argument */
pipe_target:
    callee                      { $$ = ast_new(N_CALL, $1->loc); $$->a = $1; }
  | callee "(" args ")"         { $$ = ast_new(N_CALL, $1->loc); $$->a = $1; $$->list = $3; }
  ;

callee:
    IDENT                       { $$ = mk_name(@1, $1); }
  | callee "." softname         { $$ = mk_named(N_ATTR, @1, $3, $1); }
  ;

or_expr:
    and_expr                    { $$ = $1; }
  | or_expr OR and_expr         { $$ = mk_binop(@2, "or", $1, $3); }
  ;

and_expr:
    not_expr                    { $$ = $1; }
  | and_expr AND not_expr       { $$ = mk_binop(@2, "and", $1, $3); }
  ;

not_expr:
    cmp_expr                    { $$ = $1; }
  | NOT not_expr                { $$ = mk_unop(@1, "not", $2); }
  ;

cmp_expr:
    sum                         { $$ = $1; }
  | sum cmp_op sum              { $$ = mk_binop(@2, $2, $1, $3); }
  ;

cmp_op:
    "<" { $$ = op("<"); } | ">" { $$ = op(">"); } | LE { $$ = op("<="); }
  | GE { $$ = op(">="); } | EQ { $$ = op("=="); } | NE { $$ = op("!="); }
  ;

sum:
    term                        { $$ = $1; }
  | sum "+" term                { $$ = mk_binop(@2, "+", $1, $3); }
  | sum "-" term                { $$ = mk_binop(@2, "-", $1, $3); }
  ;

term:
    unary                       { $$ = $1; }
  | term "*" unary              { $$ = mk_binop(@2, "*", $1, $3); }
  | term "/" unary              { $$ = mk_binop(@2, "/", $1, $3); }
  | term "%" unary              { $$ = mk_binop(@2, "%", $1, $3); }
  | term "@" unary              { $$ = mk_binop(@2, "@", $1, $3); }
  ;

unary:
    power                       { $$ = $1; }
  | "-" unary                   { $$ = mk_unop(@1, "-", $2); }
  ;

/* -x ** 2 is -(x ** 2); 2 ** -1 is fine; a ** b ** c is a ** (b ** c) */
power:
    postfix                     { $$ = $1; }
  | postfix POW unary           { $$ = mk_binop(@2, "**", $1, $3); }
  ;

postfix:
    atom                        { $$ = $1; }
  | postfix "(" args ")"        { $$ = ast_new(N_CALL, $1->loc); $$->a = $1; $$->list = $3; }
  | postfix "[" index_list opt_comma "]" {
        $$ = ast_new(N_INDEX, @1); $$->a = $1; $$->list = $3;
    }
  | postfix "." softname        { $$ = mk_named(N_ATTR, @1, $3, $1); }
  ;

/* a[i], a[1:], a[:-1], a[::-1], x[:, 0]: an index or a slice per axis */
index_list:
    index_item                  { $$ = list1($1); }
  | index_list "," index_item   { $$ = $1; nodelist_push(&$$, $3); }
  ;

index_item:
    expr                        { $$ = $1; }
  | opt_expr ":" opt_expr       {
        $$ = ast_new(N_SLICE, $1 ? $1->loc : @2); $$->a = $1; $$->b = $3;
    }
  | opt_expr ":" opt_expr ":" opt_expr {
        $$ = ast_new(N_SLICE, $1 ? $1->loc : @2); $$->a = $1; $$->b = $3; $$->c = $5;
    }
  ;

opt_expr:
    %empty                      { $$ = NULL; }
  | expr                        { $$ = $1; }
  ;

args:
    %empty                      { $$ = (NodeList){0}; }
  | arg_list opt_comma          { $$ = $1; }
  ;

arg_list:
    arg                         { $$ = list1($1); }
  | arg_list "," arg            { $$ = $1; nodelist_push(&$$, $3); }
  ;

arg:
    expr                        { $$ = $1; }
  | softname ":" expr           { $$ = mk_named(N_NAMEDARG, @1, $1, $3); }
  ;

/* Names after `.` and before `:` may also be the soft keywords: f(step: 2), t.epoch */
softname:
    IDENT                       { $$ = $1; }
  | EPOCH                       { $$ = op("epoch"); }
  | EPOCHS                      { $$ = op("epochs"); }
  | STEP                        { $$ = op("step"); }
  | STEPS                       { $$ = op("steps"); }
  ;

atom:
    NUMBER                      { $$ = $1; }
  | STRING                      { $$ = ast_new(N_STR, @1); $$->name = $1; }
  | IDENT                       { $$ = mk_name(@1, $1); }
    /* the training loop's counters, readable in schedules: lr * 0.5 ** epoch */
  | EPOCH                       { $$ = mk_name(@1, op("epoch")); }
  | STEP                        { $$ = mk_name(@1, op("step")); }
  | DATA                        { $$ = mk_name(@1, op("data")); }
  | "(" expr ")"                { $$ = $2; }
  | "(" expr "," ")"            { $$ = ast_new(N_TUPLE, @1); $$->list = list1($2); }
  | "(" expr "," expr_list opt_comma ")" {
        $$ = ast_new(N_TUPLE, @1);
        $$->list = list1($2);
        for (int i = 0; i < $4.n; i++) nodelist_push(&$$->list, $4.items[i]);
        free($4.items);
    }
  | "[" dims "]"                { $$ = ast_new(N_TUPLE, @1); $$->list = $2; $$->is_array = 1; }
  ;

%%

/* ---- syntax error messages ----------------------------------------------------------- */

/* How an expected token is named: keywords and punctuation quoted, the rest in words. */
static const char *symbol_text(yysymbol_kind_t sym, char *buf, size_t size) {
    switch (sym) {
    case YYSYMBOL_YYEOF:  return "end of file";
    case YYSYMBOL_TERM:   return "end of line";
    case YYSYMBOL_IDENT:  return "identifier";
    case YYSYMBOL_NUMBER: return "number";
    case YYSYMBOL_STRING: return "string";
    default: break;
    }
    snprintf(buf, size, "'%s'", yysymbol_name(sym));   /* keywords, punctuation */
    return buf;
}

/* The token the parser choked on, with its spelling where that helps. */
static void describe_lookahead(const ParseState *ps, yysymbol_kind_t sym, char *buf,
                               size_t size) {
    char tmp[64];
    switch (sym) {
    case YYSYMBOL_TERM: {
        static const char *const what[] = {
            [TERM_NEWLINE] = "end of line", [TERM_SEMICOLON] = "';'",
            [TERM_BRACE] = "'}'", [TERM_EOF] = "end of file",
        };
        snprintf(buf, size, "%s", what[ps->term_kind]);
        return;
    }
    case YYSYMBOL_IDENT:
        snprintf(buf, size, "identifier '%s'", ps->tok_text);
        return;
    case YYSYMBOL_NUMBER:
        if (strcmp(ps->tok_text, "true") == 0 || strcmp(ps->tok_text, "false") == 0)
            snprintf(buf, size, "'%s'", ps->tok_text);
        else
            snprintf(buf, size, "number '%s'", ps->tok_text);
        return;
    case YYSYMBOL_STRING:
        snprintf(buf, size, "string %s", ps->tok_text);
        return;
    default:
        snprintf(buf, size, "%s", symbol_text(sym, tmp, sizeof tmp));
    }
}

static int has(const yysymbol_kind_t *set, int n, yysymbol_kind_t sym) {
    for (int i = 0; i < n; i++)
        if (set[i] == sym) return 1;
    return 0;
}

static int remove_all(yysymbol_kind_t *set, int n, const yysymbol_kind_t *drop, int ndrop) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!has(drop, ndrop, set[i])) set[k++] = set[i];
    return k;
}

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* "expected ')', ',' or expression": whole families of tokens are named once, and the
 * operators that could always continue an expression are left out. */
static void describe_expected(yysymbol_kind_t *exp, int n, char *buf, size_t size) {
    static const yysymbol_kind_t expr_start[] = {
        YYSYMBOL_IDENT, YYSYMBOL_NUMBER, YYSYMBOL_STRING, YYSYMBOL_LPAREN, YYSYMBOL_EPOCH,
        YYSYMBOL_STEP, YYSYMBOL_DATA, YYSYMBOL_NOT, YYSYMBOL_LBRACKET, YYSYMBOL_MINUS,
    };
    static const yysymbol_kind_t stmt_start[] = {
        YYSYMBOL_RETURN, YYSYMBOL_PARAM, YYSYMBOL_STATE, YYSYMBOL_MINIMIZE, YYSYMBOL_SAVE,
        YYSYMBOL_CHECKPOINT, YYSYMBOL_REPORT, YYSYMBOL_OPTIMIZER, YYSYMBOL_EPOCHS,
        YYSYMBOL_STEPS, YYSYMBOL_REPEAT, YYSYMBOL_EVERY, YYSYMBOL_VALIDATE, YYSYMBOL_IF,
        YYSYMBOL_FOR, YYSYMBOL_TERM,
    };
    static const yysymbol_kind_t decl_start[] = {
        YYSYMBOL_IMPORT, YYSYMBOL_CONST, YYSYMBOL_DATA, YYSYMBOL_LAYER, YYSYMBOL_MODEL,
        YYSYMBOL_TRAIN, YYSYMBOL_SAMPLE, YYSYMBOL_TERM, YYSYMBOL_YYEOF,
    };
    static const yysymbol_kind_t operators[] = {
        YYSYMBOL_PLUS, YYSYMBOL_MINUS, YYSYMBOL_STAR, YYSYMBOL_SLASH, YYSYMBOL_PERCENT, YYSYMBOL_AT,
        YYSYMBOL_POW, YYSYMBOL_LT, YYSYMBOL_GT, YYSYMBOL_LE, YYSYMBOL_GE, YYSYMBOL_EQ,
        YYSYMBOL_NE, YYSYMBOL_AND, YYSYMBOL_OR, YYSYMBOL_PIPE, YYSYMBOL_IF, YYSYMBOL_LPAREN,
        YYSYMBOL_LBRACKET, YYSYMBOL_DOT,
    };
    static const yysymbol_kind_t soft_names[] = { YYSYMBOL_EPOCHS, YYSYMBOL_STEPS };
    const char *family[3];
    int nfamily = 0;
    if (has(exp, n, YYSYMBOL_IMPORT) && has(exp, n, YYSYMBOL_LAYER)) {
        n = remove_all(exp, n, decl_start, COUNT(decl_start));
        family[nfamily++] = "declaration";
    }
    if (has(exp, n, YYSYMBOL_MINIMIZE) && has(exp, n, YYSYMBOL_RETURN)) {
        n = remove_all(exp, n, stmt_start, COUNT(stmt_start));
        n = remove_all(exp, n, expr_start, COUNT(expr_start));
        family[nfamily++] = "statement";
    }
    if (has(exp, n, YYSYMBOL_PLUS) && has(exp, n, YYSYMBOL_STAR))   /* '+' and '*' */
        n = remove_all(exp, n, operators, COUNT(operators));
    if (has(exp, n, YYSYMBOL_IDENT) && has(exp, n, YYSYMBOL_NUMBER) &&
        has(exp, n, YYSYMBOL_LPAREN)) {
        n = remove_all(exp, n, expr_start, COUNT(expr_start));
        n = remove_all(exp, n, soft_names, COUNT(soft_names));   /* as in f(epochs: 3) */
        family[nfamily++] = "expression";
    }
    buf[0] = '\0';
    int total = nfamily + n;
    if (total == 0 || total > 6) return;
    size_t len = 0;
    for (int i = 0; i < total; i++) {
        char tmp[64];
        const char *item = i < nfamily ? family[i] : symbol_text(exp[i - nfamily], tmp,
                                                                 sizeof tmp);
        const char *sep = i == 0 ? ", expected " : i == total - 1 ? " or " : ", ";
        int w = snprintf(buf + len, size - len, "%s%s", sep, item);
        if (w < 0 || (size_t)w >= size - len) break;
        len += (size_t)w;
    }
}

static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner, ParseState *ps) {
    (void)scanner;
    yysymbol_kind_t expected[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, expected, YYNTOKENS);
    if (n < 0) n = 0;
    yysymbol_kind_t sym = yypcontext_token(ctx);
    Loc loc = *yypcontext_location(ctx);

    /* gcc's "to match this '('": when the opener is on another line, point at it too */
    Bracket open = {0};
    if (ps->n_brackets > 0) open = ps->brackets[ps->n_brackets - 1];
    yysymbol_kind_t closer = open.ch == '(' ? YYSYMBOL_RPAREN
                           : open.ch == '[' ? YYSYMBOL_RBRACKET
                           : open.ch == '{' ? YYSYMBOL_RBRACE : YYSYMBOL_YYEMPTY;
    int note = closer != YYSYMBOL_YYEMPTY && has(expected, n, closer) &&
               open.loc.line != loc.line;

    char unexpected[128], exp_text[256];
    describe_lookahead(ps, sym, unexpected, sizeof unexpected);
    describe_expected(expected, n, exp_text, sizeof exp_text);
    diag_error(loc, "syntax error: unexpected %s%s", unexpected, exp_text);
    if (note) diag_note(open.loc, "to match this '%c'", open.ch);
    gm_lex_recover(ps);
    return 0;
}

static void yyerror(YYLTYPE *loc, yyscan_t scanner, ParseState *ps, const char *msg) {
    (void)scanner;
    (void)ps;
    if (strcmp(msg, "memory exhausted") == 0)   /* the parser's stack: YYMAXDEPTH */
        diag_error(*loc, "program nested too deeply");
    else
        diag_error(*loc, "%s", msg);
}
