"""Checks what tests/lang/*.gm wrote against numpy re-implementations.
Usage: check.py OUTDIR WHAT; prints one "ok - ..." or "FAIL - ..." line per check."""
import glob
import os
import sys

import numpy as np

out, what = sys.argv[1], sys.argv[2]


def load(name):
    return np.load(os.path.join(out, name)).astype(np.float64)


def check(desc, got, want, rtol=1e-5, atol=1e-6):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        print(f"FAIL - {desc}: shape {got.shape}, expected {want.shape}")
    elif not np.allclose(got, want, rtol=rtol, atol=atol):
        err = np.max(np.abs(got - want) / (atol + rtol * np.abs(want)))
        print(f"FAIL - {desc}: off by {err:.3g} tolerances\n#  got  {got.ravel()[:8]}\n#  want {want.ravel()[:8]}")
    else:
        print(f"ok - {desc}")


def cosine_schedule(T=1000, s=0.008):
    t = np.arange(T + 1)
    f = np.cos(((t / T + s) / (1 + s)) * np.pi / 2) ** 2
    alpha = np.concatenate([[1.0], np.clip(f[1:] / f[:-1], 1 - 0.999, 1)])
    return alpha, 1 - alpha, np.cumprod(alpha)


alpha, beta, abar = cosine_schedule()


def read_safetensors(path):
    """float32 tensors of a safetensors file (a checkpoint, a gradient dump) as float64"""
    import json
    import struct
    with open(path, "rb") as fh:
        size = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(size))
        blob = fh.read()
    w = {}
    for name, info in header.items():
        if name != "__metadata__":
            lo, hi = info["data_offsets"]
            w[name] = np.frombuffer(blob[lo:hi], np.float32).reshape(info["shape"]).astype(np.float64)
    return w

if what == "schedule":
    check("DDPM cosine schedule: abar = cumprod(alpha) (SEEDS.md M14)", load("abar.npy"), abar, 1e-5, 1e-12)
    check("DDPM cosine schedule: beta = 1 - alpha", load("beta.npy"), beta, 1e-5, 1e-9)
    check("DDPM cosine schedule: alpha clipped to [0.001, 1], alpha_0 = 1", load("alpha.npy"), alpha)
    lin = np.linspace(-1, 1, 9)
    check("linspace(-1, 1, 9)", load("lin.npy"), lin)
    check("array literals, + - * / with numbers broadcasting", load("mixed.npy"), np.array([0.5, 2, 4]) * 2 - 0.25)
    a = np.array([1.0, 5, 2])
    check("sqrt exp log max min abs **", load("math.npy"),
          np.sqrt(np.exp(np.log([1, 4, 9]))) + np.maximum(a, 3) + np.minimum(a, 3) + np.abs([1, 2, 3]) + np.array([1, 2, 3]) ** 2)
    check("cumsum(range(1, 6))", load("sums.npy"), np.cumsum(np.arange(1, 6)))
    check("indexing by arrays and negative indices, concat, len, sum, mean, amax, amin", load("picks.npy"),
          np.concatenate([abar[[0, 10, 1000]], [beta[-1]], [1001, 6, 2, 1, -1]]), 1e-5, 1e-12)
    check("range(T, 0, -100)", load("steps.npy"), np.arange(1000, 0, -100))
    check("slices with steps: lin[::-1][1:-1:2]", load("rev.npy"), lin[::-1][1:-1:2])
    check("comparisons, where, floor on arrays", load("cmp.npy"),
          np.where(np.array([1, 2, 3]) > 1.5, [10, 20, 30], -1) + np.floor([0.5, 1.5, 2.5]))
    x = np.ones((2, 3)) * [1, 2, 3]
    check("an array meets a tensor: a constant tensor", load("x.npy"), x)
    check("x.shape, x.ndim, len(x)", load("shape.npy"), np.zeros((2, 3)) + 2 + 2)
    check("x[:, 1:]", load("x_cols.npy"), x[:, 1:])
    check("x[1] * x[0, -1]", load("x_row_last.npy"), x[1] * x[0, -1])
    y = np.arange(3)[None, :] + 10 * np.arange(4)[:, None]
    ids = np.array([3, 0])
    check("y[ids]: rows gathered by a run-time index", load("y_rows.npy"), y[ids])
    check("y[:, ids[1:]]", load("y_cols.npy"), y[:, ids[1:]])
    check("y[1:, ids2[:, None]]", load("y_block.npy"), y[1:, np.array([2, 1])[:, None]])
    check("a compile-time array indexed by a tensor", load("lin_at.npy"), np.linspace(0, 1, 5)[ids])

elif what == "arrays":
    M = np.array([[1.0, 2, 3], [4, 5, 6]])
    blur = np.array([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    sepia = np.array([[0.393, 0.349, 0.272], [0.769, 0.686, 0.534], [0.189, 0.168, 0.131]])
    cube = np.arange(24.0).reshape(2, 3, 4)
    mask = np.array([[1.0, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    check("nested literals: M[1], M[0][2], M[1, -1], M[:, 1], M[0, ::-1], len, ndim, size, shape", load("picks.npy"),
          np.concatenate([M[1], [M[0][2]], [M[1, -1]], M[:, 1], M[0, ::-1], [2, 2, 6], [2, 3]]))
    check("cube[1, 1:, ::2]", load("block.npy"), cube[1, 1:, ::2])
    check("M[[1, 0, 1]]: rows by an array of indices", load("rows.npy"), M[[1, 0, 1]])
    check("cube[:, 2, [3, 0]]", load("cols.npy"), cube[:, 2, [3, 0]])
    check("broadcasting [2, 3] with [3] and [2, 1]", load("bcast.npy"), M * [10, 100, 1000] + [[1], [2]] - M / 2 ** 2)
    check("@ of matrices and a vector", load("mm.npy"), M @ M.T + (M @ [1, 1, 1]) * np.array([[1], [0]]))
    check("max, where, sqrt, clip on 2-D arrays", load("fn.npy"), np.maximum(M, 3) + np.where(M > 2, np.sqrt(M), -M) + np.clip(M, 2, 5))
    check("sum / mean / amax over axes (a tuple too), prod, amin", load("red.npy"),
          np.concatenate([M.sum(0), M.mean(1), cube.max((0, 2)), [M.sum(), np.prod(M[0]), cube.min()]]))
    check("sum(cube, axis: 1, keepdims: true)", load("keep.npy"), cube.sum(1, keepdims=True))
    check("cumsum(axis: 0), cumprod (last axis), concat(axis: 1)", load("scans.npy"),
          np.concatenate([np.cumsum(M, 0), np.cumprod(M, 1)], 1))
    check("concat along axis 0", load("joined.npy"), np.concatenate([M, M * 2]))
    check("reshape(range(4), 1) keeps the first axis; whole: true reshapes all", load("outer.npy"),
          np.arange(4).reshape(4, 1) * np.array([1, 2, 3, 4]) + M.reshape(2, 3, 1).sum(2)[0, 0])
    img = np.arange(48.0).reshape(1, 4, 4, 3) / 48
    check("an image @ a 3x3 colour matrix (an array meets a tensor)", load("sepia.npy"), img @ sepia)
    x = np.pad(img[0, :, :, 0], 1)
    want = np.array([[np.sum(x[i:i + 3, j:j + 3] * blur) for j in range(4)] for i in range(4)])
    check("conv2d with a fixed 3x3 kernel reshape(blur, 3, 3, 1, 1)", load("blur.npy"), want.reshape(1, 4, 4, 1))
    check("a row of a mask broadcast over an image", load("masked.npy"), img[:, :, :, 0] * mask[1])
    check("a [3, 4] mask times a tensor", load("masked2.npy"), img[0, :3, :, 1] * mask)
    check("M[ids]: rows of a 2-D array gathered by a tensor", load("gathered.npy"), M[[1, 0]])
    check("M[ids, 2]", load("gathered2.npy"), M[[1, 0], 2])
    y = np.ones(2)
    for r in M:
        y = y * 10 + r.sum()
    check("a layer's loop over an array's rows (unrolled at compile time)", load("rowsum.npy"), y)

elif what == "statements":
    check("else-if picks the k == 2 branch; (x,)[0], [a, b] unpacked, len of a tuple", load("a.npy"), [5, 5])

elif what == "denoise":
    n, T = 4, 1000
    x = np.ones(n) * np.linspace(-1, 1, n) + 0.5
    saved = {}
    for t in range(T, 0, -1):
        eps = np.tanh(0.3 * x + t / T)
        x = (x - beta[t] / np.sqrt(1 - abar[t]) * eps) / np.sqrt(alpha[t])
        if t > 1:
            x = x + np.sqrt(beta[t]) * 0.01
        if t % 250 == 0:
            saved[t] = x.copy()
    files = sorted(glob.glob(os.path.join(out, "ddpm_x_*.npy")))
    check("saves inside the loop with {t} in the path: t = 1000, 750, 500, 250",
          sorted(int(f.split("_")[-1][:-4]) for f in files), [250, 500, 750, 1000])
    for t in (1000, 250):
        check(f"DDPM loop at t = {t} matches numpy", load(f"ddpm_x_{t}.npy"), saved[t], 2e-4, 1e-4)
    check("DDPM loop after 1000 run-time iterations matches numpy", load("ddpm_final.npy"), x, 2e-4, 1e-4)
    check("the body ran 1000 times", load("ddpm_calls.npy"), [1000])
    check("after the loop the counter holds its last value", load("ddpm_last_t.npy"), [1])

elif what == "noise":
    acc = load("noise_sum.npy")
    ok = abs(acc.mean()) < 0.3 and 90 < acc.var() < 110
    print(f"{'ok' if ok else 'FAIL'} - normal() draws afresh at each iteration: the sum of 100 has mean {acc.mean():.3f}, variance {acc.var():.1f} (100)")

elif what == "generate":
    n, L, V, temp = 3, 4, 5, 0.5
    w = np.zeros((n, L)) + np.arange(L)
    upper = (np.arange(V)[:, None] <= np.arange(V)[None, :]).astype(np.float64)
    for k in range(30):
        h = np.sum(w * [1, 2, 3, 4], axis=-1) % V
        logits = -np.abs(np.arange(V) - h[:, None])
        p = np.exp(logits) / np.sum(np.exp(logits), axis=-1, keepdims=True)
        q = p ** (1 / temp)
        q = q / q.sum(-1, keepdims=True)
        u = load(f"u_{k}.npy")
        nxt = np.minimum(np.sum(u > q @ upper, axis=-1), V - 1)
        w = np.concatenate([w[:, 1:], nxt[:, None]], axis=-1)
    check("autoregressive sampling with temperature: the window after 30 steps", load("window.npy"), w, 0, 0)
    # SEEDS.md M19's worked example of p^(1/T) / sum p^(1/T)
    check("temperature 0.25 on [0.1, 0.7, 0.2] (SEEDS.md M19)", load("temp_025.npy"), [0.0004, 0.9930, 0.0066], 0, 6e-5)
    check("temperature 0.75 on [0.1, 0.7, 0.2] (SEEDS.md M19)", load("temp_075.npy"), [0.0591, 0.7919, 0.1490], 0, 6e-5)
elif what == "model_loop":
    w = read_safetensors(sys.argv[3])
    T = 50
    beta_l = np.linspace(1e-4, 0.02, T + 1)
    alpha_l = 1 - beta_l
    abar_l = np.cumprod(alpha_l)
    n = 4
    x = np.ones((n, 8)) * np.linspace(-1, 1, 8)
    for t in range(T, 0, -1):
        h = np.tanh(np.concatenate([x, np.full((n, 1), t / T)], 1) @ w["net.dense.W"] + w["net.dense.b"])
        eps = h @ w["net.dense_1.W"] + w["net.dense_1.b"]
        x = (x - beta_l[t] / np.sqrt(1 - abar_l[t]) * eps) / np.sqrt(alpha_l[t])
    check("a trained model called at each of 50 run-time steps matches numpy on the checkpoint's weights", load("x.npy"), x, 1e-4, 1e-5)
    check("the same loop in an `every 2 steps` hook during training (after step 2: the checkpoint's weights)",
          load("hook_2.npy"), x, 1e-4, 1e-5)
elif what == "trig":
    x = np.linspace(-60, 60, 2001).astype(np.float32).astype(np.float64)   # the tensor's values
    check("sin of a tensor (range reduction + series) equals numpy's to 2e-6", load("sin.npy"), np.sin(x), 0, 2e-6)
    check("cos of a tensor equals numpy's to 2e-6", load("cos.npy"), np.cos(x), 0, 2e-6)
    w = read_safetensors(sys.argv[3])
    xb, wv = w["input/x"], w["m.trig.w"]
    check("d/dw sum(sin(x w) + cos(x + w)) from --grad-dump equals the analytic gradient",
          w["grad/m.trig.w"], np.sum(xb * np.cos(xb * wv) - np.sin(xb + wv), 0), 1e-4, 1e-5)
elif what == "chars":
    w = read_safetensors(sys.argv[3])
    corpus = open(sys.argv[4], "rb").read()
    vocab = sorted(set(corpus))
    V, L, count, temp = len(vocab), 16, 60, 0.5
    index = {b: i for i, b in enumerate(vocab)}
    window = np.zeros((1, L, V))
    for i, b in enumerate(corpus[:L]):
        window[0, i, index[b]] = 1
    us = load("u.npy")[0]
    text = []
    for k in range(count):
        h = np.tanh(window.reshape(1, -1) @ w["net.dense.W"] + w["net.dense.b"])
        z = h @ w["net.dense_1.W"] + w["net.dense_1.b"]
        e = np.exp(z - z.max(-1, keepdims=True))
        p = (e / e.sum(-1, keepdims=True)) ** (1 / temp)
        p = p / p.sum(-1, keepdims=True)
        nxt = min(int(np.sum(us[k] > np.cumsum(p[0]))), V - 1)
        text.append(nxt)
        window = np.concatenate([window[:, 1:], np.eye(V)[nxt][None, None]], axis=1)
    got = load("text.npy")[0].astype(int)
    check("60 characters sampled at run time with temperature 0.5 match numpy (window slid, predicted, sampled)", got, text, 0, 0)
    print("# sampled: " + repr(bytes(vocab[i] for i in got).decode("latin-1")))
else:
    print(f"FAIL - check.py: unknown check {what}")
