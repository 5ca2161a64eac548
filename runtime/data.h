/* data.h: data sets as the runtime holds them: every example as float32, already scaled. */
#ifndef GMC_DATA_H
#define GMC_DATA_H
#include <stdint.h>
#include "dataspec.h"
#include "rng.h"

typedef struct Dataset {
    int64_t n;                 /* examples */
    int ndim;
    int64_t shape[IR_MAXDIM];  /* one example */
    int64_t example_size;
    float *x;                  /* n * example_size */
    float *labels;             /* n, or NULL */
} Dataset;

/* Loads (once; later calls with an equal spec share the data) the examples a spec names.
 * Returns NULL with the file and the problem in err. */
const Dataset *data_load(const DataSpec *spec, char *err, int errlen);
/* Copies examples idx[start .. start+n) of d into dst (n * example_size floats), applying the
 * spec's per-batch transforms with draws from rng. */
void data_fill_batch(const Dataset *d, const DataSpec *spec, const int64_t *idx, int64_t start,
                     int n, float *dst, Rng *rng);
#endif
