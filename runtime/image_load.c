/* image_load.c: PNG (libpng's simplified API) and JPEG (libjpeg) decoding to 8-bit grey or
 * RGB, and a separable resampler for float images. libjpeg reports a truncated file only as
 * a warning and fills the rest with grey; here every warning fails the read, so a damaged
 * file is reported rather than trained on. */
#include "image_load.h"
#include "errmsg.h"
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>


typedef enum { FMT_NONE, FMT_PNG, FMT_JPEG } Format;

/* Opens path and tells its format from the signature; the stream is rewound. */
static FILE *open_image(const char *path, Format *fmt, char *err, int errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { errmsg(err, errlen, "cannot open %s: %s", path, strerror(errno)); return NULL; }
    unsigned char sig[8] = {0};
    size_t got = fread(sig, 1, sizeof sig, f);
    rewind(f);
    if (got == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8)) *fmt = FMT_PNG;
    else if (got >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF) *fmt = FMT_JPEG;
    else {
        errmsg(err, errlen, got == 0 ? "%s: empty file, not a PNG or JPEG image"
                                   : "%s: not a PNG or JPEG image", path);
        fclose(f);
        return NULL;
    }
    return f;
}

/* --- PNG ------------------------------------------------------------------------------- */

static int png_begin(const char *path, FILE *f, png_image *im, char *err, int errlen) {
    memset(im, 0, sizeof *im);
    im->version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(im, f)) {
        errmsg(err, errlen, "%s: corrupt PNG (%s)", path, im->message);
        png_image_free(im);
        return -1;
    }
    return 0;
}

static int png_decode(const char *path, FILE *f, int channels, Image8 *out, char *err, int errlen) {
    png_image im;
    if (png_begin(path, f, &im, err, errlen) != 0) return -1;
    int color = (im.format & PNG_FORMAT_FLAG_COLOR) != 0;
    /* colour to grey is done here with luma weights: libpng would convert in linear light */
    int decode_channels = channels == 1 && !color ? 1 : 3;
    im.format = decode_channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    size_t size = PNG_IMAGE_SIZE(im);
    uint8_t *px = calloc(size ? size : 1, 1);      /* zeros: alpha composites onto black */
    if (!px) { png_image_free(&im); errmsg(err, errlen, "%s: out of memory", path); return -1; }
    if (!png_image_finish_read(&im, NULL, px, 0, NULL)) {
        errmsg(err, errlen, "%s: truncated or corrupt PNG (%s)", path, im.message);
        png_image_free(&im);
        free(px);
        return -1;
    }
    *out = (Image8){ (int)im.width, (int)im.height, decode_channels, px };
    return 0;
}

/* --- JPEG ------------------------------------------------------------------------------ */

typedef struct JpegErr {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} JpegErr;

static void jpeg_on_error(j_common_ptr cinfo) {
    JpegErr *e = (JpegErr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level < 0) jpeg_on_error(cinfo);    /* a warning: corrupt or truncated data */
}

static int jpeg_decode(const char *path, FILE *f, int channels, int header_only, Image8 *out,
                       int *color, char *err, int errlen) {
    struct jpeg_decompress_struct cinfo;
    JpegErr je;
    uint8_t *volatile px = NULL;
    cinfo.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_on_error;
    je.mgr.emit_message = jpeg_on_message;
    if (setjmp(je.jump)) {
        errmsg(err, errlen, "%s: truncated or corrupt JPEG (%s)", path, je.msg);
        jpeg_destroy_decompress(&cinfo);
        free(px);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        errmsg(err, errlen, "%s: CMYK JPEG images are not supported", path);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    int is_color = cinfo.num_components > 1;
    if (header_only) {
        *out = (Image8){ (int)cinfo.image_width, (int)cinfo.image_height, is_color ? 3 : 1, NULL };
        if (color) *color = is_color;
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    /* libjpeg's grey output is the Y of YCbCr, the same 601 luma used for PNG */
    cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, c = cinfo.output_components;
    px = malloc((size_t)w * h * c + 1);
    if (!px) { jpeg_destroy_decompress(&cinfo); errmsg(err, errlen, "%s: out of memory", path); return -1; }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + (size_t)cinfo.output_scanline * w * c;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *out = (Image8){ w, h, c, px };
    return 0;
}

/* --- entry points ---------------------------------------------------------------------- */

int image_read_info(const char *path, int *width, int *height, int *color, char *err, int errlen) {
    Format fmt;
    FILE *f = open_image(path, &fmt, err, errlen);
    if (!f) return -1;
    int rc;
    if (fmt == FMT_PNG) {
        png_image im;
        rc = png_begin(path, f, &im, err, errlen);
        if (rc == 0) {
            *width = (int)im.width;
            *height = (int)im.height;
            *color = (im.format & PNG_FORMAT_FLAG_COLOR) != 0;
            png_image_free(&im);
        }
    } else {
        Image8 head;
        rc = jpeg_decode(path, f, 3, 1, &head, color, err, errlen);
        if (rc == 0) { *width = head.width; *height = head.height; }
    }
    fclose(f);
    return rc;
}

static void rgb_to_grey(Image8 *im) {
    size_t n = (size_t)im->width * im->height;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = im->pixels + 3 * i;
        float y = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
        im->pixels[i] = (uint8_t)(y + 0.5f);
    }
    im->channels = 1;
}

static int grey_to_rgb(Image8 *im) {
    size_t n = (size_t)im->width * im->height;
    uint8_t *rgb = malloc(3 * n + 1);
    if (!rgb) return -1;
    for (size_t i = 0; i < n; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = im->pixels[i];
    free(im->pixels);
    im->pixels = rgb;
    im->channels = 3;
    return 0;
}

int image_read(const char *path, int channels, Image8 *out, char *err, int errlen) {
    memset(out, 0, sizeof *out);
    Format fmt;
    FILE *f = open_image(path, &fmt, err, errlen);
    if (!f) return -1;
    int rc = fmt == FMT_PNG ? png_decode(path, f, channels, out, err, errlen)
                            : jpeg_decode(path, f, channels, 0, out, NULL, err, errlen);
    fclose(f);
    if (rc != 0) return -1;
    if (out->width < 1 || out->height < 1) {
        errmsg(err, errlen, "%s: image has no pixels", path);
        image_free(out);
        return -1;
    }
    if (channels == 1 && out->channels == 3) rgb_to_grey(out);
    if (channels == 3 && out->channels == 1 && grey_to_rgb(out) != 0) {
        errmsg(err, errlen, "%s: out of memory", path);
        image_free(out);
        return -1;
    }
    return 0;
}

void image_free(Image8 *im) {
    free(im->pixels);
    im->pixels = NULL;
}

/* --- resampling ------------------------------------------------------------------------ */

/* Resamples n lines of length `in` to length `out`. A line's samples are `step` floats
 * apart; consecutive lines start `line` floats apart (in src and dst alike). */
static void resample_axis(const float *src, float *dst, int in, int out, int64_t n,
                          int64_t step, int64_t line_in, int64_t line_out) {
    double ratio = (double)in / out;
    double *w = malloc(((size_t)ratio + 3) * sizeof *w);
    if (!w) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    for (int j = 0; j < out; j++) {
        /* each output sample as a weighted sum of nw input samples from i0 on */
        int i0, nw = 0;
        if (in == out) {
            i0 = j; w[nw++] = 1;
        } else if (in > out) {            /* area: the overlap of [j, j+1) * ratio with each pixel */
            double lo = j * ratio, hi = (j + 1) * ratio;
            i0 = (int)lo;
            int i1 = (int)hi < in ? (int)hi : in - 1;
            for (int i = i0; i <= i1; i++) {
                double a = i > lo ? i : lo, b = i + 1 < hi ? i + 1 : hi;
                w[nw++] = (b > a ? b - a : 0) / ratio;
            }
        } else {                           /* bilinear, half-pixel centres, edges clamped */
            double x = (j + 0.5) * ratio - 0.5;
            if (x < 0) x = 0;
            i0 = (int)x;
            if (i0 >= in - 1) { i0 = in - 1; w[nw++] = 1; }
            else { double t = x - i0; w[nw++] = 1 - t; w[nw++] = t; }
        }
        for (int64_t l = 0; l < n; l++)
            for (int64_t s = 0; s < step; s++) {
                const float *p = src + l * line_in + s;
                double acc = 0;
                for (int k = 0; k < nw; k++) acc += w[k] * p[(int64_t)(i0 + k) * step];
                dst[l * line_out + (int64_t)j * step + s] = (float)acc;
            }
    }
    free(w);
}

void image_resize(const float *src, int h, int w, int c, float *dst, int oh, int ow) {
    /* width first (rows of w*c), then height (columns of ow*c) */
    float *tmp = malloc((size_t)h * ow * c * sizeof *tmp + 1);
    if (!tmp) { fprintf(stderr, "gmc: out of memory\n"); exit(2); }
    resample_axis(src, tmp, w, ow, h, c, (int64_t)w * c, (int64_t)ow * c);
    resample_axis(tmp, dst, h, oh, 1, (int64_t)ow * c, 0, 0);
    free(tmp);
}
