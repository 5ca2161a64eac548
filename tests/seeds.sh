#!/bin/sh
# The seed models (examples/seeds/README.md): every M-number of the catalogue is in the README,
# either with a program or under "Not yet expressible"; every program listed passes --check;
# --summary gives the parameter counts the books give. (Their PyTorch cross-checks are in
# tests/torch/seeds.sh.)
cd "$(dirname "$0")/.." || exit 2
. tests/lib.sh
readme=examples/seeds/README.md

missing=""
for n in 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 35; do
    grep -q "^| M$n[ ,]" "$readme" || missing="$missing M$n"
done
expect "every seed M01-M35 is in examples/seeds/README.md${missing:+ (missing:$missing)}" '[ -z "$missing" ]'

# the programs of the table: | Mnn | [name](path) | ...
files=$(sed -n 's/^| M[0-9]* | \[[^]]*\](\([^)]*\.gm\)).*/\1/p' "$readme")
expect "the README lists at least 20 seed programs ($(echo $files | wc -w))" '[ $(echo $files | wc -w) -ge 20 ]'
for f in $files; do
    out=$($GMC "examples/seeds/$f" --check 2>&1); rc=$?
    expect "seed program $f passes --check" '[ $rc -eq 0 ]' || printf '%s\n' "$out" | head -5
done
for v in "loss=lsgan" "g_loss=minimax" "noise=0" "norm=spectral"; do
    out=$($GMC examples/seeds/m33_gan_variants.gm --check --set $v 2>&1); rc=$?
    expect "m33_gan_variants.gm --set $v passes --check" '[ $rc -eq 0 ]'
done
for v in "m06_denoising_ae noise=gaussian" "m24_cgan cond=concat" "m29_pixelcnn colors=3"; do
    set -- $v
    out=$($GMC examples/seeds/$1.gm --check --set $2 2>&1); rc=$?
    expect "$1.gm --set $2 passes --check" '[ $rc -eq 0 ]'
done

# counts the books give (SEEDS.md): `total FILE INSTANCE COUNT` checks one instance's total
total() {
    $GMC "$1" --summary > "$tmp/sum" 2>&1
    expect "$(basename "$1") --summary: instance $2 has $3 parameters" \
        "sed -n '/(instance $2)/,/^Total params/p' '$tmp/sum' | grep -q '^Total params: $3\$'"
}
total examples/conv_ae.gm E 96770                  # M16
total examples/conv_ae.gm D 246273
total examples/seeds/m17_conv_vae.gm E 100868      # M17
total examples/seeds/m18_faces_vae.gm E 653584     # M18
total examples/seeds/m18_faces_vae.gm D 700803
expect "m18_faces_vae.gm --summary: 1,024 of the encoder's parameters are not trainable" \
    "sed -n '/(instance E)/,/^Non-trainable/p' '$tmp/sum' | grep -q '^Non-trainable params: 1024\$'"
total examples/vae_mlp.gm E 403972                 # M22
total examples/vae_mlp.gm D 403728
total examples/seeds/m23_dcgan.gm G 1879360        # M23
total examples/seeds/m23_dcgan.gm D 212865
total examples/seeds/m28_style_transfer.gm V 12944960    # M28: VGG19 to conv5_1
# M19: 4u(in + u + 1) per LSTM + a dense head; the book's 243,143 is for 71 characters
# (tests/stdlib.sh), the default corpus here has 76: 104,960 + 131,584 + 9,804
total examples/seeds/m19_char_lstm.gm m 246348
# M19 trains for real and writes text with its run-time sampling loop (one short epoch)
out=$($GMC examples/seeds/m19_char_lstm.gm --run --set epochs=1 --out "$tmp/m19" 2>&1) &&
    out=$($GMC examples/seeds/m19_char_lstm.gm --sample write --set count=30 --out "$tmp/m19" 2>&1); rc=$?
expect "m19_char_lstm.gm: one epoch of training and --sample write run" '[ $rc -eq 0 ]' || printf '%s\n' "$out" | tail -5
expect "m19_char_lstm.gm: the validation loss is below uniform guessing, log(76) = 4.33" \
    "/usr/bin/python3 -c 'import csv, sys; v = [r[\"validation\"] for r in csv.DictReader(open(sys.argv[1])) if r[\"validation\"]]; sys.exit(not (v and float(v[-1].split(\"=\")[1]) < 4.33))' '$tmp/m19/metrics.csv'"
expect "m19_char_lstm.gm: 30 sampled character ids, each one of the 76" \
    "/usr/bin/python3 -c 'import numpy as np, sys; t = np.load(sys.argv[1]); sys.exit(not (t.shape == (1, 30) and (t == t.astype(int)).all() and t.min() >= 0 and t.max() < 76))' '$tmp/m19/m19_text.npy'"

# M04: weights carry over between train blocks. ae1, then ae2 on the codes of ae1's frozen
# encoder, then the stack of both, fine-tuned (a few batches each).
m04=examples/seeds/m04_greedy_ae.gm
out=$($GMC $m04 --run --set epochs=1 --limit-batches 40 --out "$tmp/m04" 2>&1); rc=$?
expect "m04_greedy_ae.gm: the three blocks run in order" '[ $rc -eq 0 ]' || printf '%s\n' "$out" | tail -5
expect "m04_greedy_ae.gm: ae2 and stacked start from the weights of ae1 (and ae2)" \
    "printf '%s\n' \"\$out\" | grep -q '^E1: weights of train block ae1 from .*checkpoints/ae1/step_00000040.safetensors' &&
     printf '%s\n' \"\$out\" | grep -q '^D2: weights of train block ae2 from .*checkpoints/ae2/step_00000040.safetensors'"
st_py="import sys; sys.path.insert(0, 'tests/torch'); import st, numpy as np"
ck="$tmp/m04/checkpoints"
expect "m04_greedy_ae.gm: ae1's encoder, frozen in ae2, is bit-identical in ae2's checkpoint" \
    "/usr/bin/python3 -c \"$st_py
a, b = st.read('$ck/ae1/step_00000040.safetensors')[0], st.read('$ck/ae2/step_00000040.safetensors')[0]
e = [k for k in a if k.startswith('E1.')]
sys.exit(not (len(e) == 2 and all(np.array_equal(a[k], b[k]) for k in e)))\""
expect "m04_greedy_ae.gm: the stack is fine-tuned (E1 changed in stacked's checkpoint)" \
    "/usr/bin/python3 -c \"$st_py
a, b = st.read('$ck/ae1/step_00000040.safetensors')[0], st.read('$ck/stacked/step_00000040.safetensors')[0]
sys.exit(np.array_equal(a['E1.dense.W'], b['E1.dense.W']))\""
# the stack's first loss is that of the trained layers, far below a fresh autoencoder's
first() { sed -n '2p' "$tmp/m04/metrics_$1.csv" | cut -d, -f4; }
expect "m04_greedy_ae.gm: the stacked AE starts from pretrained weights: first loss $(first stacked) < 0.5 x ae1's first $(first ae1)" \
    "/usr/bin/python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < 0.5 * float(sys.argv[2]))' $(first stacked) $(first ae1)"
$GMC $m04 --summary > "$tmp/sum" 2>&1
expect "m04_greedy_ae.gm --summary: E1, taken from ae1 and frozen in ae2, counts 78500 non-trainable there and trainable again in stacked" \
    "sed -n '/(instance E1 of train block ae1, in block ae2)/,/^Non-trainable/p' '$tmp/sum' | grep -q '^Trainable params: 0\$' &&
     sed -n '/(instance E1 of train block ae1, in block ae2)/,/^Non-trainable/p' '$tmp/sum' | grep -q '^Non-trainable params: 78500\$' &&
     sed -n '/(instance E1 of train block ae1, in block stacked)/,/^Non-trainable/p' '$tmp/sum' | grep -q '^Trainable params: 78500\$' &&
     sed -n '/(instance E1)\$/,/^Non-trainable/p' '$tmp/sum' | grep -q '^Trainable params: 78500\$'"
$GMC examples/seeds/m28_style_transfer.gm --summary > "$tmp/sum" 2>&1
expect "m28_style_transfer.gm --summary: VGG, given to no optimizer, is all non-trainable" \
    "sed -n '/(instance V)/,/^Non-trainable/p' '$tmp/sum' | grep -q '^Trainable params: 0\$'"
out=$($GMC $m04 --sample reconstruct --out "$tmp/m04" 2>&1); rc=$?
expect "m04_greedy_ae.gm: --sample reconstruct reads each block's last checkpoint" \
    '[ $rc -eq 0 ] && [ -s "$tmp/m04/reconstructions.png" ] && printf "%s\n" "$out" | grep -q "checkpoints/stacked/step_00000040"'
out=$($GMC $m04 --run stacked --out "$tmp/m04-fresh" 2>&1); rc=$?
expect "m04_greedy_ae.gm: --run stacked alone, before ae1 ran, fails naming ae1" \
    "[ \$rc -eq 2 ] && printf '%s\n' \"\$out\" | grep -q \"uses E1 of train block 'ae1', which has no checkpoint\""

# M28: VGG's weights from a user's safetensors file (torchvision's names and layout), frozen;
# the image's pixels trained. A small random network of VGG19's layout and two PNG images,
# written here; five steps.
/usr/bin/python3 - "$tmp" <<'PY'
import sys, struct, zlib, numpy as np
sys.path.insert(0, "tests/torch")
import st
r = np.random.default_rng(5)
t, cin = {}, 3
for idx, cout in ((0, 4), (2, 4), (5, 8), (7, 8), (10, 8), (12, 8), (14, 8), (16, 8),
                  (19, 16), (21, 16), (23, 16), (25, 16), (28, 16)):
    t["features.%d.weight" % idx] = r.normal(0, np.sqrt(2 / (9 * cin)), (cout, cin, 3, 3))
    t["features.%d.bias" % idx] = r.normal(0, 0.1, cout)
    cin = cout
st.write(sys.argv[1] + "/vgg_small.safetensors", t)
def png(path, a):           # 8-bit RGB, no filter
    raw = b"".join(b"\0" + row.tobytes() for row in a)
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", a.shape[1], a.shape[0], 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png(sys.argv[1] + "/content.png", r.integers(0, 256, (40, 40, 3), dtype=np.uint8))
png(sys.argv[1] + "/style.png", r.integers(0, 256, (32, 32, 3), dtype=np.uint8))
PY
m28="examples/seeds/m28_style_transfer.gm --set vgg=$tmp/vgg_small.safetensors --set widths=[4,8,8,16,16] --set image_size=32"
out=$($GMC $m28 --run --set steps=5 --set content=$tmp/content.png --set style=$tmp/style.png --out "$tmp/m28" 2>&1); rc=$?
expect "m28_style_transfer.gm: five steps from a VGG-shaped safetensors file and two PNG images" '[ $rc -eq 0 ]' ||
    printf '%s\n' "$out" | tail -5
expect "m28_style_transfer.gm: VGG's kernels are the file's, permuted, and stay frozen; the image is trained and its loss falls" \
    "/usr/bin/python3 -c \"$st_py
w = st.read('$tmp/vgg_small.safetensors')[0]
c = st.read('$tmp/m28/checkpoints/step_00000005.safetensors')[0]
loss = [float(l.split(',')[3]) for l in open('$tmp/m28/metrics.csv').read().split()[1:]]
frozen = all(np.array_equal(c['V.vgg_conv%s.W' % s], w['features.%d.weight' % i].transpose(2, 3, 1, 0)) and
             np.array_equal(c['V.vgg_conv%s.b' % s], w['features.%d.bias' % i])
             for s, i in (('', 0), ('_1', 2), ('_12', 28)))
sys.exit(not (frozen and len(loss) == 5 and loss[-1] < loss[0]))\""
out=$($GMC examples/seeds/m28_style_transfer.gm --check --set vgg=$tmp/vgg_small.safetensors --set "widths=[4,8,8,16,32]" 2>&1); rc=$?
expect "m28_style_transfer.gm: a file of other widths is an error naming the tensor and both shapes" \
    "[ \$rc -eq 1 ] && printf '%s\n' \"\$out\" | grep -q \"error: tensor 'features.28.weight' of .*vgg_small.safetensors has shape \[16, 16, 3, 3\], permuted \[3, 3, 16, 16\], param 'W' has shape \[3, 3, 16, 32\]\""

# M15: the diffusion block takes ae's encoder (frozen) and the sampler decodes with ae's
# decoder. Cheap: ae checkpointed untrained (0 epochs), two batches of ldm, 5 denoising steps.
m15=examples/seeds/m15_latent_diffusion.gm
out=$($GMC $m15 --run ae --set epochs=0 --out "$tmp/m15" 2>&1) &&
    out=$($GMC $m15 --run ldm --set epochs=1 --limit-batches 2 --set batch_size=8 --out "$tmp/m15" 2>&1) &&
    out=$($GMC $m15 --sample generate --set T=5 --set n=4 --out "$tmp/m15" 2>&1); rc=$?
expect "m15_latent_diffusion.gm: ae, ldm on ae's codes, and sampling in latent space run" '[ $rc -eq 0 ]' ||
    printf '%s\n' "$out" | tail -5
expect "m15_latent_diffusion.gm: ldm keeps ae's encoder bit-identical; 4 decoded 28x28 images in [0, 1] from both blocks' weights" \
    "/usr/bin/python3 -c \"$st_py
a, b = st.read('$tmp/m15/checkpoints/ae/step_00000000.safetensors')[0], st.read('$tmp/m15/checkpoints/ldm/step_00000002.safetensors')[0]
x = np.load('$tmp/m15/latent_diffusion.npy')
sys.exit(not (all(np.array_equal(a[k], b[k]) for k in a if k.startswith('E.')) and
              x.shape == (4, 28, 28, 1) and x.min() >= 0 and x.max() <= 1))\" &&
     printf '%s\n' \"\$out\" | grep -q 'checkpoints/ae/step_00000000.*checkpoints/ldm/step_00000002'"
# M33 with spectral normalisation: D's trainable count is the plain D's, plus u [out] and
# v [fan_in, 1] of each of its three kernels as non-trainable state: (512 + 784) + (512 + 512)
# + (1 + 512) = 2,833
total examples/seeds/m33_gan_variants.gm D 665089
$GMC examples/seeds/m33_gan_variants.gm --summary --set norm=spectral > "$tmp/sum" 2>&1
expect "m33_gan_variants.gm --set norm=spectral --summary: D has 665089 trainable and 2833 non-trainable parameters" \
    "sed -n '/(instance D)/,\$p' '$tmp/sum' | grep -q '^Trainable params: 665089\$' && sed -n '/(instance D)/,\$p' '$tmp/sum' | grep -q '^Non-trainable params: 2833\$'"

# short real training runs of the GANs built on std.nn's ProGAN / StyleGAN layers: every loss
# of every step finite. ProGAN with phases of 2 steps walks the level of detail through
# 0, 0.5, 1, ..., 2.5, 3 (every fade-in) in 14 steps.
finite() {  # metrics.csv has N rows and every loss in them is finite
    /usr/bin/python3 -c '
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cols = [c for c in rows[0] if c not in ("epoch", "step", "time_s", "validation") and not c.startswith("lr/")] if rows else []
sys.exit(not (len(rows) == int(sys.argv[2]) and cols and all(math.isfinite(float(r[c])) for r in rows for c in cols)))' "$1" "$2"
}
out=$($GMC examples/seeds/m12_progan.gm --run --set steps=14 --set phase_steps=2 --set batch_size=4 --out "$tmp/m12" 2>&1) &&
    out=$($GMC examples/seeds/m12_progan.gm --sample generate --set n=4 --out "$tmp/m12" 2>&1); rc=$?
expect "m12_progan.gm: 14 training steps through every fade-in and --sample generate run" '[ $rc -eq 0 ] && [ -f "$tmp/m12/samples.png" ]' ||
    printf '%s\n' "$out" | tail -5
expect "m12_progan.gm: critic and generator losses of the 14 steps are finite" "finite '$tmp/m12/metrics.csv' 14"
out=$($GMC examples/seeds/m13_stylegan.gm --run --set steps=3 --set batch_size=4 --out "$tmp/m13" 2>&1) &&
    out=$($GMC examples/seeds/m13_stylegan.gm --sample mix --set n=4 --out "$tmp/m13" 2>&1); rc=$?
expect "m13_stylegan.gm: 3 training steps and --sample mix (style mixing at level 4) run" '[ $rc -eq 0 ] && [ -f "$tmp/m13/mixing.png" ]' ||
    printf '%s\n' "$out" | tail -5
expect "m13_stylegan.gm: discriminator and generator losses of the 3 steps are finite" "finite '$tmp/m13/metrics.csv' 3"
out=$($GMC examples/seeds/m33_gan_variants.gm --run --set norm=spectral --set steps=3 --set batch_size=16 --out "$tmp/m33" 2>&1); rc=$?
expect "m33_gan_variants.gm --set norm=spectral: 3 training steps run" '[ $rc -eq 0 ]' || printf '%s\n' "$out" | tail -5
expect "m33_gan_variants.gm --set norm=spectral: the losses of the 3 steps are finite" "finite '$tmp/m33/metrics.csv' 3"

# the flows and PixelCNN (M29, M31, M32), small (--set) so they take seconds: each trains for
# real, its loss (bits per dimension) finite and falling; the flows invert test images to float
# rounding and their log-determinant is log|det J| of the Jacobian that autodiff computes (one
# backward pass: 784 copies of one image, row k picks output k); PixelCNN samples in its
# run-time loop, completes images without touching their top halves, and no logit of position
# i depends on the input at a position >= i (grey and RGB)
falling() {    # metrics.csv: every loss finite, the last 5 below the first 5 on average
    /usr/bin/python3 -c 'import csv, math, sys
l = [float(r["loss"]) for r in csv.DictReader(open(sys.argv[1]))]
sys.exit(not (len(l) >= 10 and all(map(math.isfinite, l)) and sum(l[-5:]) < sum(l[:5])))' "$1"
}
jacobian_gm() {    # $1 seed file, $2 the arguments of its encode() after x
    cat "$1"
    cat <<GM

sample jacobian() {
    eye = one_hot(arange(0, dims), dims)
    x = reshape(uniform(1, dims) * 0.9 + 0.05 + 0 * eye, 28, 28)
    z, logdet = encode(x, $2)
    save grad(sum(z * eye), x) to "jacobian.npy"
    save logdet to "logdet.npy"
}
GM
}
flow() {    # $1 stem, $2 encode's arguments, $3 --set options
    f=examples/seeds/$1.gm
    out=$($GMC $f --run --set epochs=1 --set batch_size=500 $3 --out "$tmp/$1" 2>&1) &&
        out=$($GMC $f --sample generate --set n=4 $3 --out "$tmp/$1" 2>&1) &&
        out=$($GMC $f --sample roundtrip --set n=1000 $3 --out "$tmp/$1" 2>&1); rc=$?
    expect "$1.gm: one epoch, --sample generate and --sample roundtrip run" '[ $rc -eq 0 ]' ||
        printf '%s\n' "$out" | tail -5
    expect "$1.gm: the training loss (bits/dim) is finite and falls" "falling '$tmp/$1/metrics.csv'"
    expect "$1.gm: validation reports bits/dim between 0 and the first step's" \
        "/usr/bin/python3 -c 'import csv, sys; r = list(csv.DictReader(open(sys.argv[1]))); v = [x[\"validation\"] for x in r if x[\"validation\"]]; sys.exit(not (v and 0 < float(v[-1].split(\"=\")[1]) < float(r[0][\"loss\"])))' '$tmp/$1/metrics.csv'"
    expect "$1.gm: inverse(forward(x)) gives the 10,000 test images back within 1e-5" \
        "/usr/bin/python3 -c 'import numpy as np, sys; x, y = (np.load(sys.argv[1] + n) for n in (\"_x.npy\", \"_x_back.npy\")); sys.exit(not (x.shape == y.shape == (10000, 28, 28) and x.std() > 0.1 and np.abs(x - y).max() < 1e-5))' '$tmp/$1/${1#*_}'"
    jacobian_gm $f "$2" > "$tmp/$1_jac.gm"
    out=$($GMC "$tmp/$1_jac.gm" --sample jacobian $3 --out "$tmp/$1" 2>&1); rc=$?
    expect "$1.gm: the log-determinant equals log|det J| of the autodiff Jacobian (784 x 784)" \
        "[ $rc -eq 0 ] && /usr/bin/python3 -c 'import numpy as np, sys; j = np.load(sys.argv[1] + \"/jacobian.npy\").reshape(784, 784).astype(np.float64); l = np.load(sys.argv[1] + \"/logdet.npy\"); s, d = np.linalg.slogdet(j); print(\"  log|det J| %.4f, logdet %.4f\" % (d, l[0])); sys.exit(not (s != 0 and abs(l[0]) > 1 and np.abs(l - d).max() < 1e-5 * abs(d)))' '$tmp/$1'" ||
        printf '%s\n' "$out" | tail -5
}
flow m31_nice "G1, G2, G3, G4, S" "--set hidden=32 --set depth=2"
flow m32_realnvp "S1, T1, S2, T2, S3, T3, S4, T4" "--set hidden=32"

pixelcnn_causality_gm() {    # the seed file and a procedure: d(logits at position i)/d(input)
    cat examples/seeds/m29_pixelcnn.gm
    cat <<'GM'

# positions: pixel 0 (every channel), pixels 9, 10 and 133 and the last one; row k of x feeds
# position probe[k]: a random mix of its 256 logits, differentiated with respect to the input
const probe = [0, 1, 2, 27, 28, 29, 30, 400, 401, 402, positions - 1]
sample causality() {
    sel = one_hot(probe, positions)
    x = uniform(len(probe), 28, 28, colors) + 0 * reshape(sel, 28, 28, colors)
    s = sum(reshape(P(x), positions, 256) * uniform(256), axis: -1)
    save grad(sum(s * sel), x) to "dependence.npy"
}
GM
}
pixelcnn_causality_gm > "$tmp/m29_causal.gm"
for c in 1 3; do
    o="$tmp/m29_c$c"
    sets="--set colors=$c --set filters=12 --set blocks=1"
    steps=10; [ $c = 3 ] && steps=3
    n=2; [ $c = 3 ] && n=1              # RGB: 2352 draws, each a pass of the network
    out=$($GMC examples/seeds/m29_pixelcnn.gm --run --set steps=$steps --set batch_size=8 $sets --out "$o" 2>&1) &&
        { [ $c = 3 ] || out=$($GMC examples/seeds/m29_pixelcnn.gm --sample generate --set n=2 $sets --out "$o" 2>&1); } &&
        out=$($GMC examples/seeds/m29_pixelcnn.gm --sample complete --set n=$n $sets --out "$o" 2>&1) &&
        out=$($GMC "$tmp/m29_causal.gm" --sample causality $sets --out "$o" 2>&1); rc=$?
    expect "m29_pixelcnn.gm --set colors=$c: training, --sample generate (grey), complete and the causality probe run" \
        '[ $rc -eq 0 ]' || printf '%s\n' "$out" | tail -5
    [ $c = 1 ] && expect "m29_pixelcnn.gm: the training loss (bits/dim) starts near 8 (uniform), is finite and falls" \
        "falling '$o/metrics.csv' && /usr/bin/python3 -c 'import csv, sys; l = float(next(csv.DictReader(open(sys.argv[1])))[\"loss\"]); sys.exit(not 7.5 < l < 8.5)' '$o/metrics.csv'"
    [ $c = 1 ] && expect "m29_pixelcnn.gm: 2 images sampled pixel by pixel, whole values in 0..255, not all equal" \
        "/usr/bin/python3 -c 'import numpy as np, sys; x = np.load(sys.argv[1]); sys.exit(not (x.shape == (2, 28, 28, $c) and (x == np.round(x)).all() and x.min() >= 0 and x.max() <= 255 and x.std() > 10))' '$o/pixelcnn_samples.npy'"
    expect "m29_pixelcnn.gm --set colors=$c: completions keep the top halves exactly and draw new bottoms" \
        "/usr/bin/python3 -c 'import numpy as np, sys; r = np.load(sys.argv[1]); n = $n; sys.exit(not (r.shape == (4 * n, 28, 28, $c) and all((r[k, :14] == r[k % n, :14]).all() for k in range(4 * n)) and all((r[k, 14:] != r[k % n, 14:]).any() for k in range(n, 4 * n)) and (r == np.round(r)).all()))' '$o/pixelcnn_completions.npy'"
    expect "m29_pixelcnn.gm --set colors=$c: no logit of position i depends on input positions >= i, and some on earlier ones" \
        "/usr/bin/python3 -c 'import numpy as np, sys
g = np.load(sys.argv[1]).reshape(11, -1)
probe = [0, 1, 2, 27, 28, 29, 30, 400, 401, 402, g.shape[1] - 1]
sys.exit(not (all((g[k, i:] == 0).all() for k, i in enumerate(probe)) and all((g[k, :i] != 0).any() for k, i in enumerate(probe) if i > 0)))' '$o/dependence.npy'"
done

# a parameter a model body creates itself (StyleGAN's constant input) has a summary row
$GMC examples/seeds/m13_stylegan.gm --summary > "$tmp/sum" 2>&1
expect "m13_stylegan.gm --summary: the learned constant input S.start (4, 4, 128) has a row of 2048" \
    "grep -q '^S\.start  *(4, 4, 128)  *2048\$' '$tmp/sum'"
