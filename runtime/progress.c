/* progress.c: `loading image_folder("faces")  1200/5000` on stdout; on a terminal the line is
 * rewritten in place, elsewhere (logs) a new line is printed at most once a second. */
#include "progress.h"
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_start(Progress *p, const char *what, int64_t total) {
    *p = (Progress){ .what = what, .total = total, .start = now() };
    p->last = p->start;
}

static void show(Progress *p, int64_t done, const char *end) {
    int tty = isatty(1);
    printf("%sloading %s  %lld/%lld%s", tty && p->shown ? "\r" : "", p->what,
           (long long)done, (long long)p->total, end ? end : tty ? "" : "\n");
    fflush(stdout);
    p->shown = 1;
}

void progress_update(Progress *p, int64_t done) {
    double t = now();
    if (t - p->start < 1 || t - p->last < (isatty(1) ? 0.5 : 1)) return;
    p->last = t;
    show(p, done, NULL);
}

void progress_end(Progress *p) {
    if (!p->shown) return;
    char end[64];
    snprintf(end, sizeof end, " in %.1f s\n", now() - p->start);
    show(p, p->total, end);
}
