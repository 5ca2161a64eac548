#!/usr/bin/python3
"""stdlib_crosscheck.py DUMP.safetensors

Recomputes with PyTorch one training step of a tests/torch/stdlib_*check.gm program from a
`gmc --grad-dump` (same parameters and input) and compares gmc's loss and every gradient with
float64 torch:
    err = ||g_gmc - g_ref||_inf / max(||g_ref||_inf, 1e-2)   must be <= 1e-4
(1e-1 instead of 1e-2 where the reference is zero: a gradient that vanishes exactly)
Each branch N.<name> of the program feeds the first n values of each example, plus a probe
parameter P[n] (so grad/...probe.P is the input gradient), through one stdlib layer or loss
into a readout: sum(flatten(y) * R), or y * R[1] for a scalar loss (so grad/...R is the forward
value, summed over the batch). Targets are the n values from offset 400, not probed.
The table BRANCHES says what each branch computes, with torch's own layers where it has them.
Exit: 0 all within tolerance, 1 a mismatch or a malformed dump, 77 torch not installed.
"""
import math
import os
import sys

TOL = 1e-4
FLOOR = 1e-2
ZERO_FLOOR = 1e-1

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("skip: torch not installed")
    sys.exit(77)

import numpy as np  # noqa: E402
import compare  # noqa: E402
import st  # noqa: E402
from compare import report  # noqa: E402


def probe(X, p):
    return X[:, :p["probe.P"].shape[0]] + p["probe.P"]


def t(X, n):
    return X[:, 400:400 + n]


def kl_bern(p, q, eps=1e-7):
    q = q.clamp(eps, 1 - eps)
    return (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).sum()


def dense(h, p, name="dense"):
    return h @ p[name + ".W"] + p[name + ".b"]


def ids(X, n, classes):
    """class ids from targets, as the .gm computes them (float32 sigmoid, then floor)"""
    return torch.floor(torch.sigmoid(t(X, n).float()) * classes).to(X.dtype)


def norm_last(h, eps):
    d = h - h.mean(-1, keepdim=True)
    return d / torch.sqrt((d * d).mean(-1, keepdim=True) + eps)


def minibatch_stddev(x):
    s = torch.sqrt(x.var(0, unbiased=False) + 1e-8).mean()
    return torch.cat([x, s.expand(*x.shape[:-1], 1)], -1)


def adain(x, p):
    h = x.reshape(x.shape[0], -1, x.shape[-1])
    d = h - h.mean(1, keepdim=True)
    y = d / torch.sqrt((d * d).mean(1, keepdim=True) + 1e-5)
    s, b = dense(t(X_, 8), p, "dense"), dense(t(X_, 8), p, "dense_1")
    return (y * s[:, None] + b[:, None]).reshape(x.shape)


def eq_dense(h, p, gain=math.sqrt(2), bias=True):
    """equalised learning rate: W ~ N(0, 1) scaled by gain / sqrt(fan_in) at every call"""
    w = p["eq_dense.W"]
    y = h @ (w * (gain / math.sqrt(w.shape[0])))
    return y + p["eq_dense.b"] if bias else y


def eq_conv(x, p, s=1, gain=math.sqrt(2)):
    w = p["eq_conv.W"]
    k = w.shape[0]
    return conv(x, w * (gain / math.sqrt(k * k * w.shape[2])), p["eq_conv.b"], s)


def style_adain(x, w, p):
    """StyleGAN's A + AdaIN: scale 1 + eq_dense(w), bias eq_dense(w), both gain 1, eps 1e-8"""
    h = x.reshape(x.shape[0], -1, x.shape[-1])
    d = h - h.mean(1, keepdim=True)
    y = d / torch.sqrt((d * d).mean(1, keepdim=True) + 1e-8)
    sc = 1 + eq_dense(w, {"eq_dense.W": p["eq_dense.W"], "eq_dense.b": p["eq_dense.b"]}, 1)
    b = eq_dense(w, {"eq_dense.W": p["eq_dense_1.W"], "eq_dense.b": p["eq_dense_1.b"]}, 1)
    return (y * sc[:, None] + b[:, None]).reshape(x.shape)


def time_embedding(tt, dim, interleave=True):
    freq = 10000.0 ** (-2 * torch.arange(dim // 2, dtype=tt.dtype) / dim)
    a = tt[:, None] * freq
    if interleave:
        return torch.stack([torch.sin(a), torch.cos(a)], -1).reshape(tt.shape[0], dim)
    return torch.cat([torch.sin(a), torch.cos(a)], -1)


def cce(p, y, eps=1e-7):
    q = (p / p.sum(-1, keepdim=True)).clamp(eps, 1 - eps)
    return -(y * torch.log(q)).sum(-1).mean()


def conv(x, w, b, s):
    """a conv with TensorFlow's "same" padding, channels-last, Keras kernel [k, k, c, f]"""
    k = w.shape[0]
    total = [max((-(-n // s) - 1) * s + k - n, 0) for n in x.shape[1:3]]
    pads = (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2)
    y = F.conv2d(F.pad(x.permute(0, 3, 1, 2), pads), w.permute(3, 2, 0, 1), b, stride=s)
    return y.permute(0, 2, 3, 1)


def spectral_norm(W, u):
    """torch.nn.utils.spectral_norm in training, one power iteration: torch's weight matrix is
    [out, fan_in], W's transpose seen as a matrix"""
    mat = W.reshape(-1, W.shape[-1]).T
    with torch.no_grad():
        v = F.normalize(mat.T @ u, dim=0, eps=1e-12)
        u = F.normalize(mat @ v, dim=0, eps=1e-12)
    return W / torch.dot(u, mat @ v)


def gradient_penalty(real, fake, p):
    """WGAN-GP's penalty with gmc's draw e (the dump's noise/0), torch.autograd.grad"""
    e = torch.tensor(NOISE[0], dtype=real.dtype).reshape(-1, 1, 1)
    xhat = e * real + (1 - e) * fake
    crit = lambda h: dense(torch.tanh(dense(h.reshape(h.shape[0], -1), p,
                                            "gradient_penalty.critic.dense")),
                           p, "gradient_penalty.critic.dense_1")
    g, = torch.autograd.grad(crit(xhat).sum(), xhat, create_graph=True)
    return ((g.reshape(g.shape[0], -1).norm(dim=1) - 1) ** 2).mean()


def masked_conv(x, p, kind, colors=1):
    """PixelCNN: the taps above the centre row and left of the centre, and the centre for "B";
    with colors, the centre tap connects input group gi to output group go where gi < go
    ("A") or gi <= go ("B"), the groups being thirds of the channels"""
    W = p["masked_conv.W"]
    k, cin, cout = W.shape[0], W.shape[2], W.shape[3]
    mask = np.zeros(W.shape)
    mask[:k // 2] = 1
    mask[k // 2, :k // 2] = 1
    for i in range(cin):
        for o in range(cout):
            gi, go = i * colors // cin, o * colors // cout
            mask[k // 2, k // 2, i, o] = gi < go or (kind == "B" and gi == go)
    w = (W * torch.tensor(mask, dtype=W.dtype)).permute(3, 2, 0, 1)
    y = F.conv2d(x.permute(0, 3, 1, 2), w, p["masked_conv.b"], padding=k // 2)
    return y.permute(0, 2, 3, 1)


def lstm(x, p, name, return_sequences=False):
    """torch's nn.LSTM (same gate order i, f, g, o as Keras) with gmc's weights: W[in, 4u] and
    U[u, 4u] are torch's weight_ih.T and weight_hh.T, the bias is b_i, b_f, b_c, b_o joined"""
    u = p[name + ".U"].shape[0]
    bias = torch.cat([p[name + ".b_" + g] for g in "ifco"])
    weights = [p[name + ".W"].T, p[name + ".U"].T, bias, torch.zeros_like(bias)]
    h0 = torch.zeros(1, x.shape[0], u, dtype=x.dtype)
    y, h, _c = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, False, False, True)
    return y if return_sequences else h[0]


def attention(x, ctx, p, name, heads, causal=False):
    """multi-head attention written out: per head softmax(q k^T / sqrt(dk)) v, then Wo"""
    b = (lambda n: p[name + "." + n]) if name + ".bq" in p else (lambda n: 0)
    w = lambda n: p[name + "." + n]
    q = x.reshape(x.shape[0], -1, x.shape[-1]) @ w("Wq") + b("bq")
    c = ctx.reshape(ctx.shape[0], -1, ctx.shape[-1])
    k, v = c @ w("Wk") + b("bk"), c @ w("Wv") + b("bv")
    split = lambda z: z.reshape(z.shape[0], z.shape[1], heads, -1).transpose(1, 2)
    q, k, v = split(q), split(k), split(v)                      # [b, heads, T, dk]
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), -1e9)
    o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(x.shape[0], q.shape[2], -1)
    return (o @ w("Wo") + b("bo")).reshape(x.shape)


def torch_mha(x, p, heads):
    """torch's own nn.MultiheadAttention computation (key_dim * heads = d)"""
    w = lambda n: p["self_attention.attention." + n]
    xt = x.transpose(0, 1)
    y, _ = F.multi_head_attention_forward(
        xt, xt, xt, x.shape[-1], heads, torch.cat([w("Wq").T, w("Wk").T, w("Wv").T]),
        torch.cat([w("bq"), w("bk"), w("bv")]), None, None, False, 0.0, w("Wo").T, w("bo"),
        training=False, need_weights=False)
    return y.transpose(0, 1)


def mlp(h, p, name):
    return torch.tanh(dense(h, p, name + ".dense")) @ p[name + ".dense_1.W"] + p[name + ".dense_1.b"]


def coupling(x, p, kind, flip=False, inverse=False):
    """y (with logdet as one more value) of std.flow's coupling layers"""
    d = x.shape[-1] // 2
    a, b = (x[:, d:], x[:, :d]) if flip else (x[:, :d], x[:, d:])
    pre = ("additive" if kind == "additive" else "affine") + "_coupling."
    nets = sorted({n[len(pre):].split(".")[0] for n in p if n.startswith(pre)})
    if kind == "additive":
        s, t = torch.zeros_like(b), mlp(a, p, pre + nets[0])
    else:
        s, t = mlp(a, p, pre + nets[0]), mlp(a, p, pre + nets[1])
    if inverse:
        c, logdet = (b - t) * torch.exp(-s), -s.sum(-1)
    else:
        c, logdet = b * torch.exp(s) + t, s.sum(-1)
    y = torch.cat([c, a] if flip else [a, c], -1)
    return torch.cat([y, logdet[:, None]], -1)


BRANCHES = {
    # activations
    "elu_b": lambda X, p: F.elu(probe(X, p)),
    "elu_a": lambda X, p: F.elu(probe(X, p), alpha=0.5),
    "selu_b": lambda X, p: F.selu(probe(X, p)),
    "silu_b": lambda X, p: F.silu(probe(X, p)),
    "swish_b": lambda X, p: F.silu(probe(X, p)),
    "gelu_b": lambda X, p: F.gelu(probe(X, p)),
    "gelu_tanh": lambda X, p: F.gelu(probe(X, p), approximate="tanh"),
    # layers
    "tied": lambda X, p: dense(probe(X, p).reshape(-1, 3, 4), p) @ p["dense.W"].T + p["dense_t.b"],
    "softmax_b": lambda X, p: torch.softmax(probe(X, p).reshape(-1, 4, 6), -1),
    "softmax_ax": lambda X, p: torch.softmax(probe(X, p).reshape(-1, 4, 6), 1),
    "logsoftmax_b": lambda X, p: torch.log_softmax(probe(X, p).reshape(-1, 4, 6), -1),
    "lnorm": lambda X, p: F.layer_norm(probe(X, p).reshape(-1, 4, 6), (6,), p["layernorm.gamma"],
                                       p["layernorm.beta"], eps=1e-3),
    "gnorm": lambda X, p: F.group_norm(probe(X, p).reshape(-1, 2, 3, 8).permute(0, 3, 1, 2), 4,
                                       p["groupnorm.gamma"], p["groupnorm.beta"],
                                       eps=1e-3).permute(0, 2, 3, 1),
    "gnorm_2d": lambda X, p: F.group_norm(probe(X, p), 2, p["groupnorm.gamma"],
                                          p["groupnorm.beta"], eps=0.1),
    "pnorm": lambda X, p: probe(X, p).reshape(-1, 4, 6) / torch.sqrt(
        (probe(X, p).reshape(-1, 4, 6) ** 2).mean(-1, keepdim=True) + 1e-8),
    "mbstd": lambda X, p: minibatch_stddev(probe(X, p).reshape(-1, 2, 2, 6)),
    "adain_b": lambda X, p: adain(probe(X, p).reshape(-1, 2, 2, 8), p),
    "embed": lambda X, p: F.embedding(ids(X, 6, 10).long(), p["embedding.W"]),
    "temb": lambda X, p: time_embedding(10 * probe(X, p)[:, 0], 16),
    "temb_cat": lambda X, p: time_embedding(10 * probe(X, p)[:, 0], 10, False),
    "eqd": lambda X, p: eq_dense(probe(X, p).reshape(-1, 4, 3), p),
    "eqd_lin": lambda X, p: eq_dense(probe(X, p), p, 1, bias=False),
    "eqc": lambda X, p: eq_conv(probe(X, p).reshape(-1, 5, 5, 2), p),
    "eqc_s": lambda X, p: eq_conv(probe(X, p).reshape(-1, 5, 5, 2), p, 2, 1),
    "sadain": lambda X, p: style_adain(probe(X, p).reshape(-1, 2, 2, 8), t(X, 6),
                                       {n[len("style_adain."):]: v for n, v in p.items()
                                        if n.startswith("style_adain.")}),
    "sn_d": lambda X, p: dense(probe(X, p).reshape(-1, 4, 3), {
        "dense.W": spectral_norm(p["sn_dense.W"], p["sn_dense.spectral_norm.u"]),
        "dense.b": p["sn_dense.b"]}),
    "sn_c": lambda X, p: conv(probe(X, p).reshape(-1, 5, 5, 2),
                              spectral_norm(p["sn_conv.W"], p["sn_conv.spectral_norm.u"]),
                              p["sn_conv.b"], 2),
    "mconv_a": lambda X, p: masked_conv(probe(X, p).reshape(-1, 5, 5, 2), p, "A"),
    "mconv_b": lambda X, p: masked_conv(probe(X, p).reshape(-1, 5, 5, 2), p, "B"),
    "mconv_rgb_a": lambda X, p: masked_conv(probe(X, p).reshape(-1, 4, 4, 3), p, "A", 3),
    "mconv_rgb_b": lambda X, p: masked_conv(probe(X, p).reshape(-1, 4, 4, 6), p, "B", 3),
    # std.seq
    "att_self": lambda X, p: torch_mha(probe(X, p).reshape(-1, 5, 8), p, 2),
    "att_causal": lambda X, p: attention(probe(X, p).reshape(-1, 5, 8), probe(X, p).reshape(-1, 5, 8),
                                         p, "self_attention.attention", 3, causal=True),
    "att_cross": lambda X, p: attention((X[:, :24] + p["probe_1.P"]).reshape(-1, 2, 2, 6),
                                        probe(X, p).reshape(-1, 5, 8), p, "attention", 2),
    "lstm_seq": lambda X, p: lstm(probe(X, p).reshape(-1, 5, 3), p, "lstm", True),
    "lstm_last": lambda X, p: lstm(probe(X, p).reshape(-1, 5, 3), p, "lstm"),
    "lstm_stack": lambda X, p: lstm(lstm(probe(X, p).reshape(-1, 4, 3), p, "lstm", True), p,
                                    "lstm_1"),
    # std.flow
    "additive": lambda X, p: coupling(probe(X, p), p, "additive"),
    "affine": lambda X, p: coupling(probe(X, p), p, "affine", flip=True),
    "affine_inv": lambda X, p: coupling(probe(X, p), p, "affine", inverse=True),
    # losses
    "cce_b": lambda X, p: cce(torch.softmax(probe(X, p).reshape(-1, 4, 6), -1),
                              torch.softmax(t(X, 24).reshape(-1, 4, 6), -1)),
    "cce_unnorm": lambda X, p: cce(torch.sigmoid(probe(X, p)), torch.softmax(t(X, 24), -1)),
    "cce_logits_b": lambda X, p: F.cross_entropy(probe(X, p).reshape(-1, 6),
                                                 torch.softmax(t(X, 24).reshape(-1, 6), -1)),
    "scce": lambda X, p: F.nll_loss(torch.log(torch.softmax(probe(X, p).reshape(-1, 6), -1)),
                                    ids(X, 4, 6).reshape(-1).long()),
    "scce_logits": lambda X, p: F.cross_entropy(probe(X, p).reshape(-1, 6),
                                                ids(X, 4, 6).reshape(-1).long()),
    "bnorm": lambda X, p: F.batch_norm(probe(X, p).reshape(-1, 6), None, None, p["batchnorm.gamma"],
                                       p["batchnorm.beta"], training=True, eps=1e-3).reshape(-1, 4, 6),
    "bce_b": lambda X, p: F.binary_cross_entropy(torch.sigmoid(probe(X, p)), torch.sigmoid(t(X, 20))),
    "bce_logits_b": lambda X, p: F.binary_cross_entropy_with_logits(probe(X, p),
                                                                    torch.sigmoid(t(X, 20))),
    "mse_b": lambda X, p: F.mse_loss(probe(X, p), t(X, 20)),
    "mae_b": lambda X, p: F.l1_loss(probe(X, p), t(X, 20)),
    "kln": lambda X, p: (-0.5 * (1 + t(X, 8) - probe(X, p) ** 2 - torch.exp(t(X, 8))).sum(-1)).mean(),
    "huber_b": lambda X, p: F.huber_loss(probe(X, p), 0.5 * t(X, 30)),
    "huber_d": lambda X, p: F.huber_loss(probe(X, p), t(X, 30), delta=0.3),
    "klsparse": lambda X, p: 0.5 * kl_bern(torch.tensor(0.1, dtype=X.dtype),
                                           torch.sigmoid(probe(X, p)).mean(0)),
    "klbern": lambda X, p: kl_bern(torch.sigmoid(t(X, 20)), torch.sigmoid(probe(X, p))),
    "l1act": lambda X, p: 0.1 * probe(X, p).abs().sum() / X.shape[0],
    "gp": lambda X, p: gradient_penalty(probe(X, p).reshape(-1, 3, 4),
                                        0.5 * t(X, 12).reshape(-1, 3, 4), p),
    "wgan": lambda X, p: -(torch.sign(t(X, 6)) * probe(X, p)).mean(),
}


def load(path):
    tensors, _meta = st.read(path)
    # parameters have gradients; state (spectral_norm's u and v, batch statistics) has none
    names = sorted(n for n in tensors if n.startswith("N.") and
                   not n.endswith((".u", ".v", ".moving_mean", ".moving_variance")))
    problems = ["missing tensor %r" % n for n in ["input/x", "loss"] + ["grad/" + n for n in names]
                if n not in tensors]
    branches = sorted({n.split(".")[1] for n in names})
    unknown = [b for b in branches if b not in BRANCHES]
    if unknown:
        problems.append("branches %s are not in the table" % unknown)
    if problems:
        raise ValueError("malformed dump %s:\n  %s" % (path, "\n  ".join(problems)))
    return tensors, names, branches


def forward_backward(tensors, names, branches, dtype):
    params = {n: torch.tensor(tensors[n], dtype=dtype, requires_grad=True) for n in names}
    state = {n: torch.tensor(v, dtype=dtype) for n, v in tensors.items()
             if n.startswith("N.") and n not in params}
    X = torch.tensor(tensors["input/x"], dtype=dtype)
    X = X.reshape(X.shape[0], -1)
    global X_, NOISE
    X_ = X
    NOISE = [tensors["noise/%d" % i] for i in range(sum(n.startswith("noise/") for n in tensors))]
    loss = 0
    for br in branches:
        p = {n[len("N.%s." % br):]: v for n, v in list(params.items()) + list(state.items())
             if n.startswith("N.%s." % br)}
        y = BRANCHES[br](X, p)
        if "readout.R" in p:
            loss = loss + (y.reshape(y.shape[0], -1) * p["readout.R"]).sum()
        else:
            loss = loss + (y * p["readout1.R"]).sum()
    loss.backward()
    # a parameter the loss does not depend on (the critic's last bias under a gradient
    # penalty) has no torch gradient: gmc's must then be zero
    return float(loss), {n: (v.grad if v.grad is not None else torch.zeros_like(v)).double().numpy()
                         for n, v in params.items()}


def relerr(got, ref):
    # a gradient that is zero in exact arithmetic (attention's key bias: softmax ignores a shift)
    # is float32 roundoff in gmc: an absolute error is all that can be asked of it
    scale = np.max(np.abs(np.asarray(ref, np.float64)), initial=0.0)
    return compare.relerr(got, ref, ZERO_FLOOR if scale < 1e-10 else FLOOR)


def main(argv):
    if len(argv) != 2:
        print("usage: stdlib_crosscheck.py DUMP.safetensors", file=sys.stderr)
        return 2
    try:
        tensors, names, branches = load(argv[1])
    except (OSError, ValueError) as e:
        print("crosscheck: %s" % e)
        return 1
    return report(tensors, names, forward_backward(tensors, names, branches, torch.float64),
                  forward_backward(tensors, names, branches, torch.float32),
                  lambda n, w: "crosscheck: %d tensors of %d layers and losses ok (worst relative error "
                  "%.1e)" % (n, len(branches), w), width=40, err=relerr)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
