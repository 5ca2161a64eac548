/* idx.c: IDX reader (MNIST format: 0x00 0x00 type ndim, big-endian uint32 dims, payload).
 * zlib's gzread passes plain files through unchanged, so .gz and raw files share one path. */
#include "idx.h"
#include "errmsg.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>


/* Reads up to n bytes; returns the count read (short only at end of input), or -1 on a
 * read/decompression error other than a truncated gzip stream (which is just a short read). */
static int64_t read_full(gzFile gz, void *buf, int64_t n) {
    int64_t got = 0;
    while (got < n) {
        int64_t want = n - got;
        unsigned chunk = want > (1 << 30) ? 1u << 30 : (unsigned)want;
        int k = gzread(gz, (char *)buf + got, chunk);
        if (k < 0) {
            int code;
            gzerror(gz, &code);
            return code == Z_BUF_ERROR ? got : -1;
        }
        if (k == 0) break;
        got += k;
    }
    return got;
}

int idx_load(const char *path, IdxArray *out, char *err, int errlen) {
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        errmsg(err, errlen, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
        return -1;
    }
    unsigned char head[4 + 4 * 4];
    uint8_t *data = NULL;
    int64_t got = read_full(gz, head, 4);
    if (got < 0) goto read_error;
    if (got < 4 || head[0] != 0 || head[1] != 0) {
        errmsg(err, errlen, "%s: not an IDX file (bad magic)", path);
        goto fail;
    }
    if (head[2] != 0x08) {
        errmsg(err, errlen, "%s: unsupported IDX element type 0x%02X (only 0x08, unsigned byte)",
             path, head[2]);
        goto fail;
    }
    int ndim = head[3];
    if (ndim < 1 || ndim > 4) {
        errmsg(err, errlen, "%s: unsupported IDX rank %d (1 to 4 supported)", path, ndim);
        goto fail;
    }
    got = read_full(gz, head + 4, 4 * ndim);
    if (got < 0) goto read_error;
    if (got < 4 * ndim) {
        errmsg(err, errlen, "%s: truncated (expected %d bytes of dimensions, got %lld)",
             path, 4 * ndim, (long long)got);
        goto fail;
    }
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) {
        const unsigned char *b = head + 4 + 4 * d;
        out->dims[d] = (int64_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
        if (out->dims[d] != 0 && total > ((int64_t)1 << 40) / out->dims[d]) {
            errmsg(err, errlen, "%s: implausible IDX dimensions (over 2^40 elements)", path);
            goto fail;
        }
        total *= out->dims[d];
    }
    /* grow the buffer as data arrives, so a corrupt header cannot demand a huge allocation */
    int64_t cap = total < (1 << 24) ? total : (1 << 24), have = 0;
    data = malloc(cap ? (size_t)cap : 1);
    if (!data) goto no_memory;
    while (have < total) {
        if (have == cap) {
            cap = cap * 2 < total ? cap * 2 : total;
            uint8_t *grown = realloc(data, (size_t)cap);
            if (!grown) goto no_memory;
            data = grown;
        }
        got = read_full(gz, data + have, cap - have);
        if (got < 0) goto read_error;
        have += got;
        if (have < cap) break;
    }
    if (have < total) {
        errmsg(err, errlen, "%s: truncated (expected %lld bytes of data, got %lld)",
             path, (long long)total, (long long)have);
        goto fail;
    }
    unsigned char extra;
    got = read_full(gz, &extra, 1);
    if (got < 0) goto read_error;
    if (got > 0) {
        errmsg(err, errlen, "%s: unexpected bytes after %lld bytes of data "
             "(dimensions do not match the file)", path, (long long)total);
        goto fail;
    }
    gzclose(gz);
    out->ndim = ndim;
    out->data = data;
    return 0;

read_error: {
        int code;
        const char *msg = gzerror(gz, &code);
        errmsg(err, errlen, "%s: read error: %s", path,
             code == Z_ERRNO ? strerror(errno) : msg);
        goto fail;
    }
no_memory:
    errmsg(err, errlen, "%s: out of memory", path);
fail:
    free(data);
    gzclose(gz);
    memset(out, 0, sizeof *out);
    return -1;
}

void idx_free(IdxArray *a) {
    free(a->data);
    a->data = NULL;
    a->ndim = 0;
}
