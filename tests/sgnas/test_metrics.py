"""The metrics module: relative errors and rank correlations, with and without scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sgnas import metrics


def test_relative_error_figures():
    pred, ref = [1.1, 0.9, 2.0], [1.0, 1.0, 2.0]
    assert metrics.mape(pred, ref) == pytest.approx(0.2 / 3)
    assert metrics.bias(pred, ref) == pytest.approx(0.0)
    assert metrics.max_abs_error(pred, ref) == pytest.approx(0.1)
    assert metrics.share_within(pred, ref, 10.0) == 1.0
    assert metrics.share_within(pred, ref, 5.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="different lengths"):
        metrics.mape([1.0], [1.0, 2.0])


@pytest.mark.parametrize("seed", range(5))
def test_numpy_rank_statistics_match_scipy(seed, monkeypatch):
    pytest.importorskip("scipy")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, 40).astype(float)  # ties on purpose
    y = x + rng.integers(0, 4, 40)
    with_scipy = metrics.kendall_tau(x, y), metrics.spearman(x, y)
    monkeypatch.setattr(metrics, "_scipy_stats", lambda: None)
    without = metrics.kendall_tau(x, y), metrics.spearman(x, y)
    assert without == pytest.approx(with_scipy, abs=1e-12)


def test_degenerate_correlations_are_nan():
    assert math.isnan(metrics.kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(metrics.spearman([1], [2]))
    assert math.isnan(metrics.pearson([1, 2], [3, 3]))
    assert metrics.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
