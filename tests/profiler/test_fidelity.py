import math

import numpy as np
import pytest

from profiler import fidelity, measure
from profiler.build import new_lut, with_protocol
from profiler.devices import load_device
from profiler.fidelity import (calibrate_and_report, error_metrics, fit_calibration, measure_series,
                               validate_lut)
from profiler.protocol import Measurement
from sgnas.errors import SgnasError
from sgnas.lut import EntryStats
from sgnas.network import block_flops, head_flops, stem_flops
from sgnas.space import Architecture, get_space

SPACE = get_space("tiny")
QUICK = dict(warmup_ms=0.0, warmup_min_iters=1, rounds=1, min_iters_per_round=3, min_round_ms=0.0,
             remeasure=0)


@pytest.fixture
def device():
    return with_protocol(load_device("cpu"), **QUICK)


def flops_lut(device):
    """A complete LUT whose entries are proportional to FLOPs (no measuring needed)."""
    lut = new_lut(device, SPACE, {})
    ms = {SPACE.stem_key: stem_flops(SPACE) * 1e-7, SPACE.head_key: head_flops(SPACE) * 1e-7}
    for layer in SPACE.layers:
        for c in SPACE.configs:
            ms[layer.key(c)] = block_flops(layer, c) * 1e-7 + 0.001
    lut.entries = {k: EntryStats(v, v, v, 10, 0.0) for k, v in ms.items()}
    lut.complete = True
    return lut


def test_error_metrics():
    m = error_metrics(np.array([1.0, 2.2, 2.9, 4.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert m["n"] == 4
    assert m["mape"] == pytest.approx((0.1 + 1 / 30) / 4)
    assert m["within_5pct"] == 0.75 and m["within_10pct"] == 1.0
    assert m["kendall_tau"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)


def test_fit_calibration_recovers_linear_map():
    raw = np.linspace(1.0, 5.0, 12)
    cal = fit_calibration(raw, 1.3 * raw + 0.4)
    assert cal.slope == pytest.approx(1.3, rel=1e-3) and cal.intercept == pytest.approx(0.4, abs=1e-3)
    assert cal.metrics["estimator"] == "huber"
    assert fit_calibration(raw[:3], 2 * raw[:3]).metrics["estimator"] == "ols"
    with pytest.raises(SgnasError):
        fit_calibration(raw[:1], raw[:1])


def test_validate_with_real_backend_writes_plot(tmp_path, device):
    lut = flops_lut(device)
    plot = tmp_path / "fid.png"
    report = validate_lut(lut, device, SPACE, n=6, rng=np.random.default_rng(0), plot_path=plot)
    assert report.n == 6 and report.n_fit == 3
    assert len(report.measured_ms) == 6 and all(m > 0 for m in report.measured_ms)
    archs = [Architecture.parse(a) for a in report.archs]
    assert report.predicted_raw_ms == pytest.approx([lut.raw_ms(a) for a in archs])
    # the figures are those of the report's own networks: all, held out raw, held out calibrated
    from sgnas import metrics

    pred, meas = np.array(report.predicted_raw_ms), np.array(report.measured_ms)
    held = np.setdiff1d(np.arange(6), report.fit_index)
    assert len(report.fit_index) == 3 and len(held) == 3
    cal = np.array([lut.calibration.apply(float(p)) for p in pred[held]])
    for block, p, m in ((report.raw, pred, meas), (report.raw_heldout, pred[held], meas[held]),
                        (report.calibrated_heldout, cal, meas[held])):
        assert block["mape"] == pytest.approx(metrics.mape(p, m))
        assert block["within_10pct"] == pytest.approx(metrics.share_within(p, m, 10.0))
    assert report.raw_heldout["n"] == report.calibrated_heldout["n"] == 3
    assert lut.calibration is not None and lut.calibration.n_fit == 3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = report.to_dict()
    assert d["plot_path"] == str(plot) and "calibration" in d
    assert "MAPE" in report.summary()


def _ms(ms):
    return Measurement(ms, ms, ms, 10, 0.01, [ms], False)


def test_validate_metrics_and_drift_normalization(device, monkeypatch):
    lut = flops_lut(device)
    lut.drift = {"canary_key": SPACE.layers[0].key((3, 3)), "canary_medians_ms": [1.0]}
    # the machine now runs 1.5x slower (canary 1.5 vs baseline 1.0); networks = 2*raw + 0.1 at
    # build-time speed, so measurements are 1.5*(2*raw + 0.1)
    monkeypatch.setattr(measure.Measurer, "entry", lambda self, key: _ms(1.5))
    monkeypatch.setattr(
        measure.Measurer, "network",
        lambda self, arch, name: _ms(1.5 * (2 * lut.raw_ms(arch) + 0.1)),
    )
    report = validate_lut(lut, device, SPACE, n=20, rng=np.random.default_rng(1))
    assert report.measured_unnormalized_ms == pytest.approx(1.5 * np.array(report.measured_ms))
    assert lut.calibration.slope == pytest.approx(2.0, rel=1e-3)
    assert lut.calibration.intercept == pytest.approx(0.1, abs=1e-3)
    assert report.calibrated_heldout["mape"] < 1e-3
    assert report.calibrated_heldout["within_5pct"] == 1.0
    assert report.raw["within_10pct"] == 0.0
    assert report.raw["kendall_tau"] == pytest.approx(1.0)
    assert report.drift["factors"] == [1.5]
    assert lut.calibration.metrics["heldout_calibrated_mape"] < 1e-3
    assert not math.isnan(report.raw["spearman"])


def test_validate_rejects_bad_requests(device):
    lut = flops_lut(device)
    with pytest.raises(SgnasError, match="at least 4"):
        validate_lut(lut, device, SPACE, n=3)
    with pytest.raises(SgnasError, match="not 'cpu-2t'"):
        validate_lut(lut, load_device("cpu-2t"), SPACE, n=6)


def test_measure_series_applies_the_canary_factor_beyond_the_tolerance():
    canary = iter([1.0, 1.01, 1.2])  # medians at items 0, 2, 4
    measured, factors, medians = measure_series(
        list(range(6)), lambda item, i: 10.0 + i, canary=lambda: next(canary), canary_every=2,
        drift_tolerance=0.03)
    assert measured.tolist() == [10, 11, 12, 13, 14, 15] and medians == [1.0, 1.01, 1.2]
    assert factors.tolist() == [1.0, 1.0, 1.0, 1.0, 1.2, 1.2]  # +1% is within the tolerance
    _, factors, _ = measure_series([0, 1], lambda item, i: 1.0, canary=lambda: 2.0,
                                   canary_every=5, baseline=1.0)
    assert factors.tolist() == [2.0, 2.0]  # off the build's baseline from the start


def test_calibrate_and_report_fits_on_the_ends_and_reports_the_rest():
    raw = np.linspace(1.0, 10.0, 10)
    measured = 2.0 * raw + 1.0
    lut = flops_lut(load_device("cpu"))
    report = calibrate_and_report(lut, "cpu", "tiny", [f"a{i}" for i in range(10)], raw,
                                  measured, fit_fraction=0.5, rng=np.random.default_rng(0))
    assert {0, 9} <= set(report.fit_index) and report.n_fit == 5
    assert lut.calibration.slope == pytest.approx(2.0) and lut.calibration.intercept == pytest.approx(1.0)
    assert report.calibrated_heldout["mape"] == pytest.approx(0.0, abs=1e-9)
    assert report.raw["mape"] == pytest.approx(metrics_mape(raw, measured))
    m = lut.calibration.metrics
    assert m["n_validated"] == 10 and m["heldout_n"] == 5 and len(m["networks"]) == 10
    assert [row[3] for row in m["networks"]] == [i in set(report.fit_index) for i in range(10)]


def metrics_mape(p, m):
    from sgnas import metrics

    return metrics.mape(p, m)
