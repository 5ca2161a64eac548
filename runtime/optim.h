/* optim.h: optimiser update rules. Each parameter element has up to three state slots
 * (first moment / momentum, second moment, average gradient), kept by the caller. */
#ifndef GMC_OPTIM_H
#define GMC_OPTIM_H
#include <stdint.h>
#include "program.h"

enum { OPT_SLOTS = 3 };

/* Names of the state slots an optimiser uses ("m", "v", "g"); NULL past the last. */
const char *optim_slot_name(const Optimizer *o, int slot);
/* Scalar state shared by all parameters of an optimiser for one update (Nadam's running
 * product of momentum coefficients). Call optim_begin once per update, before the
 * parameters, with t = the 1-based update count. */
typedef struct OptScalars { double u_product; } OptScalars;
typedef struct OptStep { double lr; int64_t t; double u_t, u_t1, u_prod, u_prod1; } OptStep;
void optim_begin(const Optimizer *o, double lr, int64_t t, OptScalars *s, OptStep *step);
/* Updates n weights w from gradients g; slot k of element i is state[k * slot_stride + i]
 * (a parameter's state is slot-major; a chunk of it passes the parameter's size). */
void optim_update(const Optimizer *o, const OptStep *step, float *w, const float *g, float *state,
                  int64_t n, int64_t slot_stride);
#endif
