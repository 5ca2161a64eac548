/* image.h: sample grids written as PNG with libpng. */
#ifndef GMC_IMAGE_H
#define GMC_IMAGE_H
#include <stdint.h>

/* imgs: n images of c channels (1 = 8-bit grey PNG, 3 = RGB PNG), each h x w, channel-major
 * (NCHW); values mapped linearly from [lo, hi] to [0, 255], clamped (NaN -> 0).
 * Grid shape: both rows and cols > 0: used as given (images past rows*cols are left out);
 * only rows > 0: cols = ceil(n / rows); only cols > 0: rows = ceil(n / cols); neither:
 * cols = ceil(sqrt(n)), rows = ceil(n / cols). Images fill the grid row by row; tiles are
 * separated by 1-pixel gaps of value 0 (no outer border), and unused cells stay 0.
 * The file is written atomically (temp file + rename); parent directories are created.
 * Returns 0, or -1 with the file and reason in err. */
int png_write_grid(const char *path, const float *imgs, int n, int c, int h, int w,
                   int rows, int cols, float lo, float hi, char *err, int errlen);
#endif
