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
for v in "loss=lsgan" "g_loss=minimax" "noise=0"; do
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
