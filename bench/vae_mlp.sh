#!/bin/sh
# The MLP VAE (seed M22) in gmc and in PyTorch, same recipe, side by side in one run:
# 784-512-(2,2)-512-784, loss 784*BCE + KL, Adam 1e-3 (eps 1e-7), batch 128, Fashion-MNIST.
# Prints each side's per-epoch lines, then the mean epoch time (training pass only, epochs
# 2..N) and the final test-set negative ELBO of each, and their ratio.
#   sh bench/vae_mlp.sh [EPOCHS] [THREADS]
cd "$(dirname "$0")/.." || exit 2
epochs=${1:-10}
threads=${2:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== gmc ($epochs epochs, $threads threads)"
./gmc examples/vae_mlp.gm --run --set epochs="$epochs" --threads "$threads" --out "$tmp/gmc" --seed 0 \
    | grep -E '^epoch [0-9]+ done|validation' | tee "$tmp/gmc.log"
echo "== PyTorch ($epochs epochs, $threads threads)"
OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/vae_mlp_torch.py --epochs "$epochs" --threads "$threads" | tee "$tmp/torch.log"
gmc_time=$(sed -n 's/^epoch \([0-9]*\) done in \([0-9.]*\) s.*/\1 \2/p' "$tmp/gmc.log" | awk '$1 > 1 {s += $2; n++} END {if (n) printf "%.3f", s / n}')
gmc_elbo=$(grep validation "$tmp/gmc.log" | tail -1 | sed 's/.*neg_elbo \([0-9.]*\).*/\1/')
torch_time=$(sed -n 's/^mean_epoch_time_s \([0-9.]*\).*/\1/p' "$tmp/torch.log")
torch_elbo=$(sed -n 's/^final_test_neg_elbo \([0-9.]*\).*/\1/p' "$tmp/torch.log")
echo
echo "                     gmc        PyTorch    gmc/PyTorch"
awk -v a="$gmc_time" -v b="$torch_time" 'BEGIN {printf "epoch time (s)       %-10s %-10s %.2f\n", a, b, a / b}'
awk -v a="$gmc_elbo" -v b="$torch_elbo" 'BEGIN {printf "test neg. ELBO       %-10s %-10s %+.2f%%\n", a, b, 100 * (a - b) / b}'
