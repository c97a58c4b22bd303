"""``sgnas check``: fail CI when latency regressed beyond the measured noise.

Exit codes: 0 within tolerance, 1 on a regression, 2 on a usage or environment error (LUT or
baseline of another device or model, corrupt file, a report path in a folder that does not exist,
missing runtime, GPU device on a host without a GPU), 3 inconclusive (a LUT or baseline made on
another host, or a suspect that a busy machine cannot tell from a regression).
"""

from __future__ import annotations

import argparse
import sys

NAME = "check"
HELP = "re-measure a LUT sample or an ONNX model and fail on latency regressions (exit 0/1/2/3)"

EPILOG = """\
examples:
  sgnas check --onnx model.onnx --device cpu --baseline latency.json --update   # once, on the runner
  sgnas check --onnx model.onnx --device cpu --baseline latency.json --junit report.xml
  sgnas check --lut lut/cpu.json --device cpu --junit report.xml   # a LUT built on this runner

exit codes: 0 within tolerance, 1 regression, 2 usage or environment error, 3 inconclusive
(made on another host: make the baseline here; or a busy machine: re-run when it is quiet).
An ONNX baseline keeps a copy of its model beside it (BASELINE.model/): the check times the
model against that copy, interleaved in one run, and judges their ratio (a slower machine or a
busy neighbour slows both alike). Baselines without the copy, and LUTs, are re-measured against
their recorded reference model (a slower machine cancels out), with a machine-speed probe: a
machine-state change is reported as noise; the reference slowing down beyond what the probe
explains is the "runtime" test (--runtime-tolerance).
tolerance of an item = max(--tolerance, min(K x spread, --max-tolerance)), where spread is the
IQR/median recorded with the baseline or measured now, whichever is larger. Measurements taken
while other processes use more than --max-neighbour-load cores do not count; a regression needs
--confirm quiet measurements beyond tolerance, spaced --remeasure-gap seconds apart.
"""


def _pct(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from profiler.check_config import CheckConfig

    d = CheckConfig()  # the defaults, written once
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--lut", metavar="PATH", help="LUT to re-measure (a sample of entries + networks)")
    src.add_argument("--onnx", metavar="PATH", help="ONNX model to compare with --baseline")
    parser.add_argument("--device", required=True, metavar="NAME",
                        help="device descriptor name or YAML path (must match the recorded device)")
    parser.add_argument("--tolerance", default=_pct(d.tolerance), metavar="PCT",
                        help="tolerance floor in percent, e.g. 10%% (default %(default)s)")
    parser.add_argument("--runtime-tolerance", default=_pct(d.runtime_tolerance), metavar="PCT",
                        help="how much more than the machine probe the reference model may slow "
                             "down before the runtime counts as regressed (default %(default)s)")
    parser.add_argument("--no-probe", action="store_true",
                        help="do not run the machine-speed probe")
    parser.add_argument("--spread-k", type=float, default=d.spread_k, metavar="K",
                        help="tolerance = max(floor, K x error of the median: spread / sqrt(pairs)) "
                             "(default %(default)s)")
    parser.add_argument("--max-tolerance", default=_pct(d.max_tolerance), metavar="PCT",
                        help="cap of the spread-derived tolerance (default %(default)s)")
    parser.add_argument("--remeasure", type=int, default=d.remeasure, metavar="N",
                        help="re-measure a suspect up to N times before failing it "
                             "(default %(default)s)")
    parser.add_argument("--reduce", choices=("min", "median"), default=d.reduce,
                        help="how re-measurements of a suspect are combined (default %(default)s; a "
                             "model timed against its baseline's copy: the median of all)")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--junit", metavar="PATH", help="write the report as JUnit XML")
    parser.add_argument("--force", action="store_true",
                        help="measure even if the host does not look like the device")
    parser.add_argument("--allow-device-change", action="store_true",
                        help="compare with a LUT/baseline recorded on another device or settings")
    parser.add_argument("--allow-host-change", action="store_true",
                        help="compare with a LUT/baseline made on another host or runtime version "
                             "(by default: inconclusive, exit 3)")
    parser.add_argument("--max-neighbour-load", type=float, default=d.max_neighbour,
                        metavar="CORES",
                        help="a measurement during which other processes use more CPU than this "
                             "(cores, /proc/stat) counts for nothing: it neither passes nor fails "
                             "an item, unless the model is timed against the baseline's own copy "
                             "(default %(default)s)")
    parser.add_argument("--confirm", type=int, default=d.confirm, metavar="N",
                        help="quiet measurements beyond tolerance needed to fail an item "
                             "(default %(default)s)")
    parser.add_argument("--state-limit", default=_pct(d.state_limit), metavar="PCT",
                        help="a machine probe further than this from the baseline's speed makes "
                             "regressions inconclusive (default %(default)s)")
    parser.add_argument("--remeasure-gap", type=float, default=d.remeasure_gap_s, metavar="S",
                        help="seconds between re-measurement rounds of suspects and between "
                             "baseline runs (default %(default)s)")
    parser.add_argument("--baseline-runs", type=int, default=d.baseline_runs, metavar="N",
                        help="--update: measurements of the model, the baseline is their median "
                             "(default %(default)s)")

    lut = parser.add_argument_group("LUT mode (--lut)")
    size = lut.add_mutually_exclusive_group()
    size.add_argument("--sample", type=int, default=d.sample, metavar="N",
                      help="entries to re-measure, stem and head included (default %(default)s)")
    size.add_argument("--full", action="store_true", help="re-measure every entry")
    lut.add_argument("--networks", type=int, default=d.networks, metavar="N",
                     help="random reference networks measured end to end (default %(default)s)")
    lut.add_argument("--network-tolerance", metavar="PCT",
                     help="tolerance floor of the networks (default --tolerance). Networks of a LUT "
                          "without a recorded end-to-end error (sgnas-profile --validate) are "
                          "reported but never fail, unless this is given")
    lut.add_argument("--uncalibrated", action="store_true",
                     help="compare networks with the raw LUT sum even if the LUT is calibrated")
    lut.add_argument("--no-canary", action="store_true",
                     help="do not re-measure the canary entry to report drift")
    lut.add_argument("--seed", type=int, default=d.seed,
                     help="seed of sampling and networks (default %(default)s)")

    onnx = parser.add_argument_group("ONNX mode (--onnx)")
    onnx.add_argument("--baseline", metavar="PATH", help="baseline JSON of the model on this device")
    onnx.add_argument("--update", action="store_true",
                      help="measure now and write or refresh --baseline (atomically)")
    onnx.add_argument("--allow-model-change", action="store_true",
                      help="compare a changed model (other sha256) with the baseline")
    onnx.add_argument("--no-model-copy", action="store_true",
                      help="--update: keep no copy of the model beside the baseline (BASELINE.model/); "
                           "check: compare with the recorded figure instead of timing the model "
                           "against the baseline's copy, side by side (the default when it has one)")
    onnx.add_argument("--input-shape", metavar="SHAPE",
                      help="input shape such as 1x3x224x224 (default: read from the model)")


def _shape(text: str | None) -> tuple[int, ...] | None:
    from ..errors import SgnasError

    if text is None:
        return None
    try:
        shape = tuple(int(x) for x in text.lower().replace(",", "x").split("x") if x.strip())
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise SgnasError(f"--input-shape {text!r} is not a shape like 1x3x224x224")
    return shape


def _config(args: argparse.Namespace):
    from profiler.check import CheckConfig, parse_tolerance

    return CheckConfig(
        tolerance=parse_tolerance(args.tolerance),
        runtime_tolerance=parse_tolerance(args.runtime_tolerance),
        probe=not args.no_probe,
        spread_k=args.spread_k,
        max_tolerance=parse_tolerance(args.max_tolerance),
        canary=not args.no_canary,
        sample=None if args.full else args.sample,
        networks=args.networks,
        seed=args.seed,
        remeasure=args.remeasure,
        reduce=args.reduce,
        calibrated=not args.uncalibrated,
        network_tolerance=(None if args.network_tolerance is None
                           else parse_tolerance(args.network_tolerance)),
        allow_device_change=args.allow_device_change,
        allow_model_change=args.allow_model_change,
        force=args.force,
        input_shape=_shape(args.input_shape),
        allow_host_change=args.allow_host_change,
        max_neighbour=args.max_neighbour_load,
        confirm=args.confirm,
        state_limit=parse_tolerance(args.state_limit),
        remeasure_gap_s=args.remeasure_gap,
        baseline_runs=args.baseline_runs,
        model_copy=not args.no_model_copy,
    )


def run(args: argparse.Namespace) -> int:
    from profiler.check_run import CheckRequest, run_check

    request = CheckRequest(device=args.device, lut=args.lut, onnx=args.onnx,
                           baseline=args.baseline, update=args.update, json=args.json,
                           junit=args.junit, config=_config(args))
    outcome = run_check(request, note=lambda line: print(f"note: {line}", file=sys.stderr))
    if outcome.baseline is not None:
        m = outcome.baseline.measurement
        runs = ", ".join(f"{x:.4f}" for x in m.get("runs_ms") or [])
        print(f"baseline written to {args.baseline}: {args.onnx} on device "
              f"{outcome.baseline.device.get('name', args.device)}, "
              f"input {list(outcome.baseline.input_shape)}, median {m['median_ms']:.4f} ms "
              f"(p10 {m.get('p10_ms', float('nan')):.4f}, p90 {m.get('p90_ms', float('nan')):.4f}, "
              f"spread {100 * float(m.get('spread', 0.0)):.1f}%, n {m.get('n', '?')}; runs {runs} ms)"
              + (f"; model copy {outcome.baseline.model_copy}" if outcome.baseline.model_copy
                 else ""))
        if outcome.busy_cores is not None and outcome.busy_cores > request.config.max_neighbour:
            print(f"warning: other processes used up to {outcome.busy_cores:.2f} cores while the "
                  "baseline was recorded; record it again when the runner is quiet",
                  file=sys.stderr)
        return 0
    report = outcome.report
    assert report is not None
    print(report.table())
    if not report.passed:
        print(f"latency regression: {', '.join(r.name for r in report.failures)}", file=sys.stderr)
    elif report.inconclusive:
        print(f"inconclusive: {report.reason()}", file=sys.stderr)
    return report.exit_code
