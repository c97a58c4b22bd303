#!/usr/bin/env python
"""Train the shipped NAS-Bench-201 generators on an accuracy signal (score-driven, exact).

Reads per-cell signal tables (``arch_str,score`` CSVs, e.g. the zero-cost proxies written by
``scripts/nb201_proxies.py``), combines them by rank average (the signal is named by its members),
and trains, with :mod:`sgnas.train.score_generator`:

* the FLOPs generator of the space (``generators/nb201-flops-<fingerprint>.pt``),
* the latency generator of ``--device`` (default gold_6226, from the public ``latency.csv``),
* the shared, device-conditioned latency generator over ``--shared-devices`` (default: the 21
  devices the earlier shared generator was trained on; pixel2 and pixel3 stay out),

each decoding the most probable connected cell under the bound. Prints one JSON line.

    python scripts/train_nb201_generators.py --table synflow=runs/proxies/seed0/synflow.csv \\
        --table jacob_cov=runs/proxies/seed0/jacob_cov.csv --out generators
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARED_DEVICES = ("1080ti_1,1080ti_32,1080ti_256,2080ti_1,2080ti_256,titanx_1,titanx_32,titanx_256,"
                  "titanxp_1,titanxp_32,titanxp_256,titan_rtx_1,titan_rtx_32,titan_rtx_256,"
                  "gold_6226,gold_6240,silver_4114,essential_ph_1,samsung_s7,raspi4,eyeriss")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="append", required=True, metavar="NAME=CSV",
                    help="a member signal's per-cell table (repeat; rank-averaged)")
    ap.add_argument("--bench", default="../shared/data/nasbench201",
                    help="folder of latency.csv (public data, read from there)")
    ap.add_argument("--device", default="gold_6226")
    ap.add_argument("--shared-devices", default=SHARED_DEVICES)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--shared-steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="generators")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--progress", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    import numpy as np
    import torch

    from sgnas.costs import make_cost
    from sgnas.errors import SgnasError
    from sgnas.generator import default_generator_name, save_generator
    from sgnas.lut_import import import_cell_lut
    from sgnas.nb201.bench import LATENCY, bench_file
    from sgnas.nb201.space import NB201Space
    from sgnas.search.nb201_quality import rank_average
    from sgnas.shared_generator import save_shared
    from sgnas.signals.nb201 import read_table_csv
    from sgnas.train.score_generator import (ScoreGeneratorConfig, train_score_generator,
                                             train_score_shared_generator)

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        space = NB201Space()
        names, tables = [], []
        for item in args.table:
            name, sep, path = item.partition("=")
            if not sep:
                raise SgnasError(f"--table {item!r}: want NAME=CSV")
            names.append(name)
            tables.append(read_table_csv(path).reshape((5,) * 6))
        signal = "ensemble:" + "+".join(names) if len(names) > 1 else names[0]
        score = rank_average(tables, space.alive_mask().reshape((5,) * 6)).reshape(-1)
        cfg = ScoreGeneratorConfig(steps=args.steps, seed=args.seed)
        out = Path(args.out)
        latency_csv = bench_file(LATENCY, args.bench)

        def lut_cost(device):
            lut = import_cell_lut(latency_csv, f"{device}_ms", "nb201", device)
            return make_cost("latency", space, lut)

        written = {}
        for cost in (make_cost("flops", space), lut_cost(args.device)):
            bundle = train_score_generator(space, cost, score, signal, cfg, args.progress)
            path = out / default_generator_name(space, cost)
            save_generator(path, bundle)
            written[cost.name] = str(path)
        shared_cfg = ScoreGeneratorConfig(steps=args.shared_steps, seed=args.seed)
        costs = [lut_cost(d) for d in args.shared_devices.split(",") if d]
        shared = train_score_shared_generator(space, costs, score, signal, shared_cfg,
                                              progress=args.progress)
        path = out / "nb201-shared-latency.pt"
        save_shared(path, shared)
        written["shared"] = str(path)
    except SgnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"signal": signal, "written": written, "steps": args.steps,
                      "shared_steps": args.shared_steps, "seed": args.seed,
                      "seconds": round(time.perf_counter() - t0, 1),
                      "alive_cells": int(np.asarray(space.alive_mask()).sum())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
