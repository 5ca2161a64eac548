#!/usr/bin/python3
"""seeds_crosscheck.py DIR [MODE]

Cross-checks the seed models (examples/seeds/README.md) against PyTorch. DIR holds gmc
--grad-dump files named STEM.STEP.MODE.safetensors: STEM is the .gm file's name (m05_conv_ae,
dcgan, ...) and picks a builder below, STEP the step's name ("0": the first, unnamed step),
MODE "train" or "eval" (the step built with training = 0: no dropout or noise, batch norm on
its running statistics). A builder recomputes that step's loss in PyTorch, float64, from the
dump's weights, inputs (input/x, input/1, ...) and random draws (noise/0, noise/1, ... in the
order the program makes them); autograd gives the reference gradients. For every dump, the
loss and each gradient must agree:
    err = max|g_gmc - g_ref| / max(max|g_ref|, 1e-2 * the largest |g_ref| of the dump) <= 1e-4
(the floor keeps gradients that are zero in exact arithmetic, a bias before a batch norm,
from being judged on float32 noise alone). A tensor above 1e-4 passes only if float32 PyTorch,
on the same computation, is itself off by at least half as much (a sum of many cancelling
terms, CycleGAN's output bias); the line says so. Keras layouts, as gmc: dense W [in, out], conv W
[kh, kw, in, out], transposed conv W [kh, kw, out, in], channels-last images.
Prints one "ok - ..." or "FAIL - ..." line per dump (naming MODE, the execution mode gmc
made the dumps in, when given: --no-fuse, GMC_NO_IMPLICIT_CONV=1, ...). Exit 0, 1 on a failure, 77 without torch.
"""
import math
import os
import sys

TOL = 1e-4

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("skip - seed cross-checks: torch not installed")
    sys.exit(77)
import numpy as np  # noqa: E402
import st  # noqa: E402
from conv_crosscheck import deconv as _deconv, maxpool, nchw, nhwc, pads, upsample  # noqa: E402


def _conv(x, w, b, k, s=1, padding="same", groups=1):
    """Keras's Conv2D on channels-last images (the kernel made contiguous: torch's float64
    convolution wants it so for its weight gradient)"""
    w = w.permute(3, 2, 0, 1).contiguous()
    return nhwc(F.conv2d(F.pad(nchw(x), pads(x, k, s, padding)), w, b, stride=s, groups=groups))


class Dump:
    """a dump's tensors as float64 torch tensors; parameters require gradients"""

    def __init__(self, tensors, training, dt=torch.float64):
        self.t, self.training, self.dt, self.k = tensors, training, dt, 0
        self.params = {n: torch.tensor(v, dtype=dt, requires_grad=True)
                       for n, v in tensors.items() if "/" not in n and n != "loss"}

    def __getitem__(self, name):
        return self.params[name]

    def input(self, k=0):
        return torch.tensor(self.t["input/x" if k == 0 else "input/%d" % k], dtype=self.dt)

    def counter(self, name):
        return float(self.t["input/" + name].reshape(())) if "input/" + name in self.t else 0.0

    def randint(self, lo, hi):
        """randint(lo, hi, ...): floor(lo + (hi - lo) u) of the next uniform draw, in float32"""
        u = self.t["noise/%d" % self.k].astype(np.float32)
        self.k += 1
        v = np.minimum(np.floor(u * np.float32(hi - lo) + np.float32(lo)), np.float32(hi - 1))
        return torch.tensor(v, dtype=self.dt)

    def noise(self):
        """the program's next random draw"""
        v = self.t["noise/%d" % self.k]
        self.k += 1
        return torch.tensor(v, dtype=self.dt)


class Net:
    """one call of a model instance: parameters named as gmc names them, by layer and call
    order (E.dense, E.dense_1, E.down_1.conv, ...)"""

    def __init__(self, d, prefix):
        self.d, self.prefix, self.count = d, prefix, {}

    def name(self, layer):
        k = self.count.get(layer, 0)
        self.count[layer] = k + 1
        return "%s.%s" % (self.prefix, layer if k == 0 else "%s_%d" % (layer, k))

    def sub(self, layer):
        return Net(self.d, self.name(layer))

    def dense(self, x, bias=True):
        n = self.name("dense")
        y = x @ self.d[n + ".W"]
        return y + self.d[n + ".b"] if bias else y

    def conv(self, x, k=None, s=1, padding="same", bias=True, groups=1):
        n = self.name("conv")
        w = self.d[n + ".W"]
        return _conv(x, w, self.d[n + ".b"] if bias else None, w.shape[0], s, padding, groups)

    def deconv(self, x, s=1, padding="same", bias=True):
        n = self.name("deconv")
        w = self.d[n + ".W"]
        return _deconv(x, w, self.d[n + ".b"] if bias else 0, w.shape[0], s, padding)

    def eq_dense(self, x, gain=math.sqrt(2)):
        """equalised learning rate: W ~ N(0, 1) scaled by gain / sqrt(fan_in) at every call"""
        n = self.name("eq_dense")
        w = self.d[n + ".W"]
        return x @ (w * (gain / math.sqrt(w.shape[0]))) + self.d[n + ".b"]

    def eq_conv(self, x, gain=math.sqrt(2)):
        n = self.name("eq_conv")
        w = self.d[n + ".W"]
        k = w.shape[0]
        return _conv(x, w * (gain / math.sqrt(k * k * w.shape[2])), self.d[n + ".b"], k)

    def embedding(self, ids):
        return self.d[self.name("embedding") + ".table"][ids.long()]

    def batchnorm(self, x, eps=1e-3):
        n = self.name("batchnorm")
        axes = tuple(range(x.dim() - 1))
        if self.d.training:
            m = x.mean(dim=axes)
            v = ((x - m) ** 2).mean(dim=axes)
        else:
            m, v = self.d[n + ".moving_mean"], self.d[n + ".moving_variance"]
        return (x - m) / torch.sqrt(v + eps) * self.d[n + ".gamma"] + self.d[n + ".beta"]

    def instancenorm(self, x, eps=1e-3):
        n = self.name("instancenorm")
        c = x - x.mean(dim=(1, 2), keepdim=True)
        y = c / torch.sqrt((c * c).mean(dim=(1, 2), keepdim=True) + eps)
        return y * self.d[n + ".gamma"] + self.d[n + ".beta"]

    def dropout(self, x, rate):
        return x * (self.d.noise() >= rate) / (1 - rate) if self.d.training else x

    def gaussian_noise(self, x, std):
        return x + std * self.d.noise() if self.d.training else x


# inputs of ReLUs this close to 0 (relative to the tensor's largest) may fall on the other side
# of the kink in float32: counted, to explain a failure that comes from nothing else
KINK = [0]


def near_kink(x):
    KINK[0] += int((x.abs() < 1e-6 * x.abs().max()).sum())
    return x


def relu(x):
    return F.relu(near_kink(x))


def lrelu(x, a=0.3):
    near_kink(x)
    return torch.where(x > 0, x, a * x)


def flat(x):
    return x.reshape(x.shape[0], -1)


def bce(p, y, eps=1e-7):
    q = p.clamp(eps, 1 - eps)
    return -(y * torch.log(q) + (1 - y) * torch.log(1 - q)).mean()


def mse(p, y):
    return ((p - y) ** 2).mean()


def mae(p, y):
    return (p - y).abs().mean()


def kl_normal(mu, logvar):
    return (-0.5 * (1 + logvar - mu * mu - torch.exp(logvar)).sum(-1)).mean()


def sampling(d, mu, logvar):
    return mu + torch.exp(0.5 * logvar) * d.noise()


# ---- the seed models: one function per .gm file, (dump, step name) -> loss -------------------

def m01_linear_ae(d, step):
    x = d.input()
    return mse(Net(d, "D").dense(Net(d, "E").dense(x)), x)


def mlp_ae(d, step, drop=None, code=lambda n, h: relu(n.dense(relu(n.dense(h))))):
    """M02 and its variants: 784 -> 100 -> 30 | 30 -> 100 -> 784"""
    x = d.input()
    e, h = Net(d, "E"), flat(x)
    if drop == "dropout":
        h = e.dropout(h, 0.5)
    elif drop == "gaussian":
        h = e.gaussian_noise(h, 0.2)
    n = Net(d, "D")
    return mse(n.dense(relu(n.dense(code(e, h)))).reshape(x.shape), x)


def m04_greedy_ae(d, step):
    """M04: ae1 784-100-784; ae2 100-30-100 on ae1's codes; the stack E1 E2 D2 D1"""
    x = d.input()
    enc1 = lambda h: relu(Net(d, "E1").dense(flat(h)))
    dec1 = lambda h: Net(d, "D1").dense(h).reshape(x.shape)
    enc2 = lambda h: relu(Net(d, "E2").dense(h))
    dec2 = lambda z: relu(Net(d, "D2").dense(z))
    if step == "ae1":
        return mse(dec1(enc1(x)), x)
    if step == "ae2":
        h = enc1(x)
        return mse(dec2(enc2(h)), h)
    return mse(dec1(dec2(enc2(enc1(x)))), x)


def ae_tied(d, step):
    x = d.input()
    a = Net(d, "A")
    codes = relu(a.dense(relu(a.dense(flat(x)))))
    h = relu(codes @ d["A.dense_1.W"].T + d["A.dense_t.b"])
    return mse((h @ d["A.dense.W"].T + d["A.dense_t_1.b"]).reshape(x.shape), x)


def m05_conv_ae(d, step):
    x = d.input()
    e = Net(d, "E")
    h = x.reshape(-1, 28, 28, 1)
    for _ in range(3):
        h = maxpool(relu(e.conv(h)))
    z = relu(e.conv(h)).mean(dim=(1, 2))
    n = Net(d, "D")
    h = n.dense(z).reshape(-1, 3, 3, 16)
    h = relu(n.deconv(h, 2, "valid"))
    h = n.deconv(relu(n.deconv(h, 2)), 2)
    return mse(h.reshape(x.shape), x)


def sparse_ae(d, step, penalty):
    x = d.input()
    e = Net(d, "E")
    codes = torch.sigmoid(e.dense(relu(e.dense(flat(x)))))
    n = Net(d, "D")
    return mse(n.dense(relu(n.dense(codes))).reshape(x.shape), x) + penalty(codes)


def kl_sparsity(codes, p=0.1):
    q = codes.mean(0)
    return 5e-3 * (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).sum()


def mlp_vae(d, step, hidden, latent, out, loss):
    """M09, M20, M22, M35: MLP encoder (hidden...) to mu, logvar; the mirror decoder"""
    x = d.input()
    e = Net(d, "E")
    h = flat(x)
    for _ in hidden:
        h = relu(e.dense(h))
    mu, logvar = e.dense(h), e.dense(h)
    z = sampling(d, mu, logvar)
    n = Net(d, "D")
    for _ in hidden:
        z = relu(n.dense(z))
    y = n.dense(z)
    y = torch.sigmoid(y) if out == "sigmoid" else y
    return loss(y.reshape(x.shape), x, mu, logvar, d)


def gan_mlp(d, step):
    def G(z):
        n = Net(d, "G")
        return torch.sigmoid(n.dense(relu(n.dense(relu(n.dense(z)))))).reshape(-1, 28, 28)

    def D(x):
        n = Net(d, "D")
        return torch.sigmoid(n.dense(relu(n.dense(relu(n.dense(flat(x)))))))
    if step == "discriminator":
        fake = G(d.noise())
        return 0.5 * (bce(D(fake), 0) + bce(D(d.input()), 1))
    return bce(D(G(d.noise())), 1)


def dcgan(d, step):
    def G(z):
        n = Net(d, "G")
        h = n.batchnorm(n.dense(z).reshape(-1, 7, 7, 128))
        h = n.batchnorm(relu(n.deconv(h, 2)))
        return torch.tanh(n.deconv(h, 2))

    def D(x):
        n = Net(d, "D")
        h = n.dropout(lrelu(n.conv(x, s=2), 0.2), 0.4)
        h = n.dropout(lrelu(n.conv(h, s=2), 0.2), 0.4)
        return torch.sigmoid(n.dense(flat(h)))
    if step == "discriminator":
        fake = D(G(d.noise()))
        return 0.5 * (bce(fake, 0) + bce(D(d.input()), 1))
    return bce(D(G(d.noise())), 1)


def conv_encoder(n, x):
    for _ in range(3):
        x = relu(n.conv(x, s=2))
    return flat(x)


def conv_decoder(d, z):
    n = Net(d, "D")
    h = n.dense(z).reshape(-1, 4, 4, 128)
    for _ in range(3):
        h = relu(n.deconv(h, 2))
    return torch.sigmoid(n.conv(h))


def conv_ae(d, step):
    x32 = F.pad(d.input().reshape(-1, 28, 28, 1), (0, 0, 2, 2, 2, 2))
    return bce(conv_decoder(d, Net(d, "E").dense(conv_encoder(Net(d, "E"), x32))), x32)


def m17_conv_vae(d, step):
    x = d.input()
    e = Net(d, "E")
    h = conv_encoder(e, x)
    mu, logvar = e.dense(h), e.dense(h)
    return 500 * bce(conv_decoder(d, sampling(d, mu, logvar)), x) + kl_normal(mu, logvar)


def m18_faces_vae(d, step):
    x = d.input()
    e = Net(d, "E")
    h = x
    for _ in range(4):
        b = e.sub("down")
        h = lrelu(b.batchnorm(b.conv(h, s=2)))
    h = flat(h)
    mu, logvar = e.dense(h), e.dense(h)
    n = Net(d, "D")
    h = lrelu(n.batchnorm(n.dense(sampling(d, mu, logvar)))).reshape(-1, 2, 2, 128)
    for _ in range(4):
        b = n.sub("up")
        h = lrelu(b.batchnorm(b.deconv(h, 2)))
    return 2000 * mse(torch.sigmoid(n.deconv(h)), x) + kl_normal(mu, logvar)


def m23_dcgan(d, step):
    def G(z):
        n = Net(d, "G")
        h = lrelu(n.batchnorm(n.dense(z, bias=False))).reshape(-1, 7, 7, 256)
        h = lrelu(n.batchnorm(n.deconv(h, bias=False)))
        h = lrelu(n.batchnorm(n.deconv(h, 2, bias=False)))
        return torch.tanh(n.deconv(h, 2, bias=False))

    def D(x):
        n = Net(d, "D")
        h = n.dropout(lrelu(n.conv(x, s=2)), 0.3)
        h = n.dropout(lrelu(n.conv(h, s=2)), 0.3)
        return torch.sigmoid(n.dense(flat(h)))
    if step == "d_real":
        return bce(D(d.input()), 1)
    return bce(D(G(d.noise())), 0 if step == "d_fake" else 1)


def m25_wgan(d, step):
    G, D = wgan_nets(d)
    if step == "critic":
        fake = D(G(d.noise()))
        return fake.mean() - D(d.input()).mean()
    return -D(G(d.noise())).mean()


def sn_dense(n, x, eps=1e-12):
    """std.nn's sn_dense: W / sigma, sigma = v^T W u; in training one power iteration from
    the stored u (torch.nn.utils.spectral_norm's, on torch's [out, fan_in] weight W^T), u and v
    constants for the gradient; in evaluation the stored u and v, normalised"""
    p = n.name("sn_dense")
    W, u, v = n.d[p + ".W"], n.d[p + ".spectral_norm.u"], n.d[p + ".spectral_norm.v"]
    with torch.no_grad():
        if n.d.training:
            v = F.normalize(W @ u, dim=0, eps=eps)
            u = F.normalize(W.T @ v, dim=0, eps=eps)
        else:
            v, u = F.normalize(v.reshape(-1), dim=0, eps=eps), F.normalize(u, dim=0, eps=eps)
    return x @ (W / torch.dot(v, W @ u)) + n.d[p + ".b"]


def m33_gan_variants(d, step, loss="bce", g_loss="non_saturating", noise=0.1, norm="none"):
    def G(z):
        n = Net(d, "G")
        h = lrelu(n.dense(lrelu(n.dense(z), 0.2)), 0.2)
        return torch.tanh(n.dense(h)).reshape(-1, 28, 28)

    def D(x):
        n = Net(d, "D")
        dense = (lambda h: sn_dense(n, h)) if norm == "spectral" else n.dense
        h = dense(lrelu(dense(lrelu(dense(flat(x)), 0.2)), 0.2))
        return torch.sigmoid(h) if loss == "bce" else h

    def noisy(x):
        return x + noise * d.noise() if noise > 0 else x

    def gl(p, y):
        return bce(p, y) if loss == "bce" else mse(p, y)
    if step == "discriminator":
        fake = G(d.noise())
        real = D(noisy(d.input()))
        return 0.5 * (gl(real, 1) + gl(D(noisy(fake)), 0))
    p = D(noisy(G(d.noise())))
    return gl(p, 1) if g_loss == "non_saturating" or loss != "bce" else -gl(p, 0)


def cyclegan(d, step):
    def down(n, x, norm=True):
        b = n.sub("down")
        h = lrelu(b.conv(x, s=2), 0.2)
        return b.instancenorm(h) if norm else h

    def G(name, x):
        n = Net(d, name)
        d1 = down(n, x)
        d2 = down(n, d1)
        d3 = down(n, d2)
        d4 = down(n, d3)
        h = d4
        for skip in (d3, d2, d1):
            b = n.sub("up")
            h = torch.cat([b.instancenorm(relu(b.conv(upsample(h)))), skip], -1)
        return torch.tanh(n.conv(upsample(h)))

    def D(name, x):
        n = Net(d, name)
        h = down(n, x, norm=False)
        for _ in range(3):
            h = down(n, h)
        return n.conv(h)
    a, b = d.input(0), d.input(1)
    if step == "generators":
        fake_b, fake_a = G("G", a), G("F", b)
        adversarial = mse(D("D_B", fake_b), 1) + mse(D("D_A", fake_a), 1)
        cycle = mae(G("F", fake_b), a) + mae(G("G", fake_a), b)
        identity = mae(G("F", a), a) + mae(G("G", b), b)
        return adversarial + 10 * cycle + identity
    # the history pools are empty at the first step: they pass their inputs through
    real = mse(D("D_B", b), 1) + mse(D("D_A", a), 1)
    fake = mse(D("D_B", G("G", a)), 0) + mse(D("D_A", G("F", b)), 0)
    return 0.5 * (real + fake)


def wgan_nets(d):
    """M25's and M26's generator and critic"""
    def G(z):
        n = Net(d, "G")
        for _ in range(4):
            b = n.sub("block")
            z = lrelu(b.batchnorm(b.dense(z)), 0.2)
        return torch.tanh(n.dense(z)).reshape(-1, 28, 28)

    def D(x):
        n = Net(d, "D")
        return n.dense(lrelu(n.dense(lrelu(n.dense(flat(x)), 0.2)), 0.2))
    return G, D


def m26_wgan_gp(d, step):
    G, D = wgan_nets(d)
    if step == "critic":
        real = d.input()
        fake = G(d.noise())
        e = d.noise()
        xhat = e * real + (1 - e) * fake
        g, = torch.autograd.grad(D(xhat).sum(), xhat, create_graph=True)
        gp = (((flat(g) ** 2).sum(-1).sqrt() - 1) ** 2).mean()
        return D(fake).mean() - D(real).mean() + 10 * gp
    return -D(G(d.noise())).mean()


def m24_cgan(d, step, cond="embedding"):
    def condition(n, x, y):
        c = n.sub("condition")
        if cond == "embedding":
            return x * c.embedding(y)
        return torch.cat([x, F.one_hot(y.long(), 10).to(x.dtype)], -1)

    def G(z, y):
        n = Net(d, "G")
        h = condition(n, z, y)
        for _ in range(3):
            b = n.sub("block")
            h = b.batchnorm(lrelu(b.dense(h), 0.2))
        return torch.tanh(n.dense(h)).reshape(-1, 28, 28)

    def D(x, y):
        n = Net(d, "D")
        h = condition(n, flat(x), y)
        return torch.sigmoid(n.dense(lrelu(n.dense(lrelu(n.dense(h), 0.2)), 0.2)))
    labels = d.randint(0, 10)
    if step == "discriminator":
        fake = G(d.noise(), labels)
        return 0.5 * (bce(D(d.input(0), d.input(1)), 1) + bce(D(fake, labels), 0))
    return bce(D(G(d.noise(), labels), labels), 1)


def m21_acgan(d, step):
    def D(x):
        n = Net(d, "D")
        for s in (2, 1, 2, 1):
            b = n.sub("trunk")
            x = b.dropout(lrelu(b.conv(x, s=s), 0.2), 0.3)
        h = flat(x)
        return torch.sigmoid(n.dense(h)), n.dense(h)

    def G(z, y):
        n = Net(d, "G")
        h = (z * n.embedding(y))
        h = relu(n.dense(h)).reshape(-1, 3, 3, 384)
        h = n.batchnorm(relu(n.deconv(h, 1, "valid")))
        h = n.batchnorm(relu(n.deconv(h, 2)))
        return torch.tanh(n.deconv(h, 2))

    def loss(x, y, target):
        realness, logits = D(x)
        cce = (torch.logsumexp(logits, -1) - (F.one_hot(y.long(), 10) * logits).sum(-1)).mean()
        return bce(realness, target) + cce
    labels = d.randint(0, 10)
    if step == "discriminator":
        fake = G(d.noise(), labels)
        return 0.5 * (loss(d.input(0), d.input(1), 0.95) + loss(fake, labels, 0))
    return loss(G(d.noise(), labels), labels, 0.95)


def m30_cvae(d, step):
    img = d.input()
    x, y = img[:, :14], img[:, 14:]

    def heads(n, h):
        h = relu(n.dense(h))
        return n.dense(h), n.dense(h)
    mu_q, lv_q = heads(Net(d, "Q"), torch.cat([flat(x), flat(y)], -1))
    mu_p, lv_p = heads(Net(d, "P"), flat(x))
    n = Net(d, "D")
    z = sampling(d, mu_q, lv_q)
    out = torch.sigmoid(n.dense(relu(n.dense(torch.cat([flat(x), z], -1))))).reshape(y.shape)
    kl = (0.5 * (lv_p - lv_q + (torch.exp(lv_q) + (mu_q - mu_p) ** 2) / torch.exp(lv_p) - 1).sum(-1)).mean()
    return 392 * bce(out, y) + kl


def m14_schedule(T=4000, s=0.008):
    """the cosine schedule as gmc computes it: float32 elementwise, cumprod accumulated in
    double; alpha, beta, abar as float32 numpy arrays"""
    t32 = np.arange(0, T + 1, dtype=np.float32)
    f = np.cos((t32 / np.float32(T) + np.float32(s)) / np.float32(1 + s) * np.float32(np.pi) / 2) ** 2
    alpha = np.concatenate([[1], np.clip(f[1:] / f[:-1], 0.001, 1)]).astype(np.float32)
    return alpha, 1 - alpha, np.cumprod(alpha.astype(np.float64)).astype(np.float32)


def m14_ddpm(d, step, T=4000):
    abar = torch.tensor(m14_schedule(T)[2], dtype=d.dt)
    t = d.randint(1, T + 1)
    x = d.input()
    a = abar[t.long()].reshape(-1, 1, 1, 1)
    eps = d.noise()
    diff = (m14_unet(d, sqrt_mix(a, x, eps), t) - eps).abs()
    return torch.where(diff <= 1, 0.5 * diff * diff, diff - 0.5).mean()


def m14_unet(d, x, t, embed=64):
    """M14's U-Net N(x, t) on images x [b, 28, 28, 1] and timesteps t [b]"""
    # the sinusoidal encoding in float32, as gmc computes it: at t up to 4000 an angle's float32
    # rounding (up to 2e-4 rad) moves sin and cos by as much, an input difference, not a
    # gradient's (the book's float64 table is no closer to what a float32 model can hold)
    i = 2 * torch.arange(embed // 2, dtype=torch.float32)
    angles = t.float().reshape(-1, 1) / 10000 ** (i / embed)
    time = torch.stack([torch.sin(angles), torch.cos(angles)], -1).reshape(-1, embed).to(d.dt)
    n = Net(d, "N")

    def add_time(m, z):
        return z + m.sub("add_time").dense(time)[:, None, None, :]

    def separable(m, x):
        b = m.sub("separable")
        return b.conv(b.conv(x, bias=False, groups=x.shape[-1]))

    def attend(m, z, heads=4):
        """z + multi-head self-attention over z's h*w positions (std.seq's attention: per
        head softmax(q k^T / sqrt(key_dim)) v, heads joined, then Wo), written out"""
        a = m.sub("attend").sub("self_attention").sub("attention")
        w = lambda k: d["%s.%s" % (a.prefix, k)]
        b, c = z.shape[0], z.shape[-1]
        kd = c // heads
        q = z.reshape(b, -1, c)
        split = lambda y: y.reshape(b, -1, heads, kd).transpose(1, 2)          # [b, heads, hw, kd]
        qs, ks, vs = split((q @ w("Wq") + w("bq")) / kd ** 0.5), split(q @ w("Wk") + w("bk")), split(q @ w("Wv") + w("bv"))
        o = torch.softmax(qs @ ks.transpose(-1, -2), -1) @ vs
        return z + (o.transpose(1, 2).reshape(b, -1, c) @ w("Wo") + w("bo")).reshape(z.shape)

    def down(z, skip, attn=False):
        m = n.sub("down")
        z = m.batchnorm(separable(m, relu(m.batchnorm(separable(m, relu(z))))))
        cross = z
        z = maxpool(z, 3, 2, "same") + m.conv(skip, s=2)
        z = add_time(m, z)
        return (attend(m, z) if attn else z), cross

    def up(z, skip, cross, attn=False):
        m = n.sub("up")
        z = m.batchnorm(m.deconv(relu(m.batchnorm(m.deconv(relu(z))))))
        z = upsample(z) + m.conv(upsample(skip))
        z = add_time(m, z)
        return torch.cat([attend(m, z) if attn else z, cross], -1)
    z = relu(n.batchnorm(n.conv(F.pad(x, (0, 0, 3, 3, 3, 3)), padding="valid")))
    z = add_time(n, z)
    z1, c1 = down(z, z)
    z2, c2 = down(z1, z1, attn=True)
    z3, c3 = down(z2, z2, attn=True)
    u1 = up(z3, z3, c3, attn=True)
    u2 = up(u1, u1, c2)
    u3 = up(u2, u2, c1)
    return n.conv(u3)[:, 2:30, 2:30]


def m15_latent_diffusion(d, step, T=1000, s=0.008, embed=64):
    """M15: the conv autoencoder (step ae); the class-conditioned denoiser on the codes of the
    frozen encoder (step ldm)"""
    x = d.input()
    e = Net(d, "E")
    z = torch.tanh(e.conv(relu(e.conv(relu(e.conv(x, s=2)), s=2))))
    if step == "ae":
        n = Net(d, "D")
        r = torch.sigmoid(n.conv(relu(n.deconv(relu(n.deconv(relu(n.conv(z)), s=2)), s=2))))
        return mse(r, x)
    # the schedule as gmc folds it: compile-time arrays in double, a float32 table
    tt = np.arange(T + 1, dtype=np.float64)
    f = np.cos(((tt / T + s) / (1 + s)) * np.pi / 2) ** 2
    alpha = np.concatenate([[1], np.clip(f[1:] / f[:-1], 0.001, 1)])
    abar = torch.tensor(np.cumprod(alpha).astype(np.float32), dtype=d.dt)
    y = d.input(1)
    t = d.randint(1, T + 1)
    a = abar[t.long()].reshape(-1, 1, 1, 1)
    eps = d.noise()
    # std.nn's time_embedding in float32, as gmc computes it
    freq = torch.tensor(np.exp(np.arange(embed // 2) * (-2 * np.log(10000) / embed)).astype(np.float32))
    ang = t.float().reshape(-1, 1) * freq
    time = torch.stack([torch.sin(ang), torch.cos(ang)], -1).reshape(-1, embed).to(d.dt)
    n = Net(d, "N")
    n.name("time_embedding")
    cond = time + d[n.name("embedding") + ".W"][y.long()]
    cond = F.silu(n.dense(cond))

    def block(h, dim):
        b = n.sub("block")
        h = b.conv(h)
        g = b.name("groupnorm")
        shp = h.shape
        hg = h.reshape(shp[0], -1, 8, shp[-1] // 8)
        c = hg - hg.mean(dim=(1, 3), keepdim=True)
        h = (c / torch.sqrt((c * c).mean(dim=(1, 3), keepdim=True) + 1e-3)).reshape(shp)
        h = h * d[g + ".gamma"] + d[g + ".beta"]
        h = h + b.dense(cond)[:, None, None, :]
        return F.silu(h)
    noisy = torch.sqrt(a) * z + torch.sqrt(1 - a) * eps
    h1 = block(noisy, 64)
    h2 = block(h1, 128)
    h3 = block(h2, 64) + h1
    return mse(n.conv(h3), eps)
def pixelnorm(x):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-8)


def minibatch_stddev(x):
    s = torch.sqrt(x.var(0, unbiased=False) + 1e-8).mean()
    return torch.cat([x, s.expand(*x.shape[:-1], 1)], -1)


def avgpool(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(dim=(2, 4))


def wgan_gp_penalty(D, real, fake, e):
    xhat = e * real + (1 - e) * fake
    g, = torch.autograd.grad(D(xhat).sum(), xhat, create_graph=True)
    return (((flat(g) ** 2).sum(-1).sqrt() - 1) ** 2).mean()


def m12_progan(d, step, lod, ch=(128, 128, 64, 32)):
    """M12 at a pinned level of detail lod: level k (8, 16, 32) weighs a_k = clip(lod - k + 1)"""
    a = [None] + [min(max(lod - (k - 1), 0.0), 1.0) for k in (1, 2, 3)]

    def G(z):
        n = Net(d, "G")
        h = pixelnorm(lrelu(n.eq_dense(pixelnorm(z), math.sqrt(2) / 4).reshape(-1, 4, 4, ch[0]), 0.2))

        def g_conv(h):
            return pixelnorm(lrelu(n.sub("g_conv").eq_conv(h), 0.2))
        h = g_conv(h)
        img = n.sub("to_rgb").eq_conv(h, 1)
        for k in (1, 2, 3):
            h = g_conv(g_conv(upsample(h)))
            img = a[k] * n.sub("to_rgb").eq_conv(h, 1) + (1 - a[k]) * upsample(img)
        return img

    def D(x):
        n = Net(d, "D")
        h = lrelu(n.sub("from_rgb").eq_conv(x), 0.2)
        for k in (3, 2, 1):
            x = avgpool(x)
            new = avgpool(lrelu(n.eq_conv(lrelu(n.eq_conv(h), 0.2)), 0.2))
            h = a[k] * new + (1 - a[k]) * lrelu(n.sub("from_rgb").eq_conv(x), 0.2)
        h = lrelu(n.eq_conv(minibatch_stddev(h)), 0.2)
        return n.eq_dense(lrelu(n.eq_dense(flat(h)), 0.2), 1)

    def blur_to(x):
        x16 = avgpool(x)
        x8 = avgpool(x16)
        img = a[1] * x8 + (1 - a[1]) * upsample(avgpool(x8))
        img = a[2] * x16 + (1 - a[2]) * upsample(img)
        return a[3] * x + (1 - a[3]) * upsample(img)
    if step == "critic":
        fake = G(d.noise())
        x = blur_to(d.input())
        d_real = D(x)
        gp = wgan_gp_penalty(D, x, fake, d.noise())
        return D(fake).mean() - d_real.mean() + 10 * gp + 0.001 * (d_real * d_real).mean()
    return -D(G(d.noise())).mean()


def m13_stylegan(d, step, ch=(128, 128, 64, 32), n_styles=8, mixing=0.9):
    """M13: mapping network, synthesis with noise and AdaIN styles, style mixing at a crossover
    drawn per image (the dump's uniform and randint draws), ProGAN's critic, R1"""
    def M(z):
        n = Net(d, "M")
        w = pixelnorm(z)
        for _ in range(8):
            w = lrelu(n.eq_dense(w), 0.2)
        return w

    def style_adain(n, x, w):
        b = n.sub("style_adain")
        scale, bias = 1 + b.eq_dense(w, 1), b.eq_dense(w, 1)
        h = x.reshape(x.shape[0], -1, x.shape[-1])
        c = h - h.mean(1, keepdim=True)
        y = c / torch.sqrt((c * c).mean(1, keepdim=True) + 1e-8)
        return (y * scale[:, None] + bias[:, None]).reshape(x.shape)

    def noise_injection(n, x):
        return x + d[n.name("noise_injection") + ".scale"] * d.noise()

    def S(w1, w2, cross):
        n = Net(d, "S")

        def style(i):
            return torch.where((cross > i).reshape(-1, 1), w1, w2)

        def styled_conv(h, w):
            b = n.sub("styled_conv")
            return style_adain(b, lrelu(noise_injection(b, b.eq_conv(h)), 0.2), w)
        h = d["S.start"] * torch.ones(w1.shape[0], 1, 1, 1, dtype=w1.dtype)
        h = style_adain(n, lrelu(noise_injection(n, h), 0.2), style(0))
        h = styled_conv(h, style(1))
        for k in (1, 2, 3):
            h = upsample(h)
            h = styled_conv(styled_conv(h, style(2 * k)), style(2 * k + 1))
        return n.eq_conv(h, 1)

    def D(x):
        n = Net(d, "D")
        h = lrelu(n.eq_conv(x), 0.2)
        for _ in range(3):
            h = avgpool(lrelu(n.eq_conv(lrelu(n.eq_conv(h), 0.2)), 0.2))
        h = lrelu(n.eq_conv(minibatch_stddev(h)), 0.2)
        return n.eq_dense(lrelu(n.eq_dense(flat(h)), 0.2), 1)

    def generate():
        mixed = d.noise() < float(np.float32(mixing))
        cross = torch.where(mixed, d.randint(1, n_styles), torch.tensor(float(n_styles), dtype=d.dt))
        return S(M(d.noise()), M(d.noise()), cross)
    if step == "discriminator":
        x = d.input().requires_grad_(True)
        d_real = D(x)
        g, = torch.autograd.grad(d_real.sum(), x, create_graph=True)
        r1 = 0.5 * 10 * (flat(g) ** 2).sum(-1).mean()
        return F.softplus(D(generate())).mean() + F.softplus(-d_real).mean() + r1
    return F.softplus(-D(generate())).mean()


def sqrt_mix(a, x, eps):
    return torch.sqrt(a) * x + torch.sqrt(1 - a) * eps


def keras_lstm(n, x, return_sequences=False):
    """Keras's LSTM as std.seq writes it: W [in, 4u], U [u, 4u], biases b_i b_f b_c b_o,
    gates i, f, c, o; h and c start at zero"""
    p = n.name("lstm")
    W, U = n.d[p + ".W"], n.d[p + ".U"]
    b = torch.cat([n.d[p + ".b_" + g] for g in "ifco"])
    u = U.shape[0]
    h = c = torch.zeros(x.shape[0], u, dtype=x.dtype)
    hs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ W + h @ U + b
        i, f, g, o = torch.sigmoid(z[:, :u]), torch.sigmoid(z[:, u:2 * u]), torch.tanh(z[:, 2 * u:3 * u]), torch.sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, 1) if return_sequences else h


def m19_char_lstm(d, step):
    """M19: LSTM 128 (sequences) -> LSTM 128 -> Dense vocab, softmax cross-entropy of logits"""
    x, y = d.input(), d.input(1)
    m = Net(d, "m")
    logits = m.dense(keras_lstm(m, keras_lstm(m, x, True)))
    return -(y * torch.log_softmax(logits, -1)).sum(-1).mean()


def coupling_mlp(d, name, h):
    """a coupling network of M31 / M32: dense + ReLU for every hidden layer, a linear last one"""
    n = Net(d, name)
    depth = sum(1 for k in d.params if k.startswith(name + ".dense") and k.endswith(".W")) - 1
    for _ in range(depth):
        h = relu(n.dense(h))
    return n.dense(h)


def couple(y, flip, change):
    """std.flow's split: the first half conditions the second, or (flip) the other way round"""
    a, b = y[:, :y.shape[1] // 2], y[:, y.shape[1] // 2:]
    keep, other = (b, a) if flip else (a, b)
    other = change(keep, other)
    return torch.cat([other, keep] if flip else [keep, other], -1)


def m31_nice(d, step):
    """M31: even pixels then odd ones, 4 additive couplings, exp(s) scaling, logistic prior"""
    x = flat(d.input() + d.noise() / 256)
    y = x.reshape(-1, 392, 2).transpose(1, 2).reshape(-1, 784)
    for i, g in enumerate(("G1", "G2", "G3", "G4")):
        y = couple(y, i % 2 == 1, lambda keep, other: other + coupling_mlp(d, g, keep))
    s = d["S.s"]
    h = y * torch.exp(s)
    ll = (-F.softplus(h) - F.softplus(-h)).sum(-1) + s.sum()
    return -ll.mean() / (784 * np.log(2)) + 8


def m32_realnvp(d, step, a=0.05):
    """M32: logit(a + (1 - 2a) x), checkerboard order, 4 affine couplings, N(0, I) prior"""
    p = a + (1 - 2 * a) * flat(d.input() + d.noise() / 256)
    pre = (np.log(1 - 2 * a) - torch.log(p) - torch.log(1 - p)).sum(-1)
    pix = np.arange(784)
    black = (pix // 28 + pix % 28) % 2 == 0
    order = torch.tensor(np.concatenate([pix[black], pix[~black]]))
    y = (torch.log(p) - torch.log(1 - p))[:, order]
    logdet = pre
    for i in range(1, 5):
        def change(keep, other):
            s = torch.tanh(coupling_mlp(d, "S%d" % i, keep))
            change.logdet = s.sum(-1)
            return other * torch.exp(s) + coupling_mlp(d, "T%d" % i, keep)
        y = couple(y, i % 2 == 0, change)
        logdet = logdet + change.logdet
    ll = (-0.5 * y * y - 0.5 * np.log(2 * np.pi)).sum(-1) + logdet
    return -ll.mean() / (784 * np.log(2)) + 8


def pixel_mask(k, cin, cout, kind, colors):
    """PixelCNN's mask for a kernel [k, k, cin, cout]: rows above the centre, taps left of it,
    and at the centre the channel groups before (A) or up to (B) the output's own"""
    m = np.zeros((k, k, cin, cout))
    c = k // 2
    m[:c] = 1
    m[c, :c] = 1
    gin, gout = np.arange(cin) * colors // cin, np.arange(cout) * colors // cout
    m[c, c] = gin[:, None] < gout[None] if kind == "A" else gin[:, None] <= gout[None]
    return m


def m29_pixelcnn(d, step):
    """M29: masked conv A 7x7, residual blocks (1x1, 3x3, 1x1, mask B), two 1x1 layers to
    256 logits per channel; cross-entropy in bits per dimension"""
    img = d.input()
    colors = img.shape[-1]

    def mconv(n, x, kind="B"):
        name = n.name("masked_conv")
        w = d[name + ".W"]
        mask = torch.tensor(pixel_mask(w.shape[0], w.shape[2], w.shape[3], kind, colors), dtype=w.dtype)
        return _conv(x, w * mask, d[name + ".b"], w.shape[0])
    net = Net(d, "P")
    h = mconv(net, img / 255, "A")
    blocks = sum(1 for k in d.params if k.startswith("P.residual") and k.endswith("masked_conv.W"))
    for _ in range(blocks):
        r = net.sub("residual")
        h = h + mconv(r, relu(mconv(r, relu(mconv(r, relu(h))))))
    logits = mconv(net, relu(mconv(net, relu(h)))).reshape(*img.shape, 256)
    nll = torch.logsumexp(logits, -1) - torch.gather(logits, -1, img.long()[..., None])[..., 0]
    return nll.mean() / np.log(2)


def vae_loss(weight, recon, beta=lambda d: 1.0):
    return lambda y, x, mu, lv, d: weight * recon(y, x) + beta(d) * kl_normal(mu, lv)


BUILDERS = {
    "m01_linear_ae": m01_linear_ae,
    "ae_mlp": mlp_ae,                                                       # M02
    "ae_tied": ae_tied,                                                     # M03
    "m04_greedy_ae": m04_greedy_ae,
    "m05_conv_ae": m05_conv_ae,
    "m06_denoising_ae": lambda d, s: mlp_ae(d, s, "dropout"),
    "m06_denoising_ae-gaussian": lambda d, s: mlp_ae(d, s, "gaussian"),
    "m07_sparse_l1_ae": lambda d, s: sparse_ae(d, s, lambda c: 1e-4 * c.abs().sum(-1).mean()),
    "m08_sparse_kl_ae": lambda d, s: sparse_ae(d, s, kl_sparsity),
    "m09_mlp_vae": lambda d, s: mlp_vae(d, s, (150, 100), 10, None, vae_loss(1, mse, lambda d: 1 / 784)),
    "gan_mlp": gan_mlp,                                                     # M10
    "dcgan": dcgan,                                                         # M11
    "conv_ae": conv_ae,                                                     # M16
    "m17_conv_vae": m17_conv_vae,
    "m18_faces_vae": m18_faces_vae,
    "m20_mlp_vae": lambda d, s: mlp_vae(d, s, (512,), 2, "sigmoid", vae_loss(784, mse)),
    "vae_mlp": lambda d, s: mlp_vae(d, s, (512,), 2, "sigmoid", vae_loss(784, bce)),   # M22
    "m23_dcgan": m23_dcgan,
    "m25_wgan": m25_wgan,
    "m26_wgan_gp": m26_wgan_gp,
    "m24_cgan": m24_cgan,
    "m24_cgan-concat": lambda d, s: m24_cgan(d, s, "concat"),
    "m21_acgan": m21_acgan,
    "m30_cvae": m30_cvae,
    "m14_ddpm": m14_ddpm,
    "m15_latent_diffusion": m15_latent_diffusion,
    "m19_char_lstm": m19_char_lstm,
    "m29_pixelcnn": m29_pixelcnn,
    "m29_pixelcnn-rgb": m29_pixelcnn,
    "m31_nice": m31_nice,
    "m32_realnvp": m32_realnvp,
    "cyclegan": cyclegan,                                                   # M27
    "m33_gan_variants": m33_gan_variants,
    "m33_gan_variants-lsgan": lambda d, s: m33_gan_variants(d, s, loss="lsgan", noise=0),
    "m33_gan_variants-minimax": lambda d, s: m33_gan_variants(d, s, g_loss="minimax"),
    "m12_progan-fade8": lambda d, s: m12_progan(d, s, 0.5),
    "m12_progan-fade32": lambda d, s: m12_progan(d, s, 2.5),
    "m13_stylegan": m13_stylegan,
    "m33_gan_variants-spectral": lambda d, s: m33_gan_variants(d, s, norm="spectral"),
    "m33_gan_variants-spectral-lsgan": lambda d, s: m33_gan_variants(d, s, loss="lsgan", noise=0,
                                                                      norm="spectral"),
    "m35_beta_vae": lambda d, s: mlp_vae(d, s, (512,), 16, "sigmoid", vae_loss(
        784, bce, lambda d: 4 * min(1, (d.counter("epoch") + 1) / 10))),
}


def check(path):
    stem, step, mode = os.path.basename(path)[:-len(".safetensors")].rsplit(".", 2)
    label = "%s, step %s, %s mode" % (stem, step, mode)
    if stem not in BUILDERS:
        return False, "%s: no PyTorch builder for %s" % (label, stem)
    tensors, _ = st.read(path)
    grads = [n[5:] for n in tensors if n.startswith("grad/")]
    loss_ref, ref = reference(tensors, mode, stem, step, grads, torch.float64)
    floor = 1e-2 * max([np.abs(g).max() for g in ref] + [1e-30])
    names = ["loss"] + ["grad/" + n for n in grads]

    def errors(vals):
        return [np.abs(np.asarray(v, np.float64) - w).max() / max(np.abs(w).max(), f)
                if np.all(np.isfinite(v)) else float("inf")
                for v, w, f in zip(vals, [loss_ref] + ref, [1e-30] + [floor] * len(ref))]
    err = errors([np.float64(tensors["loss"]).reshape(())] + [tensors[n] for n in names[1:]])
    bad = [i for i, e in enumerate(err) if not e <= TOL]
    note = ""
    if bad:
        # a gradient summed from many cancelling terms: accept what float32 PyTorch itself
        # reaches on the same computation (at most twice its error), and say so
        loss32, ref32 = reference(tensors, mode, stem, step, grads, torch.float32)
        err32 = errors([loss32] + ref32)
        bad = [i for i in bad if not err[i] <= 2 * err32[i]]
        within = [i for i, e in enumerate(err) if e > TOL and i not in bad]
        note = " (%d above %.0e but within twice torch float32's own error: %s)" % (
            len(within), TOL, ", ".join("%s %.1e vs %.1e" % (names[i], err[i], err32[i])
                                        for i in within[:3]))
    if bad:
        kinks = " (%d ReLU inputs lie within 1e-6 of 0, where float32 may take the other slope)" % (
            KINK[0]) if KINK[0] else ""
        return False, "%s: %d of %d tensors differ from PyTorch: %s%s" % (
            label, len(bad), len(names), ", ".join("%s %.2e" % (names[i], err[i]) for i in bad[:6]),
            kinks)
    return True, "%s: loss %.6g and %d gradients equal PyTorch's (worst relative error %.1e)%s" % (
        label, float(loss_ref), len(grads), max(err), note)


def reference(tensors, mode, stem, step, grads, dt):
    """PyTorch's loss and gradients of the dumped step, in dtype dt"""
    d = Dump(tensors, mode == "train", dt)
    KINK[0] = 0
    loss = BUILDERS[stem](d, step)
    made = sum(1 for n in tensors if n.startswith("noise/"))
    if d.k != made:
        raise ValueError("the builder used %d random draws, gmc made %d" % (d.k, made))
    ref = torch.autograd.grad(loss, [d[n] for n in grads], allow_unused=True)
    return float(loss), [np.zeros(tensors["grad/" + n].shape) if g is None else g.double().numpy()
                         for n, g in zip(grads, ref)]


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: seeds_crosscheck.py DIR [MODE]", file=sys.stderr)
        return 2
    mode = " (%s)" % argv[2] if len(argv) == 3 else ""
    failed = 0
    for f in sorted(os.listdir(argv[1])):
        if not f.endswith(".safetensors"):
            continue
        try:
            good, msg = check(os.path.join(argv[1], f))
        except Exception as e:  # a malformed dump or a builder that does not fit it
            good, msg = False, "%s: %s: %s" % (f, type(e).__name__, e)
        print("%s - seed cross-check%s %s" % ("ok" if good else "FAIL", mode, msg))
        failed += not good
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
