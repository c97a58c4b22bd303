#!/usr/bin/env bash
# Quick start: measure this machine, then generate architectures for three latency targets.
#
#   1. sgnas-profile builds the latency LUT of the CIFAR-10 space on device `cpu`
#      (ONNX Runtime, 1 pinned thread) -- every layer x 80 configurations, plus stem and head,
#      each timed against a live reference block -- then measures 40 whole networks spread over
#      the whole latency range, fits the LUT's calibration on half and reports its error on the
#      other half (per third of the range);
#   2. (an interrupted calibration is re-done from the saved entries);
#   3. sgnas-generate asks the shipped generator (generators/, trained once on CIFAR-10 against the
#      shipped supernet) for three targets inside [C_L, C_H] on this LUT and decodes its
#      distribution exactly: the most probable architecture whose calibrated latency on this LUT
#      lies in [T (1 - 1%), T]; then it measures every generated network end to end. A LUT
#      profiled here is another latency model than the one the generator was trained on; it is
#      served without retraining (targets are placed by their position in this LUT's interval).
#
# An interrupted run continues where it stopped when started again. Outputs go to
# $SGNAS_QUICKSTART_OUT (default outputs/quickstart).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${SGNAS_QUICKSTART_OUT:-outputs/quickstart}"
DEVICE="${SGNAS_QUICKSTART_DEVICE:-cpu}"
LUT="$OUT/$DEVICE-cifar10.json"
mkdir -p "$OUT"

echo "== 1/3 profiling device '$DEVICE' over the cifar10 space -> $LUT (entries, then calibration)"
if [ -f "$LUT" ]; then
    sgnas-profile --device "$DEVICE" --space cifar10 --out "$LUT" --resume --validate 40 \
        --plot "$OUT/fidelity.png"
else
    sgnas-profile --device "$DEVICE" --space cifar10 --out "$LUT" --validate 40 \
        --plot "$OUT/fidelity.png"
fi

echo "== 2/3 the LUT is calibrated"
python -c "import sys; from sgnas.lut import load_lut; sys.exit(load_lut('$LUT').calibration is None)" \
    || sgnas-profile --device "$DEVICE" --space cifar10 --validate 40 --lut "$LUT" \
        --plot "$OUT/fidelity.png"

echo "== 3/3 generating architectures for three latency targets and measuring them"
# Three targets at 20%, 50% and 80% of [C_L, C_H] on this LUT (p1..p99 of forced-sampling
# architectures' latency).
TARGETS=$(python - "$LUT" <<'PY'
import sys

from sgnas.costs import LatencyCost
from sgnas.generator import default_generator_dirs, resolve_generator
from sgnas.lut import load_lut
from sgnas.space import get_space

lut = load_lut(sys.argv[1])
cost = LatencyCost(lut, get_space(lut.space))
bundle, _ = resolve_generator(cost, default_generator_dirs())
lo, hi = bundle.interval_for(cost)
print(" ".join(f"{lo + f * (hi - lo):.3f}" for f in (0.2, 0.5, 0.8)))
PY
)
sgnas-generate --latency-ms $TARGETS --lut "$LUT" --decode exact --eps 0.01 --measure \
    --out "$OUT/architectures" --force
echo "== done: LUT $LUT, architectures in $OUT/architectures, fidelity plot $OUT/fidelity.png"
