/* image_load.h: reading PNG and JPEG files (libpng, libjpeg) into 8-bit pixels, and
 * resampling float images. The format is told by the file's first bytes, not its name. */
#ifndef GMC_IMAGE_LOAD_H
#define GMC_IMAGE_LOAD_H
#include <stdint.h>

typedef struct Image8 {
    int width, height, channels;   /* channels: 1 (grey) or 3 (RGB) */
    uint8_t *pixels;               /* height rows of width * channels bytes; free with image_free */
} Image8;

/* The size of an image and whether it has colour, from its header. Returns 0, or -1 with the
 * file and the problem (missing, not a PNG or JPEG, truncated) in err. */
int image_read_info(const char *path, int *width, int *height, int *color, char *err, int errlen);
/* Decodes the whole image to `channels` (1: grey, colour taken as ITU-R 601 luma; 3: RGB, grey
 * replicated). Transparent pixels are composited onto black. 0, or -1 with the file and the
 * problem in err. */
int image_read(const char *path, int channels, Image8 *out, char *err, int errlen);
void image_free(Image8 *im);

/* Resamples an h x w image of c interleaved channels (HWC floats) to oh x ow, axis by axis:
 * an area (box) average where an axis shrinks, bilinear with half-pixel centres where it
 * grows, a copy where it keeps its size. */
void image_resize(const float *src, int h, int w, int c, float *dst, int oh, int ow);
#endif
