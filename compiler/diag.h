/* diag.h: compiler diagnostics in the form `file:line:col: error: message`, followed by the
 * source line and a caret under the column. Errors are counted, never fatal by themselves. */
#ifndef GMC_DIAG_H
#define GMC_DIAG_H
#include "ast.h"

void diag_add_source(const char *file, const char *text); /* remember text to quote lines */
void diag_error(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_note(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* While a standard-library layer runs for a call in the user's program, errors are reported
 * at that call (layer = NULL ends it). */
void diag_library_call(Loc call, const char *layer);
int diag_errors(void);       /* errors reported so far */
void diag_reset(void);       /* forget the error count (sources stay known) */
/* Tests: when buf is non-NULL, diagnostics are appended to buf (NUL-terminated, truncated
 * to size) instead of going to stderr; diag_capture(NULL, 0) restores stderr. */
void diag_capture(char *buf, int size);
#endif
