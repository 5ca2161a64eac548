#!/bin/sh
# Fusion of each op class, and the dump flags. Each program here is one training step built
# around one class (chain.gm: elementwise chains; broadcast.gm; reduce.gm: reductions;
# norms.gm: batch, layer, instance and group norm; losses.gm; epilogue.gm: bias and activation
# after matrix products and convolutions; product_bias.gm: a dense layer's bias added by its
# product). For each:
#  - --dump-kernels of the fused and the unfused (--no-fuse) plan: the fused one has fewer
#    kernels and a kernel of the shape the class should fuse into, the unfused one has none
#    (kernels.py);
#  - --grad-dump (loss, every gradient) in every execution mode against the fused JIT path:
#    --no-fuse, --interpret, GMC_NO_IMPLICIT_CONV=1 and GMC_NO_THIN_GEMM=1 to 1e-5 relative
#    (float32 rounding of a few ops in another order; these programs are shallow), and
#    GMC_POISON_DEAD=1 (dead buffers filled with NaN) bit for bit.
# Then --dump-ir, --dump-kernels and --dump-llvm of a small program say what they should, and
# short training runs and a sampling loop give the same bits with dead buffers poisoned.
# The optimiser updates are not kernels: runtime/optim.c applies each in one pass over a
# parameter, checked against torch.optim in tests/torch/run.sh.
cd "$(dirname "$0")/../.." || exit 2
. tests/lib.sh
PY=/usr/bin/python3
if ! $PY -c 'import numpy' 2>/dev/null; then
    echo "skip - fusion tests: /usr/bin/python3 has no numpy (apt-get install python3-numpy)"
    exit 0
fi
$PY -c 'import sys, numpy as np; np.save(sys.argv[1], np.random.default_rng(1).uniform(0, 1, (4, 28, 28)).astype(np.float32))' "$tmp/x.npy"

for f in tests/fusion/*.gm; do
    b=$(basename "$f" .gm)
    for m in "fused GMC_MODE=fused" "nofuse GMC_MODE=nofuse --no-fuse" "interpret GMC_MODE=interpret --interpret" \
             "noimplicit GMC_NO_IMPLICIT_CONV=1" "nothin GMC_NO_THIN_GEMM=1" "poison GMC_POISON_DEAD=1"; do
        set -- $m
        mkdir -p "$tmp/$1"
        if ! env $2 $GMC "$f" --grad-dump "$tmp/$1/$b.0.train.safetensors" --feed "$tmp/x.npy" --seed 3 \
                --dump-kernels $3 > "$tmp/$b.$1.txt" 2>&1; then
            fail "gmc --grad-dump of $f ($2 $3): $(tail -5 "$tmp/$b.$1.txt")"
        fi
    done
    $PY tests/fusion/kernels.py "$tmp/$b.fused.txt" "$tmp/$b.nofuse.txt" "$b"
done
expect "epilogue.gm: the second convolution's bias is added by the convolution itself (fused), by a kernel after im2col + sgemm unfused" \
    "grep -q '^conv forward .* + bias b' '$tmp/epilogue.fused.txt' && ! grep -q '^conv' '$tmp/epilogue.nofuse.txt' && grep -q '^im2col' '$tmp/epilogue.nofuse.txt'"
for m in "nofuse --no-fuse" "interpret --interpret" "noimplicit GMC_NO_IMPLICIT_CONV=1" "nothin GMC_NO_THIN_GEMM=1"; do
    set -- $m
    $PY tests/torch/compare_dumps.py "$tmp/fused" "$tmp/$1" "$2" 1e-5
done
$PY tests/torch/compare_dumps.py "$tmp/fused" "$tmp/poison" GMC_POISON_DEAD=1 0

# --dump-ir: the graph of each step, then which node is each parameter, the loss, each gradient
$GMC tests/fusion/epilogue.gm --dump-ir > "$tmp/ir.txt" 2>&1; rc=$?
loss=$(sed -n 's/^# loss: %\([0-9]*\)$/\1/p' "$tmp/ir.txt")
expect "--dump-ir prints the step's graph: input, params, matmul, im2col, sum, and names the loss node %$loss (the mean: a sum times 1/n)" \
    "[ $rc -eq 0 ] && grep -q '^# train t, step 0\$' '$tmp/ir.txt' && grep -q '^%0 = input #0 : \[4, 28, 28\]\$' '$tmp/ir.txt' &&
     grep -q '= matmul %' '$tmp/ir.txt' && grep -q '= im2col %' '$tmp/ir.txt' && [ -n '$loss' ] &&
     grep -q '^%$loss = mul %' '$tmp/ir.txt'"
ngrad=$(grep -c '^# gradient of m\.' "$tmp/ir.txt")
expect "--dump-ir names a gradient node for each of the 8 parameters, each a node of the graph with its parameter's shape" \
    "[ $ngrad -eq 8 ] && $PY - '$tmp/ir.txt' <<'PY'
import re, sys
t = open(sys.argv[1]).read()
shape = dict(re.findall(r'^%(\d+) = [^:]*: (\[[^]]*\])$', t, re.M))
params = dict(re.findall(r'^# %(\d+) = param #\d+ (\S+)$', t, re.M))
grads = re.findall(r'^# gradient of (\S+): %(\d+)$', t, re.M)
pshape = {n: shape[i] for i, n in params.items()}
sys.exit(not (len(params) == 8 and all(g in shape and shape[g] == pshape[n] for n, g in grads)))
PY"
# --dump-kernels: a header per compiled block, then each step; the fused dump was checked above
expect "--dump-kernels heads the block with its batch and counts, and the count is the kernels listed" \
    "head -1 '$tmp/chain.fused.txt' | grep -q '^# block at tests/fusion/chain.gm:[0-9]*, batch 4: [0-9]* steps, [0-9]* kernels\$' &&
     [ \$(head -1 '$tmp/chain.fused.txt' | sed 's/.* \([0-9]*\) kernels\$/\1/') -eq \$(grep -c '^kernel ' '$tmp/chain.fused.txt') ]"
# --dump-llvm: the optimised LLVM IR of every kernel of each step, vectorised
$GMC tests/fusion/chain.gm --dump-llvm > "$tmp/llvm.txt" 2>&1; rc=$?
nk=$(grep -c '^kernel ' "$tmp/chain.fused.txt"); nd=$(grep -c '^define void @gmc' "$tmp/llvm.txt")
expect "--dump-llvm prints a function per kernel ($nd, --dump-kernels lists $nk), vector code, the tanh of the fused reduction" \
    "[ $rc -eq 0 ] && head -1 '$tmp/llvm.txt' | grep -q '^; train t, step 0\$' && [ $nd -eq $nk ] &&
     grep -q '<[0-9]* x float>' '$tmp/llvm.txt' && grep -q 'tanh' '$tmp/llvm.txt'"

# The planner across blocks: a training run's plans (the GAN's two steps, validation, `every`
# hooks) share one scratch, and a sampling loop carries tensors between stages. Three short
# runs and a sampling procedure, poisoned (GMC_POISON_DEAD=1) and not: the same checkpoints,
# losses and samples, bit for bit.
same_run() {  # $1 what, $2 the files to compare (under each output directory), $3... the command
    what=$1; files=$2; shift 2
    "$@" --out "$tmp/plain" > "$tmp/plain.log" 2>&1 && GMC_POISON_DEAD=1 "$@" --out "$tmp/poison" > "$tmp/poison.log" 2>&1; rc=$?
    differ=""
    for f in $files; do
        case $f in
        *.csv) cut -d, -f1,2,4- "$tmp/plain/$f" > "$tmp/a.csv" 2>/dev/null && cut -d, -f1,2,4- "$tmp/poison/$f" > "$tmp/b.csv" 2>/dev/null &&
               cmp -s "$tmp/a.csv" "$tmp/b.csv" || differ="$differ $f" ;;     # all but the time column
        *) [ -s "$tmp/plain/$f" ] && cmp -s "$tmp/plain/$f" "$tmp/poison/$f" || differ="$differ $f" ;;
        esac
    done
    expect "GMC_POISON_DEAD=1 changes nothing: $what${differ:+ (differ:$differ)}" '[ $rc -eq 0 ] && [ -z "$differ" ]' ||
        tail -3 "$tmp/poison.log"
    rm -rf "$tmp/plain" "$tmp/poison"
}
same_run "gan_mlp.gm, 3 steps of D and G (two plans sharing the scratch) and the epoch's hook" \
    "checkpoints/step_00000003.safetensors metrics.csv generator.safetensors" \
    $GMC examples/gan_mlp.gm --run --set epochs=1 --limit-batches 3 --seed 3
same_run "vae_mlp.gm, 3 steps, validation and the epoch's hook" \
    "checkpoints/step_00000003.safetensors metrics.csv vae_epoch_1.png" \
    $GMC examples/vae_mlp.gm --run --set epochs=1 --limit-batches 3 --seed 3
same_run "lang/loop.gm --sample denoise (a run-time loop: stages carrying tensors)" \
    "ddpm_final.npy ddpm_x_500.npy" \
    $GMC tests/lang/loop.gm --sample denoise --seed 3
