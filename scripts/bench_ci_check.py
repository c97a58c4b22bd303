"""Benchmark of the CI latency check: the README's workflow, run as separate processes.

Each run makes a fresh baseline of a CIFAR-10 network on the quiet machine
(``sgnas check --onnx model.onnx --baseline B --update``), then checks a model against it:

The baseline keeps a copy of the model (the default), so every check times the model against it,
interleaved (a paired comparison); ``--check-args=--no-model-copy`` measures the earlier protocol
(against the recorded figure) instead.

* ``quiet``: the unchanged model, nothing else started (target: 0 failures);
* ``hog``: the unchanged model beside a 1-thread numpy loop pinned to the other CPU (target: 0
  failures; inconclusive allowed, counted);
* ``slow``: a planted ~10% slowdown, the same network with two layers at their largest
  configuration (a heavier architecture of the same space), checked with
  ``--allow-model-change`` against the original's baseline (target: caught every time);
* ``slow_hog``: the same beside the hog (target: caught or inconclusive, never passed);
* ``other_host``: the unchanged model against a baseline whose environment names another machine,
  and the shipped LUT (built elsewhere, no machine id) in LUT mode (target: inconclusive, exit 3).

Prints one JSON line: per case the runs, exit codes and counts (ok / fail / inconclusive for
unchanged models; caught / passed / inconclusive for slowdowns), every measured ratio (first
measurement and re-measurements) and their range per case, the neighbours' load and the wall time. ``--hog`` alone runs the CPU hog until killed.

    python scripts/bench_ci_check.py --quiet 20 --hog-runs 20 --slow 5 --slow-hog 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def hog_forever() -> None:
    """A 1-thread numpy loop (matmuls and a 64 MB sweep) pinned to the last CPU."""
    os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy as np

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    a = np.random.default_rng(0).standard_normal((384, 384))
    big = np.ones(8 << 20)
    while True:
        for _ in range(8):
            a = a @ a
            a /= np.abs(a).max()
        big += 1.0


class Hog:
    """The hog as a child process (a context manager)."""

    def __enter__(self) -> "Hog":
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, __file__, "--hog"], env=env)
        time.sleep(1.0)  # let it start spinning
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def build_models(folder: Path) -> tuple[Path, Path, str, str]:
    """The model (a seeded random CIFAR-10 network) and its planted ~10% slower variant."""
    import numpy as np

    from profiler import graphs
    from sgnas.space import Architecture, get_space

    space = get_space("cifar10")
    arch = space.sample(np.random.default_rng(1))
    layers = list(arch.layers)
    for i in (2, 9):  # LUT-predicted +7.5% and +3.3%: about +11% together
        layers[i] = (7,) * 6
    heavy = space.validate(Architecture(space.name, tuple(layers)))
    paths = []
    for name, a in (("model", arch), ("heavy", heavy)):
        _, model = graphs.network_graph(space, a, batch_size=1)
        paths.append(graphs.save_model(model, folder / f"{name}.onnx"))
    return paths[0], paths[1], str(arch), str(heavy)


def sgnas(*args: str, env: dict) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sgnas", "check", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - t0, (proc.stderr.strip().splitlines() or [""])[-1]


def report_figures(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    model = next((r for r in data.get("results", []) if r.get("kind") == "model"), {})
    noise = data.get("noise") or {}
    return {"ratio": model.get("ratio"), "status": model.get("status"),
            "measurements": len(model.get("measurements_ms") or []),
            "ratios": [round(m / model["baseline_ms"], 4) for m in model.get("measurements_ms") or []]
            if model.get("baseline_ms") else [],
            "neighbour_max": noise.get("neighbour_max"), "machine": noise.get("machine_factor"),
            "paired": bool(noise.get("paired_with")),
            "baseline_model_now": noise.get("reference_vs_baseline")}


def run_case(case: str, n: int, model: Path, heavy: Path, work: Path, device: str,
             extra: list[str], env: dict, recorded_too: bool = False) -> dict:
    rows = []
    for i in range(n):
        base = work / f"{case}-{i}.json"
        rc_b, t_b, err_b = sgnas("--onnx", str(model), "--device", device, "--baseline", str(base),
                                 "--update", *extra, env=env)
        if rc_b != 0:
            rows.append({"update_exit": rc_b, "error": err_b})
            continue
        target = heavy if case.startswith("slow") else model
        args = ["--onnx", str(target), "--device", device, "--baseline", str(base),
                "--json", str(work / "r.json"), *extra]
        if target == heavy:
            args.append("--allow-model-change")
        with Hog() if case.endswith("hog") else contextlib.nullcontext():
            rc, t, err = sgnas(*args, env=env)
            row = {"exit": rc, "update_s": round(t_b, 1), "check_s": round(t, 1),
                   **report_figures(work / "r.json"), **({"stderr": err} if rc else {})}
            (work / "r.json").unlink(missing_ok=True)
            if recorded_too:  # the same baseline, right after: against the recorded figure
                rc_r, t_r, err_r = sgnas(*args, "--no-model-copy", env=env)
                row["recorded"] = {"exit": rc_r, "check_s": round(t_r, 1),
                                   **report_figures(work / "r.json"),
                                   **({"stderr": err_r} if rc_r else {})}
                (work / "r.json").unlink(missing_ok=True)
        rows.append(row)
        print(f"{case} {i + 1}/{n}: exit {rc} ({rows[-1]})", file=sys.stderr, flush=True)
    codes = [r.get("exit") for r in rows]
    if case.startswith("slow"):
        counts = {"caught": codes.count(1), "passed": codes.count(0), "inconclusive": codes.count(3)}
    else:
        counts = {"ok": codes.count(0), "fail": codes.count(1), "inconclusive": codes.count(3)}
    counts["errors"] = sum(1 for c in codes if c not in (0, 1, 3))
    if recorded_too:
        rec = [r["recorded"]["exit"] for r in rows if "recorded" in r]
        counts["recorded_exit_codes"] = rec
        rec_ratios = [r["recorded"]["ratios"][0] for r in rows
                      if "recorded" in r and r["recorded"].get("ratios")]
        if rec_ratios:
            counts["recorded_first_ratio_range"] = [min(rec_ratios), max(rec_ratios)]
    ratios = [x for r in rows for x in r.get("ratios") or []]
    spread = ({"ratio_min": min(ratios), "ratio_max": max(ratios),
               "ratio_median": float(sorted(ratios)[len(ratios) // 2])} if ratios else {})
    return {"runs": n, **counts, **spread, "exit_codes": codes, "rows": rows}


def other_host(model: Path, work: Path, device: str, extra: list[str], env: dict) -> dict:
    base = work / "other.json"
    rc_b, _, err_b = sgnas("--onnx", str(model), "--device", device, "--baseline", str(base),
                           "--update", "--baseline-runs", "1", *extra, env=env)
    if rc_b != 0:
        return {"error": err_b}
    data = json.loads(base.read_text())
    data["environment"].update(machine_id="another-runner", cpu_model="Intel(R) Xeon(R) Gold 6226")
    base.write_text(json.dumps(data))
    rc_o, t_o, line_o = sgnas("--onnx", str(model), "--device", device, "--baseline", str(base),
                              *extra, env=env)
    rc_l, t_l, line_l = sgnas("--lut", "lut/cpu.json", "--device", "cpu", env=env)
    return {"onnx": {"exit": rc_o, "check_s": round(t_o, 1), "line": line_o},
            "lut": {"exit": rc_l, "check_s": round(t_l, 1), "line": line_l}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiet", type=int, default=20, help="unchanged-model runs, nothing started")
    ap.add_argument("--hog-runs", type=int, default=20, help="unchanged-model runs beside the hog")
    ap.add_argument("--slow", type=int, default=5, help="planted-slowdown runs")
    ap.add_argument("--slow-hog", type=int, default=5, help="planted-slowdown runs beside the hog")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--hog", action="store_true", help="run the CPU hog until killed")
    ap.add_argument("--check-args", default="", help="extra arguments of every sgnas check")
    ap.add_argument("--recorded-too", action="store_true",
                    help="after each check, check again against the same baseline's recorded "
                         "figure (--no-model-copy): the two protocols side by side")
    args = ap.parse_args()
    if args.hog:
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        hog_forever()
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                      os.environ.get("PYTHONPATH")]))}
    extra = args.check_args.split()
    start = time.perf_counter()
    load_before = os.getloadavg()
    out: dict = {"bench": "ci_check", "device": args.device, "check_args": extra,
                 "load_before": [round(x, 2) for x in load_before]}
    with tempfile.TemporaryDirectory(prefix="sgnas-bench-ci-") as tmp:
        work = Path(tmp)
        model, heavy, arch, heavy_arch = build_models(work)
        out["model"], out["heavy"] = arch, heavy_arch
        for case, n in (("quiet", args.quiet), ("hog", args.hog_runs), ("slow", args.slow),
                        ("slow_hog", args.slow_hog)):
            if n > 0:
                out[case] = run_case(case, n, model, heavy, work, args.device, extra, env,
                                     args.recorded_too)
        out["other_host"] = other_host(model, work, args.device, extra, env)
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
