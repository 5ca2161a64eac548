/* idx.h: reads IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or plain. */
#ifndef GMC_IDX_H
#define GMC_IDX_H
#include <stdint.h>

typedef struct IdxArray {
    int ndim;
    int64_t dims[4];
    uint8_t *data;     /* ubyte payload, row-major; free with idx_free */
} IdxArray;

/* Returns 0 on success. On failure returns -1 and writes a message that names the file and
 * what is wrong (missing, not gzip/IDX, truncated, unsupported type) into err. */
int idx_load(const char *path, IdxArray *out, char *err, int errlen);
void idx_free(IdxArray *a);
#endif
