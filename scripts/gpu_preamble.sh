# Sourced by the prepared GPU scripts (scripts/gpu_*.sh) from the repository root: sets WORK (the
# script's first argument, else $OUT, else a temporary folder), PY, START and GPU (the first GPU's
# name), and defines `fail STEP MESSAGE` (one JSON line {"ok": false, ...}, exit 2). Stops with
# fail when the host has no NVIDIA GPU.
WORK="${1:-${OUT:-$(mktemp -d)}}"
mkdir -p "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
START=$(date +%s)

fail() {  # fail STEP MESSAGE
  "$PY" -c 'import json,sys; print(json.dumps({"ok": False, "step": sys.argv[1], "error": sys.argv[2]}))' "$1" "$2" \
    2>/dev/null || echo "{\"ok\": false, \"step\": \"$1\", \"error\": \"$2\"}"
  exit 2
}

command -v nvidia-smi >/dev/null 2>&1 || fail gpu "nvidia-smi not found: this script needs an NVIDIA GPU"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)
[ -n "$GPU" ] || fail gpu "nvidia-smi lists no GPU"
