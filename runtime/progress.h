/* progress.h: a progress line for long loads. Nothing is shown for the first second, so
 * quick loads stay silent; after that the line is refreshed about twice a second. */
#ifndef GMC_PROGRESS_H
#define GMC_PROGRESS_H
#include <stdint.h>

typedef struct Progress {
    const char *what;          /* e.g. image_folder("faces") */
    int64_t total;
    double start, last;
    int shown;
} Progress;

void progress_start(Progress *p, const char *what, int64_t total);
void progress_update(Progress *p, int64_t done);
void progress_end(Progress *p);    /* the final count and the time, if anything was shown */
#endif
