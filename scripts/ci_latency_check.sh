#!/usr/bin/env bash
# CI demo of the README's latency workflow on CPU with ONNX Runtime (a few minutes at most):
# make the baseline on this machine, then check changes against it.
#
#   1. record a baseline of a CIFAR-10 network on device cpu (--update), which keeps a copy of
#      the model beside it (baseline.model/)                                             -> exit 0
#   2. re-check the unchanged model                                       -> exit 0 (3 if busy)
#   3. check another model without --allow-model-change (the sha256 guard)               -> exit 2
#   4. check a planted ~10% slowdown: the same network with two layers at their largest
#      configuration (real extra compute, a heavier architecture of the same space)
#                                                                          -> exit 1 (3 if busy)
#   5. bad input: a JUnit report in a folder that does not exist                        -> exit 2
#   6. the shipped LUT, built on another machine, is no baseline here                    -> exit 3
#
# Steps 2 and 4 time the model against the baseline's copy of its model, interleaved (a paired
# comparison, which a busy neighbour slows alike). Exit 3, "inconclusive", is still accepted there
# (a check that abstains is never a pass or a failure of the gate) and counted in the summary --
# the script asserts that an unchanged model never fails and a slowdown never passes. scripts/bench_ci_check.py measures how
# often each verdict comes (docs/RESULTS.md).
#
# Usage: scripts/ci_latency_check.sh [--hog]
#   --hog  run steps 2 and 4 beside a CPU hog (a 1-thread numpy loop on the other core).
# Environment: SGNAS_CI_DEVICE (default cpu), SGNAS_CI_REPORTS (folder to keep the JUnit/JSON
# reports in), PYTHON (default python). Exits 0 only if every step behaved as expected.
set -uo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python}"
DEVICE="${SGNAS_CI_DEVICE:-cpu}"
HOG=0
case "${1:-}" in
    --hog) HOG=1 ;;
    "") ;;
    *) echo "usage: $0 [--hog]" >&2; exit 2 ;;
esac
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sgnas-ci-check.XXXXXX")"
HOG_PID=""
cleanup() {
    [ -n "$HOG_PID" ] && kill "$HOG_PID" 2>/dev/null && wait "$HOG_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
REPORTS="${SGNAS_CI_REPORTS:-$WORK}"
mkdir -p "$REPORTS"
BASE="$WORK/baseline.json"
failures=0
inconclusive=0

sgnas() { "$PY" -m sgnas "$@"; }

hog_on() {
    [ "$HOG" -eq 1 ] || return 0
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$PY" scripts/bench_ci_check.py --hog &
    HOG_PID=$!
    sleep 1
    echo "--> CPU hog running beside the check (pid $HOG_PID)"
}

hog_off() {
    [ -n "$HOG_PID" ] || return 0
    kill "$HOG_PID" 2>/dev/null
    wait "$HOG_PID" 2>/dev/null
    HOG_PID=""
}

# expect WANT DESCRIPTION COMMAND...: run COMMAND; WANT is one exit code or a list like "0|3".
expect() {
    local want=$1 what=$2 rc
    shift 2
    "$@"
    rc=$?
    if [[ "|$want|" == *"|$rc|"* ]]; then
        [ "$rc" -eq 3 ] && inconclusive=$((inconclusive + 1))
        echo "--> ok: $what (exit $rc, expected $want)"
        return 0
    fi
    echo "--> UNEXPECTED: $what exited $rc, expected $want"
    return 1
}

echo "== building the model and its planted ~10% slowdown (profiler.graphs)"
"$PY" - "$WORK" <<'EOF' || { echo "--> UNEXPECTED: building the models failed"; exit 1; }
import sys
from pathlib import Path

sys.path.insert(0, "scripts")
from bench_ci_check import build_models

model, heavy, arch, heavy_arch = build_models(Path(sys.argv[1]))
print(f"{model.name}: {arch}\n{heavy.name}: {heavy_arch}")
EOF

echo
echo "== step 1: record the baseline on device $DEVICE"
expect 0 "baseline recorded" \
    sgnas check --onnx "$WORK/model.onnx" --device "$DEVICE" --baseline "$BASE" --update \
    || failures=$((failures + 1))
[ -f "$BASE" ] || { echo "--> UNEXPECTED: no baseline written"; exit 1; }
cmp -s "$WORK/model.onnx" "$WORK/baseline.model/model.onnx" \
    || { echo "--> UNEXPECTED: no copy of the model beside the baseline"; exit 1; }
before="$(sha256sum "$BASE")"

hog_on
echo
echo "== step 2: unchanged model against its baseline"
expect "0|3" "unchanged model does not fail" \
    sgnas check --onnx "$WORK/model.onnx" --device "$DEVICE" --baseline "$BASE" \
    --junit "$REPORTS/unchanged.xml" --json "$REPORTS/unchanged.json" \
    || failures=$((failures + 1))

echo
echo "== step 3: another model without --allow-model-change is refused"
expect 2 "model change refused" \
    sgnas check --onnx "$WORK/heavy.onnx" --device "$DEVICE" --baseline "$BASE" \
    || failures=$((failures + 1))

echo
echo "== step 4: the planted ~10% slowdown is a regression"
expect "1|3" "slowdown not passed" \
    sgnas check --onnx "$WORK/heavy.onnx" --device "$DEVICE" --baseline "$BASE" \
    --allow-model-change --junit "$REPORTS/slowdown.xml" --json "$REPORTS/slowdown.json" \
    || failures=$((failures + 1))
hog_off

echo
echo "== step 5: a JUnit report in a folder that does not exist"
expect 2 "bad report path refused before measuring" \
    sgnas check --onnx "$WORK/model.onnx" --device "$DEVICE" --baseline "$BASE" \
    --junit "$WORK/no/such/folder/report.xml" \
    || failures=$((failures + 1))

echo
echo "== step 6: the shipped LUT was built on another machine"
expect 3 "LUT of another host is inconclusive" \
    sgnas check --lut lut/cpu.json --device cpu --junit "$REPORTS/lut.xml" \
    || failures=$((failures + 1))

if [ "$(sha256sum "$BASE")" != "$before" ]; then
    echo "--> UNEXPECTED: the baseline changed during the checks"
    failures=$((failures + 1))
fi

echo
if [ "$failures" -eq 0 ]; then
    echo "ci_latency_check: all steps behaved as expected ($inconclusive inconclusive)"
    exit 0
fi
echo "ci_latency_check: $failures step(s) behaved unexpectedly"
exit 1
