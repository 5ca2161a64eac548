#!/usr/bin/python3
"""wgangp_crosscheck.py DUMP.safetensors

Recomputes with PyTorch the WGAN-GP critic step of tests/torch/wgangp_check.gm from a gmc
--grad-dump (same parameters, input and noise): the gradient penalty takes
torch.autograd.grad(..., create_graph=True), so the loss's gradients are second derivatives.
gmc's loss and every gradient are compared against float64:
    err = ||g_gmc - g_ref||_inf / max(||g_ref||_inf, 1e-2)   must be <= 1e-4
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

import st  # noqa: E402
from compare import report  # noqa: E402


def dense(p, name, x):
    return x @ p[name + ".W"] + p[name + ".b"]


def generator(p, z):
    return dense(p, "g.dense_1", torch.tanh(dense(p, "g.dense", z)))


def critic(p, x):
    h = dense(p, "f.dense", x)
    h = torch.where(h > 0, h, 0.2 * h)
    a = torch.relu(dense(p, "f.dense_1", h))
    b = torch.sigmoid(dense(p, "f.dense_2", h))
    c = torch.log(1 + torch.exp(dense(p, "f.dense_3", h))) + F.softplus(dense(p, "f.dense_4", h)) ** 1.5
    u = torch.cat([a, b, c], -1)
    u = (u - u.mean(-1, keepdim=True)) / torch.sqrt(u.var(-1, unbiased=False, keepdim=True) + 0.5)
    return dense(p, "f.dense_5", torch.tanh(u))


def forward_backward(tensors, names, dtype):
    p = {n: torch.tensor(tensors[n], dtype=dtype, requires_grad=True) for n in names}
    real = torch.tensor(tensors["input/x"], dtype=dtype).reshape(4, -1)[:, :12]
    z = torch.tensor(tensors["noise/0"], dtype=dtype)
    e = torch.tensor(tensors["noise/1"], dtype=dtype)
    fake = generator(p, z)
    xhat = e * real + (1 - e) * fake
    gr, = torch.autograd.grad(critic(p, xhat).sum(), xhat, create_graph=True)
    gp = ((torch.sqrt((gr ** 2).sum(-1)) - 1) ** 2).mean()
    loss = critic(p, fake).mean() - critic(p, real).mean() + 10 * gp
    loss.backward()
    return float(loss), {n: t.grad.double().numpy() for n, t in p.items()}



def main(argv):
    if len(argv) != 2:
        print("usage: wgangp_crosscheck.py DUMP.safetensors", file=sys.stderr)
        return 2
    tensors, _meta = st.read(argv[1])
    names = sorted(n for n in tensors if n.startswith(("f.", "g.")))
    missing = [n for n in ["input/x", "loss", "noise/0", "noise/1"] + ["grad/" + n for n in names]
               if n not in tensors]
    if missing or len(names) != 16:
        print("crosscheck: malformed dump: missing %s, %d parameters" % (missing, len(names)))
        return 1
    return report(tensors, names, forward_backward(tensors, names, torch.float64),
                  forward_backward(tensors, names, torch.float32),
                  lambda n, w: "crosscheck: WGAN-GP loss and %d second-order gradients ok "
                  "(worst relative error %.1e)" % (n - 1, w),
                  width=24)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
