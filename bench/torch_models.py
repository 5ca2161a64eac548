#!/usr/bin/python3
"""PyTorch side of `make bench`: the benchmark models trained with the same recipe as their
.gm programs (same layers, loss, optimizer, batch and data), timed step by step.

  /usr/bin/python3 bench/torch_models.py MODEL --steps N --warmup W [--threads T] [--batch B]

MODEL is one of: vae_mlp conv_vae dcgan cyclegan char_lstm ddpm. It runs W warm-up
iterations, then N timed ones, and prints one line
  BENCH {"times": [t_0, ..., t_N], "loss": L, ...}
where t_i is the time in seconds (perf_counter) at the end of timed iteration i, t_0 the end of
the warm-up. An iteration is every step of the recipe once (a GAN's D step and G step).

Threads: torch.set_num_threads(T); the environment (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
OPENBLAS_CORETYPE, OMP_WAIT_POLICY) is the caller's: bench/bench.py sets PyTorch's best settings.
Data: Fashion-MNIST from /usr/share/datasets/fashion-mnist (as the .gm programs read it);
the character LSTM reads the text file given by --text (bench.py writes a synthetic one).
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time
import warnings

import numpy as np

FASHION = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def load_idx(stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(FASHION, name)
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            ndim = raw[3]
            dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    sys.exit("torch_models: cannot find %s(.gz) in %s" % (stem, FASHION))


def fashion(split="train", labels=None, pad=0, lo=0.0, hi=1.0):
    """[n, 1, 28 + 2 pad, 28 + 2 pad] float images scaled to [lo, hi], optionally of some labels
    only (the .gm pipelines `filter | pad | channels(1) | scale`)."""
    prefix = "train" if split == "train" else "t10k"
    x = load_idx(prefix + "-images-idx3-ubyte")
    if labels is not None:
        y = load_idx(prefix + "-labels-idx1-ubyte")
        x = x[np.isin(y, labels)]
    x = x.astype(np.float32) / 255.0 * (hi - lo) + lo
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), constant_values=lo)
    return x[:, None]


class Batches:
    """`data | shuffle | batch(n)`: a fresh permutation each epoch, batches drawn in order."""

    def __init__(self, torch, x, n):
        self.torch, self.x, self.n, self.pos, self.perm = torch, x, n, len(x), None

    def next(self):
        if self.pos + self.n > len(self.x):
            self.perm, self.pos = self.torch.randperm(len(self.x)), 0
        b = self.x[self.perm[self.pos:self.pos + self.n]]
        self.pos += self.n
        return b


def vae_mlp(torch, nn, F, args):
    """M22: 784-512-(2, 2)-512-784, 784 * BCE + KL, Adam 1e-3 (examples/vae_mlp.gm)."""
    x = torch.from_numpy(fashion().reshape(-1, 784))
    enc, mu_l, lv_l = nn.Linear(784, 512), nn.Linear(512, 2), nn.Linear(512, 2)
    dec = nn.Sequential(nn.Linear(2, 512), nn.ReLU(), nn.Linear(512, 784), nn.Sigmoid())
    params = [p for m in (enc, mu_l, lv_l, dec) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
    data = Batches(torch, x, args.batch)

    def step():
        xb = data.next()
        h = F.relu(enc(xb))
        mu, logvar = mu_l(h), lv_l(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        kl = (-0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum(1)).mean()
        loss = 784 * F.binary_cross_entropy(dec(z), xb) + kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step


def conv_vae(torch, nn, F, args):
    """M17: the M16 conv encoder with two Dense 2 heads, the M16 decoder, 500 * BCE + KL,
    Adam 5e-4, 32x32x1 (bench/conv_vae.gm)."""
    x = torch.from_numpy(fashion(pad=2))
    enc = nn.Sequential(nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                        nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(), nn.Flatten())
    mu_l, lv_l = nn.Linear(2048, 2), nn.Linear(2048, 2)
    dec = nn.Sequential(nn.Linear(2, 2048), nn.Unflatten(1, (128, 4, 4)),
                        nn.ConvTranspose2d(128, 128, 3, 2, 1, 1), nn.ReLU(),
                        nn.ConvTranspose2d(128, 64, 3, 2, 1, 1), nn.ReLU(),
                        nn.ConvTranspose2d(64, 32, 3, 2, 1, 1), nn.ReLU(),
                        nn.Conv2d(32, 1, 3, 1, 1), nn.Sigmoid())
    params = [p for m in (enc, mu_l, lv_l, dec) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=5e-4, eps=1e-7)
    data = Batches(torch, x, args.batch)

    def step():
        xb = data.next()
        h = enc(xb)
        mu, logvar = mu_l(h), lv_l(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        kl = (-0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum(1)).mean()
        loss = 500 * F.binary_cross_entropy(dec(z), xb) + kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step


def frozen(model, flag):
    for p in model.parameters():
        p.requires_grad_(not flag)


def dcgan(torch, nn, F, args):
    """M11: codings 100, G Dense 6272 -> BN -> ConvT 64 k5 s2 relu -> BN -> ConvT 1 k5 s2 tanh,
    D Conv 64/128 k5 s2 LeakyReLU 0.2 Dropout 0.4 -> Dense 1 sigmoid; RMSprop for both; per
    iteration one D step (fakes and reals) and one G step (examples/dcgan.gm)."""
    x = torch.from_numpy(fashion(lo=-1.0))
    bn = dict(eps=1e-3, momentum=0.01)      # Keras's BatchNormalization (momentum 0.99)
    G = nn.Sequential(nn.Linear(100, 6272), nn.Unflatten(1, (128, 7, 7)), nn.BatchNorm2d(128, **bn),
                      nn.ConvTranspose2d(128, 64, 5, 2, 2, 1), nn.ReLU(), nn.BatchNorm2d(64, **bn),
                      nn.ConvTranspose2d(64, 1, 5, 2, 2, 1), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.2), nn.Dropout(0.4),
                      nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(0.2), nn.Dropout(0.4),
                      nn.Flatten(), nn.Linear(6272, 1), nn.Sigmoid())
    rms = dict(lr=1e-3, alpha=0.9, eps=1e-7)   # Keras's RMSprop defaults
    opt_d, opt_g = torch.optim.RMSprop(D.parameters(), **rms), torch.optim.RMSprop(G.parameters(), **rms)
    data = Batches(torch, x, args.batch)
    n = args.batch

    def step():
        real = data.next()
        with torch.no_grad():                  # D's step: G is constant
            fake = G(torch.randn(n, 100))
        d_loss = 0.5 * (F.binary_cross_entropy(D(fake), torch.zeros(n, 1))
                        + F.binary_cross_entropy(D(real), torch.ones(n, 1)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        frozen(D, True)                        # G's step: no gradients for D's weights
        g_loss = F.binary_cross_entropy(D(G(torch.randn(n, 100))), torch.ones(n, 1))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        frozen(D, False)
        return g_loss
    return step


class ImagePool:
    """PyTorch CycleGAN's image pool (gmc's `history(x, 50)`): while it fills, images are stored
    and passed through; then half the time an image is swapped for a random stored one."""

    def __init__(self, torch, size):
        self.torch, self.size, self.images = torch, size, []

    def query(self, batch):
        out = []
        for img in batch:
            img = img[None]
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif self.torch.rand(()) < 0.5:
                i = int(self.torch.randint(0, self.size, ()))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return self.torch.cat(out, 0)


def cyclegan(torch, nn, F, args):
    """M27 at 32x32x1: U-Net generators (gf 32), PatchGAN discriminators (df 64), least squares,
    cycle 10, identity 1, Adam(2e-4, beta1 0.5), random flips, 50-image pools; sneakers (7) <->
    ankle boots (9) (examples/cyclegan.gm). As there, the discriminators' step recomputes G(a)
    and F(b) with the updated generators."""
    warnings.filterwarnings("ignore", message=".*padding='same'.*")
    nc, gf, df = 1, 32, 64

    def down(cin, f, norm=True):
        layers = [nn.Conv2d(cin, f, 4, 2, 1), nn.LeakyReLU(0.2)]
        return nn.Sequential(*layers, nn.InstanceNorm2d(f, eps=1e-3, affine=True)) if norm \
            else nn.Sequential(*layers)

    def up(cin, f):
        return nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, f, 4, 1, "same"), nn.ReLU(),
                             nn.InstanceNorm2d(f, eps=1e-3, affine=True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.d1, self.d2, self.d3, self.d4 = down(nc, gf), down(gf, 2 * gf), down(2 * gf, 4 * gf), \
                down(4 * gf, 8 * gf)
            self.u1, self.u2, self.u3 = up(8 * gf, 4 * gf), up(8 * gf, 2 * gf), up(4 * gf, gf)
            self.out = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(2 * gf, nc, 4, 1, "same"), nn.Tanh())

        def forward(self, x):
            d1 = self.d1(x)
            d2 = self.d2(d1)
            d3 = self.d3(d2)
            d4 = self.d4(d3)
            u1 = torch.cat([self.u1(d4), d3], 1)
            u2 = torch.cat([self.u2(u1), d2], 1)
            u3 = torch.cat([self.u3(u2), d1], 1)
            return self.out(u3)

    def patchgan():
        return nn.Sequential(down(nc, df, norm=False), down(df, 2 * df), down(2 * df, 4 * df),
                             down(4 * df, 8 * df), nn.Conv2d(8 * df, 1, 4, 1, "same"))

    G, Fg, D_A, D_B = UNet(), UNet(), patchgan(), patchgan()
    adam = dict(lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    opt_g = torch.optim.Adam(list(G.parameters()) + list(Fg.parameters()), **adam)
    opt_d = torch.optim.Adam(list(D_A.parameters()) + list(D_B.parameters()), **adam)
    data_a = Batches(torch, torch.from_numpy(fashion(labels=[7], pad=2, lo=-1.0)), args.batch)
    data_b = Batches(torch, torch.from_numpy(fashion(labels=[9], pad=2, lo=-1.0)), args.batch)
    pool_a, pool_b = ImagePool(torch, 50), ImagePool(torch, 50)

    def flip(x):
        f = torch.rand(x.shape[0]) < 0.5
        return torch.where(f[:, None, None, None], x.flip(-1), x)

    def mse(p, y):
        return ((p - y) ** 2).mean()

    def step():
        a, b = flip(data_a.next()), flip(data_b.next())
        frozen(D_A, True)
        frozen(D_B, True)
        fake_b, fake_a = G(a), Fg(b)
        adversarial = mse(D_B(fake_b), 1) + mse(D_A(fake_a), 1)
        cycle = F.l1_loss(Fg(fake_b), a) + F.l1_loss(G(fake_a), b)
        identity = F.l1_loss(Fg(a), a) + F.l1_loss(G(b), b)
        g_loss = adversarial + 10 * cycle + identity
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        frozen(D_A, False)
        frozen(D_B, False)
        with torch.no_grad():
            hist_b, hist_a = pool_b.query(G(a)), pool_a.query(Fg(b))
        real = mse(D_B(b), 1) + mse(D_A(a), 1)
        fake = mse(D_B(hist_b), 0) + mse(D_A(hist_a), 0)
        d_loss = 0.5 * (real + fake)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        return g_loss
    return step


def char_lstm(torch, nn, F, args):
    """M19: one-hot windows of 40 characters -> LSTM 128 (sequences) -> LSTM 128 -> Dense vocab
    softmax, categorical cross-entropy, RMSprop lr 1e-2 (Keras's rho 0.9, eps 1e-7)."""
    with open(args.text, "rb") as f:
        text = np.frombuffer(f.read(), dtype=np.uint8)
    vocab = np.unique(text)
    ids = torch.from_numpy(np.searchsorted(vocab, text).astype(np.int64))
    V, L = len(vocab), 40
    starts = torch.arange(0, len(ids) - L - 1, 3)        # text(window: 40, step: 3)
    lstm = nn.LSTM(V, 128, num_layers=2, batch_first=True)
    head = nn.Linear(128, V)
    opt = torch.optim.RMSprop(list(lstm.parameters()) + list(head.parameters()), lr=1e-2, alpha=0.9, eps=1e-7)
    data = Batches(torch, starts, args.batch)
    offs = torch.arange(L)

    def step():
        s = data.next()
        window = ids[s[:, None] + offs]
        x = F.one_hot(window, V).float()
        h, _ = lstm(x)
        loss = F.cross_entropy(head(h[:, -1]), ids[s + L])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step


def ddpm(torch, nn, F, args):
    """A small DDPM (M14's training recipe): 32x32x1 Fashion-MNIST in [-1, 1], cosine schedule
    T = 4000, t ~ U{1..T}, predict eps with a U-Net of 32-64-128 channels (two 3x3 convs + relu
    per level, the sinusoidal time encoding (32) through a Dense added at every level, max-pool
    down, nearest up-sampling and concatenated skips), Huber loss, Nadam."""
    import math
    T, s = 4000, 0.008
    f = np.cos(((np.arange(T + 1) / T + s) / (1 + s)) * math.pi / 2) ** 2
    alpha = np.clip(f[1:] / f[:-1], 1 - 0.999, 1)
    abar = torch.from_numpy(np.cumprod(np.concatenate([[1.0], alpha])).astype(np.float32))
    x = torch.from_numpy(fashion(pad=2, lo=-1.0))
    freqs = torch.exp(-math.log(10000.0) * torch.arange(16) / 16)

    class Block(nn.Module):
        def __init__(self, cin, c):
            super().__init__()
            self.c1, self.c2, self.t = nn.Conv2d(cin, c, 3, 1, 1), nn.Conv2d(c, c, 3, 1, 1), nn.Linear(32, c)

        def forward(self, h, temb):
            h = F.relu(self.c1(h)) + self.t(temb)[:, :, None, None]
            return F.relu(self.c2(h))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.b1, self.b2, self.b3 = Block(1, 32), Block(32, 64), Block(64, 128)
            self.u2, self.u1 = Block(128 + 64, 64), Block(64 + 32, 32)
            self.out = nn.Conv2d(32, 1, 1)

        def forward(self, xt, t):
            a = t[:, None].float() * freqs
            temb = torch.cat([torch.sin(a), torch.cos(a)], 1)
            h1 = self.b1(xt, temb)
            h2 = self.b2(F.max_pool2d(h1, 2), temb)
            h3 = self.b3(F.max_pool2d(h2, 2), temb)
            u2 = self.u2(torch.cat([F.interpolate(h3, scale_factor=2), h2], 1), temb)
            u1 = self.u1(torch.cat([F.interpolate(u2, scale_factor=2), h1], 1), temb)
            return self.out(u1)

    net = UNet()
    opt = torch.optim.NAdam(net.parameters(), lr=2e-3, eps=1e-7)
    data = Batches(torch, x, args.batch)

    def step():
        x0 = data.next()
        t = torch.randint(1, T + 1, (x0.shape[0],))
        ab = abar[t][:, None, None, None]
        eps = torch.randn_like(x0)
        loss = F.huber_loss(net(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return step


MODELS = dict(vae_mlp=vae_mlp, conv_vae=conv_vae, dcgan=dcgan, cyclegan=cyclegan, char_lstm=char_lstm, ddpm=ddpm)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text", default="")
    args = p.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    step = MODELS[args.model](torch, nn, F, args)
    for _ in range(args.warmup):
        step()
    times = [time.perf_counter()]
    loss = None
    for _ in range(args.steps):
        loss = step()
        times.append(time.perf_counter())
    t0 = times[0]
    print("BENCH " + json.dumps({"times": [t - t0 for t in times], "loss": float(loss),
                                 "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
