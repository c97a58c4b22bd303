#!/usr/bin/env bash
# GPU check of the torch-CUDA path, one NVIDIA GPU, < 8 minutes. Prints one JSON line:
#   a torch-CUDA LUT of the cifar10 space (the host's *-torch descriptor, CUDA graphs, a shortened
#   protocol so the 882 entries fit the budget), its fidelity on 20 whole networks (sgnas-profile
#   --validate 20), and CUDA-graph vs eager latency of the reference network.
# Usage: scripts/gpu_check.sh [WORKDIR]      (run from the repository root)
# Without an NVIDIA GPU (or torch with CUDA) it stops at once with {"ok": false, "error": ...}, exit 2.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_preamble.sh "$@"
"$PY" - <<'PY' || fail deps "missing Python packages or torch without CUDA (see stderr)"
import importlib, sys
missing = [m for m in ("torch", "onnx", "numpy", "scipy", "sklearn", "yaml", "matplotlib")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing: {', '.join(missing)}")
import torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device")
PY

# The *-torch descriptor whose gpu_model is in the GPU's name, with a shortened protocol.
# (A descriptor file must be named after its device: <WORK>/device/<name>.yaml.)
DESC=$("$PY" - "$GPU" "$WORK/device" <<'PY'
import dataclasses, os, sys, yaml
from profiler.devices import known_devices, load_device
gpu, folder = sys.argv[1], sys.argv[2]
for name in known_devices():
    d = load_device(name)
    if d.kind == "gpu" and d.backend == "torch" and d.gpu_model and d.gpu_model.lower() in gpu.lower():
        quick = dataclasses.replace(d.protocol, warmup_ms=30.0, warmup_min_iters=10, rounds=3,
                                    min_iters_per_round=30, min_round_ms=10.0, remeasure=1)
        d = dataclasses.replace(d, protocol=quick)
        os.makedirs(folder, exist_ok=True)
        out = os.path.join(folder, f"{name}.yaml")
        yaml.safe_dump(d.to_dict(), open(out, "w"), sort_keys=False)
        load_device(out)
        print(out)
        break
else:
    sys.exit(1)
PY
) || fail descriptor "no devices/*-torch.yaml matches GPU '$GPU'"

LUT="$WORK/lut-gpu-cifar10.json"
timeout 360 "$PY" -m sgnas.cli.main profile --device "$DESC" --space cifar10 --out "$LUT" --force \
  --no-validate --json > "$WORK/build.json" 2> "$WORK/build.err" \
  || fail build "sgnas-profile failed or ran past 360 s: $(tail -n1 "$WORK/build.err")"
timeout 75 "$PY" -m sgnas.cli.main profile --device "$DESC" --space cifar10 --validate 20 \
  --lut "$LUT" --json > "$WORK/fidelity.json" 2> "$WORK/fidelity.err" \
  || fail validate "sgnas-profile --validate 20 failed: $(tail -n1 "$WORK/fidelity.err")"
timeout 45 "$PY" scripts/gpu_graph_vs_eager.py --device "$DESC" --space cifar10 \
  > "$WORK/graph.json" 2> "$WORK/graph.err" \
  || fail graph "gpu_graph_vs_eager.py failed: $(tail -n1 "$WORK/graph.err")"

"$PY" - "$WORK" "$GPU" "$START" <<'PY'
import json, sys, time
work, gpu, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
load = lambda n: json.loads(open(f"{work}/{n}.json").read().strip().splitlines()[-1])
b, f, g = load("build"), load("fidelity"), load("graph")
lut = json.load(open(b["lut"]))
keep = ("n", "mape", "bias", "within_5pct", "within_10pct", "kendall_tau", "spearman")
print(json.dumps({
    "ok": True, "gpu": gpu, "device": b["device"], "protocol": lut["device"]["protocol"],
    "lut": {k: b[k] for k in ("entries", "complete", "noisy_entries", "seconds", "max_drift")},
    "cuda_graphs": lut["device"].get("cuda_graphs"),
    "fidelity": {"raw": {k: f["raw"].get(k) for k in keep},
                 "calibrated_heldout": {k: f["calibrated_heldout"].get(k) for k in keep},
                 "calibration": {k: f["calibration"][k] for k in ("slope", "intercept")},
                 "seconds": f["seconds"]},
    "graph_vs_eager": g,
    "wall_s": int(time.time()) - start,
}))
PY
