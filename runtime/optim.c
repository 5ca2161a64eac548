/* optim.c: the update rules of SGD, RMSprop, Adam, AdamW and Nadam, as Keras defines them,
 * and PyTorch's formulation where it differs (`torch: true`):
 *   SGD      Keras: v = mu v - lr g; w += v (nesterov: w += mu v - lr g)
 *            torch: b = mu b + g; w -= lr b (nesterov: w -= lr (g + mu b)); weight decay g += wd w
 *   RMSprop  Keras: s = rho s + (1-rho) g^2; w -= lr g / sqrt(s + eps)   (centered: s - a^2)
 *            torch: w -= lr g / (sqrt(s) + eps); momentum buffers as in SGD
 *   Adam     Keras: w -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps)
 *            torch: w -= lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   AdamW    Adam with decoupled decay w -= lr wd w first (both)
 *   Nadam    mu_t = b1 (1 - 0.5 * 0.96^(0.004 t)); the same in Keras 2 and PyTorch
 * The math runs in float for the state and double for per-step scalars. */
#include <math.h>
#include "optim.h"

const char *optim_slot_name(const Optimizer *o, int slot) {
    switch (o->kind) {
    case OPT_SGD: return slot == 0 && o->momentum != 0 ? "m" : NULL;
    case OPT_RMSPROP: {
        static const char *names[] = { "v", "m", "g" };
        int n = 1 + (o->momentum != 0) + o->centered;
        if (slot >= n) return NULL;
        if (slot == 1 && o->momentum == 0) return "g";
        return names[slot];
    }
    case OPT_ADAM: case OPT_ADAMW: case OPT_NADAM: return slot == 0 ? "m" : slot == 1 ? "v" : NULL;
    }
    return NULL;
}

static double nadam_mu(const Optimizer *o, int64_t t) {
    return o->beta1 * (1 - 0.5 * pow(0.96, 0.004 * (double)t));
}

void optim_begin(const Optimizer *o, double lr, int64_t t, OptScalars *s, OptStep *step) {
    step->lr = lr;
    step->t = t;
    if (o->kind == OPT_NADAM) {
        if (t == 1 || s->u_product == 0) s->u_product = 1;
        step->u_t = nadam_mu(o, t);
        step->u_t1 = nadam_mu(o, t + 1);
        s->u_product *= step->u_t;
        step->u_prod = s->u_product;
        step->u_prod1 = s->u_product * step->u_t1;
    }
}

void optim_update(const Optimizer *o, const OptStep *st, float *w, const float *g, float *state,
                  int64_t n, int64_t slot_stride) {
    float lr = (float)st->lr, mu = o->momentum, wd = o->weight_decay, eps = o->eps;
    float *s0 = state, *s1 = state + slot_stride, *s2 = state + 2 * slot_stride;
    switch (o->kind) {
    case OPT_SGD:
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i] + (o->torch ? wd * w[i] : 0);
            if (mu == 0) { w[i] -= lr * gi; continue; }
            if (o->torch) {
                s0[i] = mu * s0[i] + gi;       /* starts at 0, so the first step is g, as in torch */
                w[i] -= lr * (o->nesterov ? gi + mu * s0[i] : s0[i]);
            } else {
                s0[i] = mu * s0[i] - lr * gi;
                w[i] += o->nesterov ? mu * s0[i] - lr * gi : s0[i];
            }
        }
        return;
    case OPT_RMSPROP: {
        float rho = o->rho;
        float *mom = mu != 0 ? s1 : NULL, *avg = o->centered ? (mu != 0 ? s2 : s1) : NULL;
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i] + (o->torch ? wd * w[i] : 0);
            s0[i] = rho * s0[i] + (1 - rho) * gi * gi;
            float denom = s0[i];
            if (avg) { avg[i] = rho * avg[i] + (1 - rho) * gi; denom -= avg[i] * avg[i]; }
            float step = o->torch ? gi / (sqrtf(denom) + eps) : lr * gi / sqrtf(denom + eps);
            if (mom) {
                mom[i] = mu * mom[i] + step;
                w[i] -= o->torch ? lr * mom[i] : mom[i];
            } else {
                w[i] -= o->torch ? lr * step : step;
            }
        }
        return;
    }
    case OPT_ADAM: case OPT_ADAMW: {
        double bc1 = 1 - pow(o->beta1, (double)st->t), bc2 = 1 - pow(o->beta2, (double)st->t);
        float b1 = o->beta1, b2 = o->beta2;
        float alpha = (float)(st->lr * sqrt(bc2) / bc1);           /* Keras */
        float step_size = (float)(st->lr / bc1), root_bc2 = (float)sqrt(bc2);   /* torch */
        /* one branch-free loop per formulation, so each vectorises */
        if (o->kind == OPT_ADAMW)
            for (int64_t i = 0; i < n; i++) w[i] -= lr * wd * w[i];
        if (o->torch) {
            float l2 = o->kind == OPT_ADAMW ? 0 : wd;
            for (int64_t i = 0; i < n; i++) {
                float gi = g[i] + l2 * w[i];
                s0[i] = b1 * s0[i] + (1 - b1) * gi;
                s1[i] = b2 * s1[i] + (1 - b2) * gi * gi;
                w[i] -= step_size * s0[i] / (sqrtf(s1[i]) / root_bc2 + eps);
            }
        } else {
            for (int64_t i = 0; i < n; i++) {
                float gi = g[i];
                s0[i] = b1 * s0[i] + (1 - b1) * gi;
                s1[i] = b2 * s1[i] + (1 - b2) * gi * gi;
                w[i] -= alpha * s0[i] / (sqrtf(s1[i]) + eps);
            }
        }
        return;
    }
    case OPT_NADAM: {
        float b1 = o->beta1, b2 = o->beta2;
        double bc2 = 1 - pow(o->beta2, (double)st->t);
        float c_m = (float)(st->u_t1 / (1 - st->u_prod1)), c_g = (float)((1 - st->u_t) / (1 - st->u_prod));
        float inv_bc2 = (float)(1 / bc2);
        for (int64_t i = 0; i < n; i++) {
            float gi = g[i] + (o->torch ? wd * w[i] : 0);
            s0[i] = b1 * s0[i] + (1 - b1) * gi;
            s1[i] = b2 * s1[i] + (1 - b2) * gi * gi;
            float m_hat = c_m * s0[i] + c_g * gi;
            w[i] -= lr * m_hat / (sqrtf(s1[i] * inv_bc2) + eps);
        }
        return;
    }
    }
}
