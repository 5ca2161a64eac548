#!/usr/bin/python3
"""ddpm_sampler.py ckpt DUMP CKPT | check CKPT DIR T

M14's sampler against PyTorch. `ckpt` writes the parameters of a gmc --grad-dump (weights,
batch-norm moving statistics) as a checkpoint gmc can sample from. `check` replays
examples/seeds/m14_ddpm.gm's `generate`, run with --set T=T --set trace=1, in float64
PyTorch, one step at a time: from gmc's x_t (trace_x_{t}.npy, the x entering step t) and z
(trace_z_{t}.npy), x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) N(x_t, t)) / sqrt(alpha_t) +
sqrt(beta_t) z with the U-Net of seeds_crosscheck.py in evaluation mode must equal gmc's
x_{t-1} (samples.npy after t = 1) to 1e-4 relative. Step by step, because with random
weights the chain amplifies float32 rounding (x grows to hundreds; a float64 replay of all T
steps from x_T drifts by ~1e-2 while every single step agrees to ~1e-5). Prints
"ok - ..." or "FAIL - ..."; exit 77 without torch.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
except ImportError:
    print("skip - DDPM sampler replay: torch not installed")
    sys.exit(77)
import numpy as np  # noqa: E402
import st  # noqa: E402
from seeds_crosscheck import Dump, m14_schedule, m14_unet  # noqa: E402

TOL = 1e-4


def main(argv):
    if len(argv) == 4 and argv[1] == "ckpt":
        tensors, _ = st.read(argv[2])
        st.write(argv[3], {n: v for n, v in tensors.items() if "/" not in n and n != "loss"})
        return 0
    if len(argv) != 5 or argv[1] != "check":
        print(__doc__, file=sys.stderr)
        return 2
    tensors, _ = st.read(argv[2])
    out, T = argv[3], int(argv[4])
    d = Dump(tensors, False)
    alpha, beta, abar = (a.astype(np.float64) for a in m14_schedule(T))
    load = lambda f: torch.tensor(np.load(os.path.join(out, f)), dtype=torch.float64)
    worst, n = 0.0, 0
    if not torch.equal(load("trace_x_start.npy"), load("trace_x_%d.npy" % T)):
        print("FAIL - DDPM sampler replay: the loop does not start from x_T")
        return 1
    with torch.no_grad():
        for t in range(T, 0, -1):
            x = load("trace_x_%d.npy" % t)
            n = x.shape[0]
            eps = m14_unet(d, x, torch.full((n,), float(t)))
            z = load("trace_z_%d.npy" % t)
            if t == 1 and z.abs().max() != 0:
                print("FAIL - DDPM sampler replay: z is not 0 at t = 1")
                return 1
            want = (x - beta[t] / np.sqrt(1 - abar[t]) * eps) / np.sqrt(alpha[t]) + np.sqrt(beta[t]) * z
            got = load("samples.npy" if t == 1 else "trace_x_%d.npy" % (t - 1))
            err = float((got - want).abs().max() / want.abs().max()) if got.shape == want.shape else float("inf")
            worst = max(worst, err)
            if not err <= TOL:
                print("FAIL - DDPM sampler replay: step t = %d differs from PyTorch by %.2e relative" % (t, err))
                return 1
    print("ok - M14 sampler: %d images, each of T = %d run-time steps of the U-Net with attention equals "
          "PyTorch's update with gmc's noise (worst relative error %.1e)" % (n, T, worst))
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv))
