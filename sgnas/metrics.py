"""How well predictions track references: relative errors, MAPE, share within ±x%, rank and linear
correlations.

The rank statistics use scipy when it is installed and an exact numpy version otherwise (same
definitions: Kendall's tau-b, Spearman's rho with average ranks for ties). Correlations of a constant
sequence, or of fewer than two points, are NaN.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"sequences of different lengths: {a.size} and {b.size}")
    return a, b


def _scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError:
        return None
    return stats


def relative_errors(predicted: ArrayLike, reference: ArrayLike) -> np.ndarray:
    """Signed relative errors ``(predicted - reference) / reference`` (fractions)."""
    p, r = _pair(predicted, reference)
    return (p - r) / r


def mape(predicted: ArrayLike, reference: ArrayLike) -> float:
    """Mean absolute relative error, as a fraction (0.05 is 5%)."""
    return float(np.mean(np.abs(relative_errors(predicted, reference))))


def max_abs_error(predicted: ArrayLike, reference: ArrayLike) -> float:
    """Largest absolute relative error, as a fraction."""
    return float(np.max(np.abs(relative_errors(predicted, reference))))


def bias(predicted: ArrayLike, reference: ArrayLike) -> float:
    """Mean signed relative error, as a fraction (positive: predictions too high)."""
    return float(np.mean(relative_errors(predicted, reference)))


def share_within(predicted: ArrayLike, reference: ArrayLike, pct: float) -> float:
    """Share of predictions within ``±pct`` percent of their reference (0..1)."""
    rel = np.abs(relative_errors(predicted, reference))
    return float(np.mean(rel <= pct / 100.0 + 1e-9))


def _degenerate(a: np.ndarray, b: np.ndarray) -> bool:
    return a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0


def kendall_tau(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b."""
    a, b = _pair(x, y)
    if _degenerate(a, b):
        return float("nan")
    stats = _scipy_stats()
    if stats is not None:
        return float(stats.kendalltau(a, b)[0])
    iu = np.triu_indices(a.size, k=1)
    dx = np.sign(a[:, None] - a[None, :])[iu]
    dy = np.sign(b[:, None] - b[None, :])[iu]
    return float((dx * dy).sum() / np.sqrt(float(np.count_nonzero(dx)) * np.count_nonzero(dy)))


def _average_ranks(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = np.arange(1, a.size + 1)
    values, inverse = np.unique(a, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def pearson(x: ArrayLike, y: ArrayLike) -> float:
    """Pearson's linear correlation coefficient."""
    a, b = _pair(x, y)
    if _degenerate(a, b):
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    a, b = _pair(x, y)
    if _degenerate(a, b):
        return float("nan")
    stats = _scipy_stats()
    if stats is not None:
        return float(stats.spearmanr(a, b)[0])
    return pearson(_average_ranks(a), _average_ranks(b))


__all__ = ["bias", "kendall_tau", "mape", "max_abs_error", "pearson", "relative_errors",
           "share_within", "spearman"]
