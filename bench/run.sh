#!/bin/sh
# make bench: every benchmark model trained in gmc and in PyTorch, alternately, one table row
# per model (bench/bench.py's docstring says what is measured and how). Arguments go to
# bench/bench.py, e.g. `sh bench/run.sh --models vae_mlp,dcgan --rounds 1`.
# The MLP VAE's full-epoch comparison with test-set ELBO is bench/vae_mlp.sh.
cd "$(dirname "$0")/.." || exit 2
exec /usr/bin/python3 bench/bench.py --markdown "$@"
