/* image.h: sample grids written as PNG with libpng. */
#ifndef GMC_IMAGE_H
#define GMC_IMAGE_H
#include <stdint.h>

/* imgs: n images of c channels (1 or 3), each h x w, channel-major (NCHW), values mapped
 * linearly from [lo, hi] to [0, 255] and clamped. Laid out `rows` images per row... precisely:
 * a grid with `cols` columns (cols = ceil(n / rows) when cols <= 0), 1-pixel gaps.
 * Returns 0, or -1 with the file and reason in err. Parent directories are created. */
int png_write_grid(const char *path, const float *imgs, int n, int c, int h, int w,
                   int rows, int cols, float lo, float hi, char *err, int errlen);
#endif
