"""Does a ratio measured interleaved survive machine-state changes, and does the reference disturb?

Two whole networks of a space (the reference network and a random one) run as ONNX Runtime sessions
of device ``cpu`` (1 thread, pinned, spinning off), both live, timed in alternating chunks of about
``--chunk-ms`` together with the numpy machine-speed probe, for ``--seconds``. Reported per window of
``--window`` seconds: how far each absolute median moves and how far the ratios move (chunks
summed up by their median, and by their mean: ``*_mean``).

Disturbance check (same run): ``--cycles`` cycles of (entry timed alone, reference session closed)
and (entry timed interleaved with the live reference), order alternating; the entry's median
interleaved / alone per cycle.

    python scripts/bench_interleave.py [--seconds 60] [--window 5] [--cycles 6]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="cifar10")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--window", type=float, default=5.0)
    ap.add_argument("--chunk-ms", type=float, default=30.0)
    ap.add_argument("--cycles", type=int, default=6)
    ap.add_argument("--cycle-s", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--probe-chain", type=int, default=40,
                    help="matmuls per probe iteration (160x160, 1 thread; default 40)")
    args = ap.parse_args(argv)

    from profiler import graphs
    from profiler.backends.base import ModelSpec, make_runner
    from profiler.devices import load_device
    from profiler.interleave import (chunk_iters, quiet, reference_architecture, time_chunks,
                                     time_chunks_stats, warm_up, window_drift)
    from profiler.probe import ProbeTimer
    from sgnas.space import get_space

    space, device = get_space(args.space), load_device(args.device)
    archs = {"reference": reference_architecture(space),
             "entry": space.sample(np.random.default_rng(args.seed))}
    shape = (device.batch_size, 3, space.input_size, space.input_size)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-interleave-") as tmp:
        specs = {}
        for name, arch in archs.items():
            _, model = graphs.network_graph(space, arch, device.batch_size, seed=0)
            specs[name] = ModelSpec(graphs.save_model(model, Path(tmp) / f"{name}.onnx"), shape, name)

        def runner(name):
            return quiet(make_runner(device, specs[name]))

        probe = ProbeTimer(chain=args.probe_chain)
        entry, ref = runner("entry"), runner("reference")
        entry.activate()
        try:
            ref.activate()
            timers = (entry, ref, probe)
            iters = [chunk_iters(warm_up(t, 100.0), args.chunk_ms, 3) for t in timers]
            t0 = time.perf_counter()
            rows, means, ats = [], [], []
            while time.perf_counter() - t0 < args.seconds:
                m, a = time_chunks_stats(timers, iters, 5, t0, ("median", "mean"))
                rows.append(m["median"])
                means.append(m["mean"])
                ats.append(a)
            med, mean, at = np.vstack(rows), np.vstack(means), np.concatenate(ats)
            ref.deactivate()
            drift = {
                "entry_ms": window_drift(med[:, 0], at, args.window),
                "reference_ms": window_drift(med[:, 1], at, args.window),
                "probe_ms": window_drift(med[:, 2], at, args.window),
                "ratio_entry_reference": window_drift(med[:, 0] / med[:, 1], at, args.window),
                "ratio_entry_probe": window_drift(med[:, 0] / med[:, 2], at, args.window),
                # the same ratios with each chunk summed up by its mean instead of its median
                "ratio_entry_reference_mean": window_drift(mean[:, 0] / mean[:, 1], at, args.window),
                "ratio_entry_probe_mean": window_drift(mean[:, 0] / mean[:, 2], at, args.window),
            }
            disturb = _disturbance(entry, lambda: runner("reference"), iters[:2], args, time_chunks)
        finally:
            entry.deactivate()

    def brief(d):
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in d.items()
                if k != "window_medians"} | {"window_medians": [round(x, 4) for x in d["window_medians"]]}

    out = {
        "bench": "interleave",
        "space": space.name,
        "device": device.name,
        "entry": str(archs["entry"]),
        "reference": str(archs["reference"]),
        "probe_chain": args.probe_chain,
        "chunk_iters": {"entry": iters[0], "reference": iters[1], "probe": iters[2]},
        "pairs": int(len(at)),
        "seconds": args.seconds,
        "window_s": args.window,
        "median_ms": {"entry": float(np.median(med[:, 0])), "reference": float(np.median(med[:, 1])),
                      "probe": float(np.median(med[:, 2]))},
        "drift": {k: brief(v) for k, v in drift.items()},
        "disturbance": disturb,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(out))
    return 0


def _disturbance(entry, make_ref, iters, args, time_chunks) -> dict:
    """Entry median interleaved with a live reference / entry median alone, per cycle."""
    per_cycle, alone_ms, inter_ms = [], [], []
    for c in range(args.cycles):
        results = {}
        for mode in (("alone", "interleaved") if c % 2 == 0 else ("interleaved", "alone")):
            t0 = time.perf_counter()
            if mode == "alone":
                chunks = []
                while time.perf_counter() - t0 < args.cycle_s:
                    chunks.append(float(np.median(entry.time_iterations(iters[0]))))
                results[mode] = float(np.median(chunks))
            else:
                with make_ref() as ref:
                    ref.time_iterations(iters[1])  # warm the reference before timing the pair
                    rows = []
                    while time.perf_counter() - t0 < args.cycle_s:
                        m, _ = time_chunks((entry, ref), iters, 1)
                        rows.append(m[0, 0])
                results[mode] = float(np.median(rows))
        alone_ms.append(results["alone"])
        inter_ms.append(results["interleaved"])
        per_cycle.append(results["interleaved"] / results["alone"])
    return {
        "cycles": args.cycles,
        "entry_alone_ms": [round(x, 4) for x in alone_ms],
        "entry_interleaved_ms": [round(x, 4) for x in inter_ms],
        "interleaved_over_alone": [round(x, 4) for x in per_cycle],
        "median_interleaved_over_alone": float(np.median(per_cycle)),
    }


if __name__ == "__main__":
    raise SystemExit(main())
