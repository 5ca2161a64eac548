/* npy.c: NumPy .npy files. Writes version 1.0 float32 C-order; reads versions 1-3 of the
 * dtypes the tools around gmc produce and converts them to float32. */
#include "npy.h"
#include "fsutil.h"
#include "errmsg.h"
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c writes and reads host-order data as little-endian"
#endif


int npy_write(const char *path, const float *data, int ndim, const int64_t *dims,
              char *err, int errlen) {
    if (ndim < 0 || ndim > 8) {
        errmsg(err, errlen, "cannot write %s: unsupported rank %d", path, ndim);
        return -1;
    }
    char shape[8 * 22 + 4];
    int len = 0;
    int64_t count = 1;
    len += snprintf(shape + len, sizeof shape - (size_t)len, "(");
    for (int d = 0; d < ndim; d++) {
        if (dims[d] < 0) {
            errmsg(err, errlen, "cannot write %s: negative dimension %lld", path, (long long)dims[d]);
            return -1;
        }
        count *= dims[d];
        len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%lld",
                        d ? ", " : "", (long long)dims[d]);
    }
    snprintf(shape + len, sizeof shape - (size_t)len, ndim == 1 ? ",)" : ")");

    /* 10-byte preamble + dict + space padding + '\n', a multiple of 64 so data is aligned */
    char header[512];
    int dict = snprintf(header + 10, sizeof header - 10,
                        "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    int total = (10 + dict + 1 + 63) / 64 * 64;
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    header[8] = (char)((total - 10) & 0xff);
    header[9] = (char)((total - 10) >> 8);
    memset(header + 10 + dict, ' ', (size_t)(total - 10 - dict - 1));
    header[total - 1] = '\n';

    char tmp[4096];
    int fd = atomic_open(path, tmp, (int)sizeof tmp, err, errlen);
    if (fd < 0) return -1;
    if (fd_write_all(fd, header, (size_t)total) != 0 ||
        fd_write_all(fd, data, (size_t)count * sizeof(float)) != 0) {
        errmsg(err, errlen, "cannot write %s: %s", path, strerror(errno));
        atomic_abort(fd, tmp);
        return -1;
    }
    return atomic_commit(fd, tmp, path, err, errlen);
}

/* --- reading: a parser for the Python dict literal of the header ------------------------ */

typedef struct Cursor { const char *p, *end; } Cursor;

static void skip_space(Cursor *c) {
    while (c->p < c->end && isspace((unsigned char)*c->p)) c->p++;
}

static int eat(Cursor *c, char ch) {
    skip_space(c);
    if (c->p < c->end && *c->p == ch) { c->p++; return 1; }
    return 0;
}

/* A '...' or "..." string without escapes (npy headers never need them). */
static int parse_str(Cursor *c, char *out, size_t outlen) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (n + 1 >= outlen) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int parse_word(Cursor *c, const char *word) {
    skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return 0;
    c->p += n;
    return 1;
}

/* "(3, 4)", "(5,)", "()" */
static int parse_shape(Cursor *c, int *ndim, int64_t dims[8]) {
    if (!eat(c, '(')) return 0;
    *ndim = 0;
    for (;;) {
        if (eat(c, ')')) return 1;
        skip_space(c);
        if (c->p >= c->end || !isdigit((unsigned char)*c->p) || *ndim == 8) return 0;
        int64_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > (INT64_MAX - 9) / 10) return 0;
            v = v * 10 + (*c->p++ - '0');
        }
        dims[(*ndim)++] = v;
        if (!eat(c, ',')) return eat(c, ')');
    }
}

typedef enum { DT_F4, DT_F8, DT_U1, DT_I4, DT_I8 } Dtype;
static const struct { const char *descr; Dtype dt; int size; } dtypes[] = {
    {"<f4", DT_F4, 4}, {"<f8", DT_F8, 8}, {"|u1", DT_U1, 1}, {"<u1", DT_U1, 1},
    {"<i4", DT_I4, 4}, {"<i8", DT_I8, 8},
};

int npy_read(const char *path, float **data, int *ndim, int64_t dims[8], char *err, int errlen) {
    *data = NULL;
    *ndim = 0;
    unsigned char *buf;
    size_t size;
    if (read_file_all(path, &buf, &size, err, errlen) != 0) return -1;

    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        errmsg(err, errlen, "%s: not a .npy file (bad magic)", path);
        goto fail;
    }
    int major = buf[6];
    size_t header_start, header_len;
    if (major == 1) {
        header_start = 10;
        header_len = buf[8] | (size_t)buf[9] << 8;
    } else if (major == 2 || major == 3) {
        if (size < 12) { errmsg(err, errlen, "%s: truncated header", path); goto fail; }
        header_start = 12;
        header_len = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    } else {
        errmsg(err, errlen, "%s: unsupported .npy version %d.%d", path, major, buf[7]);
        goto fail;
    }
    if (header_len > size - header_start) {
        errmsg(err, errlen, "%s: truncated header (%zu bytes declared, %zu present)",
             path, header_len, size - header_start);
        goto fail;
    }

    Cursor c = { (const char *)buf + header_start, (const char *)buf + header_start + header_len };
    int have_descr = 0, have_order = 0, have_shape = 0, item = 0;
    Dtype dt = DT_F4;
    char key[32], descr[32] = "";
    if (!eat(&c, '{')) goto bad_header;
    while (!eat(&c, '}')) {
        if (!parse_str(&c, key, sizeof key) || !eat(&c, ':')) goto bad_header;
        if (strcmp(key, "descr") == 0) {
            if (!parse_str(&c, descr, sizeof descr)) goto bad_header;
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (parse_word(&c, "True")) {
                errmsg(err, errlen, "%s: Fortran-order arrays are not supported", path);
                goto fail;
            }
            if (!parse_word(&c, "False")) goto bad_header;
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!parse_shape(&c, ndim, dims)) goto bad_header;
            have_shape = 1;
        } else {
            goto bad_header;
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}')) goto bad_header;
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape) goto bad_header;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(descr, dtypes[i].descr) == 0) { dt = dtypes[i].dt; item = dtypes[i].size; }
    if (!item) {
        errmsg(err, errlen, "%s: unsupported dtype '%s' (supported: <f4, <f8, |u1, <i4, <i8)",
             path, descr);
        goto fail;
    }

    int64_t count = 1;
    for (int d = 0; d < *ndim; d++) {
        if (dims[d] != 0 && count > ((int64_t)1 << 50) / dims[d]) {
            errmsg(err, errlen, "%s: implausible shape", path);
            goto fail;
        }
        count *= dims[d];
    }
    size_t data_start = header_start + header_len, want = (size_t)count * (size_t)item;
    if (size - data_start != want) {
        errmsg(err, errlen, "%s: %s (expected %zu bytes of data, got %zu)", path,
             size - data_start < want ? "truncated" : "trailing bytes after the data",
             want, size - data_start);
        goto fail;
    }
    float *out = malloc(count ? (size_t)count * sizeof(float) : 1);
    if (!out) { errmsg(err, errlen, "%s: out of memory", path); goto fail; }
    const unsigned char *src = buf + data_start;
    /* memcpy per element: the data offset need not be aligned for wider types */
    for (int64_t i = 0; i < count; i++) {
        const unsigned char *s = src + (size_t)i * (size_t)item;
        switch (dt) {
        case DT_F4: { float v; memcpy(&v, s, 4); out[i] = v; break; }
        case DT_F8: { double v; memcpy(&v, s, 8); out[i] = (float)v; break; }
        case DT_U1: out[i] = (float)s[0]; break;
        case DT_I4: { int32_t v; memcpy(&v, s, 4); out[i] = (float)v; break; }
        case DT_I8: { int64_t v; memcpy(&v, s, 8); out[i] = (float)v; break; }
        }
    }
    free(buf);
    *data = out;
    return 0;

bad_header:
    errmsg(err, errlen, "%s: malformed .npy header", path);
fail:
    free(buf);
    *ndim = 0;
    return -1;
}
