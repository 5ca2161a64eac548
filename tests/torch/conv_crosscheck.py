#!/usr/bin/python3
"""conv_crosscheck.py DUMP.safetensors

Recomputes with PyTorch the training step of tests/torch/conv_check.gm from a gmc --grad-dump
(same parameters and input) and compares gmc's loss and every gradient against float64:
    err = ||g_gmc - g_ref||_inf / max(||g_ref||_inf, 1e-2)   must be <= 1e-4
(the floor: a bias before an instance norm has gradient 0, where only absolute errors mean
anything; every other reference here is far above it).
Every branch of the program is one op of the convolution family between a probe (grad/...P is
the input gradient) and a readout (grad/...R is the branch's output, i.e. the forward value),
so the table below names which op a failing tensor belongs to.

Keras conventions, as gmc: channels-last images, Conv2D kernels [kh, kw, in, out],
Conv2DTranspose kernels [kh, kw, out, in], TensorFlow's "same" padding (the odd pixel after;
torch gets it through F.pad), pooling that ignores padded taps, bilinear upsampling with half-pixel
centres, instance normalisation as std.nn defines it: (x - mean) / sqrt(var + 1e-3) * gamma + beta.
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


def tf_same(n, k, s, d=1):
    """TensorFlow's SAME padding of one axis: (before, after)."""
    span = (k - 1) * d + 1
    out = -(-n // s)
    total = max((out - 1) * s + span - n, 0)
    return total // 2, total - total // 2


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def pads(x, k, s, padding, d=1):
    """(left, right, top, bottom) for F.pad of NHWC images x"""
    if padding == "same":
        (t, b), (l, r) = tf_same(x.shape[1], k, s, d), tf_same(x.shape[2], k, s, d)
        return l, r, t, b
    if padding == "valid":
        return 0, 0, 0, 0
    t, b, l, r = padding
    return l, r, t, b


def conv(x, w, b, k, s=1, padding="same", d=1, groups=1):
    y = F.conv2d(F.pad(nchw(x), pads(x, k, s, padding, d)), w.permute(3, 2, 0, 1), b,
                 stride=s, dilation=d, groups=groups)
    return nhwc(y)


def deconv(x, w, b, k, s=1, padding="same", output_padding=None):
    def length(n):
        if output_padding is None:
            return n * s if padding == "same" else n * s + max(k - s, 0)
        return (n - 1) * s + k - 2 * (k // 2 if padding == "same" else 0) + output_padding
    ho, wo = length(x.shape[1]), length(x.shape[2])
    t = tf_same(ho, k, s)[0] if padding == "same" else 0
    l = tf_same(wo, k, s)[0] if padding == "same" else 0
    full = F.conv_transpose2d(nchw(x), w.permute(3, 2, 0, 1), None, stride=s)
    full = F.pad(full, (0, max(0, l + wo - full.shape[3]), 0, max(0, t + ho - full.shape[2])))
    return nhwc(full[:, :, t:t + ho, l:l + wo]) + b


def maxpool(x, k=2, s=None, padding="valid"):
    s = s or k
    return nhwc(F.max_pool2d(F.pad(nchw(x), pads(x, k, s, padding), value=-float("inf")), k, s))


def avgpool(x, k=2, s=None, padding="valid"):
    """the mean over the taps inside the image (TensorFlow excludes padding)"""
    s = s or k
    p = pads(x, k, s, padding)
    total = F.avg_pool2d(F.pad(nchw(x), p), k, s)
    count = F.avg_pool2d(F.pad(torch.ones_like(nchw(x)), p), k, s)
    return nhwc(total / count)


def upsample(x, f=2, mode="nearest"):
    kw = {} if mode == "nearest" else {"align_corners": False}
    return nhwc(F.interpolate(nchw(x), scale_factor=f, mode=mode, **kw))


def instancenorm(x, gamma, beta, eps=1e-3):
    d = x - x.mean(dim=(1, 2), keepdim=True)
    return d / ((d * d).mean(dim=(1, 2), keepdim=True) + eps).sqrt() * gamma + beta


# branch name (layer of conv_check.gm) -> its op, given the probed input h and its parameters
BRANCHES = {
    "conv_same": lambda h, p: conv(h, p["conv.W"], p["conv.b"], 3),
    "conv_k4s2": lambda h, p: conv(h, p["conv.W"], p["conv.b"], 4, 2),
    "conv_k2": lambda h, p: conv(h, p["conv.W"], p["conv.b"], 2),
    "conv_dilated": lambda h, p: conv(h, p["conv.W"], p["conv.b"], 3, 1, "valid", 2),
    "conv_explicit": lambda h, p: conv(h, p["conv.W"], p["conv.b"], 3, 2, (1, 2, 0, 1)),
    "conv_groups": lambda h, p: conv(h, p["conv.W"], p["conv.b"], 3, groups=3),
    "deconv_same": lambda h, p: deconv(h, p["deconv.W"], p["deconv.b"], 3, 2),
    "deconv_valid": lambda h, p: deconv(h, p["deconv.W"], p["deconv.b"], 3, 2, "valid"),
    "deconv_outpad": lambda h, p: deconv(h, p["deconv.W"], p["deconv.b"], 3, 2, "same", 0),
    "deconv_k4": lambda h, p: deconv(h, p["deconv.W"], p["deconv.b"], 4, 2),
    "maxpool_valid": lambda h, p: maxpool(h),
    "maxpool_same": lambda h, p: maxpool(h, 3, 2, "same"),
    "avgpool_valid": lambda h, p: avgpool(h),
    "avgpool_same": lambda h, p: avgpool(h, 2, 2, "same"),
    "avgpool_same3": lambda h, p: avgpool(h, 3, 1, "same"),
    "up_nearest": lambda h, p: upsample(h),
    "up_bilinear": lambda h, p: upsample(h, 2, "bilinear"),
    "gap": lambda h, p: h.mean(dim=(1, 2)),
    "inorm": lambda h, p: instancenorm(conv(h, p["conv.W"], p["conv.b"], 3),
                                       p["instancenorm.gamma"], p["instancenorm.beta"]),
    "skip": lambda h, p: torch.cat([conv(h, p["conv.W"], p["conv.b"], 3), h], -1)[..., 2:6],
}


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
    x = torch.tensor(tensors["input/x"], dtype=dtype)
    x = x.reshape(x.shape[0], -1)[:, :9 * 11 * 3].reshape(-1, 9, 11, 3)
    loss = 0
    for br, op in BRANCHES.items():
        p = {n[len("N.%s." % br):]: t for n, t in params.items() if n.startswith("N.%s." % br)}
        y = op(x + p["probe.P"], p)
        loss = loss + (y.reshape(y.shape[0], -1) * p["readout.R"]).sum()
    loss.backward()
    return float(loss), {n: t.grad.double().numpy() for n, t in params.items()}



def main(argv):
    if len(argv) != 2:
        print("usage: conv_crosscheck.py DUMP.safetensors", file=sys.stderr)
        return 2
    try:
        tensors, names = load(argv[1])
    except (OSError, ValueError) as e:
        print("crosscheck: %s" % e)
        return 1
    return report(tensors, names, forward_backward(tensors, names, torch.float64),
                  forward_backward(tensors, names, torch.float32),
                  lambda n, w: "crosscheck: %d tensors of %d ops ok (worst relative error %.1e)" % (n, len(BRANCHES), w))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
