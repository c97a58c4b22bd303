#!/usr/bin/env bash
# Zero-cost proxy tables of all 15,625 NAS-Bench-201 cells on one NVIDIA GPU, < 6 minutes: synflow,
# naswot, jacob_cov, snip and grad_norm at initialization (seed 0) on 64 class-balanced CIFAR-10
# training images, computed by scripts/nb201_proxies.py with WORKERS processes sharing the GPU (one
# skeleton network each, cells reduced to their 5,424 functional classes). Prints one JSON line.
#
# Usage: scripts/gpu_proxies.sh [--smoke] [WORKDIR]   (run from the repository root; WORKDIR
#        defaults to $OUT)
# Writes under WORKDIR: proxies/<proxy>.csv (arch_str,score; one file per proxy, every cell, dead
# cells at a finite floor below all live ones; sgnas.signals.nb201_table(name, csv=FILE) reads one),
# proxies/summary.json, proxies/minibatch.pt, proxies/cache/ (the resumable score caches).
# Environment: DATA (a CIFAR-10 image folder; default ../shared/data/cifar10-jpg,
# shared/data/cifar10-jpg, else .gpu_data/cifar10-jpg.tar.gz extracted to a temporary folder),
# BENCH (nb201.csv's folder: adds Kendall tau per proxy when present), WORKERS (default 12),
# BATCH (default 64), LIMIT_SECONDS (default 330).
# --smoke: 50 cells on the CPU (2 workers, batch 16; random images when no CIFAR-10 folder is
# found), no GPU needed: checks the path end to end.
# Without an NVIDIA GPU (or torch with CUDA) and without --smoke it stops at once with
# {"ok": false, ...}, exit 2.
set -uo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
if [ "$SMOKE" = 1 ]; then  # the preamble's settings without its GPU check
  WORK="${1:-${OUT:-$(mktemp -d)}}"
  mkdir -p "$WORK"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  PY="${PYTHON:-python}"
  START=$(date +%s)
  GPU="none (smoke run on the CPU)"
  fail() {  # fail STEP MESSAGE
    "$PY" -c 'import json,sys; print(json.dumps({"ok": False, "step": sys.argv[1], "error": sys.argv[2]}))' "$1" "$2" \
      2>/dev/null || echo "{\"ok\": false, \"step\": \"$1\", \"error\": \"$2\"}"
    exit 2
  }
else
  source scripts/gpu_preamble.sh "$@"
  "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || fail deps "torch sees no CUDA device"
fi
LIMIT_SECONDS="${LIMIT_SECONDS:-330}"
for d in "${DATA:-}" ../shared/data/cifar10-jpg shared/data/cifar10-jpg; do
  [ -n "$d" ] && [ -d "$d/train" ] && DATA="$d" && break
done
if [ ! -d "${DATA:-}/train" ] && [ -f .gpu_data/cifar10-jpg.tar.gz ]; then
  X="$(mktemp -d "${TMPDIR:-/tmp}/sgnas-cifar10.XXXXXX")"
  tar -xzf .gpu_data/cifar10-jpg.tar.gz -C "$X" || fail data "cannot extract .gpu_data/cifar10-jpg.tar.gz"
  DATA="$(dirname "$(find "$X" -maxdepth 3 -type d -name train | head -n1)")"
fi
for d in "${BENCH:-}" ../shared/data/nasbench201 shared/data/nasbench201; do
  [ -n "$d" ] && [ -f "$d/nb201.csv" ] && BENCH="$d" && break
done
if [ "$SMOKE" = 1 ]; then
  ARGS=(--cells 50 --workers 2 --batch-size 16 --device cpu)
  [ -d "${DATA:-}/train" ] && ARGS+=(--data "$DATA") || ARGS+=(--random-data)
else
  [ -d "${DATA:-}/train" ] || fail data "no CIFAR-10 image folder (set DATA or provide .gpu_data/cifar10-jpg.tar.gz)"
  ARGS=(--cells all --workers "${WORKERS:-12}" --batch-size "${BATCH:-64}" --device cuda --data "$DATA")
fi
"$PY" scripts/nb201_proxies.py "${ARGS[@]}" --proxies all --seed 0 --threads 1 --quiet \
  --max-seconds "$LIMIT_SECONDS" --out "$WORK/proxies" > "$WORK/proxies.out" 2> "$WORK/proxies.err" \
  || fail proxies "proxy computation failed: $(tail -n1 "$WORK/proxies.err")"

"$PY" - "$WORK" "$GPU" "$START" "${BENCH:-}" "$SMOKE" <<'PY'
import json, os, sys, time
work, gpu, start, bench, smoke = sys.argv[1:6]
run = json.loads(open(f"{work}/proxies.out").read().strip().splitlines()[-1])
out = {"ok": bool(run["ok"]), "gpu": gpu, "smoke": smoke == "1",
       **{k: run[k] for k in ("cells", "scored", "classes_computed_now", "proxies", "batch_size",
                              "workers", "device", "compute_s", "stopped_at_max_seconds")},
       "files": run["files"], "data": run["data"]}
if run["ok"] and bench and os.path.isfile(os.path.join(bench, "nb201.csv")):
    import numpy as np
    from sgnas.metrics import kendall_tau
    from sgnas.nb201.bench import read_cell_table
    from sgnas.nb201.space import Cell
    from sgnas.signals.nb201 import read_table_csv
    gt = read_cell_table(os.path.join(bench, "nb201.csv"), ["cifar10_valid_acc"])
    truth = dict(zip(gt.codes().tolist(), gt.columns["cifar10_valid_acc"].tolist()))
    tau = {}
    for name, path in run["files"].items():
        codes, vals = [], []
        import csv
        for row in csv.DictReader(open(path)):
            c = Cell.parse(row["arch_str"])
            if c.is_connected():
                codes.append(c.code); vals.append(float(row["score"]))
        tau[name] = round(float(kendall_tau(np.array(vals), np.array([truth[c] for c in codes]))), 4)
    out["kendall_tau_connected_cifar10_valid"] = tau
    out["tau_cells"] = len(codes)
out["wall_s"] = int(time.time()) - int(start)
print(json.dumps(out))
PY
