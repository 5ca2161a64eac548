/* test_optim.c: optimiser update rules. Checks identities that must hold between the Keras
 * and PyTorch formulations, and, when GMC_OPTIM_DUMP names a file, writes every
 * configuration's initial weights, gradients and the weights after each of 5 updates so that
 * tests/torch/optim_crosscheck.py can compare them with torch.optim and with Keras's rules. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "optim.h"
#include "rng.h"
#include "safetensors.h"

enum { N = 64, T = 5 };

typedef struct Config { const char *name; Optimizer o; } Config;

static void run(const Optimizer *o, const float *w0, const float *g, float *w_out /* T * N */) {
    float w[N], state[OPT_SLOTS * N] = { 0 };
    OptScalars sc = { 0 };
    memcpy(w, w0, sizeof w);
    for (int t = 1; t <= T; t++) {
        OptStep st;
        optim_begin(o, o->lr, t, &sc, &st);
        optim_update(o, &st, w, g + (t - 1) * N, state, N, N);
        memcpy(w_out + (t - 1) * N, w, sizeof w);
    }
}

static double max_diff(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

int main(void) {
    Config cfg[] = {
        { "sgd", { .kind = OPT_SGD, .lr = 0.1f } },
        { "sgd_momentum", { .kind = OPT_SGD, .lr = 0.1f, .momentum = 0.9f } },
        { "sgd_nesterov", { .kind = OPT_SGD, .lr = 0.1f, .momentum = 0.9f, .nesterov = 1 } },
        { "sgd_torch_wd", { .kind = OPT_SGD, .lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .torch = 1 } },
        { "rmsprop", { .kind = OPT_RMSPROP, .lr = 1e-2f, .rho = 0.9f, .eps = 1e-7f } },
        { "rmsprop_centered_momentum", { .kind = OPT_RMSPROP, .lr = 1e-2f, .rho = 0.9f, .eps = 1e-7f, .momentum = 0.5f, .centered = 1 } },
        { "rmsprop_torch", { .kind = OPT_RMSPROP, .lr = 1e-2f, .rho = 0.99f, .eps = 1e-8f, .torch = 1 } },
        { "rmsprop_torch_centered_momentum", { .kind = OPT_RMSPROP, .lr = 1e-2f, .rho = 0.99f, .eps = 1e-8f, .momentum = 0.5f, .centered = 1, .torch = 1 } },
        { "adam", { .kind = OPT_ADAM, .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f } },
        { "adam_torch", { .kind = OPT_ADAM, .lr = 1e-2f, .beta1 = 0.5f, .beta2 = 0.999f, .eps = 1e-8f, .torch = 1 } },
        { "adamw", { .kind = OPT_ADAMW, .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f, .weight_decay = 0.004f } },
        { "adamw_torch", { .kind = OPT_ADAMW, .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f, .torch = 1 } },
        { "nadam", { .kind = OPT_NADAM, .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f } },
        { "nadam_torch", { .kind = OPT_NADAM, .lr = 2e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .torch = 1 } },
    };
    int ncfg = sizeof cfg / sizeof cfg[0];
    float w0[N], g[T * N];
    Rng rng;
    rng_init(&rng, 5);
    rng_normal(&rng, w0, N);
    rng_normal(&rng, g, T * N);
    float (*out)[T * N] = calloc(ncfg, sizeof *out);
    for (int c = 0; c < ncfg; c++) run(&cfg[c].o, w0, g, out[c]);

    /* identities: with a constant learning rate the two SGD momentum formulations agree */
    Optimizer keras = cfg[1].o, torch = cfg[1].o;
    torch.torch = 1;
    float a[T * N], b[T * N];
    run(&keras, w0, g, a);
    run(&torch, w0, g, b);
    CHECK(max_diff(a, b, T * N) < 1e-5, "SGD momentum: Keras and PyTorch formulations agree (%.1e)", max_diff(a, b, T * N));
    keras = cfg[2].o; torch = cfg[2].o; torch.torch = 1;
    run(&keras, w0, g, a);
    run(&torch, w0, g, b);
    CHECK(max_diff(a, b, T * N) < 1e-5, "SGD Nesterov: Keras and PyTorch formulations agree (%.1e)", max_diff(a, b, T * N));
    /* with eps = 0 Adam's two formulations are the same algebra */
    keras = cfg[8].o; keras.eps = 0; torch = keras; torch.torch = 1;
    run(&keras, w0, g, a);
    run(&torch, w0, g, b);
    CHECK(max_diff(a, b, T * N) < 1e-5, "Adam with eps 0: Keras and PyTorch formulations agree (%.1e)", max_diff(a, b, T * N));
    /* the first Adam step moves every weight by about lr (m/sqrt(v) = sign(g)) */
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(fabs(out[8][i] - w0[i]) - 1e-2));
    CHECK(worst < 1e-4, "Adam's first step has size lr (max deviation %.1e)", worst);

    const char *dump = getenv("GMC_OPTIM_DUMP");
    if (dump) {
        StTensor ts[64];
        int nt = 0;
        ts[nt++] = (StTensor){ .name = "w0", .ndim = 1, .dims = { N }, .data = w0 };
        ts[nt++] = (StTensor){ .name = "g", .ndim = 2, .dims = { T, N }, .data = g };
        for (int c = 0; c < ncfg; c++)
            ts[nt++] = (StTensor){ .name = cfg[c].name, .ndim = 2, .dims = { T, N }, .data = out[c] };
        char err[256];
        CHECK(st_write(dump, ts, nt, NULL, 0, err, sizeof err) == 0, "optimizer trajectories written to %s", dump);
    }
    free(out);
    CHECK_DONE();
}
