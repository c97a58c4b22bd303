"""How calibration networks cover a LUT's latency range, against uniform random samples (no timing).

    python scripts/bench_calibration_set.py --lut lut/cpu-cifar10.json [--n 100] [--seed 0]

Prints one JSON line: the predicted (raw LUT sum) range of ``calibration_networks`` and of ``--n``
uniform random architectures, and how many of each fall in the bottom / middle / top third of the
calibration set's range.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lut", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from profiler.calibration_set import calibration_networks, range_thirds
    from sgnas.lut import load_lut
    from sgnas.space import get_space

    lut = load_lut(args.lut)
    space = get_space(lut.space)
    chosen = calibration_networks(space, lut, args.n, np.random.default_rng(args.seed))
    rng = np.random.default_rng(args.seed)
    randoms = [space.sample(rng) for _ in range(args.n)]
    pc = np.array([lut.raw_ms(a, space) for a in chosen])
    pr = np.array([lut.raw_ms(a, space) for a in randoms])

    def summary(p):
        thirds = range_thirds(p, float(pc.min()), float(pc.max()))
        return {"min_ms": float(p.min()), "max_ms": float(p.max()), "median_ms": float(np.median(p)),
                "thirds": {k: int(len(v)) for k, v in thirds.items()}}

    print(json.dumps({"bench": "calibration_set", "lut": args.lut, "space": space.name,
                      "n": args.n, "calibration": summary(pc), "random": summary(pr),
                      "ends": [str(chosen[0]), str(chosen[-1])]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
