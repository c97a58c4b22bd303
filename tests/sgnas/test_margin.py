"""The per-cell margin of decoding against a predicted table (sgnas.margin)."""

from __future__ import annotations

import numpy as np
import pytest

from sgnas.costs import make_cost
from sgnas.errors import SgnasError
from sgnas.lut import EntryStats, Lut
from sgnas.margin import cell_margin, guard_cost, guarded, z_of
from sgnas.space import get_space


def test_z_and_bounds():
    assert z_of(0.99) == pytest.approx(2.3263, abs=1e-3)
    assert np.allclose(guarded([10.0, 5.0], [1.0, 0.0], 0.99), [10 + z_of(0.99), 5.0])
    # a cell known to within no better than half its latency is put above every other
    b = guarded([10.0, 5.0, 1.0], [1.0, 0.0, 0.6], 0.99)
    assert b[2] > b[:2].max() and b[1] == 5.0
    with pytest.raises(SgnasError, match="confidence"):
        z_of(1.0)


def test_the_margin_keeps_true_latency_under_the_target():
    # truth = prediction x (1 + e), e ~ N(0, s): the best-scoring cell whose bound meets T
    # measures <= T in about `confidence` of the draws; without the margin in about half.
    rng = np.random.default_rng(0)
    met, met_raw = [], []
    for _ in range(400):
        pred = rng.uniform(1, 10, size=2000)
        s = rng.uniform(0.02, 0.1, size=2000)
        truth = pred * (1 + s * rng.normal(size=2000))
        score = pred + rng.normal(0, 0.5, size=2000)  # larger cells score higher
        bound = guarded(pred, s * pred, 0.99)
        pick = np.flatnonzero(bound <= 6.0)[np.argmax(score[bound <= 6.0])]
        raw = np.flatnonzero(pred <= 6.0)[np.argmax(score[pred <= 6.0])]
        met.append(truth[pick] <= 6.0)
        met_raw.append(truth[raw] <= 6.0)
    assert np.mean(met) >= 0.97 and np.mean(met_raw) < 0.8


def predicted_lut(measured_key: str) -> Lut:
    space = get_space("nb201")
    entries = {k: EntryStats(median_ms=1.0 + i * 1e-4, p10_ms=1.0, p90_ms=1.0, n=0, spread=0.1,
                             uncertainty_ms=0.1) for i, k in enumerate(space.all_keys())}
    entries[measured_key].uncertainty_ms = 0.0
    return Lut(space="nb201", space_fingerprint=space.fingerprint, device={"name": "new"},
               entries=entries, complete=True,
               prediction={"method": "basis-ridge", "measured": 1, "cv": {"rmse_rel": 0.1}})


def test_guard_cost_and_cell_margin():
    space = get_space("nb201")
    keys = space.all_keys()
    lut = predicted_lut(keys[7])
    cost = make_cost("latency", space, lut=lut)
    g = guard_cost(cost)
    assert g is not cost and g.lut is lut
    diff = g.values() - cost.values()
    assert diff[7] == 0 and np.allclose(np.delete(diff, 7), 0.1 * z_of(0.99))
    m = cell_margin(g, space.parse(keys[3]), 2.0)
    assert not m.measured and m.margin == pytest.approx(0.1 * z_of(0.99))
    assert m.effective == pytest.approx(2.0 - m.margin) and "margin" in m.describe()
    assert cell_margin(cost, space.parse(keys[7]), 2.0).measured
    lut.prediction = {}  # a measured table: no margin anywhere
    assert guard_cost(cost) is cost and cell_margin(cost, space.parse(keys[3]), 2.0) is None
