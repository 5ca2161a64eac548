/* train.h: running a program: train blocks, sampling procedures, and the one-step gradient
 * dump the PyTorch cross-checks read. */
#ifndef GMC_TRAIN_H
#define GMC_TRAIN_H
#include <stdint.h>
#include "program.h"

typedef struct RunOptions {
    const char *out_dir;       /* everything a run writes goes under it */
    uint64_t seed;
    int threads;
    int fuse;                  /* 0: unfused kernels (the oracle) */
    int interpret;             /* 1: reference interpreter instead of the JIT */
    int limit_batches;         /* > 0: stop each epoch after this many batches (tests) */
    int dump_kernels;          /* print the kernels of every compiled block */
    int stats;                 /* --stats: time per kind of work, GFLOP/s, memory, kernels */
    const char *ckpt;          /* --sample / --resume: checkpoint (NULL: the latest under out_dir) */
    int resume;                /* continue from a checkpoint */
    int keep_checkpoints;      /* keep the newest N step_*.safetensors (0: 5) */
    int no_cache;              /* --no-cache: no kernel cache on disk */
} RunOptions;

int run_train(Program *p, Train *t, const RunOptions *o);
int run_sample(Program *p, Node *sample, const RunOptions *o);
/* One forward and backward pass of a step of t (the first, or the one named step_name) on
 * batches read from npy files, feeds[k] for the step's k-th data input (counters epoch and
 * step read 0), built with `training` = 1 or 0; no update. Writes parameters (state buffers
 * as they were before the step), inputs (input/x, then input/1, ...), noise draws (noise/N in
 * the order the program makes them), the loss and the gradients to a safetensors file. */
int run_grad_dump(Program *p, Train *t, const char **feeds, int nfeeds, const char *step_name,
                  int training, const char *path, const RunOptions *o);
#endif
