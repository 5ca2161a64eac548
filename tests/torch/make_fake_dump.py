#!/usr/bin/python3
"""make_fake_dump.py [OUTDIR] [--seed S]

Self-test material for vae_crosscheck.py, made with torch alone (no gmc): writes
  OUTDIR/fake_dump.safetensors      one VAE forward+backward (random weights, B=16, x ~ U[0,1],
                                    eps ~ N(0,1)) in gmc's dump layout; the crosscheck must pass
  OUTDIR/fake_dump_bad.safetensors  the same with one gradient element moved by 1e-2 of that
                                    gradient's max |g|; the crosscheck must fail
The model here is written independently of vae_crosscheck.py (torch.nn.Linear, weights stored
[out, in] and transposed on export; BCE spelled out by hand) so that the pair tests the layout
mapping, not one piece of code against itself.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
except ImportError:
    print("skip: torch not installed")
    sys.exit(77)

import numpy as np  # noqa: E402
import st  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir", nargs="?", default=".")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    B, latent = a.batch, 2

    def lin(n_in, n_out):
        m = torch.nn.Linear(n_in, n_out)
        lim = (6.0 / (n_in + n_out)) ** 0.5
        torch.nn.init.uniform_(m.weight, -lim, lim)
        torch.nn.init.uniform_(m.bias, -0.1, 0.1)   # nonzero so bias gradients/paths matter
        return m

    layers = {"E.dense": lin(784, 512), "E.dense_1": lin(512, latent),
              "E.dense_2": lin(512, latent), "D.dense": lin(latent, 512),
              "D.dense_1": lin(512, 784)}
    x = torch.rand(B, 28, 28)
    eps = torch.randn(B, latent)

    xf = x.reshape(B, 784)
    h = torch.relu(layers["E.dense"](xf))
    mu, logvar = layers["E.dense_1"](h), layers["E.dense_2"](h)
    z = mu + torch.exp(0.5 * logvar) * eps
    p = torch.sigmoid(layers["D.dense_1"](torch.relu(layers["D.dense"](z))))
    logp = torch.clamp(torch.log(p), min=-100.0)
    log1mp = torch.clamp(torch.log(1 - p), min=-100.0)
    bce_sum = -(xf * logp + (1 - xf) * log1mp).sum(dim=1)          # per example, nats
    kl = 0.5 * (mu ** 2 + torch.exp(logvar) - 1 - logvar).sum(dim=1)
    loss = (bce_sum + kl).mean()                                     # mean negative ELBO
    loss.backward()

    out = {"input/x": x.numpy(), "noise/0": eps.numpy(), "loss": loss.detach().numpy()}
    for name, m in layers.items():
        out[name + ".W"] = m.weight.detach().t().numpy()             # [in, out]
        out[name + ".b"] = m.bias.detach().numpy()
        out["grad/" + name + ".W"] = m.weight.grad.t().numpy()
        out["grad/" + name + ".b"] = m.bias.grad.numpy()
    meta = {"producer": "make_fake_dump.py", "seed": str(a.seed), "batch": str(B)}

    os.makedirs(a.outdir, exist_ok=True)
    good = os.path.join(a.outdir, "fake_dump.safetensors")
    st.write(good, out, meta)

    bad = dict(out)
    victim = "grad/E.dense_2.W"
    g = bad[victim].copy()
    i = np.unravel_index(np.argmax(np.abs(g)), g.shape)
    g[i] += 1e-2 * np.abs(g).max()
    bad[victim] = g
    badp = os.path.join(a.outdir, "fake_dump_bad.safetensors")
    st.write(badp, bad, dict(meta, corrupted=victim))

    # round-trip sanity of st.py itself
    back, bmeta = st.read(good)
    assert bmeta == meta, bmeta
    for k, v in out.items():
        assert back[k].dtype == np.float32 and back[k].shape == v.shape and \
            np.array_equal(back[k], v), k
    print("wrote %s (loss %.6f) and %s (%s perturbed by 1e-2 of its max)"
          % (good, float(loss), badp, victim))


if __name__ == "__main__":
    main()
