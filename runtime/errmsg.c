/* errmsg.c: see errmsg.h. */
#include <stdarg.h>
#include <stdio.h>
#include "errmsg.h"

void errmsg(char *err, int errlen, const char *fmt, ...) {
    if (!err || errlen <= 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, (size_t)errlen, fmt, ap);
    va_end(ap);
}
