"""Decoding against a predicted latency table: a margin so that the *measured* latency meets T.

A predicted LUT (:mod:`sgnas.lut_predict`) carries each cell's uncertainty ``u`` (one standard
error, 0 at the measured cells). Decoding and search treat a cell as meeting ``T`` only when its
upper confidence bound ``latency + z u`` does (``z``: the one-sided normal quantile of
``confidence``), i.e. each cell is held to the effective target ``T - z u``: its margin. A cell
whose bound meets ``T`` measures ``<= T`` with probability about ``confidence``; measured cells
need no margin. On NAS-Bench-201's held-out devices this per-cell margin met the target more
often, at a lower regret, than one margin for all cells (``scripts/bench_zero_shot.py``).
:func:`guard_cost` swaps a predicted LUT's cost for the cost of the bounds (one line at each entry
point); :func:`cell_margin` states, for the chosen cell, the predicted latency and the margin.
A measured LUT is left alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from .errors import SgnasError

#: Probability that a chosen cell's measured latency is within the target, by default.
DEFAULT_CONFIDENCE = 0.99
#: A cell whose uncertainty exceeds this share of its predicted latency is not chosen: its bound
#: is put above every other cell's (a window at T would otherwise pick cells predicted far below
#: T whose bound happens to land at T -- mostly cells with no path to the output).
MAX_REL = 0.5


def z_of(confidence: float) -> float:
    """The one-sided normal quantile of ``confidence`` (in [0.5, 1))."""
    if not 0.5 <= float(confidence) < 1.0:
        raise SgnasError(f"confidence must lie in [0.5, 1), got {confidence}")
    return float(NormalDist().inv_cdf(float(confidence)))


def guarded(latency: np.ndarray, uncertainty: np.ndarray,
            confidence: float = DEFAULT_CONFIDENCE, max_rel: float = MAX_REL) -> np.ndarray:
    """Upper confidence bounds ``latency + z uncertainty`` (what decoding compares with T);
    cells with ``uncertainty > max_rel x latency`` get a bound above every other cell's."""
    lat = np.asarray(latency, dtype=np.float64)
    unc = np.asarray(uncertainty, dtype=np.float64)
    bound = lat + z_of(confidence) * unc
    wild = unc > max_rel * lat
    if wild.any() and not wild.all():
        bound[wild] = bound[~wild].max() * 1.001
    return bound


@dataclass(frozen=True)
class Margin:
    """The margin of one chosen cell: ``effective = target - margin`` is what its predicted
    latency had to meet."""

    target: float
    predicted: float
    margin: float
    effective: float
    confidence: float
    measured: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, unit: str = "ms") -> str:
        if self.measured:
            return (f"target {self.target:.4g} {unit}: chosen cell measured at "
                    f"{self.predicted:.4g} {unit} (no margin)")
        return (f"target {self.target:.4g} {unit}: chosen cell predicted at {self.predicted:.4g} "
                f"{unit}, margin {self.margin:.4g} {unit} (effective target {self.effective:.4g} "
                f"{unit}, confidence {self.confidence:g})")


def _predicted_lut(source: Any):
    lut = getattr(source, "lut", source)
    return lut if lut is not None and getattr(lut, "predicted", False) else None


def guard_cost(cost: Any, confidence: float = DEFAULT_CONFIDENCE) -> Any:
    """``cost`` unchanged unless its LUT is predicted; then a per-cell cost of the upper bounds
    (same LUT attached), so that any decoder or search keeps the margin."""
    lut = _predicted_lut(cost)
    if lut is None:
        return cost
    from .costs import CellTableCost

    space = cost.space
    keys = space.all_keys()
    lat = np.array([lut.entries[k].median_ms for k in keys])
    unc = np.array([lut.entries[k].uncertainty_ms or 0.0 for k in keys])
    table = guarded(lat, unc, confidence).reshape(cost.table.shape)
    return CellTableCost(space, table, cost.name, cost.unit, lut=lut)


def cell_margin(source: Any, arch: Any, target: float,
                confidence: float = DEFAULT_CONFIDENCE) -> Margin | None:
    """The chosen cell's margin under a predicted LUT (``source``: a LUT or a cost); None for a
    measured LUT."""
    lut = _predicted_lut(source)
    if lut is None:
        return None
    from .space import get_space

    space: Any = get_space(lut.space)
    key = space.cell_key(arch)
    e = lut.entries[key]
    m = z_of(confidence) * float(e.uncertainty_ms or 0.0)
    return Margin(float(target), float(e.median_ms), m, float(target) - m, float(confidence),
                  not e.uncertainty_ms)


__all__ = ["DEFAULT_CONFIDENCE", "Margin", "cell_margin", "guard_cost", "guarded", "z_of"]
