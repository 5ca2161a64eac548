/* tmpfiles.h: files of the C unit tests, all inside one mkdtemp directory (tmpdir, which the
 * test's main creates). */
#ifndef GMC_TMPFILES_H
#define GMC_TMPFILES_H
#include <stdio.h>
#include <stdlib.h>

static char tmpdir[64];

/* A path inside the temp directory. Every call gets its own buffer, never reused, so a path
 * stays valid for the whole run. */
static const char *tpath(const char *name) {
    static char bufs[256][256];
    static int next;
    if (next == 256) { fprintf(stderr, "tpath: raise the buffer count\n"); exit(2); }
    char *b = bufs[next++];
    snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fwrite(data, 1, n, f);
    fclose(f);
}
#endif
