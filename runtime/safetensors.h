/* safetensors.h: checkpoints in the safetensors format (8-byte little-endian header length,
 * JSON header, raw little-endian data), float32 tensors plus string metadata. Writes are
 * atomic: temp file in the same directory, fsync, rename, fsync of the directory. */
#ifndef GMC_SAFETENSORS_H
#define GMC_SAFETENSORS_H
#include <stdint.h>

typedef struct StTensor {
    const char *name;
    int ndim;
    int64_t dims[8];
    const float *data;
} StTensor;

typedef struct StMeta { const char *key, *value; } StMeta;

int st_write(const char *path, const StTensor *ts, int nt, const StMeta *meta, int nmeta,
             char *err, int errlen);

typedef struct StFile StFile;
/* Opens and validates (header JSON, offsets within the file, dtype F32). NULL on error
 * with the file named and what is wrong in err. */
StFile *st_open(const char *path, char *err, int errlen);
int st_count(const StFile *f);
const StTensor *st_get(const StFile *f, int i);
const StTensor *st_find(const StFile *f, const char *name);   /* NULL if absent */
const char *st_meta(const StFile *f, const char *key);        /* NULL if absent */
void st_close(StFile *f);
#endif
