#!/bin/sh
# PyTorch cross-checks: the VAE's loss and every parameter gradient for fixed weights, a real
# batch of Fashion-MNIST and fixed noise must equal PyTorch's. Skipped, with a message, where
# torch is not installed.
cd "$(dirname "$0")/../.." || exit 2
GMC=${GMC:-./gmc}
PY=/usr/bin/python3
if ! $PY -c 'import torch' 2>/dev/null; then
    echo "skip - PyTorch cross-check: /usr/bin/python3 has no torch (apt-get install python3-torch)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# a real batch: 16 test images scaled to [0, 1]
$PY - "$tmp/x.npy" <<'PY'
import gzip, sys, numpy as np
with gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz') as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:16]
np.save(sys.argv[1], (x / 255.0).astype(np.float32))
PY
for mode in "" "--no-fuse"; do
    if ! $GMC examples/vae_mlp.gm --grad-dump "$tmp/dump.safetensors" --feed "$tmp/x.npy" --seed 5 $mode > "$tmp/log" 2>&1; then
        echo "FAIL - gmc --grad-dump $mode: $(cat "$tmp/log")"
        continue
    fi
    if $PY tests/torch/vae_crosscheck.py "$tmp/dump.safetensors" > "$tmp/check" 2>&1; then
        echo "ok - VAE loss and gradients equal PyTorch's ${mode:-(fused)}: $(tail -1 "$tmp/check")"
    else
        echo "FAIL - VAE cross-check against PyTorch ${mode:-(fused)}:"; cat "$tmp/check"
    fi
done

# optimisers: 5 updates of every configuration against torch.optim and Keras's rules
UNIT_DIR=${UNIT_DIR:-build/tests}
if GMC_OPTIM_DUMP="$tmp/optim.safetensors" "$UNIT_DIR/test_optim" > /dev/null; then
    $PY tests/torch/optim_crosscheck.py "$tmp/optim.safetensors"
else
    echo "FAIL - test_optim could not write the optimizer trajectories"
fi
# One step of a check program on a fed input, dumped by gmc in each execution mode (fused JIT,
# unfused JIT, interpreter) and recomputed by a PyTorch script:
#   crosscheck PROGRAM FEED SCRIPT "what is checked"
crosscheck() {
    for mode in "" "--no-fuse" "--interpret"; do
        if ! $GMC "$1" --grad-dump "$tmp/dump.safetensors" --feed "$2" --seed 5 $mode > "$tmp/log" 2>&1; then
            echo "FAIL - gmc --grad-dump of $1 $mode: $(cat "$tmp/log")"
            continue
        fi
        if $PY "$3" "$tmp/dump.safetensors" > "$tmp/check" 2>&1; then
            echo "ok - $4 ${mode:-(fused)}: $(tail -1 "$tmp/check")"
        else
            echo "FAIL - $4 ${mode:-(fused)}:"; cat "$tmp/check"
        fi
    done
}
$PY -c 'import sys, numpy as np; np.random.seed(1); np.save(sys.argv[1], np.random.randn(2, 28, 28).astype(np.float32))' "$tmp/xr.npy"
$PY -c 'import sys, numpy as np; np.random.seed(2); np.save(sys.argv[1], np.random.randn(4, 28, 28).astype(np.float32))' "$tmp/x4.npy"
# the convolution family (conv2d, conv2d_transpose, pooling, upsampling, instance norm,
# concat, slice)
crosscheck tests/torch/conv_check.gm "$tmp/xr.npy" tests/torch/conv_crosscheck.py \
    "convolutions, pooling, upsampling equal PyTorch's"
# reductions with keepdims, logsumexp, variance, one_hot, ranges (and whatever primitives
# tests/torch/prims_check.gm grows)
crosscheck tests/torch/prims_check.gm "$tmp/xr.npy" tests/torch/prims_crosscheck.py \
    "primitives (reductions, one_hot, ranges, ...) equal PyTorch's"
# gradients of gradients: WGAN-GP's critic loss (grad() inside the loss) against
# torch.autograd.grad(create_graph=True)
crosscheck tests/torch/wgangp_check.gm "$tmp/x4.npy" tests/torch/wgangp_crosscheck.py \
    "WGAN-GP gradient penalty (grad of grad) equals PyTorch's"
# the standard library (std.nn, std.losses, std.seq, std.flow): every layer and loss between a
# probe and a readout
for prog in tests/torch/stdlib_*check.gm; do
    crosscheck "$prog" "$tmp/x4.npy" tests/torch/stdlib_crosscheck.py \
        "$(basename "$prog" .gm): stdlib layers and losses equal PyTorch's"
done
# the seed models (examples/seeds/): every step of each against PyTorch, train and eval mode
sh tests/torch/seeds.sh
