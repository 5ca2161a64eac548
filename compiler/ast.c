/* ast.c: AST nodes, interned strings, and the parse_file/parse_string entry points (the
 * grammar itself is grammar/gm.y, the scanner grammar/gm.l). */
#include "ast.h"
#include "diag.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* grammar/gm.l: scan and parse `len` bytes of `text`; `file` must be interned. Returns the
 * N_PROGRAM, or NULL when the parser gave up (syntax errors are reported through diag). */
Node *gm_parse(const char *file, const char *text, size_t len);

/* Later passes recurse over the tree; a bound on its depth keeps them off the C stack's
 * limit whatever the input (`a + a + ... + a` builds a deep tree without deep nesting). */
enum { MAX_TREE_DEPTH = 1000 };

static void out_of_memory(void) {
    fprintf(stderr, "gmc: out of memory\n");
    abort();
}

Node *ast_new(NodeKind kind, Loc loc) {
    Node *n = calloc(1, sizeof *n);
    if (!n) out_of_memory();
    n->kind = kind;
    n->loc = loc;
    return n;
}

void nodelist_push(NodeList *l, Node *n) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 4;
        Node **items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) out_of_memory();
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = n;
}

/* An explicit stack of nodes for the walks below, which must not recurse. */
typedef struct Walk { Node **nodes; int *depth; int n, cap; } Walk;

static void walk_push(Walk *w, Node *node, int depth) {
    if (!node) return;
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->nodes = realloc(w->nodes, (size_t)w->cap * sizeof *w->nodes);
        w->depth = realloc(w->depth, (size_t)w->cap * sizeof *w->depth);
        if (!w->nodes || !w->depth) out_of_memory();
    }
    w->nodes[w->n] = node;
    w->depth[w->n] = depth;
    w->n++;
}

static void walk_children(Walk *w, const Node *n, int depth) {
    walk_push(w, n->a, depth);
    walk_push(w, n->b, depth);
    walk_push(w, n->c, depth);
    for (int i = 0; i < n->list.n; i++) walk_push(w, n->list.items[i], depth);
    for (int i = 0; i < n->list2.n; i++) walk_push(w, n->list2.items[i], depth);
}

void ast_free(Node *root) {
    Walk w = {0};
    walk_push(&w, root, 0);
    while (w.n > 0) {
        Node *n = w.nodes[--w.n];
        walk_children(&w, n, 0);
        free(n->list.items);
        free(n->list2.items);
        free(n);
    }
    free(w.nodes);
    free(w.depth);
}

/* The first node found deeper than `max`, or NULL. */
static const Node *too_deep(Node *root, int max) {
    Walk w = {0};
    const Node *found = NULL;
    walk_push(&w, root, 1);
    while (w.n > 0 && !found) {
        w.n--;
        Node *n = w.nodes[w.n];
        int depth = w.depth[w.n];
        if (depth > max) found = n;
        else walk_children(&w, n, depth + 1);
    }
    free(w.nodes);
    free(w.depth);
    return found;
}

/* --- interned strings: an open-addressing hash set, never freed ----------------------- */

static char **intern_slots;
static size_t intern_cap, intern_count;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603u;          /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static void intern_grow(void) {
    size_t cap = intern_cap ? 2 * intern_cap : 256;
    char **slots = calloc(cap, sizeof *slots);
    if (!slots) out_of_memory();
    for (size_t i = 0; i < intern_cap; i++) {
        if (!intern_slots[i]) continue;
        size_t j = hash_str(intern_slots[i]) & (cap - 1);
        while (slots[j]) j = (j + 1) & (cap - 1);
        slots[j] = intern_slots[i];
    }
    free(intern_slots);
    intern_slots = slots;
    intern_cap = cap;
}

const char *ast_intern(const char *s) {
    if (!s) return NULL;
    if (2 * (intern_count + 1) > intern_cap) intern_grow();
    size_t i = hash_str(s) & (intern_cap - 1);
    while (intern_slots[i]) {
        if (strcmp(intern_slots[i], s) == 0) return intern_slots[i];
        i = (i + 1) & (intern_cap - 1);
    }
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (!copy) out_of_memory();
    memcpy(copy, s, n);
    intern_slots[i] = copy;
    intern_count++;
    return copy;
}

const char *ast_kind_name(NodeKind k) {
    static const char *const names[] = {
        [N_NUM] = "NUM", [N_STR] = "STR", [N_NAME] = "NAME", [N_BINOP] = "BINOP",
        [N_UNOP] = "UNOP", [N_CALL] = "CALL", [N_NAMEDARG] = "NAMEDARG", [N_ATTR] = "ATTR",
        [N_INDEX] = "INDEX", [N_SLICE] = "SLICE", [N_TUPLE] = "TUPLE", [N_COND] = "COND", [N_ASSIGN] = "ASSIGN",
        [N_RETURN] = "RETURN", [N_PARAM] = "PARAM", [N_STATE] = "STATE", [N_EXPR] = "EXPR",
        [N_MINIMIZE] = "MINIMIZE", [N_SAVE] = "SAVE", [N_CHECKPOINT] = "CHECKPOINT",
        [N_REPORT] = "REPORT", [N_OPTIMIZER] = "OPTIMIZER", [N_SETTING] = "SETTING",
        [N_STEP] = "STEP", [N_REPEAT] = "REPEAT", [N_EVERY] = "EVERY",
        [N_VALIDATE] = "VALIDATE", [N_IF] = "IF", [N_FOR] = "FOR", [N_IMPORT] = "IMPORT",
        [N_CONST] = "CONST", [N_DATA] = "DATA", [N_ARG] = "ARG", [N_INPUT] = "INPUT",
        [N_LAYER] = "LAYER", [N_MODEL] = "MODEL", [N_TRAIN] = "TRAIN",
        [N_SAMPLE] = "SAMPLE", [N_PROGRAM] = "PROGRAM",
    };
    if ((unsigned)k < sizeof names / sizeof names[0] && names[k]) return names[k];
    return "?";
}

/* --- entry points ----------------------------------------------------------------------- */

static Node *parse_text(const char *path, const char *text, size_t len) {
    const char *file = ast_intern(path);
    diag_add_source(file, text);
    int errors_before = diag_errors();
    Node *root = gm_parse(file, text, len);
    if (root) {
        const Node *deep = too_deep(root, MAX_TREE_DEPTH);
        if (deep) diag_error(deep->loc, "expression nested too deeply (more than %d levels)",
                             MAX_TREE_DEPTH);
    }
    if (diag_errors() > errors_before) {
        ast_free(root);
        return NULL;
    }
    return root;
}

Node *parse_string(const char *path, const char *text) {
    return parse_text(path, text, strlen(text));
}

Node *parse_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "gmc: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    /* read in chunks rather than trusting ftell: works for pipes and /dev/stdin too */
    size_t len = 0, cap = 1 << 16;
    char *text = malloc(cap);
    if (!text) out_of_memory();
    for (;;) {
        if (cap - len < 2) {
            cap *= 2;
            char *bigger = realloc(text, cap);
            if (!bigger) out_of_memory();
            text = bigger;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int err = errno;
        fprintf(stderr, "gmc: cannot read %s: %s\n", path, strerror(err ? err : EIO));
        fclose(f);
        free(text);
        return NULL;
    }
    fclose(f);
    text[len] = '\0';
    Node *root = parse_text(path, text, len);
    free(text);
    return root;
}
