#!/bin/sh
# make bench: every benchmark in bench/
cd "$(dirname "$0")/.." || exit 2
sh bench/vae_mlp.sh "$@"
