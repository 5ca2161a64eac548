/* check.h: the tiny assertion kit of the C unit tests. Each CHECK prints one line,
 * "ok - what" or "FAIL - what (file:line)"; tests/run.sh counts them. */
#ifndef GMC_CHECK_H
#define GMC_CHECK_H
#include <stdio.h>
#include <math.h>

static int check_failures;
#define CHECK(cond, ...) do { \
    if (cond) { printf("ok - "); printf(__VA_ARGS__); printf("\n"); } \
    else { check_failures++; printf("FAIL - "); printf(__VA_ARGS__); \
           printf(" (%s:%d: %s)\n", __FILE__, __LINE__, #cond); } \
    fflush(stdout); } while (0)
/* relative-or-absolute closeness */
static inline int check_close(double a, double b, double rtol, double atol) {
    return fabs(a - b) <= atol + rtol * fabs(b);
}
#define CHECK_DONE() return check_failures ? 1 : 0
#endif
