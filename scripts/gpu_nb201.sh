#!/usr/bin/env bash
# NB201 supernet on one NVIDIA GPU, < 9 minutes: uniform single-path training of the NB201 supernet
# on CIFAR-10's class-balanced 25k training half (NB201's cifar10-valid protocol, the same settings
# as the CPU run in docs/RESULTS.md but batch 256, lr 0.1, bf16 autocast, channels-last, as many
# epochs as fit TRAIN_SECONDS), then its ranking quality: Kendall tau of inherited accuracy (BN
# recalibrated) against cifar10_valid_acc over 200 cells scored on 1000 held-out images. Prints one
# JSON line; the checkpoint stays in WORKDIR/supernet (last.pt while running, supernet.pt when done).
# Augmentation (pad + crop + flip + normalize) runs on the GPU in batches (--gpu-augment: the loader
# only serves uint8 batches of the decoded cache). The JSON's "throughput" shows the bottleneck: the
# loader alone (images/s of each loader pipeline, measured apart from training), and per epoch the
# time the step waited for batches, the copy + GPU augmentation time, and the step's own images/s
# (forward, backward, optimizer; CUDA synchronized) beside the end-to-end images/s.
#
# Usage: scripts/gpu_nb201.sh [WORKDIR]     (run from the repository root; WORKDIR defaults to $OUT)
# Environment: TRAIN_SECONDS (default 330), DATA (default ../shared/data/cifar10-jpg, or
# shared/data/cifar10-jpg inside the checkout), BENCH (nb201.csv's folder), WORKERS (default 8),
# GPU_AUGMENT (default 1; 0 augments in the loader workers instead). For a dry run of every step
# on a small folder: DEVICE (default cuda), BATCH (256), HELD_OUT (25000), CELLS (200),
# EVAL_IMAGES (1000).
# An interrupted training continues with `sgnas train-supernet ... --resume` (command in the JSON).
# Without an NVIDIA GPU (or torch with CUDA) it stops at once with {"ok": false, ...}, exit 2.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_preamble.sh "$@"
TRAIN_SECONDS="${TRAIN_SECONDS:-330}"
WORKERS="${WORKERS:-8}"
GPU_AUGMENT="${GPU_AUGMENT:-1}"
DEVICE="${DEVICE:-cuda}"
BATCH="${BATCH:-256}"
HELD_OUT="${HELD_OUT:-25000}"
AUGMENT=()
[ "$GPU_AUGMENT" = 1 ] && AUGMENT=(--gpu-augment)
for d in "${DATA:-}" ../shared/data/cifar10-jpg shared/data/cifar10-jpg; do
  [ -n "$d" ] && [ -d "$d" ] && DATA="$d" && break
done
for d in "${BENCH:-}" ../shared/data/nasbench201 shared/data/nasbench201; do
  [ -n "$d" ] && [ -f "$d/nb201.csv" ] && BENCH="$d" && break
done
[ "$DEVICE" != cuda ] || "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
  || fail deps "torch sees no CUDA device"
[ -d "${DATA:-}" ] || fail data "no CIFAR-10 image folder (set DATA)"
[ -f "${BENCH:-}/nb201.csv" ] || fail data "no nb201.csv (set BENCH)"

# One short run sizes the epochs: its images/s (first epoch, data cache built) sets how many
# epochs of the real run fit TRAIN_SECONDS (the cosine schedule is fixed at the start).
COMMON=(--space nb201 --data "$DATA" --cache-dir "$WORK/cache" --held-out "$HELD_OUT" --balanced-split
        --seed 0 --batch-size "$BATCH" --paths-per-step 1 --lr 0.1 --weight-decay 5e-4 --momentum 0.9
        --label-smoothing 0 --grad-clip 5 --workers "$WORKERS" --device "$DEVICE" --amp --channels-last
        --log-every 20 --no-progress "${AUGMENT[@]}")
timeout 150 "$PY" -m sgnas.cli.main train-supernet "${COMMON[@]}" --out "$WORK/probe" --force \
  --epochs 1 > "$WORK/probe.out" 2>&1 || fail probe "the sizing run failed: $(tail -n1 "$WORK/probe.out")"
EPOCHS=$("$PY" - "$WORK/probe/train_log.jsonl" "$TRAIN_SECONDS" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
seconds = [r["time_s"] for r in rows if r.get("event") == "epoch"]
print(max(1, int(float(sys.argv[2]) / (1.1 * seconds[-1]))))
PY
) || fail probe "no epoch time in the sizing run's log"

# The loader alone (the cache is built now): images/s of the uint8 loader that --gpu-augment reads
# and of the loader that augments in its workers; a failure here only leaves them out.
timeout 60 "$PY" - "$DATA" "$WORK/cache" "$WORKERS" "$BATCH" "$HELD_OUT" \
  > "$WORK/loader.json" 2> "$WORK/loader.err" <<'PY' || echo '{}' > "$WORK/loader.json"
import json, sys
from sgnas.space import get_space
from sgnas.evaluation.data import DataConfig, build_datasets, loader_images_per_s
data, cache, workers, batch, held = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
out = {}
for name, on_device in (("uint8", True), ("augmenting", False)):
    cfg = DataConfig(root=data, batch_size=batch, workers=workers, held_out=held, balanced=True,
                     cache_dir=cache, device_augment=on_device)
    ds = build_datasets(cfg, get_space("nb201"))
    out[name] = round(loader_images_per_s(ds.train, batch, 40, workers=workers, warmup=3), 1)
print(json.dumps(out))
PY

TRAIN=("$PY" -m sgnas.cli.main train-supernet "${COMMON[@]}" --out "$WORK/supernet" --epochs "$EPOCHS"
       --save-every-steps 200)
timeout $((TRAIN_SECONDS + 90)) "${TRAIN[@]}" --force > "$WORK/train.out" 2>&1 \
  || fail train "training stopped: $(tail -n1 "$WORK/train.out") (continue with --resume)"
timeout 120 "$PY" scripts/eval_nb201_supernet.py --checkpoint "$WORK/supernet/supernet.pt" \
  --data "$DATA" --bench "$BENCH" --cache-dir "$WORK/cache" --cells "${CELLS:-200}" --eval-images "${EVAL_IMAGES:-1000}" \
  --calib-batches 4 --batch-size "$BATCH" --device "$DEVICE" --out "$WORK/tau.json" > "$WORK/tau.out" 2> "$WORK/tau.err" \
  || fail tau "ranking evaluation failed: $(tail -n1 "$WORK/tau.err")"

"$PY" - "$WORK" "$GPU" "$START" "$EPOCHS" "${TRAIN[*]}" <<'PY'
import json, sys, time
work, gpu, start, epochs, command = sys.argv[1:6]
log = [json.loads(line) for line in open(f"{work}/supernet/train_log.jsonl")]
ep = [r for r in log if r.get("event") == "epoch"]
tau = json.loads(open(f"{work}/tau.out").read().strip().splitlines()[-1])
try:
    loader = json.loads(open(f"{work}/loader.json").read() or "{}")
except ValueError:
    loader = {}
last = ep[-1]
wait_share = last.get("wait_s", 0.0) / max(last["time_s"], 1e-9)
print(json.dumps({
    "ok": True, "gpu": gpu, "epochs": int(epochs), "train_s": round(sum(r["time_s"] for r in ep), 1),
    "last_epoch": {k: last.get(k) for k in ("loss", "top1", "images_per_s") if k in last},
    "throughput": {
        "augment_on": last.get("augment_on"),
        "end_to_end_images_per_s": round(last["images_per_s"], 1),
        "step_images_per_s": round(last.get("step_images_per_s", 0.0), 1),
        "loader_alone_images_per_s": loader,
        "last_epoch_s": {k: round(last.get(k, 0.0), 3) for k in ("time_s", "wait_s", "input_s", "step_s")},
        "bottleneck": "loader" if wait_share > 0.2 else "step",
    },
    "ranking": {k: tau[k] for k in ("cells", "connected_cells", "kendall_tau", "kendall_tau_connected",
                                    "spearman", "mean_inherited", "max_inherited", "eval_images")},
    "checkpoint": f"{work}/supernet/supernet.pt", "resume": command + " --resume",
    "wall_s": int(time.time()) - int(start),
}))
PY
