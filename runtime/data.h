/* data.h: data sets as the runtime holds them: every example as float32, already scaled. */
#ifndef GMC_DATA_H
#define GMC_DATA_H
#include <stdint.h>
#include "program.h"

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
#endif
