#!/bin/sh
# Command-line tests: checking, summaries, a short real training run on Fashion-MNIST whose
# loss falls, checkpoints and sampling, reproducibility, and the errors a user meets.
cd "$(dirname "$0")/.." || exit 2
GMC=${GMC:-./gmc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; }
expect() { if eval "$2"; then ok "$1"; else fail "$1"; fi; }

out=$($GMC examples/vae_mlp.gm --check 2>&1); rc=$?
expect "vae_mlp.gm passes --check" '[ $rc -eq 0 ]'

$GMC examples/vae_mlp.gm --summary > "$tmp/summary" 2>&1; rc=$?
expect "--summary exits 0" '[ $rc -eq 0 ]'
# SEEDS.md M22: encoder 403,972 and decoder 403,728 parameters
expect "summary: encoder has 403,972 parameters" 'grep -A12 "instance E)" "$tmp/summary" | grep -q "^Total params: 403972$"'
expect "summary: decoder has 403,728 parameters" 'grep -A12 "instance D)" "$tmp/summary" | grep -q "^Total params: 403728$"'
expect "summary: encoder's first dense layer has 401,920" 'grep -q "^E.dense .*(None, 512) *401920$" "$tmp/summary"'

# a short real run: 2 epochs of 40 batches of 128 Fashion-MNIST images
$GMC examples/vae_mlp.gm --run --set epochs=2 --limit-batches 40 --out "$tmp/run" --seed 7 > "$tmp/train.log" 2>&1; rc=$?
expect "short training run exits 0" '[ $rc -eq 0 ]'
first=$(sed -n 's/^first step loss \([0-9.]*\)$/\1/p' "$tmp/train.log")
last=$(sed -n 's/^epoch 2 done .*train loss \([0-9.]*\)$/\1/p' "$tmp/train.log")
v1=$(grep -m1 'validation: neg_elbo' "$tmp/train.log" | sed 's/.*neg_elbo \([0-9.]*\).*/\1/')
v2=$(grep 'validation: neg_elbo' "$tmp/train.log" | tail -1 | sed 's/.*neg_elbo \([0-9.]*\).*/\1/')
expect "training loss falls (first step $first, epoch-2 mean $last)" \
    '[ -n "$first" ] && [ -n "$last" ] && awk "BEGIN{exit !($last < 0.75 * $first)}"'
expect "test-set negative ELBO falls between epochs ($v1 -> $v2)" \
    '[ -n "$v1" ] && [ -n "$v2" ] && awk "BEGIN{exit !($v2 < $v1)}"'
expect "a checkpoint per epoch and the latest pointer are written" \
    '[ -f "$tmp/run/checkpoints/step_00000040.safetensors" ] && [ -f "$tmp/run/checkpoints/step_00000080.safetensors" ] && grep -qx step_00000080.safetensors "$tmp/run/checkpoints/latest"'
expect "metrics.csv has a header, a row per step and the validation rows" \
    '[ "$(head -1 "$tmp/run/metrics.csv")" = "epoch,step,time_s,loss,lr/opt,validation" ] && [ $(grep -c "^[12],[0-9]*,.*,$" "$tmp/run/metrics.csv") -eq 80 ] && [ $(grep -c "neg_elbo=" "$tmp/run/metrics.csv") -eq 2 ]'
expect "an image grid is written every epoch" '[ -s "$tmp/run/vae_epoch_1.png" ] && [ -s "$tmp/run/vae_epoch_2.png" ]'

$GMC examples/vae_mlp.gm --sample grid --out "$tmp/run" > "$tmp/sample.log" 2>&1; rc=$?
expect "--sample grid exits 0" '[ $rc -eq 0 ]'
expect "--sample grid writes grid.png and grid.npy" '[ -s "$tmp/run/grid.png" ] && [ -s "$tmp/run/grid.npy" ]'
expect "grid.npy holds 225 images of 28x28" "head -c 128 '$tmp/run/grid.npy' | grep -q \"'shape': (225, 28, 28)\""

# same seed, same thread count: bit-identical weights
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/a" --seed 3 > /dev/null 2>&1
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/b" --seed 3 > /dev/null 2>&1
expect "same seed gives bit-identical checkpoints" 'cmp -s "$tmp/a/checkpoints/step_00000005.safetensors" "$tmp/b/checkpoints/step_00000005.safetensors"'
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/c" --seed 4 > /dev/null 2>&1
expect "another seed gives other weights" '! cmp -s "$tmp/a/checkpoints/step_00000005.safetensors" "$tmp/c/checkpoints/step_00000005.safetensors"'
# the unfused path and the interpreter agree with the fused JIT (to float rounding)
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/u" --seed 3 --no-fuse > "$tmp/u.log" 2>&1
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/i" --seed 3 --interpret > "$tmp/i.log" 2>&1
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/f" --seed 3 > "$tmp/f.log" 2>&1
vf=$(sed -n 's/.*neg_elbo \([0-9.]*\).*/\1/p' "$tmp/f.log"); vu=$(sed -n 's/.*neg_elbo \([0-9.]*\).*/\1/p' "$tmp/u.log"); vi=$(sed -n 's/.*neg_elbo \([0-9.]*\).*/\1/p' "$tmp/i.log")
expect "fused ($vf), unfused ($vu) and interpreted ($vi) runs agree to 0.1%" \
    '[ -n "$vf" ] && [ -n "$vu" ] && [ -n "$vi" ] && awk "BEGIN{d1=$vf-$vu; d2=$vf-$vi; exit !(d1*d1 < ($vf*0.001)^2 && d2*d2 < ($vf*0.001)^2)}"'

# errors a user meets: named files, exit status 2
out=$($GMC examples/vae_mlp.gm --sample grid --out "$tmp/nothing" 2>&1); rc=$?
expect "sampling without a checkpoint names the missing file (exit 2)" \
    '[ $rc -eq 2 ] && printf "%s" "$out" | grep -q "$tmp/nothing/checkpoints/latest"'
printf 'garbage' > "$tmp/bad.safetensors"
out=$($GMC examples/vae_mlp.gm --sample grid --ckpt "$tmp/bad.safetensors" --out "$tmp/run" 2>&1); rc=$?
expect "a corrupt checkpoint is named in the error (exit 2)" '[ $rc -eq 2 ] && printf "%s" "$out" | grep -q "bad.safetensors"'
out=$($GMC examples/vae_mlp.gm --check --set nosuch=3 2>&1); rc=$?
expect "--set of an unknown name is an error (exit 2)" '[ $rc -eq 2 ] && printf "%s" "$out" | grep -q nosuch'
out=$($GMC "$tmp/missing.gm" --check 2>&1); rc=$?
expect "a missing program file is named (exit 2)" '[ $rc -eq 2 ] && printf "%s" "$out" | grep -q missing.gm'
out=$($GMC examples/vae_mlp.gm --frobnicate 2>&1); rc=$?
expect "an unknown option is a usage error (exit 2)" '[ $rc -eq 2 ]'

# a missing data directory is named
sed 's|fashion_mnist(split: "train")|fashion_mnist(split: "train", dir: "/nonexistent/fm")|' examples/vae_mlp.gm > "$tmp/nodata.gm"
out=$($GMC "$tmp/nodata.gm" --run --out "$tmp/nd" 2>&1); rc=$?
expect "a missing data file is named (exit 2)" '[ $rc -eq 2 ] && printf "%s" "$out" | grep -q "/nonexistent/fm/train-images-idx3-ubyte.gz"'

# divergence: a NaN loss stops the run, naming the epoch, step and term, keeping the checkpoint
cat > "$tmp/diverge.gm" <<'GM'
import std.nn
data d = fashion_mnist(split: "train") | scale(0, 1)
model M(x[28, 28]) { return x | flatten | dense(1) }
train t {
    m = M()
    optimizer opt = adam(m, lr: 1e-3)
    epochs 3
    x = d | batch(64)
    step fit { minimize mean(log(m(x) - 1000)) with opt }
}
GM
out=$($GMC "$tmp/diverge.gm" --run --out "$tmp/dv" --limit-batches 3 2>&1); rc=$?
expect "a NaN loss stops training with exit 1, naming step and term" \
    '[ $rc -eq 1 ] && printf "%s" "$out" | grep -q "diverged at epoch 1, step 1: the loss of step .fit."'

# --resume: a run killed with SIGKILL at an arbitrary moment (perhaps during a save) and
# resumed ends with weights bit-identical to an uninterrupted run with the same seed
cat > "$tmp/resume.gm" <<'GM'
import std.nn
import std.losses
data d = fashion_mnist(split: "train") | scale(0, 1)
model M(x[28, 28]) { return x | flatten | dense(64) | relu | dense(784) | sigmoid | reshape(28, 28) }
train t {
    m = M()
    optimizer opt = nadam(m)
    epochs 3
    x = d | shuffle | batch(64)
    step fit { minimize mse(m(x + 0.1 * normal_like(x)), x) with opt }
    every 7 steps { checkpoint }
}
GM
$GMC "$tmp/resume.gm" --run --limit-batches 300 --out "$tmp/whole" --seed 9 > /dev/null 2>&1
for delay in 1.0 2.2; do
    rm -rf "$tmp/cut"
    $GMC "$tmp/resume.gm" --run --limit-batches 300 --out "$tmp/cut" --seed 9 > /dev/null 2>&1 &
    pid=$!
    sleep $delay
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    before=$(cat "$tmp/cut/checkpoints/latest" 2>/dev/null)
    $GMC "$tmp/resume.gm" --run --resume --limit-batches 300 --out "$tmp/cut" --seed 9 > "$tmp/resume.log" 2>&1; rc=$?
    expect "killed after ${delay}s (last checkpoint: ${before:-none}) and resumed: exit 0, weights bit-identical to an uninterrupted run" \
        '[ $rc -eq 0 ] && cmp -s "$tmp/whole/checkpoints/step_00000900.safetensors" "$tmp/cut/checkpoints/step_00000900.safetensors"'
done
expect "checkpoints beyond the newest 5 are pruned" '[ $(ls "$tmp/whole/checkpoints" | grep -c "^step_") -eq 5 ]'
