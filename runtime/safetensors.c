/* safetensors.c: checkpoints as safetensors (https://github.com/huggingface/safetensors):
 * u64 little-endian header length N, N bytes of JSON header padded with spaces, then the
 * tensor data, offsets relative to the data's start. Only F32 tensors and string metadata,
 * which is all gmc stores. The reader loads the file whole and hands out pointers into it. */
#include "safetensors.h"
#include "fsutil.h"
#include "errmsg.h"
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c writes and reads host-order floats as little-endian"
#endif


/* --- writing ------------------------------------------------------------------------- */

typedef struct Text { char *s; size_t n, cap; int oom; } Text;

static void put(Text *t, const char *s, size_t n) {
    if (t->oom) return;
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n + n + 1) cap *= 2;
        char *grown = realloc(t->s, cap);
        if (!grown) { t->oom = 1; return; }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = '\0';
}

static void put_str(Text *t, const char *s) { put(t, s, strlen(s)); }

static void put_json_string(Text *t, const char *s) {
    put(t, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        if (ch == '"' || ch == '\\') { esc[0] = '\\'; esc[1] = (char)ch; put(t, esc, 2); }
        else if (ch < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", ch); put(t, esc, 6); }
        else put(t, (const char *)&ch, 1);   /* UTF-8 passes through as is */
    }
    put(t, "\"", 1);
}

static int64_t element_count(const StTensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->dims[d];
    return n;
}

int st_write(const char *path, const StTensor *ts, int nt, const StMeta *meta, int nmeta,
             char *err, int errlen) {
    for (int i = 0; i < nt; i++) {
        const StTensor *t = &ts[i];
        if (!t->name || strcmp(t->name, "__metadata__") == 0) {
            errmsg(err, errlen, "cannot write %s: tensor %d has no usable name", path, i);
            return -1;
        }
        if (t->ndim < 0 || t->ndim > 8) {
            errmsg(err, errlen, "cannot write %s: tensor '%s': unsupported rank %d",
                 path, t->name, t->ndim);
            return -1;
        }
        for (int d = 0; d < t->ndim; d++)
            if (t->dims[d] < 0) {
                errmsg(err, errlen, "cannot write %s: tensor '%s': negative dimension",
                     path, t->name);
                return -1;
            }
        if (!t->data && element_count(t) > 0) {
            errmsg(err, errlen, "cannot write %s: tensor '%s' has no data", path, t->name);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(ts[j].name, t->name) == 0) {
                errmsg(err, errlen, "cannot write %s: duplicate tensor name '%s'", path, t->name);
                return -1;
            }
    }

    Text h = {0};
    char num[64];
    put_str(&h, "{");
    if (nmeta > 0) {
        put_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) put_str(&h, ",");
            put_json_string(&h, meta[i].key);
            put_str(&h, ":");
            put_json_string(&h, meta[i].value);
        }
        put_str(&h, "}");
    }
    int64_t offset = 0;
    for (int i = 0; i < nt; i++) {
        const StTensor *t = &ts[i];
        if (i || nmeta > 0) put_str(&h, ",");
        put_json_string(&h, t->name);
        put_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t->dims[d]);
            put_str(&h, num);
        }
        int64_t bytes = element_count(t) * (int64_t)sizeof(float);
        snprintf(num, sizeof num, "],\"data_offsets\":[%lld,%lld]}",
                 (long long)offset, (long long)(offset + bytes));
        put_str(&h, num);
        offset += bytes;
    }
    put_str(&h, "}");
    /* pad so the data starts 8-byte aligned, as the reference implementation does */
    while (!h.oom && (h.n % 8) != 0) put_str(&h, " ");
    if (h.oom) {
        free(h.s);
        errmsg(err, errlen, "cannot write %s: out of memory", path);
        return -1;
    }

    unsigned char len[8];
    for (int b = 0; b < 8; b++) len[b] = (unsigned char)((uint64_t)h.n >> (8 * b));
    char tmp[4096];
    int fd = atomic_open(path, tmp, (int)sizeof tmp, err, errlen);
    if (fd < 0) { free(h.s); return -1; }
    int rc = fd_write_all(fd, len, 8) == 0 && fd_write_all(fd, h.s, h.n) == 0 ? 0 : -1;
    free(h.s);
    for (int i = 0; i < nt && rc == 0; i++)
        rc = fd_write_all(fd, ts[i].data, (size_t)element_count(&ts[i]) * sizeof(float));
    if (rc != 0) {
        errmsg(err, errlen, "cannot write %s: %s", path, strerror(errno));
        atomic_abort(fd, tmp);
        return -1;
    }
    return atomic_commit(fd, tmp, path, err, errlen);
}

/* --- reading ------------------------------------------------------------------------- */

struct StFile {
    unsigned char *buf;          /* the whole file; names and metadata live in its header */
    StTensor *tensors;
    int nt;
    StMeta *meta;
    int nmeta;
    float **copies;              /* aligned copies of tensors whose data was misaligned */
    int ncopies;
};

/* Schema-directed JSON parsing of the header. Strings are decoded in place (an escape is
 * never shorter than what it stands for), so names point into the file buffer. */
typedef struct Parser {
    char *start, *p, *end;
    const char *path;
    char *err;
    int errlen;
    int failed;
} Parser;

/* Records the first error as "FILE: message"; returns 0 so callers can `return report(...)`. */
static int report(Parser *ps, const char *fmt, ...) {
    if (ps->failed) return 0;
    ps->failed = 1;
    if (!ps->err || ps->errlen <= 0) return 0;
    int n = snprintf(ps->err, (size_t)ps->errlen, "%s: ", ps->path);
    if (n < 0 || n >= ps->errlen) return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, (size_t)(ps->errlen - n), fmt, ap);
    va_end(ap);
    return 0;
}

static int syntax(Parser *ps, const char *what) {
    return report(ps, "malformed header JSON at byte %ld: %s", (long)(ps->p - ps->start), what);
}

static void skip_ws(Parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int peek(Parser *ps, char ch) {
    skip_ws(ps);
    return ps->p < ps->end && *ps->p == ch;
}

static int expect(Parser *ps, char ch, const char *what) {
    if (!peek(ps, ch)) return syntax(ps, what);
    ps->p++;
    return 1;
}

static int hex4(Parser *ps, unsigned *out) {
    if (ps->end - ps->p < 4) return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *ps->p++;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static char *put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { *o++ = (char)cp; }
    else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18); *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

static int parse_string(Parser *ps, char **out) {
    if (!expect(ps, '"', "expected a string")) return 0;
    char *s = ps->p, *o = ps->p;
    for (;;) {
        if (ps->p >= ps->end) return syntax(ps, "unterminated string");
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') break;
        if (c < 0x20) return syntax(ps, "control character in a string");
        ps->p++;
        if (c != '\\') { *o++ = (char)c; continue; }
        if (ps->p >= ps->end) return syntax(ps, "unterminated string");
        char e = *ps->p++;
        switch (e) {
        case '"': case '\\': case '/': *o++ = e; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(ps, &cp)) return syntax(ps, "bad \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {       /* a surrogate pair makes one code point */
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u')
                    return syntax(ps, "unpaired surrogate in \\u escape");
                ps->p += 2;
                if (!hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return syntax(ps, "unpaired surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return syntax(ps, "unpaired surrogate in \\u escape");
            }
            if (cp == 0) return syntax(ps, "\\u0000 in a string");
            o = put_utf8(o, cp);
            break;
        }
        default: return syntax(ps, "bad escape in a string");
        }
    }
    ps->p++;          /* past the closing quote, which the terminator may now overwrite */
    *o = '\0';
    *out = s;
    return 1;
}

/* Non-negative JSON integer (no sign, fraction or exponent: none belongs in this header). */
static int parse_uint(Parser *ps, uint64_t *out) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return syntax(ps, "expected a non-negative integer");
    if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9')
        return syntax(ps, "leading zero in a number");
    uint64_t v = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        unsigned digit = (unsigned)(*ps->p++ - '0');
        if (v > (UINT64_MAX - digit) / 10) return syntax(ps, "number too large");
        v = v * 10 + digit;
    }
    if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
        return syntax(ps, "expected an integer");
    *out = v;
    return 1;
}

/* [n, n, ...] into vals (at most maxn); returns the count, or -1 on error. */
static int parse_uint_array(Parser *ps, uint64_t *vals, int maxn, const char *too_many) {
    if (!expect(ps, '[', "expected '['")) return -1;
    int n = 0;
    if (peek(ps, ']')) { ps->p++; return 0; }
    for (;;) {
        if (n == maxn) { syntax(ps, too_many); return -1; }
        if (!parse_uint(ps, &vals[n++])) return -1;
        if (peek(ps, ',')) { ps->p++; continue; }
        if (!expect(ps, ']', "expected ',' or ']'")) return -1;
        return n;
    }
}

/* Makes room for element n of an array that holds n: capacities are powers of two, so the
 * array only needs to grow when n is 0 or a power of two. */
static int grow(void **arr, int n, size_t elem) {
    if (n & (n - 1)) return 1;
    void *g = realloc(*arr, (size_t)(n ? 2 * n : 1) * elem);
    if (!g) return 0;
    *arr = g;
    return 1;
}

static int parse_metadata(Parser *ps, StFile *f) {
    if (!expect(ps, '{', "__metadata__ must be an object")) return 0;
    if (peek(ps, '}')) { ps->p++; return 1; }
    for (;;) {
        char *key, *value;
        if (!parse_string(ps, &key) || !expect(ps, ':', "expected ':'")) return 0;
        if (!peek(ps, '"')) return report(ps, "metadata value of '%s' is not a string", key);
        if (!parse_string(ps, &value)) return 0;
        for (int i = 0; i < f->nmeta; i++)
            if (strcmp(f->meta[i].key, key) == 0)
                return report(ps, "duplicate metadata key '%s'", key);
        if (!grow((void **)&f->meta, f->nmeta, sizeof *f->meta)) return report(ps, "out of memory");
        f->meta[f->nmeta].key = key;
        f->meta[f->nmeta].value = value;
        f->nmeta++;
        if (peek(ps, ',')) { ps->p++; continue; }
        return expect(ps, '}', "expected ',' or '}'");
    }
}

typedef struct Span { uint64_t begin, end; int index; } Span;

static int bad_tensor(Parser *ps, const char *name, const char *what) {
    return report(ps, "tensor '%s': %s", name, what);
}

/* {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} in any key order. */
static int parse_tensor(Parser *ps, const char *name, StTensor *t, Span *span) {
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (!expect(ps, '{', "a tensor entry must be an object")) return 0;
    for (;;) {
        char *key;
        if (!parse_string(ps, &key) || !expect(ps, ':', "expected ':'")) return 0;
        if (strcmp(key, "dtype") == 0 && !have_dtype) {
            char *dtype;
            if (!parse_string(ps, &dtype)) return 0;
            if (strcmp(dtype, "F32") != 0)
                return report(ps, "tensor '%s': unsupported dtype %s (only F32)", name, dtype);
            have_dtype = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            uint64_t dims[8];
            int n = parse_uint_array(ps, dims, 8, "more than 8 dimensions");
            if (n < 0) return 0;
            t->ndim = n;
            for (int d = 0; d < n; d++) {
                if (dims[d] > ((uint64_t)1 << 48)) return bad_tensor(ps, name, "dimension too large");
                t->dims[d] = (int64_t)dims[d];
            }
            have_shape = 1;
        } else if (strcmp(key, "data_offsets") == 0 && !have_offsets) {
            uint64_t offs[2];
            int n = parse_uint_array(ps, offs, 2, "data_offsets must have 2 entries");
            if (n < 0) return 0;
            if (n != 2) return syntax(ps, "data_offsets must have 2 entries");
            span->begin = offs[0];
            span->end = offs[1];
            have_offsets = 1;
        } else {
            return bad_tensor(ps, name, "unexpected or repeated key in its entry");
        }
        if (peek(ps, ',')) { ps->p++; continue; }
        if (!expect(ps, '}', "expected ',' or '}'")) return 0;
        break;
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return bad_tensor(ps, name, "entry lacks dtype, shape or data_offsets");
    return 1;
}

static int by_begin(const void *a, const void *b) {
    const Span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* Points t at its bytes src in the file buffer, or at an aligned copy when other writers
 * left the data misaligned (the format does not require padding). 0 when out of memory. */
static int place_tensor(StFile *f, StTensor *t, const unsigned char *src) {
    if ((uintptr_t)src % _Alignof(float) == 0) { t->data = (const float *)src; return 1; }
    size_t bytes = (size_t)element_count(t) * sizeof(float);
    float *copy = malloc(bytes ? bytes : 1);
    if (!copy || !grow((void **)&f->copies, f->ncopies, sizeof *f->copies)) {
        free(copy);
        return 0;
    }
    memcpy(copy, src, bytes);
    f->copies[f->ncopies++] = copy;
    t->data = copy;
    return 1;
}

/* Fills f from the header, tensors pointing into data; 0 or -1 with err set. */
static int parse_header(StFile *f, char *hdr, size_t hlen, const unsigned char *data,
                        size_t data_len, const char *path, char *err, int errlen) {
    Parser ps = { hdr, hdr, hdr + hlen, path, err, errlen, 0 };
    Span *spans = NULL;
    int have_meta = 0, ok = 1;
    if (!expect(&ps, '{', "expected '{'")) return -1;
    if (peek(&ps, '}')) ps.p++;
    else for (;;) {
        char *name;
        if (!parse_string(&ps, &name) || !expect(&ps, ':', "expected ':'")) { ok = 0; break; }
        if (strcmp(name, "__metadata__") == 0) {
            if (have_meta) { syntax(&ps, "repeated __metadata__"); ok = 0; break; }
            have_meta = 1;
            if (!parse_metadata(&ps, f)) { ok = 0; break; }
        } else {
            for (int i = 0; i < f->nt; i++)
                if (strcmp(f->tensors[i].name, name) == 0) { ok = bad_tensor(&ps, name, "duplicate name"); break; }
            if (!ok) break;
            if (!grow((void **)&f->tensors, f->nt, sizeof *f->tensors) ||
                !grow((void **)&spans, f->nt, sizeof *spans)) { ok = report(&ps, "out of memory"); break; }
            StTensor *t = &f->tensors[f->nt];
            memset(t, 0, sizeof *t);
            t->name = name;
            spans[f->nt].index = f->nt;
            if (!parse_tensor(&ps, name, t, &spans[f->nt])) { ok = 0; break; }
            f->nt++;
        }
        if (peek(&ps, ',')) { ps.p++; continue; }
        if (!expect(&ps, '}', "expected ',' or '}'")) { ok = 0; break; }
        break;
    }
    skip_ws(&ps);
    if (ok && ps.p != ps.end) ok = syntax(&ps, "unexpected text after the header object");

    /* each tensor's bytes lie inside the data buffer, match its shape, and overlap no other */
    for (int i = 0; ok && i < f->nt; i++) {
        StTensor *t = &f->tensors[i];
        uint64_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            count *= (uint64_t)t->dims[d];
            if (count > ((uint64_t)1 << 48)) { ok = bad_tensor(&ps, t->name, "shape too large"); break; }
        }
        if (!ok) break;
        if (spans[i].begin > spans[i].end || spans[i].end > data_len)
            ok = bad_tensor(&ps, t->name, "data_offsets out of range");
        else if (spans[i].end - spans[i].begin != count * sizeof(float))
            ok = bad_tensor(&ps, t->name, "data_offsets do not match shape and dtype");
    }
    for (int i = 0; ok && i < f->nt; i++)
        if (!place_tensor(f, &f->tensors[spans[i].index], data + spans[i].begin))
            ok = report(&ps, "out of memory");
    if (ok && f->nt > 1) {
        qsort(spans, (size_t)f->nt, sizeof *spans, by_begin);
        uint64_t covered = 0;        /* end of the furthest-reaching span so far */
        for (int i = 0; ok && i < f->nt; i++) {
            if (spans[i].begin == spans[i].end) continue;     /* empty tensors own no bytes */
            if (spans[i].begin < covered)
                ok = bad_tensor(&ps, f->tensors[spans[i].index].name,
                                "data overlaps another tensor's");
            if (spans[i].end > covered) covered = spans[i].end;
        }
    }
    free(spans);
    return ok ? 0 : -1;
}

StFile *st_open(const char *path, char *err, int errlen) {
    StFile *f = calloc(1, sizeof *f);
    if (!f) { errmsg(err, errlen, "%s: out of memory", path); return NULL; }
    size_t size;
    if (read_file_all(path, &f->buf, &size, err, errlen) != 0) { free(f); return NULL; }
    if (size < 8) {
        errmsg(err, errlen, "%s: not a safetensors file (only %zu bytes)", path, size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int b = 0; b < 8; b++) hlen |= (uint64_t)f->buf[b] << (8 * b);
    if (hlen > size - 8) {
        errmsg(err, errlen, "%s: header length %llu exceeds file size %zu", path,
             (unsigned long long)hlen, size);
        goto fail;
    }
    char *hdr = (char *)f->buf + 8;
    if (hlen < 2 || hdr[0] != '{') {
        errmsg(err, errlen, "%s: not a safetensors file (header is not a JSON object)", path);
        goto fail;
    }
    size_t data_start = 8 + (size_t)hlen;
    if (parse_header(f, hdr, (size_t)hlen, f->buf + data_start, size - data_start, path,
                     err, errlen) != 0) goto fail;

    return f;
fail:
    st_close(f);
    return NULL;
}

int st_count(const StFile *f) { return f->nt; }

const StTensor *st_get(const StFile *f, int i) {
    return i >= 0 && i < f->nt ? &f->tensors[i] : NULL;
}

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->nt; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

void st_close(StFile *f) {
    if (!f) return;
    for (int i = 0; i < f->ncopies; i++) free(f->copies[i]);
    free(f->copies);
    free(f->tensors);
    free(f->meta);
    free(f->buf);
    free(f);
}
