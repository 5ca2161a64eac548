#!/usr/bin/python3
"""Five update steps of every optimiser configuration of tests/unit/test_optim.c, compared
with torch.optim (the `torch: true` formulations) and with a float64 NumPy implementation of
Keras 3's documented update rules (the default formulations). Usage:
    optim_crosscheck.py DUMP.safetensors   (written by GMC_OPTIM_DUMP=... build/tests/test_optim)
Exit 0 if every trajectory matches to 1e-5 (absolute, weights of order 1), else 1; 77 without torch."""
import sys
import numpy as np
sys.path.insert(0, __file__.rsplit('/', 1)[0])
import st

try:
    import torch
except ImportError:
    print("skip: torch not installed")
    sys.exit(77)

t, _ = st.read(sys.argv[1])
w0, g = t["w0"].astype(np.float64), t["g"].astype(np.float64)
T = g.shape[0]


def torch_run(make):
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = make([w])
    out = []
    for k in range(T):
        opt.zero_grad()
        w.grad = torch.tensor(g[k], dtype=torch.float64)
        opt.step()
        out.append(w.detach().numpy().copy())
    return np.array(out)


def keras_run(kind, lr, **h):
    w = w0.copy()
    m = np.zeros_like(w); v = np.zeros_like(w); a = np.zeros_like(w); u_prod = 1.0
    out = []
    for k in range(T):
        step = k + 1
        gk = g[k]
        if kind == "sgd":
            mu = h.get("momentum", 0.0)
            if mu == 0:
                w = w - lr * gk
            else:
                m = mu * m - lr * gk
                w = w + (mu * m - lr * gk if h.get("nesterov") else m)
        elif kind == "rmsprop":
            rho, eps, mu = h["rho"], h["eps"], h.get("momentum", 0.0)
            v = rho * v + (1 - rho) * gk * gk
            denom = v
            if h.get("centered"):
                a = rho * a + (1 - rho) * gk
                denom = v - a * a
            inc = lr * gk / np.sqrt(denom + eps)
            if mu > 0:
                m = mu * m + inc
                w = w - m
            else:
                w = w - inc
        elif kind in ("adam", "adamw"):
            b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
            if kind == "adamw":
                w = w - w * h["weight_decay"] * lr
            alpha = lr * np.sqrt(1 - b2 ** step) / (1 - b1 ** step)
            m = m + (gk - m) * (1 - b1)
            v = v + (gk * gk - v) * (1 - b2)
            w = w - alpha * m / (np.sqrt(v) + eps)
        elif kind == "nadam":
            b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
            u_t = b1 * (1 - 0.5 * 0.96 ** (0.004 * step))
            u_t1 = b1 * (1 - 0.5 * 0.96 ** (0.004 * (step + 1)))
            u_prod = u_prod * u_t
            u_prod1 = u_prod * u_t1
            m = m + (gk - m) * (1 - b1)
            v = v + (gk * gk - v) * (1 - b2)
            m_hat = u_t1 * m / (1 - u_prod1) + (1 - u_t) * gk / (1 - u_prod)
            v_hat = v / (1 - b2 ** step)
            w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w.copy())
    return np.array(out)


O = torch.optim
refs = {
    "sgd": ("Keras", keras_run("sgd", 0.1)),
    "sgd_momentum": ("Keras", keras_run("sgd", 0.1, momentum=0.9)),
    "sgd_nesterov": ("Keras", keras_run("sgd", 0.1, momentum=0.9, nesterov=True)),
    "sgd_torch_wd": ("torch", torch_run(lambda p: O.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01))),
    "rmsprop": ("Keras", keras_run("rmsprop", 1e-2, rho=0.9, eps=1e-7)),
    "rmsprop_centered_momentum": ("Keras", keras_run("rmsprop", 1e-2, rho=0.9, eps=1e-7, momentum=0.5, centered=True)),
    "rmsprop_torch": ("torch", torch_run(lambda p: O.RMSprop(p, lr=1e-2, alpha=0.99, eps=1e-8))),
    "rmsprop_torch_centered_momentum": ("torch", torch_run(lambda p: O.RMSprop(p, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.5, centered=True))),
    "adam": ("Keras", keras_run("adam", 1e-2, beta1=0.9, beta2=0.999, eps=1e-7)),
    "adam_torch": ("torch", torch_run(lambda p: O.Adam(p, lr=1e-2, betas=(0.5, 0.999), eps=1e-8))),
    "adamw": ("Keras", keras_run("adamw", 1e-2, beta1=0.9, beta2=0.999, eps=1e-7, weight_decay=0.004)),
    "adamw_torch": ("torch", torch_run(lambda p: O.AdamW(p, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01))),
    "nadam": ("Keras", keras_run("nadam", 1e-2, beta1=0.9, beta2=0.999, eps=1e-7)),
    # torch 1.13's default single-tensor NAdam multiplies mu twice in mu_product_next
    # (`mu_product * mu * mu_next`, nadam.py line 240); its foreach path has the formula of the
    # paper and of Keras, `mu_product * mu_next`, which is the one compared here
    "nadam_torch": ("torch", torch_run(lambda p: O.NAdam(p, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, foreach=True))),
}
bad = 0
for name, (who, ref) in refs.items():
    got = t[name].astype(np.float64)
    err = np.abs(got - ref).max()
    ok = err < 1e-5
    bad += not ok
    print(f"{'ok' if ok else 'FAIL'} - optimizer {name}: 5 steps equal {who}'s rule (max |diff| {err:.1e})")
sys.exit(1 if bad else 0)
