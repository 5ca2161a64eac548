#!/bin/sh
# The seed models (examples/seeds/README.md): every M-number of the catalogue is in the README,
# either with a program or under "Not yet expressible"; every program listed passes --check;
# --summary gives the parameter counts the books give. (Their PyTorch cross-checks are in
# tests/torch/seeds.sh.)
cd "$(dirname "$0")/.." || exit 2
GMC=${GMC:-./gmc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; }
expect() { if eval "$2"; then ok "$1"; else fail "$1"; fi; }
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
for v in "m06_denoising_ae noise=gaussian" "m24_cgan cond=concat"; do
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
