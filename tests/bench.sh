#!/bin/sh
# The benchmark suite (make bench) stays runnable: its .gm programs compile, the conv VAE has
# SEEDS.md's parameter counts, and the driver reads gmc's metrics.csv and --stats output and
# PyTorch's timings into a table row, and gmc's large products with OpenBLAS sgemm timed on
# the same shapes into the second table (a tiny run: no timing is asserted).
cd "$(dirname "$0")/.." || exit 2
. tests/lib.sh

# the character LSTM reads a corpus of 65 distinct bytes: bench.py's synthetic one
/usr/bin/python3 -c 'import sys; sys.path.insert(0, "bench"); import bench; bench.write_text(sys.argv[1])' "$tmp/text.txt"
for f in bench/*.gm; do
    set --
    grep -q '^const corpus' "$f" && set -- --set corpus="$tmp/text.txt"
    out=$($GMC "$f" --check "$@" 2>&1); rc=$?
    if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "error: unknown module"; then
        echo "skip - $f: $(printf '%s' "$out" | grep -o "unknown module '[^']*'") (not landed yet)"
        continue
    fi
    expect "$f passes --check" '[ $rc -eq 0 ]'
done

# SEEDS.md M17: encoder 100,868 parameters (M16's with two Dense 2 heads), decoder 246,273
$GMC bench/conv_vae.gm --summary > "$tmp/cv.sum" 2>&1
expect "bench/conv_vae.gm: M17's encoder 100,868 and decoder 246,273 parameters" \
    'grep -A14 "instance E)" "$tmp/cv.sum" | grep -q "^Total params: 100868$" && grep -A14 "instance D)" "$tmp/cv.sum" | grep -q "^Total params: 246273$"'

# the DDPM's U-Net: as many parameters as its PyTorch twin in bench/torch_models.py
$GMC bench/ddpm_unet.gm --summary > "$tmp/dd.sum" 2>&1
expect "bench/ddpm_unet.gm: 481,537 parameters, as the PyTorch twin" 'grep -q "^Total params: 481537$" "$tmp/dd.sum"'

if /usr/bin/python3 -c "import torch" 2>/dev/null; then sides=gmc,torch; else sides=gmc; fi
/usr/bin/python3 bench/bench.py --gmc "$GMC" --models vae_mlp --rounds 1 --scale 0.05 --sides $sides --markdown \
    > "$tmp/bench.log" 2>&1; rc=$?
num='[0-9][0-9.]*'
row="^| MLP VAE (M22), batch 128 | $num | "
[ $sides = gmc ] && row="$row— | — | $num | — | $num | — | " || row="$row$num | $num (≤ $num) | $num | $num | $num | $num | "
row="$row$num ($num % of $num) |$"
expect "bench.py ($sides): a table row with step times, examples/s, peak memory and GFLOP/s against sgemm" \
    '[ $rc -eq 0 ] && grep -q "$row" "$tmp/bench.log"'
# the second table: each large product against OpenBLAS sgemm on the same shape (build/sgemm_shapes)
lrow="^| MLP VAE (M22), batch 128 | 128 x 784 x 512 | product | 103 | $num | $num | $num % |$"
arow="^| MLP VAE (M22), batch 128 | all of the above |  |  | $num | $num | $num % |$"
expect "bench.py: the large products, each with gmc's GFLOP/s and sgemm's on the same shape, and all together" \
    '[ $rc -eq 0 ] && grep -q "^Large matrix products (100 MFLOP or more a call)" "$tmp/bench.log" && grep -q "$lrow" "$tmp/bench.log" && grep -q "$arow" "$tmp/bench.log"'
grep -q "$row" "$tmp/bench.log" && grep -q "$lrow" "$tmp/bench.log" || sed 's/^/# /' "$tmp/bench.log"
