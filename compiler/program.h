/* program.h: what semantic analysis hands the runtime: the parsed program, its parameters,
 * and the train blocks with their instances, optimisers and data streams. Graphs are built on
 * demand (sema_build_block) because a graph is specialised to a batch size. */
#ifndef GMC_PROGRAM_H
#define GMC_PROGRAM_H
#include "ast.h"
#include "ir.h"
#include "dataspec.h"

/* A model instance a train block uses: declared there (`E = Encoder()`, from 0), or taken from
 * an earlier block (`E1 = ae1.E1`, from = 1 + that block's index), whose last checkpoint gives
 * its weights when this block starts. */
typedef struct Instance { const char *name; Node *model; Loc loc; int from; } Instance;

typedef enum OptKind { OPT_SGD, OPT_RMSPROP, OPT_ADAM, OPT_ADAMW, OPT_NADAM } OptKind;

/* An optimiser as declared; runtime/optim.c holds the update rules. Defaults and rules are
 * Keras's; `torch: true` selects PyTorch's formulation and defaults where they differ. */
typedef struct Optimizer {
    const char *name;
    OptKind kind;
    float lr, beta1, beta2, eps, rho, momentum, weight_decay;
    int nesterov, centered, torch;
    int lr_node;               /* >= 0: lr is this node of Train.schedule (a function of epoch, step) */
    const char *owners[16];    /* instance names whose trainable params it updates */
    int nowners;
    Loc loc;
} Optimizer;

typedef struct Stream { const char *name; DataSpec spec; } Stream;

/* Inputs of a graph that are not data: the training loop's counters, for schedules.
 * `epoch` is the 0-based index of the current epoch, `step` the iterations done so far. */
enum { STREAM_EPOCH = -1, STREAM_STEP = -2,
       /* in the stages of a sampling procedure (SampleProgram): a tensor carried from the
        * stage before or the loop's previous iteration (input_part = its register), and the
        * loop's counter */
       STREAM_CARRY = -3, STREAM_COUNTER = -4 };
enum { BLOCK_MAX_INPUTS = 24, BLOCK_MAX_CARRY = 32, BLOCK_MAX_SAVES = 64 };

/* What a block (step, validate, every, sample) computes, as one graph. */
typedef enum SaveKind { SAVE_GRID_PNG, SAVE_NPY, SAVE_MODEL } SaveKind;
typedef struct SaveAction {
    int node;
    SaveKind kind;
    int rows;
    const char *path;
    const char *owner;         /* SAVE_MODEL: the instance whose parameters are written */
    int when;                  /* 0: always; else node + 1 of a scalar: saved where it is not 0
                                  (a save inside an `if` on a run-time value) */
    Loc loc;
} SaveAction;

typedef struct BlockGraph {
    IrGraph g;
    int batch;
    int ninputs;
    int input_stream[BLOCK_MAX_INPUTS]; /* input slot -> stream index, or a STREAM_* marker */
    int input_part[BLOCK_MAX_INPUTS];   /* which tensor of the stream: 0 = x, 1 = labels /
                                           targets / B; STREAM_CARRY: the register */
    int loss;                  /* -1 if the block minimises nothing */
    int optimizer;             /* index into Train.opt */
    int ngrads;
    int grad_param[512];       /* parameter index */
    int grad_node[512];
    int nreports;
    const char *report_name[16];
    int report_node[16];
    int nsaves;
    SaveAction saves[BLOCK_MAX_SAVES];
    int checkpoint;            /* the block asks for a checkpoint */
    int nstate;                /* `state` buffers assigned in training: param <- node, after the run */
    int state_param[64];
    int state_node[64];
    int nclips;                /* clip_weights(instance, lo, hi): after the block's update */
    struct { const char *owner; float lo, hi; } clips[8];
    int ncarry;                /* sample stages: register carry_reg[i] <- carry_node[i] after a run */
    int carry_reg[BLOCK_MAX_CARRY];
    int carry_node[BLOCK_MAX_CARRY];
} BlockGraph;

/* A sampling procedure with loops that run at run time: its body cut at each top-level
 * `for` into stages. A loop's body is one graph, built once, whose inputs are the counter and
 * the tensors carried from the iteration before; it runs once per value of the counter.
 * Tensors live in registers between stages and iterations. */
typedef struct SampleStage {
    BlockGraph bg;
    int loop;                  /* 1: runs once per value; 0: once */
    const char *counter;       /* the loop variable ("{t}" in save paths) */
    double *values;
    int64_t nvalues;
} SampleStage;

typedef struct SampleProgram {
    SampleStage stages[33];
    int nstages;
    struct { const char *name; int ndim; int64_t shape[IR_MAXDIM]; } regs[128];
    int nregs;
} SampleProgram;

typedef struct Train {
    const char *name;
    Node *node;
    Instance inst[32]; int ninst;
    Optimizer opt[8]; int nopt;
    Stream stream[8]; int nstream;
    int epochs;
    int64_t max_steps;         /* `steps N`: stop after N iterations (0: run the epochs) */
    Node *steps[16]; int nsteps;
    int repeat[16];            /* `repeat N { step ... }`: runs of steps[i] per iteration */
    Node *validates[8]; int nvalidates;
    Node *everys[16]; int neverys;
    BlockGraph schedule;       /* optimiser settings that vary with epoch and step */
} Train;

typedef struct Override { const char *name, *value; } Override;

typedef struct Program {
    const char *path;
    Node *ast;
    ParamTable params;
    Train trains[8]; int ntrains;
    Node *samples[16]; int nsamples;
    void *globals;             /* sema's scope of consts, data, layers and models */
    Override *overrides; int noverrides;
    Loc history_site[16];      /* call sites of history(): the index is the pool's id */
    int nhistory;
} Program;

/* Parses FILE and its imports and checks every block (shapes included). Returns NULL after
 * reporting errors through diag. */
Program *sema_load(const char *path, Override *ov, int nov);
/* Builds the graph of a block for batches of `batch` examples (0: the stream's own batch
 * size). Returns 0, or -1 after reporting errors. train may be NULL for sample procedures,
 * which then resolve instances against the first train block. */
int sema_build_block(Program *p, Train *t, Node *block, int batch, int training, BlockGraph *out);
/* Keras-style summary of every model as instantiated in the train blocks. */
int sema_summary(Program *p, FILE *f);
/* Fills every parameter with its initialiser from the seed (or its file). -1 after a message
 * if a file cannot be read. */
int sema_init_params(Program *p, uint64_t seed);
Node *sema_find_sample(Program *p, const char *name);
/* Whether a sampling procedure or an `every` hook has top-level `for` loops, which run at run
 * time; such a block is built with sema_build_sample / sema_build_staged (its stages), others
 * with sema_build_block. */
int sema_sample_has_loops(const Node *sample);
int sema_build_sample(Program *p, Node *sample, SampleProgram *out);
/* the same for a block of train block t (an `every` hook whose top-level `for` runs at run time) */
int sema_build_staged(Program *p, Train *t, Node *block, SampleProgram *out);
void sema_free_sample(SampleProgram *sp);
/* Every --set names a const, a sample argument or a setting; -1 (after a message) if not. */
int sema_check_overrides(Program *p);
#endif
