#!/usr/bin/env bash
# Reproduces the files the project ships for the quick start, on a 2-core CPU machine:
#   supernets/cifar10-spos.pt   the CIFAR-10 unified supernet (weights only, float16)
#   lut/cpu-cifar10.json        the latency LUT of device `cpu` over the cifar10 space, calibrated
#   generators/*.pt             the architecture generator trained for that LUT
# Full-precision training checkpoints and logs stay in runs/ (ignored by git).
# Budgets are the ones recorded in docs/RESULTS.md; raise --epochs / --max-steps-per-epoch for a
# better supernet (the paper trains 50 epochs on ImageNet with 8 GPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-../shared/data/cifar10-jpg}"

# 1. Supernet: SPOS uniform single-path sampling, 2 CPU processes under torchrun (gloo),
#    one thread each; batch 32 per process.
OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 -m sgnas train-supernet \
    --space cifar10 --data "$DATA" --out runs/supernet-cifar10 \
    --epochs 8 --max-steps-per-epoch 150 --batch-size 32 --paths-per-step 1 --lr 0.05 --grad-clip 5 --warmup-epochs 0.5 \
    --workers 1 --seed 0 --log-every 25 --resume
python - <<'PY'
from sgnas.evaluation.checkpoint import slim_supernet
print(slim_supernet("runs/supernet-cifar10/supernet.pt", "supernets/cifar10-spos.pt"))
PY

# 2. Latency LUT of this machine over the cifar10 space, then its calibration on whole networks.
#    (measured into runs/, then copied over the shipped file: the tools never write shipped files)
sgnas-profile --device cpu --space cifar10 --out runs/cpu-cifar10.json --force \
    --plot docs/figures/cpu-cifar10.fidelity.png --json
cp runs/cpu-cifar10.json lut/cpu-cifar10.json

# 3. The generators (latency on that LUT, and FLOPs), trained on the held-out part of the
#    training split (512 of its images kept for the best-checkpoint criterion); best.pt is shipped.
for COST in "--lut lut/cpu-cifar10.json" "--cost flops"; do
    NAME=$(echo "$COST" | sed 's/--lut .*/latency/; s/--cost //')
    OMP_NUM_THREADS=1 sgnas train-generator --supernet supernets/cifar10-spos.pt $COST \
        --data "$DATA" --epochs 6 --batches-per-epoch 30 --tau-decay 0.75 --workers 0 \
        --out "runs/gen-$NAME" --no-progress --resume
done
python - <<'PY'
import shutil

from sgnas.generator import load_generator

for name in ("latency", "flops"):
    src = f"runs/gen-{name}/best.pt"
    bundle = load_generator(src)
    dst = f"generators/{bundle.space.name}-{bundle.cost['name']}-{bundle.cost['fingerprint']}.pt"
    shutil.copyfile(src, dst)
    print(dst)
PY
