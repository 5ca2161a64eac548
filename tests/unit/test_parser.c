/* test_parser.c: the front end (grammar/gm.l, grammar/gm.y, compiler/ast.c, diag.c).
 * Tree shapes are checked through a compact S-expression rendering of the AST:
 *   x = a + b @ c      ->  (= (x) (+ a (@ b c)))
 *   h = x | dense(5)   ->  (= (h) (pipe dense x 5))
 * Malformed programs are checked by the exact position and text of their diagnostics,
 * captured with diag_capture. */
#include "check.h"
#include "ast.h"
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- S-expressions --------------------------------------------------------------------- */

typedef struct Buf { char *s; size_t n, cap; } Buf;

static void put(Buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int w = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (w < 0) return;
    if ((size_t)w >= sizeof tmp) w = sizeof tmp - 1;
    if (b->n + (size_t)w + 1 > b->cap) {
        b->cap = 2 * (b->n + (size_t)w + 1);
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, tmp, (size_t)w + 1);
    b->n += (size_t)w;
}

static void sx(Buf *b, const Node *n);

static void sx_list(Buf *b, const NodeList *l) {
    for (int i = 0; i < l->n; i++) { put(b, " "); sx(b, l->items[i]); }
}

/* (list...) as one parenthesised group */
static void sx_group(Buf *b, const NodeList *l) {
    put(b, " (");
    for (int i = 0; i < l->n; i++) { if (i) put(b, " "); sx(b, l->items[i]); }
    put(b, ")");
}

static void sx(Buf *b, const Node *n) {
    if (!n) { put(b, "nil"); return; }
    switch (n->kind) {
    case N_NUM:   put(b, "%s", n->name); break;
    case N_STR:   put(b, "\"%s\"", n->name); break;
    case N_NAME:  put(b, "%s", n->name); break;
    case N_BINOP: put(b, "(%s ", n->name); sx(b, n->a); put(b, " "); sx(b, n->b); put(b, ")");
                  break;
    case N_UNOP:  put(b, "(%s ", n->name); sx(b, n->a); put(b, ")"); break;
    case N_CALL:  put(b, "(%s ", n->piped ? "pipe" : "call"); sx(b, n->a); sx_list(b, &n->list);
                  put(b, ")"); break;
    case N_NAMEDARG: put(b, "(%s: ", n->name); sx(b, n->a); put(b, ")"); break;
    case N_ATTR:  put(b, "(. "); sx(b, n->a); put(b, " %s)", n->name); break;
    case N_INDEX: put(b, "(index "); sx(b, n->a); sx_list(b, &n->list); put(b, ")"); break;
    case N_SLICE: put(b, "(: "); sx(b, n->a); put(b, " "); sx(b, n->b);
                  if (n->c) { put(b, " "); sx(b, n->c); }
                  put(b, ")"); break;
    case N_TUPLE: put(b, "(%s", n->is_array ? "array" : "tuple"); sx_list(b, &n->list);
                  put(b, ")"); break;
    case N_COND:  put(b, "(? "); sx(b, n->c); put(b, " "); sx(b, n->a); put(b, " ");
                  sx(b, n->b); put(b, ")"); break;
    case N_ASSIGN: put(b, "(="); sx_group(b, &n->list); put(b, " "); sx(b, n->a); put(b, ")");
                  break;
    case N_PARAM: case N_STATE:
        put(b, "(%s %s", n->kind == N_PARAM ? "param" : "state", n->name);
        sx_group(b, &n->list); put(b, " "); sx(b, n->a);
        if (n->b) { put(b, " if "); sx(b, n->b); }
        put(b, ")");
        break;
    case N_IF:
        put(b, "(if "); sx(b, n->a); sx_group(b, &n->list);
        if (n->list2.n) sx_group(b, &n->list2);
        put(b, ")");
        break;
    case N_INPUT:
        put(b, "(input %s%s", n->name, n->is_int ? " int" : ""); sx_group(b, &n->list);
        put(b, ")");
        break;
    case N_LAYER: case N_MODEL: case N_SAMPLE:
        put(b, "(%s %s", ast_kind_name(n->kind), n->name); sx_group(b, &n->list);
        sx_list(b, &n->list2); put(b, ")");
        break;
    default:
        /* (KIND name a b list... list2...) */
        put(b, "(%s", ast_kind_name(n->kind));
        if (n->name) put(b, " %s", n->name);
        if (n->a) { put(b, " "); sx(b, n->a); }
        if (n->b) { put(b, " "); sx(b, n->b); }
        sx_list(b, &n->list);
        sx_list(b, &n->list2);
        put(b, ")");
    }
}

static char *render(const Node *n) {
    Buf b = {0};
    put(&b, "%s", "");
    sx(&b, n);
    return b.s;
}

/* ---- helpers --------------------------------------------------------------------------- */

static char diag_text[1 << 16];

/* Parses a whole program; diagnostics go to diag_text. */
static Node *parse(const char *text) {
    diag_reset();
    diag_capture(diag_text, sizeof diag_text);
    Node *p = parse_string("t.gm", text);
    diag_capture(NULL, 0);
    return p;
}

/* The rendering of the first statement of the first declaration of `decl_text`, e.g.
 * stmt_of("layer f() {\n x = a + b\n}") -> "(= (x) (+ a b))". */
static int check_stmt(const char *body, const char *want) {
    char text[4096];
    snprintf(text, sizeof text, "train t {\n%s\n}\n", body);
    Node *p = parse(text);
    if (!p || p->list2.n != 1 || p->list2.items[0]->list2.n < 1) {
        printf("# parse failed for:\n%s\n# diagnostics:\n%s", body, diag_text);
        ast_free(p);
        return 0;
    }
    char *got = render(p->list2.items[0]->list2.items[0]);
    int ok = strcmp(got, want) == 0;
    if (!ok) printf("# %s\n#   got:  %s\n#   want: %s\n", body, got, want);
    free(got);
    ast_free(p);
    return ok;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* `text` must fail with exactly `errors` errors, the first at line:col with `msg` in it. */
static int check_error(const char *text, int errors, int line, int col, const char *msg) {
    Node *p = parse(text);
    char where[64];
    snprintf(where, sizeof where, "t.gm:%d:%d: error: ", line, col);
    int ok = p == NULL && diag_errors() == errors && count(diag_text, ": error: ") == errors;
    const char *first = strstr(diag_text, ": error: ");
    ok = ok && first && strncmp(diag_text, where, strlen(where)) == 0 &&
         strstr(diag_text, msg) && strstr(diag_text, msg) < strchr(first, '\n');
    if (!ok) printf("# want %d error(s), first at %d:%d with \"%s\"; got %d:\n%s", errors,
                    line, col, msg, diag_errors(), diag_text);
    ast_free(p);
    return ok;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_files(void) {
    const char *files[] = {"examples/vae_mlp.gm", "stdlib/nn.gm", "stdlib/losses.gm"};
    for (int i = 0; i < 3; i++) {
        diag_reset();
        Node *p = parse_file(files[i]);
        CHECK(p && p->kind == N_PROGRAM && diag_errors() == 0, "parses %s", files[i]);
        ast_free(p);
    }

    Node *p = parse_file("examples/vae_mlp.gm");
    if (!p) return;
    CHECK(p->list2.n == 12, "vae_mlp.gm has 12 declarations (got %d)", p->list2.n);
    const Node *imp = p->list2.items[0];
    CHECK(imp->kind == N_IMPORT && strcmp(imp->name, "std.nn") == 0, "import std.nn");
    CHECK(imp->loc.line == 4 && imp->loc.col == 1 &&
          strcmp(imp->loc.file, "examples/vae_mlp.gm") == 0, "import at vae_mlp.gm:4:1");
    CHECK(imp->loc.file == ast_intern("examples/vae_mlp.gm"), "Loc.file is interned");

    char *s = render(p->list2.items[4]);
    CHECK(strcmp(s, "(DATA train_images (pipe scale (call fashion_mnist (split: \"train\")) "
                    "0 1))") == 0, "data: pipe into a call with named args: %s", s);
    free(s);

    const Node *enc = p->list2.items[6];
    s = render(enc);
    CHECK(strcmp(s, "(MODEL Encoder ((input x (28 28))) "
                    "(= (h) (pipe relu (pipe dense (pipe flatten x) 512))) "
                    "(RETURN (pipe dense h latent) (pipe dense h latent)))") == 0,
          "Encoder: input dims, pipes, two return values: %s", s);
    free(s);
    const Node *h = enc->list2.items[0]->a;        /* relu(dense(flatten(x), 512)) */
    CHECK(h->kind == N_CALL && h->piped && h->loc.line == 14 && h->loc.col == 36,
          "a piped call is located at its callee (14:36), got %d:%d", h->loc.line,
          h->loc.col);

    const Node *train = p->list2.items[10];
    CHECK(train->kind == N_TRAIN && train->list2.n == 8, "train vae has 8 statements");
    s = render(train);
    CHECK(strstr(s, "(OPTIMIZER opt (call adam E D (lr: 1e-3)))") &&
          strstr(s, "(SETTING epochs 10)") &&
          strstr(s, "(STEP (MINIMIZE opt (call neg_elbo E D x)))") &&
          strstr(s, "(VALIDATE (= (x) (pipe batch test_images 500)) "
                    "(REPORT neg_elbo (call neg_elbo E D x)))") &&
          strstr(s, "(EVERY epoch 1 (SAVE (call grid (call D (call latent_grid 15 (- 4) 4)) "
                    "(rows: 15)) \"vae_epoch_{epoch}.png\") (SAVE D \"decoder.safetensors\") (CHECKPOINT))"),
          "train: optimizer, setting, step, validate, every: %s", s);
    free(s);
    s = render(p->list2.items[11]);
    CHECK(strncmp(s, "(SAMPLE grid ((ARG n 15)) (SAVE ", 32) == 0, "sample grid(n = 15): %s",
          s);
    free(s);
    ast_free(p);

    p = parse_file("stdlib/nn.gm");
    if (!p) return;
    s = render(p->list2.items[0]);
    CHECK(strcmp(s, "(LAYER dense ((ARG x) (ARG units) (ARG bias true) "
                    "(ARG init glorot_uniform)) "
                    "(param W ((call last x) units) init) "
                    "(param b (units) zeros if bias) "
                    "(RETURN (? bias (+ (@ x W) b) (@ x W))))") == 0,
          "dense: param ... if, conditional return, @ before +: %s", s);
    free(s);
    const Node *bias = p->list2.items[0]->list.items[2]->a;
    CHECK(bias->kind == N_NUM && bias->is_int && bias->num == 1.0, "true is N_NUM 1, is_int");
    ast_free(p);

    diag_reset();
    diag_capture(diag_text, sizeof diag_text);
    p = parse_file("no/such/file.gm");
    diag_capture(NULL, 0);
    CHECK(p == NULL, "a missing file gives NULL");
}

static void test_expressions(void) {
    CHECK(check_stmt("x = a + b @ c", "(= (x) (+ a (@ b c)))"), "@ binds tighter than +");
    CHECK(check_stmt("x = a * b + c * d", "(= (x) (+ (* a b) (* c d)))"), "* over +");
    CHECK(check_stmt("x = a - b - c", "(= (x) (- (- a b) c))"), "- is left-associative");
    CHECK(check_stmt("x = a ** b ** c", "(= (x) (** a (** b c)))"), "** is right-assoc");
    CHECK(check_stmt("x = -x ** 2", "(= (x) (- (** x 2)))"), "-x ** 2 is -(x ** 2)");
    CHECK(check_stmt("x = 2 ** -1", "(= (x) (** 2 (- 1)))"), "2 ** -1");
    CHECK(check_stmt("x = a % b / c", "(= (x) (/ (% a b) c))"), "%% and / share a level");
    CHECK(check_stmt("x = not a < b and c or d",
                     "(= (x) (or (and (not (< a b)) c) d))"), "not, and, or, comparison");
    CHECK(check_stmt("x = a + 1 >= b * 2", "(= (x) (>= (+ a 1) (* b 2)))"), ">= below +");
    CHECK(check_stmt("x = a | f", "(= (x) (pipe f a))"), "x | f is f(x)");
    CHECK(check_stmt("x = a | f(1, k: 2) | g", "(= (x) (pipe g (pipe f a 1 (k: 2))))"),
          "pipes are left-associative and take arguments");
    CHECK(check_stmt("x = a + b | nn.f(3)", "(= (x) (pipe (. nn f) (+ a b) 3))"),
          "| is below +, and pipes into an attribute");
    CHECK(check_stmt("y = a | f if c else b | g", "(= (y) (? c (pipe f a) (pipe g b)))"),
          "conditional is below |");
    CHECK(check_stmt("y = a if c else b if d else e", "(= (y) (? c a (? d b e)))"),
          "conditionals nest to the right");
    CHECK(check_stmt("y = f(a)(b)[1, 2].c", "(= (y) (. (index (call (call f a) b) 1 2) c))"),
          "postfix chains");
    CHECK(check_stmt("y = f(x, step: 2, epoch: 3,)", "(= (y) (call f x (step: 2) (epoch: 3)))"),
          "named args, soft keywords as names, trailing comma");
    CHECK(check_stmt("y = a[1:]", "(= (y) (index a (: 1 nil)))"), "slice a[1:]");
    CHECK(check_stmt("y = a[:-1]", "(= (y) (index a (: nil (- 1))))"), "slice a[:-1]");
    CHECK(check_stmt("y = a[::-1]", "(= (y) (index a (: nil nil (- 1))))"), "slice a[::-1]");
    CHECK(check_stmt("y = a[1:n:2]", "(= (y) (index a (: 1 n 2)))"), "slice with a step");
    CHECK(check_stmt("y = x[:, 0]", "(= (y) (index x (: nil nil) 0))"), "x[:, 0]");
    CHECK(check_stmt("y = x[i + 1, a:b,]", "(= (y) (index x (+ i 1) (: a b)))"),
          "an index expression, a slice, a trailing comma");
    CHECK(check_stmt("y = f(x).mu[t]", "(= (y) (index (. (call f x) mu) t))"),
          "an attribute indexed");
    CHECK(check_stmt("for t in range(T, 0, -1) { x = x - 1 }",
                     "(FOR t (call range T 0 (- 1)) (= (x) (- x 1)))"), "for over a range");
    CHECK(check_stmt("y = (a, b)", "(= (y) (tuple a b))"), "tuple");
    CHECK(check_stmt("y = (a,)", "(= (y) (tuple a))"), "one-tuple");
    CHECK(check_stmt("y = (a)", "(= (y) a)"), "parentheses");
    CHECK(check_stmt("y = [1, 2.5, .5, 2., 1e-3]", "(= (y) (array 1 2.5 .5 2. 1e-3))"),
          "array of number spellings");
    CHECK(check_stmt("y = []", "(= (y) (array))"), "empty array");
    CHECK(check_stmt("y = lr * 0.5 ** epoch + step", "(= (y) (+ (* lr (** 0.5 epoch)) step))"),
          "epoch and step are names in expressions");
    CHECK(check_stmt("y = \"a\\tb\\n\\\"q\\\" \\\\ {epoch}\"",
                     "(= (y) \"a\tb\n\"q\" \\ {epoch}\")"), "string escapes; braces verbatim");
    CHECK(check_stmt("y = a == b", "(= (y) (== a b))"), "==");
    CHECK(check_stmt("y = false", "(= (y) false)"), "false");

    Node *p = parse("train t {\n  y = 784 + 1e-3\n}\n");
    if (p) {
        const Node *e = p->list2.items[0]->list2.items[0]->a;
        CHECK(e->kind == N_BINOP && e->loc.line == 2 && e->loc.col == 11,
              "a binop is located at its operator");
        CHECK(e->a->is_int && e->a->num == 784 && !e->b->is_int && e->b->num == 1e-3,
              "is_int only for plain integers");
        CHECK(e->name == ast_intern("+"), "operator spellings are interned");
    } else CHECK(0, "parse 784 + 1e-3");
    ast_free(p);
}

static void test_statements(void) {
    CHECK(check_stmt("mu, logvar = E(x)", "(= (mu logvar) (call E x))"), "tuple assignment");
    CHECK(check_stmt("return mu: a, logvar: b", "(RETURN (mu: a) (logvar: b))"),
          "named return");
    CHECK(check_stmt("return", "(RETURN)"), "bare return");
    CHECK(check_stmt("param b[n] = zeros if bias", "(param b (n) zeros if bias)"),
          "param ... if");
    CHECK(check_stmt("param b[n] = a if c else d", "(param b (n) (? c a d))"),
          "param with a conditional initialiser");
    CHECK(check_stmt("param b[n] = (a if c else d) if e", "(param b (n) (? c a d) if e)"),
          "param with both");
    CHECK(check_stmt("state s[n, 2] = zeros", "(state s (n 2) zeros)"), "state");
    CHECK(check_stmt("minimize l with opt", "(MINIMIZE opt l)"), "minimize");
    CHECK(check_stmt("save x to \"a.png\"", "(SAVE x \"a.png\")"), "save");
    CHECK(check_stmt("report l", "(REPORT l)"), "report without a name");
    CHECK(check_stmt("steps 4000", "(SETTING steps 4000)"), "steps setting");
    CHECK(check_stmt("step critic { x = 1 }", "(STEP critic (= (x) 1))"), "named step");
    CHECK(check_stmt("repeat 5 { step { x = 1 } }", "(REPEAT 5 (STEP (= (x) 1)))"), "repeat");
    CHECK(check_stmt("every 100 steps { checkpoint }", "(EVERY step 100 (CHECKPOINT))"),
          "every N steps");
    CHECK(check_stmt("every 2 epochs { checkpoint }", "(EVERY epoch 2 (CHECKPOINT))"),
          "every N epochs");
    CHECK(check_stmt("validate v { report l: 1 }", "(VALIDATE v (REPORT l 1))"),
          "named validate");
    CHECK(check_stmt("if a { x = 1 } else if b { x = 2 } else { x = 3 }",
                     "(if a ((= (x) 1)) ((if b ((= (x) 2)) ((= (x) 3)))))"), "else if chain");
    CHECK(check_stmt("if a {\n x = 1\n}\nelse {\n x = 2\n}", "(if a ((= (x) 1)) ((= (x) 2)))"),
          "else may start a line");
    CHECK(check_stmt("for i in range(3) { x = i }", "(FOR i (call range 3) (= (x) i))"), "for");
    CHECK(check_stmt("f(x)", "(EXPR (call f x))"), "expression statement");
    CHECK(check_stmt("h = x | flatten\n    # comment\n    | dense(512)\n\n    | relu",
                     "(= (h) (pipe relu (pipe dense (pipe flatten x) 512)))"),
          "a line starting with | continues the pipe");
    CHECK(check_stmt("h = a +\n  b * f(1,\n    2) |\n  g", "(= (h) (pipe g (+ a (* b (call f 1 2)))))"),
          "newlines after |, inside ( ) and after an operator are not terminators");
    CHECK(check_stmt("a = 1; b = 2", "(= (a) 1)"), "; separates statements");

    Node *c = parse("layer f(x) {\n  h = x | g\n  # note\n\t| relu\n  return h\n}\n");
    const Node *relu = c ? c->list2.items[0]->list2.items[0]->a : NULL;
    CHECK(relu && relu->kind == N_CALL && relu->loc.line == 4 && relu->loc.col == 4 &&
          c->list2.items[0]->list2.items[1]->loc.line == 5,
          "locations stay right across a continued line");
    ast_free(c);

    Node *p = parse("model M(x[28, 28], label: int, t: int[4]) { return x }\n"
                    "sample grid { checkpoint }\nlayer f() {}\nconst c = 3 # comment\n");
    char *s = p ? render(p) : NULL;
    CHECK(s && strcmp(s, "(PROGRAM (MODEL M ((input x (28 28)) (input label int ()) "
                         "(input t int (4))) (RETURN x)) (SAMPLE grid () (CHECKPOINT)) "
                         "(LAYER f ()) (CONST c 3))") == 0, "model inputs, sample without "
          "args, empty layer: %s", s ? s : diag_text);
    free(s);
    ast_free(p);

    p = parse("");
    CHECK(p && p->list2.n == 0, "an empty file is an empty program");
    ast_free(p);
    p = parse("\n\n# only a comment\n\n");
    CHECK(p && p->list2.n == 0, "blank lines and comments only");
    ast_free(p);
    p = parse("const a = 1\r\nconst b = 2\r\n");
    CHECK(p && p->list2.n == 2, "CRLF line endings");
    ast_free(p);
}

static void test_errors(void) {
    CHECK(check_error("layer f(x) {\n  return (x + )\n}\n", 1, 2, 15,
                      "syntax error: unexpected ')', expected expression"), "missing operand");
    CHECK(check_error("const = 3\n", 1, 1, 7, "unexpected '=', expected identifier"),
          "const without a name");
    CHECK(check_error("const a = b[1:2:3:4]\n", 1, 1, 18, "unexpected ':', expected ',' or ']'"),
          "a slice has at most three parts");
    CHECK(check_error("const a = b[]\n", 1, 1, 13, "unexpected ']', expected expression or ':'"),
          "an empty index");
    CHECK(check_error("layer f(x) {\n  y = f(a b)\n}\n", 1, 2, 11,
                      "unexpected identifier 'b', expected ',', ':' or ')'"), "missing comma");
    CHECK(check_error("layer f(x) {\n  y = f(a,\n  z = 1\n}\n", 1, 3, 5,
                      "unexpected '=', expected ',', ':' or ')'"), "unclosed ( runs on");
    CHECK(strstr(diag_text, "t.gm:2:8: note: to match this '('"), "note at the open '('");
    CHECK(check_error("train t {\n  x = 1\n", 1, 2, 8,
                      "unexpected end of file, expected statement or '}'"), "unclosed {");
    CHECK(strstr(diag_text, "t.gm:1:9: note: to match this '{'"), "note at the open '{'");
    CHECK(check_error("x = 1\n", 1, 1, 1, "unexpected identifier 'x', expected declaration"),
          "a statement at top level");
    CHECK(check_error("data d = \"abc\n", 1, 1, 10, "unterminated string"),
          "unterminated string, reported at its quote");
    CHECK(check_error("data d = \"a\\qb\"\n", 1, 1, 12, "unknown escape sequence '\\q'"),
          "bad escape");
    CHECK(check_error("const a = 3 $ 4\n", 2, 1, 13, "unexpected character '$'"),
          "stray character");
    CHECK(check_error("}\n", 1, 1, 1, "unexpected '}'"), "stray }");
    CHECK(check_error("layer f(x) { return x } }\n", 1, 1, 25, "unexpected '}'"),
          "extra } after a block");
    CHECK(check_error("model M(x) { return x }\n", 1, 1, 10,
                      "unexpected ')', expected ':' or '['"), "input without dims");
    CHECK(check_error("model M(x: float[2]) { return x }\n", 1, 1, 12,
                      "unknown input type 'float'"), "input type other than int");
    CHECK(check_error("train t {\n  every 1 { checkpoint }\n}\n", 1, 2, 11,
                      "unexpected '{', expected 'epoch', 'epochs', 'step' or 'steps'"),
          "every without a unit");
    CHECK(check_error("train t {\n  epochs = 3\n}\n", 1, 2, 10,
                      "unexpected '=', expected expression"), "setting written as assignment");
    CHECK(check_error("layer f(x) {\n  return x y\n}\n", 1, 2, 12,
                      "unexpected identifier 'y', expected end of line, ',' or ':'"),
          "two expressions on a line");
    CHECK(check_error("layer f(x) {\n  y = a < b < c\n}\n", 1, 2, 13, "unexpected '<'"),
          "comparisons do not chain");
    CHECK(check_error("const a = (1 + 2\n", 1, 1, 17, "unexpected end of file"),
          "unclosed ( at end of file");
    CHECK(check_error("const a = 1e999\n", 1, 1, 11, "too large"), "number overflow");
    CHECK(check_error("const a = 1 @@ 2\n", 1, 1, 14, "unexpected '@', expected expression"),
          "doubled operator");
    CHECK(check_error("layer f(x) {\n  y = x |\n}\n", 1, 3, 1, "unexpected '}', expected "
                      "identifier"), "pipe into nothing");
    CHECK(check_error("const a = \xc3\xa9\n", 2, 1, 11, "non-ASCII character"),
          "UTF-8 outside a string");
    CHECK(check_error("const a = \"x\" \x01 1\n", 2, 1, 15, "unexpected byte 0x01"),
          "control byte");

    /* several errors in one file, each reported once, at its own line */
    const char *three = "layer f(x) {\n"
                        "  a = (1 +)\n"
                        "  b = 2\n"
                        "  c = f(,)\n"
                        "  return x\n"
                        "}\n"
                        "const = 4\n"
                        "const ok = 5\n";
    CHECK(check_error(three, 3, 2, 11, "unexpected ')'"), "three syntax errors, all reported");
    CHECK(strstr(diag_text, "t.gm:4:9: error:") && strstr(diag_text, "t.gm:7:7: error:"),
          "... at 4:9 and 7:7");

    /* errors on consecutive lines, and inside the body of a broken declaration */
    CHECK(check_error("model M(x[2] {\n  h = )\n  return x\n}\nconst = 1\n", 3, 1, 14,
                      "unexpected '{', expected ',' or ')'"), "recovery continues into a broken header's body");
    CHECK(strstr(diag_text, "t.gm:2:7: error:") && strstr(diag_text, "t.gm:5:7: error:"),
          "... at 2:7 and 5:7");
    CHECK(check_error("const a = )\nconst b = )\nconst c = )\n", 3, 1, 11, "unexpected ')'"),
          "errors on consecutive lines");
}

static void test_diagnostics(void) {
    /* the caret lines up under the column, tabs copied */
    Node *p = parse("layer f(x) {\n\treturn x +* 2\n}\n");
    CHECK(p == NULL && strcmp(diag_text,
          "t.gm:2:12: error: syntax error: unexpected '*', expected expression\n"
          "\treturn x +* 2\n"
          "\t          ^\n") == 0, "message, source line, caret after a tab");
    if (p != NULL || !strstr(diag_text, "\t          ^")) printf("# got:\n%s", diag_text);

    /* at most 50 errors, then one line saying so */
    char many[4096] = "";
    for (int i = 0; i < 60; i++) strcat(many, "const = 1\n");
    p = parse(many);
    CHECK(p == NULL && diag_errors() == 60 && count(diag_text, ": error: ") == 50 &&
          count(diag_text, "too many errors") == 1, "50 errors shown, then 'too many errors'");

    /* a location in a file we have no text for: just the message line */
    diag_reset();
    diag_capture(diag_text, sizeof diag_text);
    diag_error((Loc){"unknown.gm", 3, 4}, "boom %d", 7);
    diag_note((Loc){"unknown.gm", 1, 1}, "here");
    diag_capture(NULL, 0);
    CHECK(strcmp(diag_text, "unknown.gm:3:4: error: boom 7\nunknown.gm:1:1: note: here\n") == 0,
          "no source text: message lines only");
    diag_reset();
}

/* Nothing may crash or hang: deep nesting, long flat chains, garbage. */
static void test_robustness(void) {
    size_t n = 200000;
    char *s = malloc(2 * n + 64);
    strcpy(s, "const a = ");
    size_t k = strlen(s);
    for (size_t i = 0; i < n; i++) s[k++] = '(';
    s[k++] = '1';
    for (size_t i = 0; i < n; i++) s[k++] = ')';
    s[k] = '\0';
    Node *p = parse(s);
    CHECK(p == NULL && diag_errors() >= 1 && strstr(diag_text, "nested too deeply"),
          "200000 nested parentheses: an error, no crash");

    strcpy(s, "const a = 1");
    k = strlen(s);
    for (size_t i = 0; i < n / 2; i++) { s[k++] = '+'; s[k++] = '1'; }
    s[k] = '\0';
    p = parse(s);
    CHECK(p == NULL && strstr(diag_text, "nested too deeply"),
          "a 100000-term sum: too deep for later passes, reported");

    strcpy(s, "train t ");
    k = strlen(s);
    for (size_t i = 0; i < 20000; i++) { memcpy(s + k, "{ step ", 7); k += 7; }
    s[k] = '\0';
    p = parse(s);
    CHECK(p == NULL && diag_errors() >= 1, "20000 unclosed blocks");

    /* pseudo-random bytes, and random tokens */
    unsigned seed = 12345;
    int survived = 1;
    for (int round = 0; round < 200; round++) {
        size_t len = 1 + (size_t)(round * 37 % 2000);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            s[i] = (char)(1 + (seed >> 16) % 255);
        }
        s[len] = '\0';
        p = parse(s);
        ast_free(p);
    }
    static const char *const words[] = {
        "layer", "model", "train", "f", "(", ")", "[", "]", "{", "}", "\n", ",", "=", "|",
        "if", "else", "1", "\"s\"", "+", "**", "-", ":", "return", "param", "every", "step",
        "epoch", "\"", ";", "#c\n", ".", "not", "and", "validate", "x",
    };
    for (int round = 0; round < 2000; round++) {
        size_t len = 0;
        int ntok = 1 + round % 60;
        for (int i = 0; i < ntok; i++) {
            seed = seed * 1103515245u + 12345u;
            const char *w = words[(seed >> 16) % (sizeof words / sizeof words[0])];
            len += (size_t)sprintf(s + len, "%s ", w);
        }
        p = parse(s);
        if (p && p->kind != N_PROGRAM) survived = 0;
        ast_free(p);
    }
    CHECK(survived, "random bytes and random token soup: no crash, no hang");
    free(s);
}

int main(void) {
    test_files();
    test_expressions();
    test_statements();
    test_errors();
    test_diagnostics();
    test_robustness();
    CHECK_DONE();
}
