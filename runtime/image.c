/* image.c: PNG sample grids. The PNG is encoded into memory and then written with
 * write_file_atomic, so a viewer polling the file never sees a partial image. */
#include "image.h"
#include "fsutil.h"
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct PngSink {
    unsigned char *data;
    size_t n, cap;
    char msg[200];       /* libpng's error message, if any */
} PngSink;

static void sink_write(png_structp png, png_bytep bytes, png_size_t len) {
    PngSink *s = png_get_io_ptr(png);
    if (s->n + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->n + len) cap *= 2;
        unsigned char *grown = realloc(s->data, cap);
        if (!grown) png_error(png, "out of memory");
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->n, bytes, len);
    s->n += len;
}

static void sink_flush(png_structp png) { (void)png; }

static void on_png_error(png_structp png, png_const_charp msg) {
    PngSink *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static unsigned char to_byte(float x, float lo, float hi) {
    float v = (x - lo) / (hi - lo) * 255.0f;
    if (!(v > 0.0f)) return 0;          /* also NaN, and hi == lo */
    if (v >= 255.0f) return 255;
    return (unsigned char)lrintf(v);
}

/* Encodes width x height pixels of c channels into s; 0, or -1 with s->msg set. */
static int encode_png(PngSink *s, const unsigned char *pixels, int width, int height, int c) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, on_png_error,
                                              on_png_warning);
    if (!png) { snprintf(s->msg, sizeof s->msg, "out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(s->msg, sizeof s->msg, "out of memory");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, s, sink_write, sink_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * (size_t)width * (size_t)c);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int png_write_grid(const char *path, const float *imgs, int n, int c, int h, int w,
                   int rows, int cols, float lo, float hi, char *err, int errlen) {
    if (n < 1 || (c != 1 && c != 3) || h < 1 || w < 1) {
        snprintf(err, (size_t)errlen, "cannot write %s: bad image grid (n=%d c=%d h=%d w=%d; "
                 "need n, h, w >= 1 and 1 or 3 channels)", path, n, c, h, w);
        return -1;
    }
    if (rows <= 0 && cols <= 0) {
        cols = (int)ceil(sqrt((double)n));
        while ((int64_t)cols * cols < n) cols++;   /* guard against sqrt rounding down */
    }
    if (cols <= 0) cols = (int)(((int64_t)n + rows - 1) / rows);
    if (rows <= 0) rows = (int)(((int64_t)n + cols - 1) / cols);
    int64_t width = (int64_t)cols * (w + 1) - 1, height = (int64_t)rows * (h + 1) - 1;
    /* libpng refuses sides over 1,000,000 pixels by default; say so before encoding */
    if (width > 1000000 || height > 1000000) {
        snprintf(err, (size_t)errlen, "cannot write %s: grid of %lld x %lld pixels is too large",
                 path, (long long)width, (long long)height);
        return -1;
    }
    unsigned char *pixels = calloc((size_t)(width * height * c), 1);
    if (!pixels) {
        snprintf(err, (size_t)errlen, "cannot write %s: out of memory", path);
        return -1;
    }
    int shown = (int64_t)rows * cols < n ? rows * cols : n;
    for (int i = 0; i < shown; i++) {
        int64_t x0 = (int64_t)(i % cols) * (w + 1), y0 = (int64_t)(i / cols) * (h + 1);
        const float *img = imgs + (size_t)i * (size_t)c * (size_t)h * (size_t)w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    pixels[((y0 + y) * width + x0 + x) * c + ch] =
                        to_byte(img[((size_t)ch * h + y) * w + x], lo, hi);
    }
    PngSink sink = {0};
    int rc = encode_png(&sink, pixels, (int)width, (int)height, c);
    free(pixels);
    if (rc == 0) rc = write_file_atomic(path, sink.data, sink.n, err, errlen);
    else snprintf(err, (size_t)errlen, "cannot write %s: %s", path, sink.msg);
    free(sink.data);
    return rc;
}
