#!/usr/bin/python3
"""vae_crosscheck.py DUMP.safetensors

Recomputes, with PyTorch, one forward+backward of the VAE training step of examples/vae_mlp.gm
from a dump written by gmc (same weights, inputs and noise; no parameter update), and compares
gmc's loss and every parameter gradient against the float64 result:
    err = ||g_gmc - g_ref||_inf / max(||g_ref||_inf, 1e-12)   must be <= 1e-4.
(The float32 torch result is printed alongside as a yardstick of float32 rounding.)

Dump contents (safetensors, F32):
  <M>.<layer>.W [in, out], <M>.<layer>.b [out]   M = E (encoder) or D (decoder); layers ordered
      by their dense index (dense, dense_1, dense_2, ...): E: hidden, mu head, logvar head;
      D: hidden, output.  W is [in, out]: y = x @ W + b.
  input/x [B, 28, 28]    noise/0 [B, 2] (eps)    loss [] or [1]    grad/<param name> per param.
Metadata is ignored.
Exit: 0 all tensors within tolerance, 1 a mismatch or a malformed dump, 77 torch not installed.
"""
import os
import re
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("skip: torch not installed")
    sys.exit(77)

import numpy as np  # noqa: E402  (torch pulls numpy in anyway)
import st  # noqa: E402
from compare import relerr, report  # noqa: E402


class DumpError(Exception):
    pass


def dense_index(layer):
    """'dense' -> 0, 'dense_3' -> 3 (any layer name: trailing _N, else 0)."""
    m = re.fullmatch(r"(.*?)(?:_(\d+))?", layer)
    return int(m.group(2)) if m.group(2) else 0


def collect_params(tensors):
    """Group '<model>.<layer>.W/b' tensors into {model: [(layer, Wname, bname), ...]} ordered by
    dense index. Returns (groups, problems)."""
    layers, problems = {}, []
    for name in tensors:
        if "/" in name or name == "loss":
            continue
        parts = name.split(".")
        if len(parts) < 3 or parts[-1] not in ("W", "b"):
            problems.append("unrecognised tensor %r (expected <model>.<layer>.W or .b)" % name)
            continue
        model, layer = parts[0], ".".join(parts[1:-1])
        layers.setdefault((model, layer), {})[parts[-1]] = name
    groups = {}
    for (model, layer), wb in layers.items():
        for k in ("W", "b"):
            if k not in wb:
                problems.append("layer %s.%s has no %s tensor (missing %s.%s.%s)"
                                % (model, layer, k, model, layer, k))
        if "W" in wb and "b" in wb:
            groups.setdefault(model, []).append((dense_index(layer), layer, wb["W"], wb["b"]))
    for model in groups:
        groups[model].sort()
        idx = [g[0] for g in groups[model]]
        if len(set(idx)) != len(idx):
            problems.append("model %s: two layers share a dense index: %s"
                            % (model, [g[1] for g in groups[model]]))
    return groups, problems


def load(path):
    try:
        tensors, _meta = st.read(path)
    except (OSError, ValueError) as e:
        raise DumpError("cannot read dump: %s" % e)
    groups, problems = collect_params(tensors)
    for model, want in (("E", 3), ("D", 2)):
        got = groups.get(model, [])
        if len(got) != want:
            problems.append("model %s: expected %d dense layers (W and b each), found %d: %s"
                            % (model, want, len(got), [g[1] for g in got] or "none"))
    extra = sorted(set(groups) - {"E", "D"})
    if extra:
        problems.append("unexpected model prefixes %s (expected E and D)" % extra)
    for req in ("input/x", "noise/0", "loss"):
        if req not in tensors:
            problems.append("missing tensor %r" % req)
    if problems:
        raise DumpError("\n  ".join(["malformed dump %s:" % path] + problems))

    order = [("E", g) for g in groups["E"]] + [("D", g) for g in groups["D"]]
    pnames = []
    for _, (_, _, wn, bn) in order:
        pnames += [wn, bn]
    missing = ["grad/" + p for p in pnames if "grad/" + p not in tensors]
    if missing:
        raise DumpError("missing gradients: %s" % ", ".join(missing))
    known = set(pnames) | {"grad/" + p for p in pnames} | {"input/x", "noise/0", "loss"}
    for n in sorted(set(tensors) - known):
        print("warning: ignoring unexpected tensor %r %s" % (n, list(tensors[n].shape)))

    # shape checks: W [in, out], b [out]; chain 784 -> h -> (L, L) ; L -> h2 -> 784
    x = tensors["input/x"]
    B = x.shape[0] if x.ndim >= 1 else 0
    pixels = int(np.prod(x.shape[1:])) if x.ndim >= 2 else 0
    shapes = {p: tuple(tensors[p].shape) for p in pnames}
    for p in pnames:
        if tuple(tensors["grad/" + p].shape) != shapes[p]:
            problems.append("grad/%s has shape %s, parameter has %s"
                            % (p, list(tensors["grad/" + p].shape), list(shapes[p])))
    for _, (_, layer, wn, bn) in order:
        if len(shapes[wn]) != 2 or shapes[bn] != shapes[wn][1:]:
            problems.append("%s %s / %s %s: expected W [in, out] and b [out]"
                            % (wn, list(shapes[wn]), bn, list(shapes[bn])))
    if problems:
        raise DumpError("\n  ".join(["bad shapes in %s:" % path] + problems))
    (e0, e1, e2), (d0, d1) = [g[2] for g in groups["E"]], [g[2] for g in groups["D"]]
    hidden, latent = shapes[e0][1], shapes[e1][1]
    chain = [(e0, pixels, hidden), (e1, hidden, latent), (e2, hidden, latent),
             (d0, latent, None), (d1, shapes[d0][1], pixels)]
    for wn, n_in, n_out in chain:
        if shapes[wn][0] != n_in or (n_out is not None and shapes[wn][1] != n_out):
            problems.append("%s has shape %s, expected [%d, %s] from input/x %s"
                            % (wn, list(shapes[wn]), n_in, n_out if n_out else "*",
                               list(x.shape)))
    eps = tensors["noise/0"]
    if eps.size != B * latent:
        problems.append("noise/0 has shape %s, expected [%d, %d]" % (list(eps.shape), B, latent))
    if tensors["loss"].size != 1:
        problems.append("loss has shape %s, expected [] or [1]" % list(tensors["loss"].shape))
    if problems:
        raise DumpError("\n  ".join(["bad shapes in %s:" % path] + problems))
    return tensors, pnames, B, latent


def forward_backward(tensors, pnames, B, latent, dtype):
    params = [torch.tensor(tensors[p], dtype=dtype, requires_grad=True) for p in pnames]
    eW0, eb0, eW1, eb1, eW2, eb2, dW0, db0, dW1, db1 = params
    x = torch.tensor(tensors["input/x"], dtype=dtype).reshape(B, -1)
    eps = torch.tensor(tensors["noise/0"], dtype=dtype).reshape(B, latent)
    h = F.relu(x @ eW0 + eb0)
    mu, logvar = h @ eW1 + eb1, h @ eW2 + eb2
    z = mu + torch.exp(0.5 * logvar) * eps
    recon = torch.sigmoid(F.relu(z @ dW0 + db0) @ dW1 + db1)
    kl = -0.5 * torch.sum(1 + logvar - mu * mu - torch.exp(logvar), dim=1)
    loss = x.shape[1] * F.binary_cross_entropy(recon, x) + kl.mean()
    loss.backward()
    return float(loss), {p: t.grad.double().numpy() for p, t in zip(pnames, params)}



def main(argv):
    if len(argv) != 2:
        print("usage: vae_crosscheck.py DUMP.safetensors", file=sys.stderr)
        return 2
    try:
        tensors, pnames, B, latent = load(argv[1])
    except DumpError as e:
        print("crosscheck: %s" % e)
        return 1
    print("batch %d, latent %d" % (B, latent))
    return report(tensors, pnames, forward_backward(tensors, pnames, B, latent, torch.float64),
                  forward_backward(tensors, pnames, B, latent, torch.float32),
                  lambda n, w: "crosscheck: %d tensors ok" % n, width=22,
                  err=lambda got, ref: relerr(got, ref, 1e-12))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
