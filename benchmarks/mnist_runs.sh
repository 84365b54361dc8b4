#!/usr/bin/env bash
# MNIST runs whose results are committed under benchmarks/results/mnist/: a shortened
# DBN recipe (the full hinton2006 preset takes hours: see README) and 500-hidden RBMs
# scored by AIS. Usage: bash benchmarks/mnist_runs.sh [WORKDIR]   (one BLAS thread)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/neurosim_mnist_runs}
out=benchmarks/results/mnist
mkdir -p "$work" "$out"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
run() { echo "+ $*" >> "$out/commands.txt"; "$@"; }
: > "$out/commands.txt"

# DBN: hinton2006 preset with 30 pretraining epochs per RBM (the paper's 30 sweeps),
# 20 up-down epochs (the paper: 300) and 30 backprop epochs (backpropclassify.m: 200).
run python -m neurosim dbn train --pretrain-epochs 30 --updown-epochs 20 --backprop-epochs 30 \
    --out "$work/dbn_short" 2> "$work/dbn_short.log" || { [ -f "$work/dbn_short/checkpoint.npz" ] && \
    run python -m neurosim dbn train --pretrain-epochs 30 --updown-epochs 20 --backprop-epochs 30 \
    --out "$work/dbn_short" --resume 2>> "$work/dbn_short.log"; }
run python -m neurosim dbn evaluate "$work/dbn_short" --json --curves > "$out/dbn_short.json"

# RBMs with 500 hidden units, 20 epochs each, test log-probability with log Z by AIS
for spec in "cd1:--cd 1" "pcd1:--cd 1 --persistent" "cd25:--cd 25 --epochs 4"; do
    name=${spec%%:*}; flags=${spec#*:}
    # shellcheck disable=SC2086
    run python -m neurosim rbm train --hidden 500 --epochs 20 $flags --out "$work/rbm_$name.npz" --json \
        > "$out/rbm_${name}_train.json" 2> "$work/rbm_$name.log"
    run python -m neurosim rbm evaluate "$work/rbm_$name.npz" --ais --json > "$out/rbm_${name}_eval.json"
done
