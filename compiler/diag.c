/* diag.c: error and note reporting with the offending source line and a caret, gcc-style.
 *
 *   examples/x.gm:12:9: error: syntax error: unexpected ')', expected expression
 *       h = (x + )
 *              ^
 */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_ERRORS = 50 };

/* Source texts by file name, kept for the whole run: later passes quote lines too. */
typedef struct Source { char *file, *text; struct Source *next; } Source;
static Source *sources;

static int n_errors;
static int too_many_said;      /* "too many errors" printed once */
static int last_error_shown;   /* notes follow the fate of the error they belong to */

static char *capture_buf;
static int capture_size, capture_len;

void diag_capture(char *buf, int size) {
    capture_buf = size > 0 ? buf : NULL;
    capture_size = size;
    capture_len = 0;
    if (capture_buf) capture_buf[0] = '\0';
}

static void emit(const char *s, size_t n) {
    if (!capture_buf) { fwrite(s, 1, n, stderr); return; }
    size_t room = (size_t)(capture_size - 1 - capture_len);
    if (n > room) n = room;
    memcpy(capture_buf + capture_len, s, n);
    capture_len += (int)n;
    capture_buf[capture_len] = '\0';
}

static void emits(const char *s) { emit(s, strlen(s)); }

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) { fprintf(stderr, "gmc: out of memory\n"); abort(); }
    return memcpy(d, s, n);
}

void diag_add_source(const char *file, const char *text) {
    if (!file || !text) return;
    for (Source *s = sources; s; s = s->next)
        if (strcmp(s->file, file) == 0) {   /* re-parsed: the newest text wins */
            free(s->text);
            s->text = xstrdup(text);
            return;
        }
    Source *s = malloc(sizeof *s);
    if (!s) { fprintf(stderr, "gmc: out of memory\n"); abort(); }
    s->file = xstrdup(file);
    s->text = xstrdup(text);
    s->next = sources;
    sources = s;
}

/* The text of line `line` (1-based) of `file` and its length, or NULL if unknown. */
static const char *find_line(const char *file, int line, size_t *len) {
    if (!file || line < 1) return NULL;
    const Source *s = sources;
    while (s && strcmp(s->file, file) != 0) s = s->next;
    if (!s) return NULL;
    const char *p = s->text;
    for (int l = 1; l < line; l++) {
        p = strchr(p, '\n');
        if (!p) return NULL;
        p++;
    }
    if (!*p) return NULL;               /* past the last line */
    size_t n = strcspn(p, "\n");
    if (n > 0 && p[n - 1] == '\r') n--; /* CRLF files */
    *len = n;
    return p;
}

/* The quoted line, then a caret under column `col`. Tabs before the caret are copied so
 * the caret lines up however the terminal expands them; UTF-8 continuation bytes take no
 * column on screen, so they get no space. */
static void show_line(Loc loc) {
    size_t len;
    const char *text = find_line(loc.file, loc.line, &len);
    if (!text) return;
    emit(text, len);
    emits("\n");
    char pad[256];
    size_t n = 0;
    for (int i = 0; i < loc.col - 1; i++) {
        char c = (size_t)i < len ? text[i] : ' ';
        if ((unsigned char)c >= 0x80 && (unsigned char)c < 0xC0) continue;
        pad[n++] = c == '\t' ? '\t' : ' ';
        if (n == sizeof pad) { emit(pad, n); n = 0; }
    }
    emit(pad, n);
    emits("^\n");
}

static void report(Loc loc, const char *kind, const char *fmt, va_list ap) {
    char head[1024];
    int h;
    if (loc.file && loc.line > 0)
        h = snprintf(head, sizeof head, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, kind);
    else if (loc.file)
        h = snprintf(head, sizeof head, "%s: %s: ", loc.file, kind);
    else
        h = snprintf(head, sizeof head, "gmc: %s: ", kind);
    if (h < 0) h = 0;
    if ((size_t)h >= sizeof head) h = (int)sizeof head - 1;
    emit(head, (size_t)h);

    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n > 0) {
        char *msg = malloc((size_t)n + 1);
        if (!msg) { fprintf(stderr, "gmc: out of memory\n"); abort(); }
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        emit(msg, (size_t)n);
        free(msg);
    }
    emits("\n");
    show_line(loc);
}

/* A standard-library layer called from the user's program: its errors are reported at the
 * user's call, naming the layer, with a note pointing at the library line. */
static Loc call_loc;
static const char *call_name;

void diag_library_call(Loc call, const char *layer) {
    call_loc = call;
    call_name = layer;
}

void diag_error(Loc loc, const char *fmt, ...) {
    if (call_name) {
        va_list ap;
        va_start(ap, fmt);
        char msg[1024];
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        Loc at = loc;
        const char *layer = call_name;
        call_name = NULL;               /* the error and its note, reported once */
        diag_error(call_loc, "in %s(): %s", layer, msg);
        diag_note(at, "inside the standard library's %s", layer);
        call_name = layer;
        return;
    }
    n_errors++;
    last_error_shown = n_errors <= MAX_ERRORS;
    if (!last_error_shown) {
        if (!too_many_said) {
            too_many_said = 1;
            char line[64];
            snprintf(line, sizeof line, "gmc: too many errors (%d), the rest are not shown\n",
                     MAX_ERRORS);
            emits(line);
        }
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    report(loc, "error", fmt, ap);
    va_end(ap);
}

void diag_note(Loc loc, const char *fmt, ...) {
    if (n_errors > 0 && !last_error_shown) return;
    va_list ap;
    va_start(ap, fmt);
    report(loc, "note", fmt, ap);
    va_end(ap);
}

int diag_errors(void) { return n_errors; }

void diag_reset(void) {
    n_errors = 0;
    too_many_said = 0;
    last_error_shown = 1;
}
