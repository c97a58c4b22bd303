"""Predicting a per-cell latency table from a few measured cells (sgnas.lut_predict)."""

from __future__ import annotations

import numpy as np
import pytest

from sgnas.errors import SgnasError
from sgnas.lut_predict import build_basis, design_cells, load_basis, predict_table


def devices(n_cells=300, n_dev=6, seed=0):
    """Synthetic device tables: a shared per-cell structure, mixed per device, positive."""
    rng = np.random.default_rng(seed)
    parts = rng.uniform(0.5, 2.0, size=(n_cells, 3))
    return {f"d{i}": parts @ rng.uniform(0.2, 1.0, size=3) * rng.uniform(1, 20)
            for i in range(n_dev)}, parts


def test_a_device_in_the_basis_span_is_recovered_from_few_cells():
    tables, parts = devices()
    basis = build_basis(tables, rank=4)
    truth = parts @ np.array([0.7, 0.1, 0.4]) * 3.0  # a new mix, another absolute speed
    cells = design_cells(basis, 10, seed=1)
    pred = predict_table(basis, cells, truth[cells], ridge=(1e-8,))
    assert np.allclose(pred.latency_ms, truth, rtol=1e-3)
    assert pred.cv["rmse_rel"] < 1e-3 and pred.cv["n"] == 10
    assert np.array_equal(pred.latency_ms[cells], truth[cells])  # measured cells kept exactly
    assert np.all(pred.uncertainty_ms[cells] == 0)


def test_uncertainty_tracks_the_error_of_a_device_off_the_span():
    tables, parts = devices()
    basis = build_basis(tables, rank=3)
    rng = np.random.default_rng(5)
    truth = (parts @ np.array([0.5, 0.5, 0.5])) * rng.lognormal(0, 0.1, size=len(parts))
    cells = design_cells(basis, 30, seed=2)
    pred = predict_table(basis, cells, truth[cells])
    other = np.setdiff1d(np.arange(len(truth)), cells)
    assert np.all(pred.uncertainty_ms[other] > 0)
    err = np.abs(pred.latency_ms[other] - truth[other])
    assert 0.8 <= np.mean(err <= 2 * pred.uncertainty_ms[other])  # roughly calibrated
    assert 0.03 < pred.cv["rmse_rel"] < 0.3  # the noise is 10%: the CV sees it


@pytest.mark.parametrize("positions, values, msg", [
    (range(5), [1.0] * 5, "at least 10 measured cells"),
    ([0] * 10 + [1], [1.0] * 11, "given twice"),
    (range(10), [1.0] * 9 + [-1.0], "finite and positive"),
    (range(10), [1.0] * 9 + [float("nan")], "finite and positive"),
])
def test_bad_measurements_are_refused(positions, values, msg):
    basis = build_basis(devices()[0])
    with pytest.raises(SgnasError, match=msg):
        predict_table(basis, list(positions), values)


def test_design_is_seeded_distinct_and_in_the_mask(tmp_path):
    basis = build_basis(devices()[0])
    mask = np.zeros(300, dtype=bool)
    mask[::3] = True
    a, b = design_cells(basis, 12, seed=3, mask=mask), design_cells(basis, 12, seed=3, mask=mask)
    assert np.array_equal(a, b) and len(set(a.tolist())) == 12 and mask[a].all()
    basis.save(tmp_path / "b.npz")
    back = load_basis(tmp_path / "b.npz")
    assert back.devices == basis.devices and np.allclose(back.components, basis.components,
                                                         atol=1e-3)


def test_shipped_basis_covers_the_nb201_cells():
    basis = load_basis()
    assert basis.components.shape == (15625, basis.rank) and basis.rank >= 4
    assert "pixel2" not in basis.devices and "pixel3" not in basis.devices


def test_mixed_design_spreads_half_over_the_given_values():
    basis = build_basis(devices()[0])
    flops = np.arange(300, dtype=float)
    cells = design_cells(basis, 10, seed=4, spread=flops)
    assert sorted(cells[:5] // 60) == list(range(5))  # one per fifth of the range
    assert len(set(cells.tolist())) == 10


def test_cell_error_comes_from_devices_left_out():
    tables, parts = devices()
    rng = np.random.default_rng(9)
    odd = dict(tables)
    odd["x"] = tables["d0"] * np.where(np.arange(300) < 30, rng.uniform(1.5, 2.0, 300), 1.0)
    basis = build_basis(odd, rank=3)
    assert basis.cell_error[:30].mean() > 2 * basis.cell_error[30:].mean()
    assert load_basis().cell_error is not None
