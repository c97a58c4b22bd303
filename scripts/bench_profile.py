"""Benchmark every latency-LUT target in one run: default profiles, fidelity, re-profile, check.

1. ``sgnas-profile --device D --space S`` (the default: entries, then calibration networks over the
   whole range, half fit, half held out) for each of ``--spaces``, as a user runs it (a fresh
   process, timed from start to exit); the held-out fidelity it stored in the LUT, per third;
2. re-profile stability: each new LUT against ``--compare-S PATH`` (a LUT of the same device and
   space built earlier, e.g. the shipped one or one built 30+ minutes before): median relative
   difference of the entries' ratios to the reference (state-free) and of their ms;
3. ``sgnas check --onnx`` on a CIFAR-10 network: a baseline recorded once, ``--reruns`` unchanged
   re-runs (false alarms), and ``--slowdown-runs`` runs for each of ``--slowdowns`` against a baseline
   whose model latency is scaled down by that factor (the probe's figures left as recorded);
4. the disturbance check of ``scripts/bench_interleave.py`` (entry alone vs interleaved with the
   live reference), ``--disturbance-cycles`` cycles (0: skipped).

Prints one JSON line with every figure and each target's verdict::

    python scripts/bench_profile.py --out runs/bench-profile \\
        --compare-cifar10 lut/cpu-cifar10.json --compare-imagenet lut/cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: The targets of the latency work (fractions): per space, held-out share within ±5%, all within
#: ±10%, Spearman; re-profile median entry difference; default profile wall time.
TARGETS = {
    "imagenet": {"within_5pct": 0.95, "max_abs_error": 0.10, "spearman": 0.95},
    "cifar10": {"within_5pct": 0.90, "max_abs_error": 0.10, "spearman": 0.90},
    "reprofile_median_diff": 0.02,
    "profile_seconds": 360.0,
    "false_alarms": 0,
    "slowdown_caught": 1.0,
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="device name or descriptor YAML (default cpu)")
    p.add_argument("--spaces", default="imagenet,cifar10", help="spaces to profile (comma list)")
    p.add_argument("--validate", type=int, default=None,
                   help="calibration networks per profile (default: sgnas-profile's)")
    p.add_argument("--out", default="runs/bench-profile", help="folder for the LUTs and reports")
    for space in ("imagenet", "cifar10", "tiny"):
        p.add_argument(f"--compare-{space}", metavar="PATH",
                       help=f"an earlier LUT of the {space} space to compare the new one with")
    p.add_argument("--reruns", type=int, default=20, help="unchanged sgnas check re-runs")
    p.add_argument("--slowdowns", default="0.10", help="slowdowns to plant (comma list)")
    p.add_argument("--slowdown-runs", type=int, default=5, help="runs per planted slowdown")
    p.add_argument("--disturbance-cycles", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def load_lut_any(path):
    from sgnas.lut import load_lut

    return load_lut(path, allow_incomplete=True)


def entry_differences(a, b) -> dict:
    """Relative differences of the entries two LUTs share: of their ratios to the reference (when
    both are normalized with the same reference) and of their ms."""
    keys = sorted(set(a.entries) & set(b.entries))
    out: dict = {"n": len(keys), "created": [a.created, b.created]}
    if not keys:
        return out

    def stats(rel):
        rel = np.asarray(rel)
        return {"median": float(np.median(rel)), "p90": float(np.percentile(rel, 90)),
                "max": float(rel.max()), "within_2pct": float(np.mean(rel <= 0.02))}

    out["ms"] = stats([abs(b.entries[k].median_ms / a.entries[k].median_ms - 1) for k in keys])
    same_ref = a.normalized and b.normalized and a.reference.get("model") == b.reference.get("model")
    if same_ref:
        out["ratio"] = stats([abs(b.entries[k].ratio / a.entries[k].ratio - 1) for k in keys])
        out["reference_state_ms"] = [a.reference.get("state_ms"), b.reference.get("state_ms")]
    return out


def minutes_apart(a, b) -> float | None:
    import datetime as dt

    try:
        ta, tb = dt.datetime.fromisoformat(a.created), dt.datetime.fromisoformat(b.created)
    except (TypeError, ValueError):
        return None
    return abs((tb - ta).total_seconds()) / 60.0


def profile(device: str, space: str, out: Path, validate: int | None) -> dict:
    """Run the default ``sgnas-profile`` in a fresh process; its JSON line, wall time, fidelity."""
    cmd = [sys.executable, "-m", "sgnas.cli.main", "profile", "--device", device, "--space", space,
           "--out", str(out), "--force", "--wait", "--json"]
    if validate is not None:
        cmd += ["--validate", str(validate)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["?"], "rc": proc.returncode}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    lut = load_lut_any(out)
    metrics = dict(lut.calibration.metrics) if lut.calibration is not None else {}
    metrics.pop("networks", None)
    return {"command": " ".join(cmd[2:]), "wall_s": round(wall, 1), "result": result,
            "calibration": metrics, "load_before": os.getloadavg()}


def calibration_alternatives(lut) -> dict:
    """Held-out figures of calibrations richer than the shipped linear map, refitted on the LUT's
    stored calibration networks (same fit / held-out split): per-stage sums (measured ≈ Σ a_s ·
    stage_s + b, the fixed stem and head folded into b) next to the same linear map."""
    from profiler.calibration_set import _stages
    from profiler.fidelity import error_metrics
    from sgnas.space import get_space, load_architecture

    cal = lut.calibration
    nets = (cal.metrics.get("networks") if cal is not None else None) or []
    if len(nets) < 8:
        return {}
    space = get_space(lut.space)
    table = lut.layer_table(space)
    stages = _stages(space)
    rows, y, fit = [], [], []
    for arch_s, raw, measured, is_fit in nets:
        arch = space.validate(load_architecture(arch_s))
        idx = [space.config_index[c] for c in arch.layers]
        per_stage = [sum(table[i, idx[i]] for i in st) for st in stages]
        rows.append([lut.fixed_ms(space)] + per_stage)
        y.append(measured)
        fit.append(bool(is_fit))
    X, y, fit = np.asarray(rows), np.asarray(y), np.asarray(fit)
    raw = X.sum(axis=1)

    def held_out(features):
        A = np.column_stack([features, np.ones(len(y))])
        coef, *_ = np.linalg.lstsq(A[fit], y[fit], rcond=None)
        m = error_metrics(A[~fit] @ coef, y[~fit])
        return {k: m[k] for k in ("n", "mape", "within_5pct", "within_10pct", "max_abs_error",
                                  "spearman")}

    return {"linear_lstsq": held_out(raw[:, None]), "per_stage": held_out(X),
            "stages": len(stages)}


def fidelity_verdict(space: str, metrics: dict) -> dict:
    t = TARGETS.get(space)
    if not t or not metrics:
        return {}
    return {"within_5pct": metrics.get("heldout_calibrated_within_5pct", 0) >= t["within_5pct"],
            "all_within_10pct": metrics.get("heldout_calibrated_max_abs_error", 1) <= t["max_abs_error"],
            "spearman": metrics.get("heldout_spearman", 0) >= t["spearman"]}


def check_runs(device: str, out: Path, reruns: int, slowdowns: list[float], runs: int,
               seed: int) -> dict:
    """``sgnas check --onnx`` false alarms over unchanged re-runs and planted-slowdown catch rates."""
    from profiler import graphs
    from profiler.check import CheckConfig, check_onnx, update_baseline
    from sgnas.space import get_space

    space = get_space("cifar10")
    arch = space.sample(np.random.default_rng(seed))
    model = graphs.save_model(graphs.network_graph(space, arch, 1)[1], out / "check-model.onnx")
    base = out / "check-baseline.json"
    t0 = time.perf_counter()
    update_baseline(model, device, base)
    cfg = CheckConfig()  # the default tolerance
    rows = []
    for _ in range(reruns):
        r = check_onnx(model, device, base, cfg)
        rows.append(_row(r))
    recorded = json.loads(base.read_text())
    caught = {}
    for s in slowdowns:
        scaled = json.loads(json.dumps(recorded))
        m = scaled["measurement"]
        for k in ("median_ms", "p10_ms", "p90_ms", "mean_ms", "min_ms"):
            if k in m and m[k] is not None:
                m[k] = m[k] / (1.0 + s)
        path = out / f"check-baseline-slow{int(round(100 * s))}.json"
        path.write_text(json.dumps(scaled))
        res = [_row(check_onnx(model, device, path, cfg)) for _ in range(runs)]
        caught[f"{s:.2f}"] = {"caught": sum(r["exit"] == 1 for r in res), "runs": runs,
                              "model_failed": sum(r["model_status"] == "regressed" for r in res),
                              "ratios": [r["model_ratio"] for r in res]}
    alarms = sum(r["exit"] == 1 for r in rows)
    return {"arch": str(arch), "tolerance": cfg.tolerance,
            "runtime_tolerance": cfg.runtime_tolerance,
            "baseline_ms": recorded["measurement"]["median_ms"],
            "probe": {k: v for k, v in recorded.get("probe", {}).items() if k != "samples"},
            "reruns": reruns, "false_alarms": alarms,
            "rerun_model_ratio": _spread([r["model_ratio"] for r in rows]),
            "rerun_runtime_factor": _spread([r["runtime_factor"] for r in rows
                                             if r["runtime_factor"] is not None]),
            "rerun_machine_factor": _spread([r["machine_factor"] for r in rows
                                             if r["machine_factor"] is not None]),
            "rerun_statuses": [r["statuses"] for r in rows if r["exit"] == 1],
            "slowdowns": caught, "seconds": round(time.perf_counter() - t0, 1)}


def _row(report) -> dict:
    model = report.results[0]
    return {"exit": report.exit_code, "model_status": model.status, "model_ratio": model.ratio,
            "runtime_factor": report.noise.get("runtime_factor"),
            "machine_factor": report.noise.get("machine_factor"),
            "statuses": {r.name: r.status for r in report.results}}


def _spread(values) -> dict:
    if not values:
        return {}
    v = np.asarray(values, dtype=np.float64)
    return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def disturbance(cycles: int) -> dict:
    if cycles <= 0:
        return {}
    cmd = [sys.executable, str(ROOT / "scripts" / "bench_interleave.py"), "--seconds", "20",
           "--cycles", str(cycles)]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"disturbance": d["disturbance"],
            "ratio_window_drift": d["drift"]["ratio_entry_reference"]["drift"],
            "entry_window_drift": d["drift"]["entry_ms"]["drift"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    record: dict = {"bench": "profile", "device": args.device, "started": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_start": os.getloadavg(), "targets": TARGETS}
    spaces = [s for s in args.spaces.split(",") if s]
    for space in spaces:
        path = out / f"{args.device}-{space}.json"
        r = profile(args.device, space, path, args.validate)
        if "error" not in r:
            r["verdict"] = fidelity_verdict(space, r["calibration"])
            r["calibration_alternatives"] = calibration_alternatives(load_lut_any(path))
            r["verdict"]["profile_seconds"] = r["wall_s"] <= TARGETS["profile_seconds"]
            earlier = getattr(args, f"compare_{space}")
            if earlier:
                a, b = load_lut_any(earlier), load_lut_any(path)
                diff = entry_differences(a, b)
                diff["against"] = str(earlier)
                diff["minutes_apart"] = minutes_apart(a, b)
                r["reprofile"] = diff
                key = "ratio" if "ratio" in diff else "ms"
                if key in diff:
                    r["verdict"]["reprofile"] = diff[key]["median"] <= TARGETS["reprofile_median_diff"]
        record[space] = r
    slowdowns = [float(s) for s in args.slowdowns.split(",") if s]
    if args.reruns or slowdowns:
        c = check_runs(args.device, out, args.reruns, slowdowns, args.slowdown_runs, args.seed)
        c["verdict"] = {"false_alarms": c["false_alarms"] <= TARGETS["false_alarms"],
                        **{f"caught_{k}": v["caught"] == v["runs"]
                           for k, v in c["slowdowns"].items()}}
        record["check"] = c
    record["interleave"] = disturbance(args.disturbance_cycles)
    record["load_end"] = os.getloadavg()
    record["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
