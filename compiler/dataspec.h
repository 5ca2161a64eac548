/* dataspec.h: a data pipeline as the program declares it; runtime/data.c loads it. */
#ifndef GMC_DATASPEC_H
#define GMC_DATASPEC_H
#include <stdint.h>
#include "ast.h"
#include "ir.h"

/* A data pipeline: where examples come from and what is done to them. */
typedef struct DataSpec {
    const char *source;        /* "fashion_mnist", "mnist" */
    const char *split;         /* "train" / "test" */
    const char *dir;           /* directory of IDX files; NULL = the source's default */
    int scaled;
    float lo, hi;              /* pixel 0 -> lo, 255 -> hi */
    int shuffle;
    int batch;                 /* 0: not batched */
    int ndim;                  /* shape of one example */
    int64_t shape[IR_MAXDIM];
    Loc loc;
} DataSpec;

#endif
