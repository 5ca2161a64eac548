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
/* One forward and backward pass of the first step of t on the batch read from npy file
 * feed_x (or the first batch of the stream), no update; writes parameters, inputs, noise,
 * loss and gradients to a safetensors file. */
int run_grad_dump(Program *p, Train *t, const char *feed_x, const char *path, const RunOptions *o);
#endif
