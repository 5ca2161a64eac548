/* npy.h: NumPy .npy files (version 1.0, little-endian float32, C order). */
#ifndef GMC_NPY_H
#define GMC_NPY_H
#include <stdint.h>

int npy_write(const char *path, const float *data, int ndim, const int64_t *dims,
              char *err, int errlen);
/* Reads float32 (also accepts float64, uint8, int32, int64 and converts to float32).
 * *data is malloc'ed. Returns 0 or -1 with the file and reason in err. */
int npy_read(const char *path, float **data, int *ndim, int64_t dims[8], char *err, int errlen);
#endif
