"""Benchmark the LUT pipeline on one device: build time, end-to-end fidelity, re-profile stability.

1. builds the full LUT of ``--space`` on ``--device`` (timed);
2. validates it on ``--networks`` random whole networks and fits the calibration;
3. re-measures entries in a second build (``--stability full``) or a random sample of
   ``--stability N`` entries, and compares them with the first build.

Prints one JSON line with all figures. Run it on a quiet machine::

    python scripts/bench_profile.py --device cpu                       # ImageNet space, 100 networks
    python scripts/bench_profile.py --device cpu --space tiny --networks 10 --stability 20
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="device name or descriptor YAML (default cpu)")
    p.add_argument("--space", default="imagenet", help="search space (default imagenet)")
    p.add_argument("--networks", type=int, default=100, help="networks to validate (default 100)")
    p.add_argument("--stability", default="100",
                   help="'full' for a second complete build, or N entries to re-measure (default 100)")
    p.add_argument("--out", help="folder for the LUTs and the plot (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="skip the host's GPU model check")
    return p.parse_args(argv)


def canary_scale(a, b) -> float:
    """Ratio of the first canary medians of builds ``a`` and ``b``: multiplying ``b``'s entries by it
    refers both builds to the machine state in which ``a`` started (each build already corrects
    drift within itself, relative to its own first canary)."""
    ca = (a.drift.get("canary_medians_ms") or [None])[0]
    cb = (b.drift.get("canary_medians_ms") or [None])[0]
    return float(ca / cb) if ca and cb else 1.0


def relative_differences(a, b, keys, scale: float = 1.0) -> dict:
    """Median, p90 and max of |scale * b - a| / a over ``keys``."""
    rel = np.array([abs(scale * b.entries[k].median_ms - a.entries[k].median_ms)
                    / a.entries[k].median_ms for k in keys])
    return {
        "n": int(len(rel)),
        "median_rel_diff": float(np.median(rel)),
        "p90_rel_diff": float(np.percentile(rel, 90)),
        "max_rel_diff": float(rel.max()),
        "share_within_2pct": float(np.mean(rel <= 0.02)),
        "share_within_5pct": float(np.mean(rel <= 0.05)),
    }


def main(argv=None) -> int:
    from profiler.build import BuildConfig, build_lut
    from profiler.devices import check_host, load_device
    from profiler.fidelity import validate_lut
    from sgnas.lut import save_lut
    from sgnas.space import get_space

    args = parse_args(argv)
    logging.getLogger("profiler.protocol").setLevel(logging.ERROR)  # noisy entries are counted
    device = load_device(args.device)
    space = get_space(args.space)
    check_host(device, force=args.force)
    progress = sys.stderr.isatty()
    with tempfile.TemporaryDirectory(prefix="sgnas-bench-") as tmp:
        folder = Path(args.out) if args.out else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{device.name}-{space.name}"
        lut_path, rerun_path = folder / f"{stem}.json", folder / f"{stem}-rerun.json"

        t = time.perf_counter()
        lut = build_lut(BuildConfig(device, space, lut_path, force=True, seed=args.seed),
                        progress=progress)
        build_s = time.perf_counter() - t

        t = time.perf_counter()
        report = validate_lut(lut, device, space, n=args.networks,
                              rng=np.random.default_rng(args.seed),
                              plot_path=folder / f"{stem}.fidelity.png", seed=args.seed,
                              progress=progress)
        save_lut(lut, lut_path)
        fidelity_s = time.perf_counter() - t

        keys = space.all_keys()
        if args.stability != "full":
            rng = np.random.default_rng(args.seed + 1)
            count = min(int(args.stability), len(keys))
            keys = [keys[i] for i in sorted(rng.choice(len(keys), size=count, replace=False))]
        t = time.perf_counter()
        rerun = build_lut(BuildConfig(device, space, rerun_path, force=True, seed=args.seed + 1,
                                      keys=None if args.stability == "full" else keys),
                          progress=progress)
        stability_s = time.perf_counter() - t

        r, c = report.raw, report.calibrated_heldout
        result = {
            "device": device.name,
            "space": space.name,
            "entries": len(lut.entries),
            "build_seconds": round(build_s, 2),
            "seconds_per_entry": round(build_s / max(len(lut.entries), 1), 4),
            "noisy_entries": sum(e.noisy for e in lut.entries.values()),
            "normalized_entries": sum(e.canary_factor is not None for e in lut.entries.values()),
            "canary_max_drift": lut.drift.get("max_drift"),
            "fidelity": {
                "networks": report.n,
                "raw_mape": r["mape"],
                "raw_bias": r["bias"],
                "raw_within_5pct": r["within_5pct"],
                "raw_within_10pct": r["within_10pct"],
                "raw_kendall_tau": r["kendall_tau"],
                "raw_spearman": r["spearman"],
                "heldout": c["n"],
                "calibrated_mape": c["mape"],
                "calibrated_within_5pct": c["within_5pct"],
                "calibrated_within_10pct": c["within_10pct"],
                "calibrated_kendall_tau": c["kendall_tau"],
                "slope": report.calibration["slope"],
                "intercept_ms": report.calibration["intercept"],
                "measured_ms_range": [min(report.measured_ms), max(report.measured_ms)],
            },
            "fidelity_seconds": round(fidelity_s, 2),
            "stability": {"mode": args.stability, **relative_differences(lut, rerun, keys)},
            "stability_canary_referenced": {
                "canary_scale": canary_scale(lut, rerun),
                **relative_differences(lut, rerun, keys, canary_scale(lut, rerun)),
            },
            "stability_seconds": round(stability_s, 2),
            "lut": str(lut_path) if args.out else None,
            "cpu_model": lut.environment.get("cpu_model"),
            "packages": lut.environment.get("packages"),
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
