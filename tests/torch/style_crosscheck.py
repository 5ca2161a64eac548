#!/usr/bin/python3
"""style_crosscheck.py GMC TMPDIR

Seed model M28 (examples/seeds/m28_style_transfer.gm) against PyTorch. Writes a small random
network of VGG19's layout (widths 4, 8, 8, 16, 16 instead of 64 ... 512) as a safetensors file
under torchvision's names and layout (features.N.weight [out, in, kh, kw]), a content and a
style image of 32x32, and runs `gmc --grad-dump` with --set vgg=THAT FILE three times: the
whole loss, the content loss alone (style_weight 0) and the style loss alone (content_weight 0).
PyTorch recomputes each from the torchvision-layout file with F.conv2d, in float64, on the
dumped image; the loss and its gradient with respect to the image must agree to 1e-4
(relative to the largest gradient element). Prints one ok/FAIL line per run; 77 without torch.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("skip - style transfer cross-check: torch not installed")
    sys.exit(77)
import numpy as np  # noqa: E402
import st  # noqa: E402

TOL = 1e-4
WIDTHS = [4, 8, 8, 16, 16]
SIZE = 32
# torchvision vgg19.features: conv indices up to relu5_1, pools after 2, 7, 16, 25
CFG = [(0, 0), (2, 0), "M", (5, 1), (7, 1), "M", (10, 2), (12, 2), (14, 2), (16, 2), "M",
       (19, 3), (21, 3), (23, 3), (25, 3), "M", (28, 4)]
TAPS = {0: "s1", 5: "s2", 10: "s3", 19: "s4", 21: "content", 28: "s5"}


def write_vgg(path, rng):
    t, cin = {}, 3
    for item in CFG:
        if item == "M":
            continue
        idx, w = item
        cout = WIDTHS[w]
        t["features.%d.weight" % idx] = rng.normal(0, np.sqrt(2 / (9 * cin)), (cout, cin, 3, 3))
        t["features.%d.bias" % idx] = rng.normal(0, 0.1, cout)
        cin = cout
    st.write(path, t)
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in t.items()}


def features(w, x):
    """x [1, h, w, 3] in [0, 1] -> the tapped ReLU outputs, channels-last"""
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=x.dtype)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=x.dtype)
    h = ((x - mean) / std).permute(0, 3, 1, 2)
    out = {}
    for item in CFG:
        if item == "M":
            h = F.max_pool2d(h, 2)
            continue
        idx = item[0]
        h = F.relu(F.conv2d(h, w["features.%d.weight" % idx], w["features.%d.bias" % idx], padding=1))
        if idx in TAPS:
            out[TAPS[idx]] = h.permute(0, 2, 3, 1)
    return out


def gram(a):
    f = a.reshape(a.shape[0], -1, a.shape[-1])
    return f.transpose(1, 2) @ f / (f.shape[1] * f.shape[2])


def loss(w, img, xc, xs, cw, sw):
    g, c, s = features(w, img), features(w, xc), features(w, xs)
    content = ((g["content"] - c["content"]) ** 2).mean()
    style = sum(((gram(g[k]) - gram(s[k])) ** 2).mean() for k in ("s1", "s2", "s3", "s4", "s5"))
    return cw * content + sw * style


def main(argv):
    gmc, tmp = argv[1], argv[2]
    rng = np.random.default_rng(28)
    vgg = os.path.join(tmp, "vgg_small.safetensors")
    w = write_vgg(vgg, rng)
    xc = rng.uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
    xs = rng.uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
    np.save(os.path.join(tmp, "content.npy"), xc)
    np.save(os.path.join(tmp, "style.npy"), xs)
    failed = 0
    for label, cw, sw in (("whole loss", 1, 1e6), ("content loss", 1, 0), ("style loss", 0, 1e6)):
        dump = os.path.join(tmp, "m28.safetensors")
        cmd = [gmc, "examples/seeds/m28_style_transfer.gm", "--grad-dump", dump,
               "--feed", os.path.join(tmp, "content.npy"), "--feed", os.path.join(tmp, "style.npy"),
               "--set", "vgg=" + vgg, "--set", "widths=[4, 8, 8, 16, 16]", "--set", "image_size=%d" % SIZE,
               "--set", "content_weight=%g" % cw, "--set", "style_weight=%g" % sw, "--seed", "3"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL - M28 %s: gmc --grad-dump failed: %s" % (label, (r.stdout + r.stderr).strip()))
            failed += 1
            continue
        t, _ = st.read(dump)
        # gmc's kernels are the file's, permuted: features.0.weight [o, i, kh, kw] -> [kh, kw, i, o]
        same = np.array_equal(t["V.vgg_conv.W"], np.transpose(w["features.0.weight"].numpy().astype(np.float32), (2, 3, 1, 0)))
        pixels = torch.tensor(t["C.pixels"], dtype=torch.float64, requires_grad=True)
        ref = loss(w, pixels + 0.5, torch.tensor(xc, dtype=torch.float64), torch.tensor(xs, dtype=torch.float64), cw, sw)
        (g,) = torch.autograd.grad(ref, [pixels])
        g = g.numpy()
        lerr = abs(float(t["loss"]) - float(ref)) / max(abs(float(ref)), 1e-30)
        gerr = np.abs(t["grad/C.pixels"] - g).max() / max(np.abs(g).max(), 1e-30)
        good = same and lerr <= TOL and gerr <= TOL and set(k for k in t if k.startswith("grad/")) == {"grad/C.pixels"}
        print("%s - M28 %s equals PyTorch's on the torchvision-layout weights: loss %.6g (relative error %.1e), "
              "image gradient (worst relative error %.1e)%s%s" % (
                  "ok" if good else "FAIL", label, float(ref), lerr, gerr,
                  "" if same else "; the kernels are not the file's, permuted",
                  "" if set(k for k in t if k.startswith("grad/")) == {"grad/C.pixels"} else "; VGG's weights got gradients"))
        failed += not good
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
