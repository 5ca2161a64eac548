#!/usr/bin/python3
"""prims_crosscheck.py DUMP.safetensors

Recomputes with PyTorch the training step of tests/torch/prims_check.gm from a gmc --grad-dump
(same parameters and input) and compares gmc's loss and every gradient against float64:
    err = ||g_gmc - g_ref||_inf / max(||g_ref||_inf, 1e-2)   must be <= 1e-4
Every branch of the program is one primitive between a probe (grad/...P is the input
gradient) and a readout (grad/...R is the branch's output), so the table names which
primitive a failing tensor belongs to.
Exit: 0 all within tolerance, 1 a mismatch or a malformed dump, 77 torch not installed.
"""
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("skip: torch not installed")
    sys.exit(77)

import numpy as np  # noqa: E402
import st  # noqa: E402
from compare import report  # noqa: E402


def var(h, dim, keepdim=False):
    return h.var(dim=dim, unbiased=False, keepdim=keepdim)


# branch name (layer of prims_check.gm) -> its op, given the probed input h, its parameters
# and the ids (whole numbers as floats, [batch, 4])
BRANCHES = {
    "sum_keep": lambda h, p, ids: h.sum(dim=1, keepdim=True),
    "mean_keep": lambda h, p, ids: h.mean(dim=(1, 3), keepdim=True),
    "amax_keep": lambda h, p, ids: h.amax(dim=-1, keepdim=True),
    "amin_keep": lambda h, p, ids: h.amin(dim=2, keepdim=True),
    "lse_last": lambda h, p, ids: torch.logsumexp(h, dim=-1),
    "lse_keep": lambda h, p, ids: torch.logsumexp(h * 30, dim=(1, 2), keepdim=True),
    "var_axis": lambda h, p, ids: var(h, 1),
    "var_keep": lambda h, p, ids: var(h, -1, True),
    "onehot": lambda h, p, ids: h * F.one_hot(ids.long(), 7)[..., :5].to(h.dtype)[:, None],
    "ranges": lambda h, p, ids: h * torch.arange(5, dtype=h.dtype) + torch.arange(-2, 3, dtype=h.dtype),
    "emb_param": lambda h, p, ids: h * p["E"][ids.long()][:, None],
    "take_axis2": lambda h, p, ids: h[:, :, ids.clamp(max=3).long()],
    "schedule": lambda h, p, ids: h * (torch.arange(1, 8, dtype=h.dtype) * 0.1)[ids.long()][:, None, :, None],
    "attention": lambda h, p, ids: torch.softmax(h @ (h * 0.5 + 1).transpose(-1, -2) / 5 ** 0.5, -1) @ h,
    "bmm_ta": lambda h, p, ids: h.transpose(-1, -2) @ h + (h * h).transpose(-1, -2) @ h,
    "scans": lambda h, p, ids: (h.cumsum(1) + h.cumprod(-1) + h.flip(2).cumsum(2).flip(2) +
                                 h.flip(0).cumprod(0).flip(0)),
    "trig": lambda h, p, ids: torch.sin(h) * torch.cos(2 * h),
    "argmax_last": lambda h, p, ids: torch.cat([h.argmax(-1).flatten(1), h.argmax(1).flatten(1)], -1).to(h.dtype),
    "draws": lambda h, p, ids: h * draws(h, ids, p["noise"]),
    "ortho": lambda h, p, ids: h @ p["Q"],
    "clipped": lambda h, p, ids: h.clamp(-0.5, 0.7),
    "stopped": lambda h, p, ids: h * (h * h).detach() + torch.exp(h).detach(),
}


def draws(h, ids, noise):
    """randint_like(ids, 2, 9), bernoulli(sigmoid(h)), categorical(h) from gmc's uniform draws"""
    u0, u1, u2 = (n.to(h.dtype) for n in noise)
    r = torch.floor(2 + 7 * u0)[:, None, :, None]
    b = (u1 < torch.sigmoid(h)).to(h.dtype)
    c = (h - torch.log(-torch.log(u2))).argmax(-1).to(h.dtype)[..., None]
    return r + b + c


def load(path):
    tensors, _meta = st.read(path)
    names = sorted(n for n in tensors if n.startswith("N."))
    problems = ["missing tensor %r" % n for n in ["input/x", "loss"] + ["grad/" + n for n in names]
                if n not in tensors]
    branches = sorted({n.split(".")[1] for n in names})
    if branches != sorted(BRANCHES):
        problems.append("branches %s, expected %s" % (branches, sorted(BRANCHES)))
    if problems:
        raise ValueError("malformed dump %s:\n  %s" % (path, "\n  ".join(problems)))
    return tensors, names


def forward_backward(tensors, names, dtype):
    params = {n: torch.tensor(tensors[n], dtype=dtype, requires_grad=True) for n in names}
    flat = torch.tensor(tensors["input/x"], dtype=torch.float32).reshape(2, -1)
    x = flat[:, :60].reshape(-1, 3, 4, 5).to(dtype)
    ids = torch.floor(flat[:, 60:64].abs() * 2).to(dtype)
    assert float(ids.max()) < 7
    loss = 0
    for br, op in BRANCHES.items():
        p = {n[len("N.%s." % br):]: t for n, t in params.items() if n.startswith("N.%s." % br)}
        p["noise"] = [torch.tensor(tensors["noise/%d" % i]) for i in range(3)]
        y = op(x + p["probe.P"], p, ids)
        loss = loss + (y.reshape(y.shape[0], -1) * p["readout.R"]).sum()
    loss.backward()
    return float(loss), {n: (t.grad if t.grad is not None else torch.zeros_like(t)).double().numpy()
                         for n, t in params.items()}



def main(argv):
    if len(argv) != 2:
        print("usage: prims_crosscheck.py DUMP.safetensors", file=sys.stderr)
        return 2
    try:
        tensors, names = load(argv[1])
    except (OSError, ValueError) as e:
        print("crosscheck: %s" % e)
        return 1
    q = tensors["N.ortho.Q"].astype(np.float64)      # orthogonal(2): Q^T Q = 4 I
    if np.abs(q.T @ q - 4 * np.eye(3)).max() > 1e-5:
        print("crosscheck: N.ortho.Q = orthogonal(2) is not 2 x orthonormal columns:\n%s" % (q.T @ q))
        return 1
    return report(tensors, names, forward_backward(tensors, names, torch.float64),
                  forward_backward(tensors, names, torch.float32),
                  lambda n, w: "crosscheck: %d tensors of %d primitives ok (worst relative error %.1e)"
                  % (n, len(BRANCHES), w))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
