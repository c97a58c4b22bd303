"""Exact decoding: misses against brute force on ``tiny``, decode time on the 19-layer spaces.

* ``tiny`` (4 layers x 80 configurations, every architecture enumerated by
  :func:`sgnas.decode.decode_brute_force`): random logits (sharpness 0.3 / 1 / 3), a latency-like
  cost (FLOPs times a random factor per entry, linear calibration) with a window 0.05%-5% wide plus
  a FLOPs or params cap; the window alone; very narrow windows (1e-6 to 1e-3) whose edge sits on an
  architecture's cost or on the end of the range. A miss: a lower log-probability than brute force,
  a false "infeasible" (also counted apart), or a feasible answer where there is none;
  ``worst_gap``: the largest log-probability a miss gave up.
* ``cifar10`` / ``imagenet`` with the CPU LUTs: decode time for a 1% latency window, for the
  window plus a params or FLOPs cap below the window-only answer's, and for the window plus both
  caps (random logits); how many answers are proven optimal (certified gap 0).

    python scripts/bench_decode.py --tiny-cases 200 --timing-cases 30

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sgnas.costs import make_cost  # noqa: E402
from sgnas.decode import (AdditiveCost, Constraint, InfeasibleError, decode,  # noqa: E402
                          decode_brute_force, window)
from sgnas.space import SPACES  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny-cases", type=int, default=200, help="cases of each kind on tiny")
    p.add_argument("--timing-cases", type=int, default=30, help="cases per space and setting")
    p.add_argument("--lut-cifar10", default=str(ROOT / "lut" / "cpu-cifar10.json"))
    p.add_argument("--lut-imagenet", default=str(ROOT / "lut" / "cpu.json"))
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def random_logp(rng, shape):
    logits = rng.normal(size=shape) * rng.choice([0.3, 1.0, 3.0])
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def tiny_costs(seed: int):
    space = SPACES["tiny"]()
    flops = AdditiveCost.from_cost(make_cost("flops", space))
    params = AdditiveCost.from_cost(make_cost("params", space))
    rng = np.random.default_rng(seed)
    lat = AdditiveCost("latency", "ms", flops.table * rng.uniform(0.5, 1.5, flops.table.shape) * 2
                       + 0.01, fixed=0.2, slope=1.1, intercept=0.05)
    return lat, flops, params


def compare(logp, cons, tally):
    """Decode and brute-force one case; add the outcome to ``tally``."""
    ref = decode_brute_force(logp, cons)
    t0 = time.perf_counter()
    try:
        out = decode(logp, cons)
    except InfeasibleError:
        out = None
    tally["ms"].append(1e3 * (time.perf_counter() - t0))
    tally["cases"] += 1
    if ref is None:
        tally["infeasible"] += 1
        tally["misses"] += out is not None
        return
    if out is None:
        tally["misses"] += 1
        tally["false_infeasible"] += 1
        return
    if out.logprob < ref.logprob - 1e-9 or not all(c.met(c.cost.of(out.choice)) for c in cons):
        tally["misses"] += 1
        tally["worst_gap"] = max(tally["worst_gap"], ref.logprob - out.logprob)
    tally["max_certified_gap"] = max(tally["max_certified_gap"], getattr(out, "gap", 0.0))


def tiny_section(n: int, seed: int) -> dict:
    lat, flops, params = tiny_costs(seed)
    rng = np.random.default_rng(seed + 1)
    kinds = ("window_and_cap", "window", "narrow_edge_window")
    tallies = {k: {"cases": 0, "infeasible": 0, "misses": 0, "false_infeasible": 0, "worst_gap": 0.0,
                   "max_certified_gap": 0.0, "ms": []} for k in kinds}
    lo_c, hi_c = lat.bounds()
    for i in range(n):
        logp = random_logp(rng, (4, 80))
        lo, hi = window(lo_c + rng.uniform(0.02, 0.98) * (hi_c - lo_c),
                        rng.choice([0.0005, 0.005, 0.01, 0.05]))
        other = (flops, params)[i % 2]
        o_lo, o_hi = other.bounds()
        cap = Constraint(other, o_lo + rng.uniform(0.05, 0.9) * (o_hi - o_lo))
        compare(logp, [Constraint(lat, hi, lo), cap], tallies["window_and_cap"])
        compare(logp, [Constraint(lat, hi, lo)], tallies["window"])
        cost = (lat, flops, params)[i % 3]
        v = cost.of(rng.integers(0, 80, 4))
        e_lo, e_hi = cost.bounds()
        eps = rng.choice([1e-6, 1e-4, 1e-3])
        lo, hi = [(v * (1 - eps), v), (v, v * (1 + eps)), (e_hi * (1 - eps), e_hi),
                  (e_lo, e_lo * (1 + eps))][i % 4]
        compare(logp, [Constraint(cost, hi, lo)], tallies["narrow_edge_window"])
    for t in tallies.values():
        ms = t.pop("ms") or [0.0]
        t["decode_ms_median"] = round(float(np.median(ms)), 2)
        t["decode_ms_max"] = round(float(np.max(ms)), 2)
        t["worst_gap"] = round(t["worst_gap"], 4)
    return tallies


def timing_section(name: str, lut_path: str, n: int, seed: int) -> dict:
    from sgnas.lut import load_lut

    space = SPACES[name]()
    lat = AdditiveCost.from_cost(make_cost("latency", space, lut=load_lut(lut_path)))
    others = [AdditiveCost.from_cost(make_cost(c, space)) for c in ("params", "flops")]
    rng = np.random.default_rng(seed)
    lo_c, hi_c = lat.bounds()
    one = []
    runs = {"two_constraints": _Runs(), "three_constraints": _Runs()}
    for i in range(n):
        logp = random_logp(rng, lat.table.shape)
        lo, hi = window(lo_c + rng.uniform(0.1, 0.9) * (hi_c - lo_c), 0.01)
        t0 = time.perf_counter()
        free = decode(logp, [Constraint(lat, hi, lo)])
        one.append(time.perf_counter() - t0)
        caps = [Constraint(o, o.of(free.choice) * rng.uniform(0.9, 0.99)) for o in others]
        runs["two_constraints"].run(logp, [Constraint(lat, hi, lo), caps[i % 2]])
        runs["three_constraints"].run(logp, [Constraint(lat, hi, lo), *caps])
    return {"lut": os.path.relpath(lut_path, ROOT), "cases": n, "one_constraint": _stats(one),
            **{k: r.summary() for k, r in runs.items()}}


def _stats(seconds):
    ms = 1e3 * np.asarray(seconds)
    return {"median_ms": round(float(np.median(ms)), 1),
            "p90_ms": round(float(np.percentile(ms, 90)), 1), "max_ms": round(float(ms.max()), 1)}


class _Runs:
    """Decode times, nodes and certified gaps of one setting."""

    def __init__(self):
        self.seconds, self.nodes, self.gaps, self.infeasible = [], [], [], 0

    def run(self, logp, cons):
        t0 = time.perf_counter()
        try:
            out = decode(logp, cons)
            self.nodes.append(getattr(out, "nodes", 0))
            self.gaps.append(getattr(out, "gap", 0.0))
        except InfeasibleError:
            self.infeasible += 1
        self.seconds.append(time.perf_counter() - t0)

    def summary(self):
        return {**_stats(self.seconds), "infeasible": self.infeasible, "feasible": len(self.nodes),
                "exact": sum(g == 0.0 for g in self.gaps),
                "nodes_median": int(np.median(self.nodes)) if self.nodes else 0,
                "nodes_max": int(max(self.nodes)) if self.nodes else 0,
                "max_certified_gap": float(max(self.gaps)) if self.gaps else 0.0}


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    record = {"bench": "decode", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version(), "numpy": np.__version__},
              "load_start": [round(x, 2) for x in os.getloadavg()],
              "tiny": tiny_section(args.tiny_cases, args.seed)}
    for name, lut in (("cifar10", args.lut_cifar10), ("imagenet", args.lut_imagenet)):
        if args.timing_cases > 0:
            record[name] = timing_section(name, lut, args.timing_cases, args.seed)
    record["load_end"] = [round(x, 2) for x in os.getloadavg()]
    record["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
