"""A synthetic NAS-Bench-201 folder (every cell, made-up values) for tests without the real tables."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from sgnas.nb201.groundtruth import ACCURACY_COLUMNS
from sgnas.nb201.space import all_cells

DEVICES = ("gpu_1", "cpu_a", "phone")


def write_bench(folder: Path, seed: int = 0) -> Path:
    """``nb201.csv`` and ``latency.csv`` with all 15,625 cells in code order (index = code).

    Accuracy grows with the number of 3x3 convs (plus noise); latency with FLOPs-like op weights,
    each device weighting ops differently.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cells = list(all_cells())
    weights = {"gpu_1": [0, 0.2, 0.5, 1.0, 0.4], "cpu_a": [0, 0.1, 0.3, 1.5, 0.9],
               "phone": [0, 0.3, 1.0, 1.2, 0.2]}
    with open(folder / "nb201.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "arch_str", *ACCURACY_COLUMNS])
        for i, c in enumerate(cells):
            base = 10.0 if not c.is_connected() else 80 + 2 * sum(o == 3 for o in c.ops)
            w.writerow([i, str(c), *(repr(base + rng.random()) for _ in ACCURACY_COLUMNS)])
    with open(folder / "latency.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "arch_str", *(d + "_ms" for d in DEVICES)])
        for i, c in enumerate(cells):
            w.writerow([i, str(c), *(repr(1 + sum(weights[d][o] for o in c.ops) + 0.01 * rng.random())
                                     for d in DEVICES)])
    return folder
