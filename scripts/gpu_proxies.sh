#!/usr/bin/env bash
# Zero-cost proxy tables of all 15,625 NAS-Bench-201 cells on one NVIDIA GPU, < 6 minutes: synflow,
# naswot, jacob_cov, snip and grad_norm at initialization (seed 0) on 64 class-balanced CIFAR-10
# training images, computed by scripts/nb201_proxies.py with WORKERS processes sharing the GPU (one
# skeleton network each, cells reduced to their 5,424 functional classes). Prints one JSON line.
#
# Usage: scripts/gpu_proxies.sh [--smoke] [WORKDIR]   (run from the repository root; WORKDIR
#        defaults to $OUT)
# Writes under WORKDIR (five files, so that all of them come back from a device run):
# proxies/nb201_proxies.csv (arch_str and one column per proxy, every cell, dead cells at a finite
# floor below all live ones; sgnas.signals.nb201_table(name, csv=FILE) reads column `name`),
# proxies/summary.json, proxies/minibatch.pt, proxies.out, proxies.err. The resumable score caches
# go to CACHE_DIR (default: a temporary folder outside WORKDIR).
# Environment: DATA (a CIFAR-10 image folder; default ../shared/data/cifar10-jpg,
# shared/data/cifar10-jpg, else .gpu_data/cifar10-jpg.tar.gz extracted to a temporary folder),
# MINIBATCH (a minibatch.pt written by scripts/nb201_proxies.py, used when no image folder is found;
# default .gpu_data/minibatch.pt), BENCH (nb201.csv's folder, also looked for in .gpu_data/nasbench201:
# adds Kendall tau per proxy over the connected cells when present), WORKERS (default 12),
# BATCH (default 64), LIMIT_SECONDS (default 330), CACHE_DIR.
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
MINIBATCH="${MINIBATCH:-.gpu_data/minibatch.pt}"
for d in "${BENCH:-}" ../shared/data/nasbench201 shared/data/nasbench201 .gpu_data/nasbench201; do
  [ -n "$d" ] && [ -f "$d/nb201.csv" ] && BENCH="$d" && break
done
if [ "$SMOKE" = 1 ]; then
  ARGS=(--cells 50 --workers 2 --batch-size 16 --device cpu)
  [ -d "${DATA:-}/train" ] && ARGS+=(--data "$DATA") || ARGS+=(--random-data)
else
  ARGS=(--cells all --workers "${WORKERS:-12}" --batch-size "${BATCH:-64}" --device cuda)
  if [ -d "${DATA:-}/train" ]; then ARGS+=(--data "$DATA")
  elif [ -f "$MINIBATCH" ]; then ARGS+=(--minibatch "$MINIBATCH")
  else fail data "no CIFAR-10 image folder (set DATA, or provide .gpu_data/cifar10-jpg.tar.gz or a minibatch.pt)"; fi
fi
[ -f "${BENCH:-}/nb201.csv" ] && ARGS+=(--bench "$BENCH")
CACHE_DIR="${CACHE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sgnas-proxy-cache.XXXXXX")}"
"$PY" scripts/nb201_proxies.py "${ARGS[@]}" --proxies all --seed 0 --threads 1 --quiet \
  --format wide --cache-dir "$CACHE_DIR" \
  --max-seconds "$LIMIT_SECONDS" --out "$WORK/proxies" > "$WORK/proxies.out" 2> "$WORK/proxies.err" \
  || fail proxies "proxy computation failed: $(tail -n1 "$WORK/proxies.err")"

"$PY" - "$WORK" "$GPU" "$START" "$SMOKE" <<'PY'
import json, sys, time
work, gpu, start, smoke = sys.argv[1:5]
run = json.loads(open(f"{work}/proxies.out").read().strip().splitlines()[-1])
out = {"ok": bool(run["ok"]), "gpu": gpu, "smoke": smoke == "1",
       **{k: run[k] for k in ("cells", "scored", "classes_computed_now", "proxies", "batch_size",
                              "workers", "device", "compute_s", "workers_cpu_s", "stopped_at_max_seconds",
                              "worker_failures", "files", "data", "data_sha")}}
if "ranking" in run:
    out["ranking"] = run["ranking"]
out["wall_s"] = int(time.time()) - int(start)
print(json.dumps(out))
PY
