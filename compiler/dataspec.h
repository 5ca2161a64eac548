/* dataspec.h: a data pipeline as the program declares it (compiler/data_builtins.c builds
 * it); runtime/data.c loads it. The shape of one example is worked out at compile time, so
 * sema can build graphs before any data is read. */
#ifndef GMC_DATASPEC_H
#define GMC_DATASPEC_H
#include <stdint.h>
#include "ast.h"
#include "ir.h"

typedef enum DataSource {
    DS_IDX,            /* fashion_mnist, mnist: IDX image/label pairs */
    DS_FOLDER,         /* image_folder: PNG/JPEG files, or one subfolder per class */
    DS_NPY,            /* npy: an array whose first axis is the examples */
    DS_TEXT,           /* text: windows of a character corpus with next-character targets */
    DS_UNPAIRED,       /* unpaired: two domains, A and B */
} DataSource;

/* A transform. Load-time ones change the stored examples once; per-batch ones (DOP_FLIP,
 * DOP_NOISE) draw from the run's Rng each time a batch is filled. */
typedef enum DataOpKind {
    DOP_FILTER,        /* keep examples whose label is in v[0..n) */
    DOP_SCALE,         /* [a, b] -> [lo, hi]; min-max of the source array when !known */
    DOP_PAD,           /* v = top, bottom, left, right; filled with value */
    DOP_CROP,          /* v = top, left, height, width (v[4]: centred axes, for the compiler) */
    DOP_RESIZE,        /* v = height, width; area filter shrinking, bilinear growing */
    DOP_CHANNELS,      /* v[0] = 1 or 3: add a channel axis, replicate grey, or take luma */
    DOP_SPLIT,         /* v[0] = 0 train / 1 validation part, v[1] = shuffled; fraction */
    DOP_FLIP,          /* per batch: mirror left-right with probability p */
    DOP_NOISE,         /* per batch: add N(0, std^2) to every value */
} DataOpKind;

/* DataOp and DataSpec have no padding bytes (fields are paired to 8 bytes): sema compares
 * specs with memcmp, so two evaluations of one pipeline must be equal byte for byte. */
typedef struct DataOp {
    DataOpKind kind;
    int n;
    int known;         /* DOP_SCALE: the input range [a, b] is known */
    int value_given;   /* DOP_PAD: value: was given (else the low end of the range) */
    int64_t v[16];
    double a, b;       /* DOP_SCALE input range */
    double lo, hi;     /* DOP_SCALE output range */
    double value;      /* DOP_PAD fill */
    double fraction;   /* DOP_SPLIT: the validation fraction */
    double p, std;     /* DOP_FLIP probability, DOP_NOISE standard deviation */
} DataOp;

enum { DATA_MAXOPS = 16 };

/* A data pipeline: where examples come from and what is done to them. */
typedef struct DataSpec {
    DataSource kind;
    int channels;              /* DS_FOLDER: 1 (grey) or 3 (RGB) */
    const char *source;        /* the name in the program: "fashion_mnist", "npy", ... */
    const char *split;         /* IDX: "train" / "test" (which files); others "all" */
    const char *dir;           /* IDX: directory of its files; NULL = the source's default */
    const char *path;          /* DS_FOLDER / DS_NPY / DS_TEXT: the folder or file */
    const char *labels_path;   /* DS_NPY: optional labels array */
    int64_t size[2];           /* DS_FOLDER: height, width (the first image's if not given) */
    int resize;                /* DS_FOLDER: size was given: images of other sizes are resized */
    int window, stride;        /* DS_TEXT: characters per window, start-to-start distance */
    int nvocab;
    const char *vocab;         /* DS_TEXT: the characters (bytes), sorted; nvocab of them */
    const struct DataSpec *a, *b;  /* DS_UNPAIRED: the two domains (their ops apply there) */
    DataOp ops[DATA_MAXOPS];
    int nops;
    int shuffle;
    int batch;                 /* 0: not batched */
    int drop_last;             /* leave out the last batch when it is smaller */
    /* What one example yields: part 0 is x; part 1, when nparts == 2, is the label (class id
     * [], or one-hot [nclasses]), the next-character target, or domain B's example. */
    int nparts;
    int labels;                /* with_labels() was applied */
    int one_hot;               /* labels / text ids as one-hot vectors */
    int ndim;                  /* shape of part 0 */
    int64_t shape[IR_MAXDIM];
    int64_t nclasses;          /* 0: the source has no labels */
    int ndim2;                 /* shape of part 1 */
    int range_known;           /* current value range, for scale() and pad()'s default */
    int64_t shape2[IR_MAXDIM];
    double range_lo, range_hi;
    int per_batch;             /* a per-batch transform was applied (later shape ops err) */
    int reserved;              /* keeps the layout free of padding */
    Loc loc;
} DataSpec;

#endif
