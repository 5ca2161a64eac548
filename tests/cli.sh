#!/bin/sh
# Command-line tests: checking, summaries, a short real training run on Fashion-MNIST whose
# loss falls, checkpoints and sampling, reproducibility, and the errors a user meets.
cd "$(dirname "$0")/.." || exit 2
. tests/lib.sh

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
expect "a loss curve is drawn (640x360 PNG)" 'file "$tmp/run/loss_curve.png" 2>/dev/null | grep -q "640 x 360" || head -c 24 "$tmp/run/loss_curve.png" | od -An -tx1 | tr -d " \n" | grep -q "0000028000000168"'
expect "an image grid is written every epoch" '[ -s "$tmp/run/vae_epoch_1.png" ] && [ -s "$tmp/run/vae_epoch_2.png" ]'

$GMC examples/vae_mlp.gm --sample grid --out "$tmp/run" > "$tmp/sample.log" 2>&1; rc=$?
expect "--sample grid exits 0" '[ $rc -eq 0 ]'
expect "--sample grid writes grid.png and grid.npy" '[ -s "$tmp/run/grid.png" ] && [ -s "$tmp/run/grid.npy" ]'
expect "grid.npy holds 225 images of 28x28" "head -c 128 '$tmp/run/grid.npy' | grep -q \"'shape': (225, 28, 28)\""

# same seed, same thread count: bit-identical weights
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/a" --seed 3 > /dev/null 2>&1
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/b" --seed 3 > /dev/null 2>&1
expect "same seed gives bit-identical checkpoints" 'cmp -s "$tmp/a/checkpoints/step_00000005.safetensors" "$tmp/b/checkpoints/step_00000005.safetensors"'
# another thread count: the same weights, bit for bit. gmc's kernels give each output element
# to one thread, and the matrix products are cut into blocks fixed by their shapes, each a
# single-threaded OpenBLAS call (runtime/gemm.c), so nothing depends on the thread count
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/t1" --seed 3 --threads 1 > /dev/null 2>&1
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --out "$tmp/t3" --seed 3 --threads 3 > /dev/null 2>&1
expect "--threads 1, 3 and the default give bit-identical checkpoints (MLP VAE)" \
    'cmp -s "$tmp/t1/checkpoints/step_00000005.safetensors" "$tmp/a/checkpoints/step_00000005.safetensors" && cmp -s "$tmp/t3/checkpoints/step_00000005.safetensors" "$tmp/a/checkpoints/step_00000005.safetensors"'
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
# resumed ends with weights bit-identical to an uninterrupted run with the same seed (the
# step reads a 100-example history pool, so the pool must come back exactly too)
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
    step fit { minimize mse(m(history(x + 0.1 * normal_like(x), 100)), x) with opt }
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

# schedules: `epoch` (0-based) and `step` (iterations done) in an optimizer's lr and in a loss
cat > "$tmp/sched.gm" <<'GM'
import std.nn
const n_epochs = 4
data d = fashion_mnist(split: "train") | scale(0, 1)
model M(x[28, 28]) { return x | flatten | dense(8) }
train t {
    m = M()
    epochs n_epochs
    optimizer opt = sgd(m, lr: 0.1 * min(1, 2 - 2 * epoch / n_epochs))
    x = d | batch(64)
    step fit { minimize (1 + step) * mean(m(x) * 0 + 1) with opt }
}
GM
$GMC "$tmp/sched.gm" --run --limit-batches 5 --out "$tmp/sched" > /dev/null 2>&1; rc=$?
expect "an lr schedule of epoch: 0.1 for epochs 1-3, 0.05 in epoch 4 (metrics.csv)" \
    '[ $rc -eq 0 ] && [ "$(awk -F, "NR > 1 && \$1 < 4 && \$5 != 0.1" "$tmp/sched/metrics.csv" | wc -l)" -eq 0 ] && [ "$(awk -F, "NR > 1 && \$1 == 4 && \$5 == 0.05" "$tmp/sched/metrics.csv" | wc -l)" -eq 5 ]'
expect "a loss weight of step: the loss (1 + step) * 1 equals the step count on every row" \
    '[ "$(awk -F, "NR > 1 && \$4 != \$2" "$tmp/sched/metrics.csv" | wc -l)" -eq 0 ] && [ "$(wc -l < "$tmp/sched/metrics.csv")" -eq 21 ]'
out=$(printf 'import std.nn\nmodel M(x[4]) { return x | dense(1) }\ntrain t {\n    m = M()\n    q = epoch\n}\n' > "$tmp/badsched.gm"; $GMC "$tmp/badsched.gm" --check 2>&1); rc=$?
expect "epoch outside a step or lr is an error at its position" '[ $rc -eq 1 ] && printf "%s" "$out" | grep -q "badsched.gm:5:9: error: .epoch. changes during training"'

# several steps per iteration, each with its own optimizer: a step changes only the
# parameters its optimizer owns (the GAN "trainable = False" idiom), and clip_weights()
# clips a critic after its step (WGAN)
cat > "$tmp/twostep.gm" <<'GM'
import std.nn
data d = fashion_mnist(split: "train") | scale(-1, 1)
model Gen(z[8]) { return z | dense(32) | relu | dense(784) | tanh }
model Critic(x[784]) { return x | dense(32) | leaky_relu(0.2) | dense(1) }
train wgan {
    G = Gen()
    D = Critic()
    optimizer opt_d = rmsprop(D, lr: 5e-3)
    optimizer opt_g = rmsprop(G, lr: 5e-3)
    real = d | shuffle | batch(32)
    epochs 1
    repeat 3 {
        step critic {
            minimize mean(D(G(normal(32, 8)))) - mean(D(reshape(real, -1))) with opt_d
            clip_weights(D, -0.01, 0.01)
        }
    }
    step generator { minimize -mean(D(G(normal(32, 8)))) with opt_g }
}
GM
$GMC "$tmp/twostep.gm" --run --set epochs=0 --out "$tmp/init" --seed 4 > /dev/null 2>&1
$GMC "$tmp/twostep.gm" --run --limit-batches 30 --out "$tmp/wgan" --seed 4 > "$tmp/wgan.log" 2>&1; rc=$?
expect "a WGAN with repeat 3 { critic } and a generator step trains (exit 0, 10 iterations of 3 critic batches)" \
    '[ $rc -eq 0 ] && grep -q "finished wgan .*: 10 steps" "$tmp/wgan.log"'
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 - "$tmp/init/checkpoints/step_00000000.safetensors" "$tmp/wgan/checkpoints/step_00000010.safetensors" > "$tmp/wgan.check" <<'PY'
import sys
sys.path.insert(0, "tests/torch")
import numpy as np, st
a, _ = st.read(sys.argv[1]); b, _ = st.read(sys.argv[2])
d = [k for k in b if k.startswith("D.")]
g = [k for k in b if k.startswith("G.")]
print("critic_max", max(float(np.abs(b[k]).max()) for k in d))
print("gen_changed", all(not np.array_equal(a[k], b[k]) for k in g if k.endswith(".W")))
PY
    expect "every critic weight lies in [-0.01, 0.01] after training" 'awk "/critic_max/ {exit !(\$2 <= 0.01)}" "$tmp/wgan.check"'
    expect "the generator step changed the generator's weights" 'grep -q "gen_changed True" "$tmp/wgan.check"'
else
    echo "skip - WGAN weight checks: /usr/bin/python3 has no numpy"
fi

# a model saved alone: the decoder's weights in a file of their own, and --sample from it
expect "save D to decoder.safetensors writes the decoder's weights alone" '[ -s "$tmp/run/decoder.safetensors" ] && ! grep -q "E.dense" "$tmp/run/decoder.safetensors" && grep -q "D.dense_1.W" "$tmp/run/decoder.safetensors"'
$GMC examples/vae_mlp.gm --sample grid --ckpt "$tmp/run/decoder.safetensors" --out "$tmp/dec" > "$tmp/dec.log" 2>&1; rc=$?
expect "--sample runs from the decoder-only file" '[ $rc -eq 0 ] && [ -s "$tmp/dec/grid.png" ] && cmp -s "$tmp/dec/grid.npy" "$tmp/run/grid.npy"'

# the MLP examples: an autoencoder (M02) and a two-phase GAN (M10)
$GMC examples/ae_mlp.gm --run --set epochs=1 --limit-batches 100 --out "$tmp/ae" > "$tmp/ae.log" 2>&1; rc=$?
first=$(sed -n 's/^first step loss \([0-9.]*\)$/\1/p' "$tmp/ae.log"); val=$(sed -n 's/.*validation: mse \([0-9.]*\).*/\1/p' "$tmp/ae.log")
expect "ae_mlp.gm trains: test-set MSE after 100 batches ($val) below the first batch's ($first)" \
    '[ $rc -eq 0 ] && [ -n "$val" ] && awk "BEGIN{exit !($val < 0.5 * $first)}"'
$GMC examples/ae_mlp.gm --sample reconstruct --out "$tmp/ae" > /dev/null 2>&1; rc=$?
expect "ae_mlp.gm --sample reconstruct writes originals and reconstructions" '[ $rc -eq 0 ] && [ -s "$tmp/ae/originals.png" ] && [ -s "$tmp/ae/reconstructions.png" ]'
$GMC examples/gan_mlp.gm --run --set epochs=1 --limit-batches 200 --out "$tmp/gan" > "$tmp/gan.log" 2>&1; rc=$?
expect "gan_mlp.gm: 200 iterations of discriminator and generator steps, a sample grid" \
    '[ $rc -eq 0 ] && grep -q "finished gan .*: 200 steps, last discriminator [0-9.]*, last generator [0-9.]*" "$tmp/gan.log" && [ -s "$tmp/gan/gan_epoch_1.png" ]'

# `state` buffers and `training`: a batch-norm layer updates its moving mean in training steps
# only; after one step with momentum 0.5 it holds half the first batch's per-pixel mean
cat > "$tmp/bn.gm" <<'GM'
import std.nn
data d = fashion_mnist(split: "train") | scale(0, 1)
data t = fashion_mnist(split: "test") | scale(0, 1)
layer bn(x, momentum = 0.99, eps = 1e-3) {
    param gamma[last(x)] = ones
    param beta[last(x)] = zeros
    state moving_mean[last(x)] = zeros
    state moving_variance[last(x)] = ones
    h = reshape(x, -1, last(x))
    if training {
        m = mean(h, axis: (0, 1))
        v = mean((h - m) * (h - m), axis: (0, 1))
        moving_mean = momentum * moving_mean + (1 - momentum) * m
        moving_variance = momentum * moving_variance + (1 - momentum) * v
        return gamma * (x - m) / sqrt(v + eps) + beta
    }
    return gamma * (x - moving_mean) / sqrt(moving_variance + eps) + beta
}
model M(x[28, 28]) { return x | flatten | bn(momentum: 0.5) | dense(1) }
train fit {
    m = M()
    optimizer opt = sgd(m, lr: 0)
    x = d | batch(64)
    step { minimize mean(m(x)) with opt }
    validate {
        x = t | batch(100)
        report out: mean(m(x))
    }
}
GM
$GMC "$tmp/bn.gm" --run --limit-batches 1 --out "$tmp/bn" > "$tmp/bn.log" 2>&1; rc=$?
expect "a layer with state and a training branch trains and validates" '[ $rc -eq 0 ] && grep -q "validation: out" "$tmp/bn.log"'
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    /usr/bin/python3 - "$tmp/bn/checkpoints/step_00000001.safetensors" > "$tmp/bn.check" <<'PY'
import sys, gzip
sys.path.insert(0, "tests/torch")
import numpy as np, st
t, _ = st.read(sys.argv[1])
with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:64] / 255.0
m = x.mean(0); v = x.var(0)
print("mean_err", np.abs(t["m.bn.moving_mean"] - 0.5 * m).max())
print("var_err", np.abs(t["m.bn.moving_variance"] - (0.5 + 0.5 * v)).max())
print("gamma_unchanged", np.all(t["m.bn.gamma"] == 1))
PY
    expect "the moving mean and variance took one update from the batch's statistics" \
        'awk "/_err/ {if (\$2 > 1e-5) bad = 1} END {exit bad}" "$tmp/bn.check" && grep -q "gamma_unchanged True" "$tmp/bn.check"'
fi

# weight tying (M03): the decoder reuses the encoder's kernels, so only its biases are new
$GMC examples/ae_tied.gm --summary > "$tmp/tied.sum" 2>&1
$GMC examples/ae_mlp.gm --summary > "$tmp/ae.sum" 2>&1
expect "ae_mlp.gm (M02) has 81,530 + 82,284 parameters" 'grep -A12 "instance E)" "$tmp/ae.sum" | grep -q "^Total params: 81530$" && grep -A12 "instance D)" "$tmp/ae.sum" | grep -q "^Total params: 82284$"'
expect "ae_tied.gm (M03): 82,414 parameters, the tied decoder layers 100 and 784 (biases only)" \
    'grep -q "^Total params: 82414$" "$tmp/tied.sum" && grep -q "^A.dense_t  .* 100$" "$tmp/tied.sum" && grep -q "^A.dense_t_1 .* 784$" "$tmp/tied.sum"'
printf 'import std.nn\nmodel M(x[4]) {\n    h = x | dense(3)\n    return h @ weights("dense_9.W")\n}\ntrain t { m = M() }\n' > "$tmp/badtie.gm"
out=$($GMC "$tmp/badtie.gm" --check 2>&1); rc=$?
expect "weights() of a parameter that does not exist is an error at its argument" '[ $rc -eq 1 ] && printf "%s" "$out" | grep -q "badtie.gm:4:24: error: no parameter .dense_9.W."'

# the convolutional autoencoder (SEEDS.md M16): parameter counts per model and per layer
$GMC examples/conv_ae.gm --summary > "$tmp/conv.sum" 2>&1; rc=$?
expect "conv_ae.gm --summary exits 0" '[ $rc -eq 0 ]'
expect "conv_ae.gm (M16): encoder 96,770 and decoder 246,273 parameters" \
    'grep -A14 "instance E)" "$tmp/conv.sum" | grep -q "^Total params: 96770$" && grep -A14 "instance D)" "$tmp/conv.sum" | grep -q "^Total params: 246273$"'
for row in "E.conv .*(None, 16, 16, 32) *320" "E.conv_1 .*(None, 8, 8, 64) *18496" \
           "E.conv_2 .*(None, 4, 4, 128) *73856" "E.dense .*(None, 2) *4098" "D.dense .*(None, 2048) *6144" \
           "D.deconv .*(None, 8, 8, 128) *147584" "D.deconv_1 .*(None, 16, 16, 64) *73792" \
           "D.deconv_2 .*(None, 32, 32, 32) *18464" "D.conv .*(None, 32, 32, 1) *289"; do
    expect "conv_ae.gm summary row: $row" 'grep -q "^$row\$" "$tmp/conv.sum"'
done

# a short real run of it: 30 batches of 100 (validation dropped to keep the test short)
sed '/^    validate {/,/^    }/d' examples/conv_ae.gm > "$tmp/conv_ae.gm"
$GMC "$tmp/conv_ae.gm" --run --set epochs=1 --limit-batches 30 --out "$tmp/cae" --seed 1 > "$tmp/cae.log" 2>&1; rc=$?
first=$(sed -n 's/^first step loss \([0-9.]*\)$/\1/p' "$tmp/cae.log")
last=$(sed -n 's/.*steps, last loss \([0-9.]*\)$/\1/p' "$tmp/cae.log")
expect "conv_ae: 30 training steps run and the loss falls (first $first, last $last)" \
    '[ $rc -eq 0 ] && [ -n "$first" ] && [ -n "$last" ] && awk "BEGIN{exit !($last < 0.8 * $first)}"'
expect "conv_ae: the decoded latent grid is written" '[ -s "$tmp/cae/conv_ae_epoch_1.png" ]'
# im2col, col2im and their gradients are deterministic; the unfused path agrees
for v in a b u; do
    flag=; [ $v = u ] && flag=--no-fuse
    $GMC "$tmp/conv_ae.gm" --run --set epochs=1 --limit-batches 3 --out "$tmp/cae_$v" --seed 2 $flag > "$tmp/cae_$v.log" 2>&1
done
expect "conv_ae: same seed gives bit-identical checkpoints" \
    'ls "$tmp"/cae_a/checkpoints/*.safetensors > /dev/null 2>&1 && cmp -s "$(ls "$tmp"/cae_a/checkpoints/*.safetensors | tail -1)" "$(ls "$tmp"/cae_b/checkpoints/*.safetensors | tail -1)"'
for v in 1 3; do
    $GMC "$tmp/conv_ae.gm" --run --set epochs=1 --limit-batches 3 --out "$tmp/cae_t$v" --seed 2 --threads $v > /dev/null 2>&1
done
expect "conv_ae: --threads 1, 3 and the default give bit-identical checkpoints" \
    'ls "$tmp"/cae_t1/checkpoints/*.safetensors > /dev/null 2>&1 && cmp -s "$(ls "$tmp"/cae_a/checkpoints/*.safetensors | tail -1)" "$(ls "$tmp"/cae_t1/checkpoints/*.safetensors | tail -1)" && cmp -s "$(ls "$tmp"/cae_a/checkpoints/*.safetensors | tail -1)" "$(ls "$tmp"/cae_t3/checkpoints/*.safetensors | tail -1)"'
la=$(sed -n 's/.*steps, last loss \([0-9.]*\)$/\1/p' "$tmp/cae_a.log"); lu=$(sed -n 's/.*steps, last loss \([0-9.]*\)$/\1/p' "$tmp/cae_u.log")
expect "conv_ae: fused ($la) and unfused ($lu) runs agree to 0.1%" \
    '[ -n "$la" ] && [ -n "$lu" ] && awk "BEGIN{d=$la-$lu; exit !(d*d < ($la*0.001)^2)}"'

# shape errors of the convolution family are located diagnostics with the shapes spelled out
cat > "$tmp/conv_bad.gm" <<'GM'
import std.nn
layer k(x) {
    param W[3, 3, 2, 4] = glorot_uniform
    return conv2d(x, W, padding: "same")
}
model A(x[8, 8, 3]) { return k(x) }
model B(x[8, 8, 3]) { return concat(x, x | conv(4, s: 2)) }
model C(x[1, 1, 3]) { return x | maxpool }
model D(x[8, 8, 3]) { return conv2d_transpose(x, ones(3, 3, 2, 3), stride: 2, output_padding: 2) }
model E(x[8, 8, 3]) { return conv2d(x, ones(3, 3, 3, 2), padding: "full") }
GM
out=$($GMC "$tmp/conv_bad.gm" --check 2>&1); rc=$?
expect "conv2d: a kernel for other input channels is an error at the call, with both shapes" \
    '[ $rc -eq 1 ] && printf "%s" "$out" | grep -q "conv_bad.gm:4:12: error: conv2d(): the kernel \[3, 3, 2, 4\] takes 2 input channels, the images \[1, 8, 8, 3\] have 3"'
expect "concat: shapes that do not join are an error at the argument" \
    'printf "%s" "$out" | grep -q "conv_bad.gm:7:44: error: concat(): \[1, 4, 4, 4\] does not join \[1, 8, 8, 3\] along axis 3"'
expect "maxpool: a window larger than the image is an error naming both" \
    'printf "%s" "$out" | grep -q "conv_bad.gm:8:.*error: in maxpool(): maxpool2d(): a 2x2 window (stride 2,2, dilation 1,1, padding 0,0,0,0) does not fit in images of 1x1"'
expect "conv2d_transpose: output_padding not below the stride is an error" \
    'printf "%s" "$out" | grep -q "conv_bad.gm:9:.*error: conv2d_transpose(): output_padding (2, 2) must be smaller than the stride (2, 2)"'
expect "conv2d: an unknown padding is an error at the argument" \
    'printf "%s" "$out" | grep -q "conv_bad.gm:10:.*error: conv2d(): padding must be \"same\", \"valid\""'

# data pipelines: Fashion-MNIST ankle boots padded to [32, 32, 1] (CycleGAN's shape, M27)
cat > "$tmp/boots.gm" <<'GM'
import std.nn
data boots = fashion_mnist(split: "train") | filter(label: 9) | pad(2) | channels(1) | scale(-1, 1)
data pairs = unpaired(fashion_mnist() | filter(label: 7), fashion_mnist() | filter(label: 9)) | pad(2) | channels(1)
data held_out = fashion_mnist() | split("validation", 0.1) | random_flip | add_noise(0.05)
model M(x[32, 32, 1]) { return x | flatten | dense(1) }
train t {
    m = M()
    optimizer opt = adam(m, lr: 1e-3)
    epochs 1
    x = boots | shuffle | random_flip | add_noise(0.1) | batch(64, drop_last: true)
    step fit { minimize mean(m(x) * m(x)) with opt }
}
GM
out=$($GMC "$tmp/boots.gm" --check 2>&1); rc=$?
expect "filter | pad | channels | scale, unpaired, split, random_flip, add_noise pass --check" '[ $rc -eq 0 ]'
$GMC "$tmp/boots.gm" --summary > "$tmp/boots.sum" 2>&1
expect "a model of x[32, 32, 1] reads the padded boots: flatten gives 1024" 'grep -q "^m.flatten .*(None, 1024)" "$tmp/boots.sum"'
$GMC "$tmp/boots.gm" --run --limit-batches 2 --out "$tmp/boots1" --seed 5 > "$tmp/boots1.log" 2>&1; rc=$?
$GMC "$tmp/boots.gm" --run --limit-batches 2 --out "$tmp/boots2" --seed 5 > /dev/null 2>&1
expect "training on the filtered, padded, flipped, noisy boots runs (exit 0)" '[ $rc -eq 0 ]'
expect "random flips and noise are the same for a seed: bit-identical checkpoints" \
    'cmp -s "$tmp/boots1/checkpoints/step_00000002.safetensors" "$tmp/boots2/checkpoints/step_00000002.safetensors"'
sed 's/model M(x\[32, 32, 1\])/model M(x[28, 28])/' "$tmp/boots.gm" > "$tmp/boots28.gm"
out=$($GMC "$tmp/boots28.gm" --check 2>&1); rc=$?
expect "the padded boots do not fit a model of x[28, 28]: the shapes are spelled out" \
    '[ $rc -eq 1 ] && printf "%s" "$out" | grep -q "expects x of shape \[batch, 28, 28\], got \[64, 32, 32, 1\]"'
printf 'data faces = image_folder("%s/no_faces", size: 64)\n' "$tmp" > "$tmp/nofaces.gm"
out=$($GMC "$tmp/nofaces.gm" --check 2>&1); rc=$?
expect "a missing image folder is a compile-time error at its name, naming it (exit 1)" \
    '[ $rc -eq 1 ] && printf "%s" "$out" | grep -q "nofaces.gm:1:27: error: cannot open folder $tmp/no_faces"'
printf 'to be or not to be' > "$tmp/corpus.txt"
printf 'data chars = text("%s/corpus.txt", window: 40)\n' "$tmp" > "$tmp/short_text.gm"
out=$($GMC "$tmp/short_text.gm" --check 2>&1); rc=$?
expect "a corpus shorter than a window is an error naming the file" \
    '[ $rc -eq 1 ] && printf "%s" "$out" | grep -q "$tmp/corpus.txt: 18 characters, fewer than window + 1 = 41"'

# initialisers with arguments: normal(std), constant(value)
printf 'import std.nn\ndata d = fashion_mnist(split: "train")\nlayer lin(x) {\n    param W[784, 256] = normal(1)\n    param c[256] = constant(30)\n    return reshape(x, -1) @ W + c\n}\nmodel M(x[28, 28]) { return lin(x) }\ntrain t {\n    m = M()\n    optimizer o = sgd(m)\n    x = d | batch(8)\n    step { minimize mean(m(x)) with o }\n}\n' > "$tmp/init.gm"
$GMC "$tmp/init.gm" --run --set epochs=0 --out "$tmp/init" > /dev/null 2>&1
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    stats=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, "tests/torch"); import st; t, _ = st.read(sys.argv[1]); print("%.3f %.3f" % (t["m.lin.W"].std(), t["m.lin.c"].mean()))' "$tmp/init/checkpoints/step_00000000.safetensors")
    expect "param W = normal(1) draws std 1, constant(30) fills 30 (got $stats)" 'echo "$stats" | awk "{exit !(\$1 > 0.98 && \$1 < 1.02 && \$2 == 30)}"'
fi
expect "history pools are saved in checkpoints" 'grep -q "history/0" "$tmp/whole/checkpoints/step_00000900.safetensors"'

# streams of pairs: `x, y = ... | with_labels(one_hot: true)` feeds images and their labels;
# a linear model fitted to the one-hot labels by MSE must beat the constant predictor (0.09)
# by far, which only happens if labels stay aligned with their images through shuffling
cat > "$tmp/labels.gm" <<'GM'
import std.nn
import std.losses
data train_set = fashion_mnist(split: "train") | scale(0, 1) | with_labels(one_hot: true)
data test_set = fashion_mnist(split: "test") | scale(0, 1) | with_labels(one_hot: true)
model Linear(x[28, 28]) { return x | flatten | dense(10) }
train classify {
    m = Linear()
    optimizer opt = adam(m, lr: 1e-2)
    x, y = train_set | shuffle | batch(128)
    step { minimize mse(m(x), y) with opt }
    validate {
        x, y = test_set | batch(1000)
        report mse: mse(m(x), y)
    }
}
GM
$GMC "$tmp/labels.gm" --run --limit-batches 100 --out "$tmp/labels" > "$tmp/labels.log" 2>&1; rc=$?
v=$(sed -n 's/.*validation: mse \([0-9.]*\).*/\1/p' "$tmp/labels.log")
expect "x, y = ... | with_labels: a linear classifier's test MSE ($v) is far below the constant predictor's 0.09" \
    '[ $rc -eq 0 ] && [ -n "$v" ] && awk "BEGIN{exit !($v < 0.06)}"'
printf 'import std.nn\ndata d = fashion_mnist(split: "train") | with_labels\nmodel M(x[28, 28]) { return x | flatten | dense(1) }\ntrain t {\n    m = M()\n    x = d | batch(8)\n}\n' > "$tmp/pairs1.gm"
out=$($GMC "$tmp/pairs1.gm" --check 2>&1); rc=$?
expect "a stream of pairs bound to one name is an error asking for two" '[ $rc -eq 1 ] && printf "%s" "$out" | grep -q "pairs1.gm:6:5: error: this data set yields two tensors"'
cat > "$tmp/unpaired.gm" <<'GM'
import std.nn
import std.losses
data shoes = unpaired(fashion_mnist() | filter(label: 7), fashion_mnist() | filter(label: 9)) | pad(2) | channels(1) | scale(-1, 1)
model T(x[32, 32, 1]) { return x | conv(4, k: 3) | tanh | conv(1, k: 3) | tanh }
train t {
    g = T()
    optimizer opt = adam(g)
    a, b = shoes | shuffle | batch(4)
    step { minimize mae(g(a), b) with opt }
}
GM
$GMC "$tmp/unpaired.gm" --run --limit-batches 5 --out "$tmp/unpaired" > "$tmp/unpaired.log" 2>&1; rc=$?
expect "a, b = unpaired(A, B): both domains feed one step" '[ $rc -eq 0 ] && grep -q "finished t .*: 5 steps" "$tmp/unpaired.log"'

# the flagship: a short CycleGAN run on Fashion-MNIST sneakers <-> boots, the translation of
# both test sets, and the same file on two folders of RGB images (--set data=DIR --set size=64)
$GMC examples/cyclegan.gm --run --set n_steps=30 --out "$tmp/cg" > "$tmp/cg.log" 2>&1; rc=$?
expect "cyclegan.gm: 30 steps of generator and discriminator phases, a checkpoint" \
    '[ $rc -eq 0 ] && grep -q "finished cyclegan .*: 30 steps, last generators [0-9.]*, last discriminators [0-9.]*" "$tmp/cg.log" && [ -s "$tmp/cg/checkpoints/step_00000030.safetensors" ]'
$GMC examples/cyclegan.gm --sample translate --out "$tmp/cg" > "$tmp/cgs.log" 2>&1; rc=$?
expect "--sample translate: every test sneaker and boot translated, (1000, 32, 32, 1) arrays and PNG previews" \
    '[ $rc -eq 0 ] && head -c 128 "$tmp/cg/sneakers_as_boots.npy" | grep -q "(1000, 32, 32, 1)" && head -c 128 "$tmp/cg/boots_as_sneakers.npy" | grep -q "(1000, 32, 32, 1)" && [ -s "$tmp/cg/sneakers_as_boots.png" ]'
if /usr/bin/python3 -c 'import zlib' 2>/dev/null; then
    /usr/bin/python3 - "$tmp/folders" <<'PY'
import os, struct, sys, zlib, random
def png(path, w, h, rgb):
    raw = b"".join(b"\0" + b"".join(bytes(rgb(x, y)) for x in range(w)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
random.seed(1)
for part, hue in (("trainA", (200, 40, 40)), ("trainB", (40, 40, 200)), ("testA", (200, 40, 40)), ("testB", (40, 40, 200))):
    os.makedirs(os.path.join(sys.argv[1], part), exist_ok=True)
    for i in range(6):
        r = random.randint(8, 30)
        png(os.path.join(sys.argv[1], part, "%d.png" % i), 80, 80,
            lambda x, y: hue if (x - 40) ** 2 + (y - 40) ** 2 < r * r else (240, 240, 240))
PY
    $GMC examples/cyclegan.gm --run --set data="$tmp/folders" --set size=64 --set n_steps=3 --out "$tmp/cgf" > "$tmp/cgf.log" 2>&1; rc=$?
    expect "cyclegan.gm --set data=DIR --set size=64 trains on two folders of RGB images" \
        '[ $rc -eq 0 ] && grep -q "finished cyclegan .*: 3 steps" "$tmp/cgf.log"'
    $GMC examples/cyclegan.gm --summary --set data="$tmp/folders" --set size=64 > "$tmp/cgf.sum" 2>&1
    expect "at 64x64 RGB the PatchGAN scores 4x4 patches" 'grep -q "(None, 4, 4, 1)" "$tmp/cgf.sum"'
fi

# a character-level text corpus: windows of 8 characters (one-hot) and the next character
/usr/bin/python3 -c 'import random, sys; random.seed(3); sys.stdout.write("".join(random.choice("abcde ") for _ in range(4000)))' > "$tmp/corpus.txt" 2>/dev/null \
    || awk 'BEGIN{srand(3); for (i = 0; i < 4000; i++) printf "%s", substr("abcde ", int(rand() * 6) + 1, 1)}' > "$tmp/corpus.txt"
cat > "$tmp/text.gm" <<GM
import std.nn
import std.losses
data corpus = text("$tmp/corpus.txt", window: 8)
model Next(x[8, 6]) { return x | flatten | dense(6) | sigmoid }
train t {
    m = Next()
    optimizer opt = adam(m)
    x, y = corpus | shuffle | batch(32)
    step { minimize bce(m(x), y) with opt }
}
GM
$GMC "$tmp/text.gm" --summary > "$tmp/text.sum" 2>&1
$GMC "$tmp/text.gm" --run --limit-batches 20 --out "$tmp/text" > "$tmp/text.log" 2>&1; rc=$?
expect "text(window: 8): one-hot windows [8, 6] and next-character targets train a model" \
    '[ $rc -eq 0 ] && grep -q "(None, 48)" "$tmp/text.sum" && grep -q "finished t .*: 20 steps" "$tmp/text.log"'

# a logging hook: `report` in an `every N steps` block prints its values
cat > "$tmp/log.gm" <<'GM'
import std.nn
data d = fashion_mnist(split: "train") | scale(0, 1)
model M(x[28, 28]) { return x | flatten | dense(1) }
train t {
    m = M()
    optimizer opt = sgd(m)
    x = d | batch(16)
    step { minimize mean(m(x) * m(x)) with opt }
    every 5 steps { report probe: mean(m(normal(4, 28, 28))) }
}
GM
$GMC "$tmp/log.gm" --run --limit-batches 20 --out "$tmp/log" > "$tmp/log.log" 2>&1; rc=$?
expect "report in an every-5-steps hook prints at steps 5, 10, 15, 20" \
    '[ $rc -eq 0 ] && [ $(grep -c "^  step [0-9]*: probe " "$tmp/log.log") -eq 4 ] && grep -q "^  step 20: probe " "$tmp/log.log"'

# batchnorm and dropout in std.nn: DCGAN (M11), and M23's generator as a parameter-count vector
$GMC examples/dcgan.gm --summary > "$tmp/dc.sum" 2>&1
expect "dcgan.gm (M11): G 840,705 with 384 non-trainable (batch-norm statistics), D 212,865 (SEEDS M23's D)" \
    'grep -A20 "instance G)" "$tmp/dc.sum" | grep -q "^Total params: 840705$" && grep -A20 "instance G)" "$tmp/dc.sum" | grep -q "^Non-trainable params: 384$" && grep -A20 "instance D)" "$tmp/dc.sum" | grep -q "^Total params: 212865$"'
cat > "$tmp/m23.gm" <<'GM'
import std.nn
model Generator(z[64]) {
    x = z | dense(12544, bias: false) | batchnorm | leaky_relu(0.2) | reshape(7, 7, 256)
    x = x | deconv(128, k: 5, s: 1, bias: false) | batchnorm | leaky_relu(0.2)
    x = x | deconv(64, k: 5, s: 2, bias: false) | batchnorm | leaky_relu(0.2)
    return x | deconv(1, k: 5, s: 2, bias: false) | tanh
}
train t { G = Generator() }
GM
$GMC "$tmp/m23.gm" --summary > "$tmp/m23.sum" 2>&1
expect "M23's generator: 1,879,360 parameters as in SEEDS.md, output (None, 28, 28, 1)" \
    'grep -q "^Total params: 1879360$" "$tmp/m23.sum" && grep -q "(None, 28, 28, 1)" "$tmp/m23.sum"'
$GMC examples/dcgan.gm --run --set epochs=1 --limit-batches 20 --out "$tmp/dc" > "$tmp/dc.log" 2>&1; rc=$?
expect "dcgan.gm: 20 iterations with batch norm in training and its running statistics in the sample grid" \
    '[ $rc -eq 0 ] && grep -q "finished dcgan .*: 20 steps" "$tmp/dc.log" && [ -s "$tmp/dc/dcgan_epoch_1.png" ] && [ -s "$tmp/dc/generator.safetensors" ]'

# --stats: time per kind of work, GFLOP/s of the matrix products against sgemm, peak memory
$GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 20 --stats --out "$tmp/stats" > "$tmp/stats.log" 2>&1; rc=$?
expect "--stats reports kernels compiled, time per kind of work, GFLOP/s against OpenBLAS sgemm and peak memory" \
    '[ $rc -eq 0 ] && grep -q "^stats: .* kernels compiled" "$tmp/stats.log" && grep -q "^  sgemm " "$tmp/stats.log" && grep -q "^  optimizer " "$tmp/stats.log" && grep -q "% of OpenBLAS sgemm 1024^3 here" "$tmp/stats.log" && grep -q "peak resident memory" "$tmp/stats.log"'
expect "--stats reports time per kernel group (elementwise, reductions, sgemm by size, per shape), the slowest kernels, the buffers and each block's arena" \
    'grep -q "^  elementwise kernels " "$tmp/stats.log" && grep -q "^  reduction kernels " "$tmp/stats.log" && grep -q "^  sgemm >= 100 MFLOP .* [0-9.]*$" "$tmp/stats.log" && grep -q "^       128 x    784 x    512 " "$tmp/stats.log" && grep -q "^  buffers: [0-9.]* MB ([0-9.]* kept by the blocks, [0-9.]* of scratch they share)" "$tmp/stats.log" && grep -q "^    block at line [0-9]*, batch [0-9]*: arena [0-9.]* MB ([0-9.]* kept after a run); at its peak" "$tmp/stats.log" && grep -q "^  slowest kernels:" "$tmp/stats.log"'
# every product of 100 MFLOP or more a call (bench.py reads these): the VAE's 128 x 784 x 512
# and its two gradients, nothing smaller (its 128 x 512 x 20 heads are 2.6 MFLOP)
sed -n '/^  matrix products of 100 MFLOP or more a call/,/^  [^ ]/p' "$tmp/stats.log" > "$tmp/large.txt"
expect "--stats lists the products of 100 MFLOP or more a call with their GFLOP/s, none smaller" \
    'grep -q "^       128 x    784 x    512   .* calls  *[0-9.]* GFLOP/s$" "$tmp/large.txt" && grep -q "^       784 x    128 x    512 A^T .* GFLOP/s$" "$tmp/large.txt" && grep -q "^       128 x    784 x    512     B^T .* GFLOP/s$" "$tmp/large.txt" && ! grep -q " x     20 " "$tmp/large.txt"'

# the kernel cache on disk: a first run compiles and stores, a second loads every kernel
# and computes the same; damaged entries are misses that get rebuilt; --no-cache bypasses it.
# Kernels are compiled in groups, one object file (.o) per group, and every kernel has an
# entry of its own (.k) naming its group.
kc="$tmp/kcache"
kstats() {   # "loaded compiled stored" of a --stats log
    sed -n 's/^  kernel cache on disk: \([0-9]*\) kernels loaded, \([0-9]*\) compiled (\([0-9]*\) stored).*/\1 \2 \3/p' "$1"
}
for r in 1 2 3 4 5 6; do
    if [ $r -eq 3 ]; then         # one kernel entry's bytes overwritten, another cut short
        set -- "$kc"/gmc/*.k
        sz=$(wc -c < "$1"); printf 'garbage' | dd of="$1" bs=1 seek=$((sz - 20)) conv=notrunc 2>/dev/null
        eval last=\"\${$#}\"; head -c 100 "$last" > "$tmp/kc_short" && cat "$tmp/kc_short" > "$last"
    fi
    if [ $r -eq 5 ]; then         # the largest group's object damaged: all its kernels are misses
        set -- $(ls -S "$kc"/gmc/*.o)
        group=$(dd if="$1" bs=1 skip=49 count=32 2>/dev/null)     # its key: "gmc kernel group <hash>"
        ingroup=$(for f in "$kc"/gmc/*.k; do tail -c 32 "$f"; echo; done | grep -c "^$group\$")
        sz=$(wc -c < "$1"); printf 'garbage' | dd of="$1" bs=1 seek=$((sz - 20)) conv=notrunc 2>/dev/null
    fi
    if [ $r -eq 6 ]; then         # a hash collision: one kernel's entry holds another's key
        set -- "$kc"/gmc/*.k
        cp "$1" "$2"
    fi
    XDG_CACHE_HOME="$kc" $GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 5 --seed 3 --stats $([ $r -eq 4 ] && echo --no-cache) \
        --out "$tmp/kc$r" > "$tmp/kc$r.log" 2>&1
done
set -- $(kstats "$tmp/kc1.log") x x x; l1=$1 c1=$2 s1=$3; set -- $(kstats "$tmp/kc2.log") x x x; l2=$1 c2=$2
set -- $(kstats "$tmp/kc3.log") x x x; l3=$1 c3=$2 s3=$3; set -- $(kstats "$tmp/kc4.log") x x x; l4=$1 c4=$2
set -- $(kstats "$tmp/kc5.log") x x x; l5=$1 c5=$2; set -- $(kstats "$tmp/kc6.log") x x x; l6=$1 c6=$2
expect "kernel cache: the first run compiles and stores every kernel ($c1 compiled, $s1 stored, $l1 loaded), in groups" \
    '[ "$l1" = 0 ] && [ "$c1" -gt 20 ] && [ "$s1" = "$c1" ] && [ $(ls "$kc"/gmc/*.k | wc -l) -eq "$c1" ] && [ $(ls "$kc"/gmc/*.o | wc -l) -ge 2 ] && [ $(ls "$kc"/gmc/*.o | wc -l) -lt "$c1" ]'
expect "kernel cache: the second run loads them all and compiles none ($l2 loaded, $c2 compiled)" '[ "$l2" = "$c1" ] && [ "$c2" = 0 ]'
expect "kernel cache: two damaged kernel entries are recompiled and stored again, the rest loaded ($l3 loaded, $c3 compiled, $s3 stored)" \
    '[ "$c3" = 2 ] && [ "$s3" = 2 ] && [ $((l3 + c3)) = "$c1" ]'
expect "--no-cache compiles everything ($l4 loaded, $c4 compiled)" '[ "$l4" = 0 ] && [ "$c4" = "$c1" ]'
expect "kernel cache: a damaged group object recompiles exactly its $ingroup kernels ($l5 loaded, $c5 compiled)" \
    '[ "$ingroup" -ge 2 ] && [ "$c5" = "$ingroup" ] && [ $((l5 + c5)) = "$c1" ]'
expect "kernel cache: an entry holding another kernel's key (a collision) is a miss ($l6 loaded, $c6 compiled)" \
    '[ "$c6" = 1 ] && [ $((l6 + c6)) = "$c1" ]'
expect "kernel cache: runs that load kernels write bit-identical checkpoints" \
    '(for r in 2 3 4 5 6; do cmp -s "$tmp/kc1/checkpoints/step_00000005.safetensors" "$tmp/kc$r/checkpoints/step_00000005.safetensors" || exit 1; done)'
v2=$(sed -n 's/.*neg_elbo \([0-9.]*\).*/\1/p' "$tmp/kc2.log")
expect "kernel cache: a run with every kernel from the cache agrees with the interpreter ($v2, $vi)" \
    '[ -n "$v2" ] && [ -n "$vi" ] && awk "BEGIN{d=$v2-$vi; exit !(d*d < ($vi*0.001)^2)}"'
# kernels that differ only in a constant are different kernels: a cache filled with c = 2
# gives the c = 3 run the weights a run without the cache gives
cat > "$tmp/kconst.gm" <<'GM'
const c = 2
layer p(x) {
    param w[4] = ones
    return x * w
}
model M(x[4]) {
    return p(x) * c + c
}
data d = fashion_mnist(split: "train")
train t {
    m = M()
    optimizer o = sgd(m, lr: 0.01)
    x = d | batch(2)
    step { minimize sum(abs(m(slice(reshape(x, 784), start: 300, size: 4)))) with o }
}
GM
kq="$tmp/kconst_cache"
XDG_CACHE_HOME="$kq" $GMC "$tmp/kconst.gm" --run --limit-batches 2 --set steps=2 --stats --out "$tmp/kq2" > "$tmp/kq2.log" 2>&1
XDG_CACHE_HOME="$kq" $GMC "$tmp/kconst.gm" --run --limit-batches 2 --set steps=2 --set c=3 --stats --out "$tmp/kq3" > "$tmp/kq3.log" 2>&1
$GMC "$tmp/kconst.gm" --run --limit-batches 2 --set steps=2 --set c=3 --no-cache --out "$tmp/kq3n" > /dev/null 2>&1
set -- $(kstats "$tmp/kq3.log") x x x; lq=$1 cq=$2
expect "kernel cache: kernels differing in a constant are compiled, not loaded ($lq loaded, $cq compiled), and give the uncached run's weights" \
    '[ "$cq" -ge 1 ] && cmp -s "$tmp/kq3/checkpoints/step_00000002.safetensors" "$tmp/kq3n/checkpoints/step_00000002.safetensors" && ! cmp -s "$tmp/kq2/checkpoints/step_00000002.safetensors" "$tmp/kq3/checkpoints/step_00000002.safetensors"'

# kernels that differ only in the extent of their output dim 0 (from 32 on) share one
# compiled body: a cache filled at batch 64 serves batch 100, with the uncached run's weights
kb="$tmp/kbatch_cache"
XDG_CACHE_HOME="$kb" $GMC examples/vae_mlp.gm --run --limit-batches 2 --set epochs=1 --set batch_size=64 --seed 5 --stats --out "$tmp/kb64" > "$tmp/kb64.log" 2>&1
XDG_CACHE_HOME="$kb" $GMC examples/vae_mlp.gm --run --limit-batches 2 --set epochs=1 --set batch_size=100 --seed 5 --stats --out "$tmp/kb100" > "$tmp/kb100.log" 2>&1
$GMC examples/vae_mlp.gm --run --limit-batches 2 --set epochs=1 --set batch_size=100 --seed 5 --no-cache --out "$tmp/kb100n" > /dev/null 2>&1
set -- $(kstats "$tmp/kb64.log") x x x; cb64=$1; set -- $(kstats "$tmp/kb100.log") x x x; lb=$1 cb=$2
expect "kernel cache: kernels differing only in the batch (64 and 100) share code ($lb loaded, $cb compiled) and give the uncached run's weights" \
    '[ "$lb" -gt 10 ] && [ "$cb" -lt "$lb" ] && cmp -s "$tmp/kb100/checkpoints/step_00000002.safetensors" "$tmp/kb100n/checkpoints/step_00000002.safetensors"'

# pruning: a run that stores entries keeps the cache under GMC_KERNEL_CACHE_MB, removing the
# least recently used entries first; loading an entry counts as using it; files not named
# like entries are left alone
kp="$tmp/kprune"
XDG_CACHE_HOME="$kp" $GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 2 --seed 3 --out "$tmp/kp1" > /dev/null 2>&1
touch -d '2 days ago' "$kp"/gmc/*
for i in $(seq 1 300); do head -c 8000 /dev/zero > "$kp/gmc/$(printf '%032x' $i).k"; done   # stale entries
touch -d '1 day ago' "$kp"/gmc/000000000000000000000000000000*.k
echo keep > "$kp/gmc/notes.txt"
XDG_CACHE_HOME="$kp" GMC_KERNEL_CACHE_MB=1 $GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 2 --seed 3 --stats --out "$tmp/kp2" > "$tmp/kp2.log" 2>&1
XDG_CACHE_HOME="$kp" GMC_KERNEL_CACHE_MB=1 $GMC examples/ae_mlp.gm --run --set epochs=1 --limit-batches 2 --seed 3 --stats --out "$tmp/kp3" > "$tmp/kp3.log" 2>&1
XDG_CACHE_HOME="$kp" GMC_KERNEL_CACHE_MB=1 $GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 2 --seed 3 --stats --out "$tmp/kp4" > "$tmp/kp4.log" 2>&1
set -- $(kstats "$tmp/kp2.log") x x x; lp2=$1; set -- $(kstats "$tmp/kp3.log") x x x; sp3=$3
set -- $(kstats "$tmp/kp4.log") x x x; lp4=$1 cp4=$2
stale=$(ls "$kp"/gmc/000000000000000000000000000000*.k 2>/dev/null | wc -l); kpk=$(du -sk "$kp/gmc" | cut -f1)
expect "kernel cache pruning: over 1 MB, stale entries go first ($stale of 300 left, ${kpk} KB on disk), the entries in use stay ($lp4 loaded, $cp4 compiled), other files stay" \
    '[ "$lp2" -gt 10 ] && [ "$sp3" -gt 0 ] && grep -q "least recently used files pruned" "$tmp/kp3.log" && [ "$stale" -lt 300 ] && [ "$kpk" -le 1024 ] && [ "$lp4" = "$lp2" ] && [ "$cp4" = 0 ] && [ -f "$kp/gmc/notes.txt" ]'

# a loop over range(3) (a compile-time array): (0 + 1 + 2) * 2 * 2 per element
cat > "$tmp/for.gm" <<'GM'
layer p(x) {
    param b[4] = zeros
    return x * 0 + b
}
model M(x[4]) {
    h = p(x)
    for i in range(3) { h = h + i }
    for j in 2 { h = h * 2 }
    return h
}
data d = fashion_mnist(split: "train")
train t {
    m = M()
    optimizer o = sgd(m, lr: 0)
    x = d | batch(2)
    step { minimize sum(m(slice(reshape(x, 784), start: 0, size: 4))) with o }
}
GM
$GMC "$tmp/for.gm" --run --limit-batches 1 --out "$tmp/for" > "$tmp/for.log" 2>&1; rc=$?
expect "for i in range(3) unrolls over 0, 1, 2 (loss 96 = 2 examples x 4 x (0+1+2) x 4)" \
    '[ $rc -eq 0 ] && grep -q "first step loss 96.0000" "$tmp/for.log"'
