"""NAS-Bench-201 ground truth as per-cell tables: accuracies, FLOPs and the 23 devices' latencies.

Every table is a ``(5,)*6`` float array indexed by a cell's op indices (``table[cell.ops]``), the
layout of :mod:`sgnas.nb201.cost`. :class:`GroundTruth` loads the accuracy columns of ``nb201.csv``
and the ``<device>_ms`` columns of ``latency.csv``; :mod:`sgnas.nb201.constraint` answers questions
under a cost constraint (oracle, regret, whether it holds).

Targets spanning a device's range (:func:`spread_targets`): the ``q``-quantiles (default p10, p30,
p50, p70, p90) of the cost over the *connected* cells (the 341 cells with no path to the output
score chance and have near-zero latency, so they would drag the low quantiles down), each taken as
the cost of an actual cell (``numpy.quantile(..., method="lower")``), so every target is met exactly
by at least one connected cell.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import SgnasError
from .bench import GROUND_TRUTH, LATENCY, bench_file, read_cell_table
from .cost import TABLE_SHAPE, flops_table
from .space import Cell, all_cells

#: Ground-truth accuracy columns of ``nb201.csv`` (top-1, percent, 200 epochs).
CIFAR10_TEST = "cifar10_test_acc"
CIFAR10_VALID = "cifar10_valid_acc"
CIFAR100_TEST = "cifar100_test_acc"
IMAGENET16_TEST = "imagenet16_120_test_acc"
ACCURACY_COLUMNS: tuple[str, ...] = (CIFAR10_TEST, CIFAR10_VALID, CIFAR100_TEST, IMAGENET16_TEST)
#: The three test metrics reported per found cell (the paper's Table 3 columns).
REPORTED: dict[str, str] = {"cifar10": CIFAR10_TEST, "cifar100": CIFAR100_TEST,
                            "imagenet16_120": IMAGENET16_TEST}
DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
FLOPS = "flops"
LATENCY_SUFFIX = "_ms"


def connected_mask() -> np.ndarray:
    """``(5,)*6`` bool array: whether each cell has a non-``none`` path to its output."""
    return np.array([c.is_connected() for c in all_cells()], dtype=bool).reshape(TABLE_SHAPE)


def latency_columns(path: str | os.PathLike, exclude: Sequence[str] = ()) -> list[str]:
    """The ``<device>_ms`` columns of a per-cell latency CSV, in file order, minus ``exclude``."""
    with open(path, newline="") as fh:
        header = next(csv.reader(fh), None) or []
    columns = [h.strip() for h in header if h.strip().endswith(LATENCY_SUFFIX)]
    if not columns:
        raise SgnasError(f"{path} has no <device>{LATENCY_SUFFIX} latency columns")
    return [c for c in columns if c not in exclude]


def latency_devices(folder: str | os.PathLike | None = None) -> list[str]:
    """Device names of ``latency.csv`` (its ``<device>_ms`` columns), in file order."""
    return [c[: -len(LATENCY_SUFFIX)] for c in latency_columns(bench_file(LATENCY, folder))]


@dataclass
class GroundTruth:
    """Per-cell ground truth: ``accuracy[column]``, ``latency[device]`` (ms), ``flops`` (MFLOPs).

    All arrays have shape ``(5,)*6``. ``sources`` records the files read.
    """

    accuracy: dict[str, np.ndarray]
    latency: dict[str, np.ndarray]
    flops: np.ndarray = field(default_factory=flops_table)
    connected: np.ndarray = field(default_factory=connected_mask)
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: str | os.PathLike | None = None,
             accuracy: Sequence[str] = ACCURACY_COLUMNS,
             devices: Sequence[str] | None = None) -> "GroundTruth":
        """Read ``accuracy`` columns of ``nb201.csv`` and the latency of ``devices`` (default: all
        23 of ``latency.csv``; an empty sequence reads no latency) from ``folder``.

        A missing file or column, a non-numeric value or a missing cell: :class:`SgnasError`.
        """
        sources: dict[str, str] = {}
        acc: dict[str, np.ndarray] = {}
        if accuracy:
            path = bench_file(GROUND_TRUTH, folder)
            table = read_cell_table(path, list(accuracy))
            acc = {c: table.by_code(c) for c in accuracy}
            sources["ground_truth"] = str(path)
        lat: dict[str, np.ndarray] = {}
        names = latency_devices(folder) if devices is None else list(devices)
        if names:
            path = bench_file(LATENCY, folder)
            cols = [d + LATENCY_SUFFIX for d in names]
            table = read_cell_table(path, cols)
            lat = {d: table.by_code(c) for d, c in zip(names, cols)}
            sources["latency"] = str(path)
        return cls(acc, lat, sources=sources)

    @property
    def devices(self) -> list[str]:
        return list(self.latency)

    def acc(self, column: str) -> np.ndarray:
        """Accuracy table of ``column``; :class:`SgnasError` if it was not loaded."""
        if column not in self.accuracy:
            raise SgnasError(f"ground-truth column {column!r} not loaded; loaded: "
                             f"{', '.join(self.accuracy) or 'none'}")
        return self.accuracy[column]

    def cost_table(self, name: str) -> np.ndarray:
        """``"flops"`` (MFLOPs) or a loaded device's latency (ms)."""
        if name == FLOPS:
            return self.flops
        if name not in self.latency:
            raise SgnasError(f"no latency for device {name!r}; loaded: "
                             f"{', '.join(self.latency) or 'none'}")
        return self.latency[name]

    def cost_unit(self, name: str) -> str:
        return "MFLOPs" if name == FLOPS else "ms"

    def scores(self, cell: Cell) -> dict[str, float]:
        """Every loaded accuracy of ``cell``."""
        return {c: float(t[cell.ops]) for c, t in self.accuracy.items()}


def spread_targets(table: np.ndarray, quantiles: Sequence[float] = DEFAULT_QUANTILES,
                   mask: np.ndarray | None = None) -> list[float]:
    """Cost targets spanning ``table``'s range: its ``quantiles`` over the cells of ``mask``
    (default: the connected cells), each the cost of an actual cell (``method="lower"``)."""
    for q in quantiles:
        if not 0.0 <= float(q) <= 1.0:
            raise SgnasError(f"a quantile is in [0, 1], got {q}")
    mask = connected_mask() if mask is None else mask
    values = np.asarray(table, dtype=np.float64)[mask]
    return [float(v) for v in np.quantile(values, list(quantiles), method="lower")]


__all__ = ["ACCURACY_COLUMNS", "CIFAR100_TEST", "CIFAR10_TEST", "CIFAR10_VALID", "DEFAULT_QUANTILES",
           "FLOPS", "GroundTruth", "IMAGENET16_TEST", "REPORTED", "connected_mask", "latency_columns", "latency_devices",
           "spread_targets"]
