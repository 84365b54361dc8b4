#!/usr/bin/env bash
# Replays the MNIST runs of the sessions that reproduced Hinton et al. (2006) and
# Salakhutdinov and Murray (2008): a shortened DBN recipe, the full hinton2006 preset (about
# 2.5 hours on two threads), 500-hidden RBMs scored by AIS, and the tuning sweeps of this
# folder. Usage: bash experiments/mnist_runs.sh [WORKDIR]   (one BLAS thread). Results and
# every command go to benchmarks/results/archive/ (commands.txt there is the log of all
# sessions' runs); copy a new hinton2006.json or headline RBM result into
# benchmarks/results/mnist/ by hand. The story: docs/mnist-reproduction.md.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/neurosim_mnist_runs}
out=benchmarks/results/archive
mkdir -p "$work" "$out"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
run() { echo "+ $*" >> "$out/commands.txt"; "$@"; }
echo "# bash experiments/mnist_runs.sh, $(date -u +%F) (commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))" >> "$out/commands.txt"

# DBN: hinton2006 preset (as it was at commit 25ab736: up-down lr 0.01, no momentum, no
# weight cost) with 30 pretraining epochs per RBM (the paper's 30 sweeps),
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

# PCD-1 again with a smaller learning rate (lr 0.05 with momentum 0.9 is too fast for
# persistent chains)
run python -m neurosim rbm train --hidden 500 --epochs 20 --cd 1 --persistent --lr 0.01 \
    --out "$work/rbm_pcd1_lr001.npz" --json > "$out/rbm_pcd1_lr001_train.json" 2> "$work/rbm_pcd1_lr001.log"
run python -m neurosim rbm evaluate "$work/rbm_pcd1_lr001.npz" --ais --json > "$out/rbm_pcd1_lr001_eval.json"

# The preset's backprop path: 50 pretraining epochs per RBM, no up-down, 200 backprop epochs
run python -m neurosim dbn train --updown-epochs 0 --out "$work/dbn_backprop" 2> "$work/dbn_backprop.log"
run python -m neurosim dbn evaluate "$work/dbn_backprop" --json --curves > "$out/dbn_backprop.json"

# Longer runs, as time allowed: CD-1 for 100 epochs, CD-25 for 15
run python -m neurosim rbm train --hidden 500 --epochs 100 --cd 1 --out "$work/rbm_cd1_e100.npz" --json \
    > "$out/rbm_cd1_e100_train.json" 2> "$work/rbm_cd1_e100.log"
run python -m neurosim rbm evaluate "$work/rbm_cd1_e100.npz" --ais --json > "$out/rbm_cd1_e100_eval.json"
run python -m neurosim rbm train --hidden 500 --epochs 15 --cd 25 --out "$work/rbm_cd25_e15.npz" --json \
    > "$out/rbm_cd25_e15_train.json" 2> "$work/rbm_cd25_e15.log"
run python -m neurosim rbm evaluate "$work/rbm_cd25_e15.npz" --ais --json > "$out/rbm_cd25_e15_eval.json"

# Up-down settings on a validation split (experiments/updown_sweep.py; results in
# updown_sweep.json): pretrain on the first 50,000 digits, compare on the last 10,000
run env OPENBLAS_NUM_THREADS=2 python -m neurosim dbn train --limit 50000 --pretrain-epochs 30 \
    --updown-epochs 0 --backprop-epochs 0 --out "$work/pre50k" 2> "$work/pre50k.log"
for setting in "0.01 0 0 3 3" "0.01 0.9 2e-4 3 3" "0.001 0.9 2e-4 3 3" "0.01 0 0 3 8" "0.003 0.9 2e-4 3 8" \
               "0.01 0 0 10 2" "0.003 0.9 2e-4 10 2"; do
    read -r lr m wd k e <<< "$setting"
    run python experiments/updown_sweep.py "$work/pre50k" --lr "$lr" --momentum "$m" --weight-decay "$wd" \
        --k "$k" --epochs "$e" --out "$work/sweep_${lr}_${m}_${k}_${e}.jsonl"
done

# The full hinton2006 preset, on two BLAS threads with nothing else running: 50 epochs per
# RBM, 200 up-down epochs of CD-10 (the last 100 annealed), 50 conjugate-gradient backprop
# epochs from the greedy stack (since the fifteenth session; the same net as --updown-epochs 0)
run env OPENBLAS_NUM_THREADS=2 python -m neurosim dbn train --out "$work/hinton2006" 2> "$work/hinton2006.log"
run python -m neurosim dbn evaluate "$work/hinton2006" --json --curves > "$out/hinton2006.json"
run python demos/mnist_dbn.py --full --no-train --dir "$work/hinton2006" --out "$work/hinton2006_figures"   # the README's figures
run python experiments/classify_variants.py "$work/hinton2006" --out "$out/classify_variants.json"

# The paper's up-down schedule (300 epochs: CD-3, CD-6, CD-10; the last 150 annealed), the
# preset from 2026-12-02 to 2026-12-05
run env OPENBLAS_NUM_THREADS=2 python -m neurosim dbn train --updown-epochs 300 --updown-anneal 150 \
    --updown-cd 0:3,100:6,200:10 --out "$work/hinton2006_cd3-6-10" 2> "$work/hinton2006_cd3-6-10.log"
run python -m neurosim dbn evaluate "$work/hinton2006_cd3-6-10" --json --curves > "$out/hinton2006_cd3-6-10.json"

# Diagnosis (results in updown_diagnosis.json and top_rbm_sweep.json): which part of up-down
# helps, larger learning rates, a smaller one late in the run, and the greedy top RBM alone
for setting in "0.003 0.9 top 6" "0.003 0.9 directed 6" "0.01 0.9 all 8" "0.03 0.9 all 8"; do
    read -r lr m learn e <<< "$setting"
    run python experiments/updown_sweep.py "$work/pre50k" --lr "$lr" --momentum "$m" --weight-decay 2e-4 \
        --learn "$learn" --epochs "$e" --out "$work/diag_${lr}_${learn}.jsonl"
done
for lr in 0.0003 0.003; do   # from the full run stopped at up-down epoch 111 (CD-6)
    run python experiments/updown_sweep.py "$work/hinton2006" --lr "$lr" --momentum 0.9 --weight-decay 2e-4 \
        --k 6 --epochs 4 --out "$work/late_${lr}.jsonl"
done
for setting in "0.1 2e-4 60 -" "0.01 2e-4 30 -" "0.1 0 30 -" "0.1 1e-3 50 -" "0.1 2e-4 30 --samples"; do
    read -r lr wd e flag <<< "$setting"
    [ "$flag" = - ] && flag=
    # shellcheck disable=SC2086
    run python experiments/top_rbm_sweep.py "$work/pre50k" --lr "$lr" --weight-decay "$wd" --epochs "$e" \
        $flag --out "$work/top_${lr}_${wd}_${e}${flag}.jsonl"
done

# Backprop settings on a validation split (experiments/backprop_sweep.py; results in
# backprop_sweep.json): the preset's pretraining holding out the last 10,000 digits, then
# the preset's backprop stage with a constant learning rate, with the last 100 of its 200
# epochs annealed, and with gentler rates; two at a time, one BLAS thread each
run env OPENBLAS_NUM_THREADS=2 python -m neurosim dbn train --validation 10000 --updown-epochs 0 \
    --backprop-epochs 0 --out "$work/pre_v10k" 2> "$work/pre_v10k.log"
for pair in "--anneal 0:--anneal 100" "--lr 0.03:--lr 0.01"; do
    for flags in "${pair%%:*}" "${pair#*:}"; do
        # shellcheck disable=SC2086
        run python experiments/backprop_sweep.py "$work/pre_v10k" $flags --out "$work/bp${flags// /}.jsonl" &
    done
    wait
done

# Up-down with its learning rate annealed over the last 8 of 16 epochs, against constant
# (results in updown_anneal.json), from the same pretraining
for seed in 1 2; do
    for anneal in 0 8; do
        run python experiments/updown_sweep.py "$work/pre_v10k" --lr 0.003 --momentum 0.9 --weight-decay 2e-4 \
            --k 3 --epochs 16 --anneal "$anneal" --seed "$seed" --out "$work/ud_anneal${anneal}_s$seed.jsonl" &
    done
    wait
done
for anneal in 0 15; do
    run python experiments/updown_sweep.py "$work/pre_v10k" --lr 0.003 --momentum 0.9 --weight-decay 2e-4 \
        --k 3 --epochs 30 --anneal "$anneal" --seed 3 --out "$work/ud30_anneal$anneal.jsonl" &
done
wait

# The earlier hinton2006 preset (200 up-down epochs, the last 100 annealed; then backprop),
# on two BLAS threads with nothing else running
OPENBLAS_NUM_THREADS=2 run python -m neurosim dbn train --updown-epochs 200 --updown-anneal 100 \
    --updown-cd 0:3,100:6 --out "$work/hinton2006_200" 2> "$work/hinton2006_200.log"
run python -m neurosim dbn evaluate "$work/hinton2006_200" --json --curves > "$out/hinton2006_200.json"

# The paper's 300 up-down epochs (CD-10 in the last 100), the last 150 annealed (the preset
# since 2026-12-02); no backprop
OPENBLAS_NUM_THREADS=2 run python -m neurosim dbn train --updown-epochs 300 --updown-anneal 150 \
    --updown-cd 0:3,100:6,200:10 --backprop-epochs 0 --out "$work/updown300" \
    2> "$work/updown300.log"
run python -m neurosim dbn evaluate "$work/updown300" --json --curves > "$out/updown300_anneal150.json"

# RBMs with the learning rate annealed to zero over all their epochs (rbm train --anneal);
# rbm evaluate runs AIS from both base rates and reports the certain floor on log Z
for spec in "cd1_anneal20:--cd 1 --epochs 20 --anneal 20" "pcd1_anneal20:--cd 1 --persistent --epochs 20 --anneal 20" \
            "cd25_anneal4:--cd 25 --epochs 4 --anneal 4" "cd1_e100_anneal100:--cd 1 --epochs 100 --anneal 100" \
            "cd25_e15_anneal15:--cd 25 --epochs 15 --anneal 15" "cd1_lr001_anneal20:--cd 1 --epochs 20 --lr 0.01 --anneal 20" \
            "cd25_lr001_anneal4:--cd 25 --epochs 4 --lr 0.01 --anneal 4"; do
    name=${spec%%:*}; flags=${spec#*:}
    # shellcheck disable=SC2086
    run python -m neurosim rbm train --hidden 500 $flags --out "$work/rbm_$name.npz" --json \
        > "$out/rbm_${name}_train.json" 2> "$work/rbm_$name.log"
    run python -m neurosim rbm evaluate "$work/rbm_$name.npz" --json > "$out/rbm_${name}_eval.json"
done

# Up-down on held-out digits from the greedy stages above (pre_v10k): learning rates,
# CD-10 and class-balanced minibatches against the annealed CD-3 runs (updown_anneal.json)
for setting in "0.01 3 1" "0.006 3 1" "0.0015 3 1" "0.003 10 1" "0.003 10 2"; do
    read -r lr k seed <<< "$setting"
    run python experiments/updown_sweep.py "$work/pre_v10k" --lr "$lr" --momentum 0.9 --weight-decay 2e-4 \
        --k "$k" --epochs 16 --anneal 8 --seed "$seed" --out "$work/ud_${lr}_k${k}_s$seed.jsonl"
done
for seed in 1 2; do
    run python experiments/updown_sweep.py "$work/pre_v10k" --lr 0.003 --momentum 0.9 --weight-decay 2e-4 \
        --k 3 --epochs 16 --anneal 8 --seed "$seed" --balanced --out "$work/ud_balanced_s$seed.jsonl"
done
run python experiments/top_rbm_sweep.py "$work/pre_v10k" --epochs 50 --anneal 25 --out "$work/top_anneal25.jsonl"

# More Gibbs steps or more epochs at the same cost (updown_anneal.json, 2026-12-04)
run python experiments/updown_sweep.py "$work/pre_v10k" --lr 0.003 --momentum 0.9 --weight-decay 2e-4 \
    --k 10 --epochs 24 --anneal 12 --seed 1 --out "$work/ud_k10_e24.jsonl" &
run python experiments/updown_sweep.py "$work/pre_v10k" --lr 0.003 --momentum 0.9 --weight-decay 2e-4 \
    --k 3 --epochs 43 --anneal 22 --seed 1 --out "$work/ud_k3_e43.jsonl" &
wait
run python experiments/updown_sweep.py "$work/pre_v10k" --lr 0.003 --momentum 0.9 --weight-decay 2e-4 \
    --k 20 --epochs 12 --anneal 6 --seed 1 --out "$work/ud_k20_e12.jsonl"

# 2026-12-05 (updown_cd10_sweep.json): CD-10 up-down for 32 epochs, the last 16 annealed,
# from pre_v10k: weight cost 2e-4 (the preset), 1e-3 and 0; the rate annealed over all
# 32 epochs; class-balanced minibatches; persistent chains (stopped after 12 epochs);
# seed 2; and from lower layers pretrained for 100 epochs per RBM instead of 50
for flags in "--weight-decay 2e-4" "--weight-decay 1e-3" "--weight-decay 0" "--weight-decay 2e-4 --anneal 32" \
             "--weight-decay 2e-4 --balanced" "--weight-decay 2e-4 --persistent" "--weight-decay 2e-4 --seed 2"; do
    # shellcheck disable=SC2086
    run python experiments/updown_sweep.py "$work/pre_v10k" --lr 0.003 --momentum 0.9 --k 10 --epochs 32 \
        --anneal 16 --seed 1 $flags --out "$work/ud_cd10${flags// /}.jsonl"
done
run env OPENBLAS_NUM_THREADS=1 python -m neurosim dbn train --validation 10000 --pretrain-epochs 100 \
    --updown-epochs 0 --backprop-epochs 0 --out "$work/pre100_v10k" 2> "$work/pre100_v10k.log"
run python experiments/updown_sweep.py "$work/pre100_v10k" --lr 0.003 --momentum 0.9 --weight-decay 2e-4 \
    --k 10 --epochs 32 --anneal 16 --seed 1 --out "$work/ud_cd10_pre100.jsonl"

# CD-25 RBMs at smaller learning rates, annealed to zero over more epochs
for spec in "cd25_lr002_anneal20:--lr 0.02 --epochs 20 --anneal 20" "cd25_lr001_anneal30:--lr 0.01 --epochs 30 --anneal 30" \
            "cd25_lr001_anneal45:--lr 0.01 --epochs 45 --anneal 45"; do
    name=${spec%%:*}; flags=${spec#*:}
    # shellcheck disable=SC2086
    run python -m neurosim rbm train --hidden 500 --cd 25 $flags --out "$work/rbm_$name.npz" --json \
        > "$out/rbm_${name}_train.json" 2> "$work/rbm_$name.log"
    run python -m neurosim rbm evaluate "$work/rbm_$name.npz" --json > "$out/rbm_${name}_eval.json"
done
