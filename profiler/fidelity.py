"""End-to-end validation of a LUT: sampled whole networks measured against the LUT's prediction.

A LUT's raw prediction is the sum of its entries; it misses whole-network effects (fusion across
blocks, memory traffic between blocks, per-run overhead). :func:`validate_lut` samples random
architectures, builds each whole network from the same graph pieces as the LUT entries
(:func:`profiler.graphs.network_graph`), measures it end to end with the device's backend and
protocol, and reports how well the LUT sum predicts the measurement. It then fits a linear
calibration (measured ≈ slope · raw + intercept) on ``fit_fraction`` of the networks and reports the
calibrated figures on the held-out rest; the calibration is stored in the LUT.

Drift: the LUT's canary entry is re-measured every ``canary_every`` networks. When it is off the
LUT's canary baseline (recorded at build time) by more than ``drift_tolerance``, measured latencies
are divided by that factor, so a slower or faster machine state now does not read as LUT error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sgnas import metrics
from sgnas.errors import SgnasError, require
from sgnas.fileio import json_safe
from sgnas.lut import Calibration, Lut
from sgnas.progress import Progress
from sgnas.space import SearchSpace

from .build import canary_key
from .measure import Measurer

if TYPE_CHECKING:  # pragma: no cover
    from .devices import DeviceDescriptor

log = logging.getLogger(__name__)


def error_metrics(predicted: np.ndarray, measured: np.ndarray) -> dict:
    """MAPE, signed bias, shares within ±5% / ±10%, Kendall τ, Spearman ρ and Pearson r."""
    return {
        "n": int(len(measured)),
        "mape": metrics.mape(predicted, measured),
        "bias": metrics.bias(predicted, measured),
        "max_abs_error": metrics.max_abs_error(predicted, measured),
        "within_5pct": metrics.share_within(predicted, measured, 5.0),
        "within_10pct": metrics.share_within(predicted, measured, 10.0),
        "kendall_tau": metrics.kendall_tau(predicted, measured),
        "spearman": metrics.spearman(predicted, measured),
        "pearson": metrics.pearson(predicted, measured),
    }


def fit_calibration(raw: np.ndarray, measured: np.ndarray, estimator: str = "huber") -> Calibration:
    """Fit ``measured ≈ slope · raw + intercept`` with scikit-learn (Huber loss or least squares)."""
    linear_model = require("sklearn.linear_model", "tools")
    HuberRegressor, LinearRegression = linear_model.HuberRegressor, linear_model.LinearRegression

    x = np.asarray(raw, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(measured, dtype=np.float64)
    if len(y) < 2:
        raise SgnasError("a calibration needs at least 2 fitted networks; validate more networks")
    if estimator == "huber" and len(y) >= 5:
        # Scale to ~1 so Huber's epsilon (in units of the residual scale) behaves the same for any ms.
        s = float(np.median(y)) or 1.0
        model = HuberRegressor(epsilon=1.35, alpha=0.0, max_iter=1000).fit(x / s, y / s)
        slope, intercept = float(model.coef_[0]), float(model.intercept_) * s
    elif estimator in ("huber", "ols"):
        model = LinearRegression().fit(x, y)
        slope, intercept, estimator = float(model.coef_[0]), float(model.intercept_), "ols"
    else:
        raise SgnasError(f"unknown calibration estimator {estimator!r} (huber or ols)")
    return Calibration(slope=slope, intercept=intercept, n_fit=len(y), metrics={"estimator": estimator})


@dataclass
class FidelityReport:
    """Figures of one validation run (relative errors are fractions: 0.05 = 5%)."""

    device: str
    space: str
    lut_fingerprint: str
    n: int
    n_fit: int
    raw: dict
    raw_heldout: dict
    calibrated_heldout: dict
    calibration: dict
    archs: list[str] = field(default_factory=list)
    predicted_raw_ms: list[float] = field(default_factory=list)
    measured_ms: list[float] = field(default_factory=list)
    measured_unnormalized_ms: list[float] = field(default_factory=list)
    fit_index: list[int] = field(default_factory=list)
    drift: dict = field(default_factory=dict)
    seconds: float = 0.0
    plot_path: str | None = None

    def to_dict(self) -> dict:
        return json_safe(asdict(self))

    def summary(self) -> str:
        """A few lines for humans."""
        r, c = self.raw, self.calibrated_heldout
        return "\n".join(
            [
                f"LUT fidelity on {self.device} ({self.space}, {self.n} networks, "
                f"calibration fitted on {self.n_fit}):",
                f"  raw LUT sum : MAPE {r['mape']:.1%}, within ±5% {r['within_5pct']:.0%}, "
                f"±10% {r['within_10pct']:.0%}, Kendall τ {r['kendall_tau']:.3f}, "
                f"Spearman {r['spearman']:.3f}, bias {r['bias']:+.1%}",
                f"  calibrated (held-out {c['n']}): MAPE {c['mape']:.1%}, within ±5% "
                f"{c['within_5pct']:.0%}, ±10% {c['within_10pct']:.0%}, Kendall τ "
                f"{c['kendall_tau']:.3f}",
                f"  calibration: measured = {self.calibration['slope']:.4f} · raw "
                f"{self.calibration['intercept']:+.4f} ms",
            ]
            + ([f"  plot: {self.plot_path}"] if self.plot_path else [])
        )


def validate_lut(
    lut: Lut,
    device: "DeviceDescriptor",
    space: SearchSpace,
    n: int = 100,
    rng: np.random.Generator | None = None,
    fit_fraction: float = 0.5,
    plot_path: str | Path | None = None,
    estimator: str = "huber",
    canary_every: int = 5,
    drift_tolerance: float = 0.03,
    seed: int = 0,
    progress: bool = False,
    cache_dir: Path | None = None,
) -> FidelityReport:
    """Measure ``n`` random networks end to end and compare them with ``lut``'s predictions.

    Sets ``lut.calibration`` to the calibration fitted on ``fit_fraction`` of the networks (the
    report's held-out figures describe exactly that calibration). Writes a predicted-vs-measured
    plot to ``plot_path`` when given.
    """
    if lut.device_name != device.name:
        raise SgnasError(f"LUT was measured on device {lut.device_name!r}, not {device.name!r}")
    if lut.space != space.name:
        raise SgnasError(f"LUT is for space {lut.space!r}, not {space.name!r}")
    if n < 4:
        raise SgnasError(f"--validate needs at least 4 networks (2 to fit, 2 to test), got {n}")
    if not 0.0 < fit_fraction < 1.0:
        raise SgnasError(f"fit fraction must be in (0, 1), got {fit_fraction}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n)]
    raw = np.array([lut.raw_ms(a, space) for a in archs])

    started = time.perf_counter()
    ckey = lut.drift.get("canary_key") or canary_key(space)
    baseline = (lut.drift.get("canary_medians_ms") or [None])[0]
    canary_ms: list[float] = []
    factors = np.ones(n)
    measured = np.zeros(n)
    with Measurer(device, space, seed=seed, verify=True, cache_dir=cache_dir,
                  prefix="sgnas-fidelity-") as meas:
        bar = Progress(n, f"validating {device.name}", unit="net", enabled=progress)
        factor = 1.0
        for i, arch in enumerate(archs):
            if canary_every > 0 and i % canary_every == 0:
                canary_ms.append(meas.entry(ckey).median_ms)
                base = baseline if baseline else canary_ms[0]
                f = canary_ms[-1] / base
                factor = f if abs(f - 1.0) > drift_tolerance else 1.0
            measured[i] = meas.network(arch, f"net{i}").median_ms
            factors[i] = factor
            bar.update(1)
        bar.close()
    normalized = measured / factors

    order = rng.permutation(n)
    n_fit = min(max(2, int(round(fit_fraction * n))), n - 2)
    fit_idx, test_idx = np.sort(order[:n_fit]), np.sort(order[n_fit:])
    calibration = fit_calibration(raw[fit_idx], normalized[fit_idx], estimator)
    raw_all = error_metrics(raw, normalized)
    raw_test = error_metrics(raw[test_idx], normalized[test_idx])
    cal_test = error_metrics(calibration.apply(raw[test_idx]), normalized[test_idx])
    calibration.metrics.update(
        {
            "n_validated": n,
            "heldout_n": int(len(test_idx)),
            "raw_mape": raw_all["mape"],
            "raw_within_10pct": raw_all["within_10pct"],
            "raw_kendall_tau": raw_all["kendall_tau"],
            "heldout_raw_mape": raw_test["mape"],
            "heldout_calibrated_mape": cal_test["mape"],
            "heldout_calibrated_within_5pct": cal_test["within_5pct"],
            "heldout_calibrated_within_10pct": cal_test["within_10pct"],
        }
    )
    calibration.metrics = json_safe(calibration.metrics)
    lut.calibration = calibration

    report = FidelityReport(
        device=device.name,
        space=space.name,
        lut_fingerprint=lut.fingerprint,
        n=n,
        n_fit=n_fit,
        raw=raw_all,
        raw_heldout=raw_test,
        calibrated_heldout=cal_test,
        calibration=calibration.to_dict(),
        archs=[str(a) for a in archs],
        predicted_raw_ms=raw.tolist(),
        measured_ms=normalized.tolist(),
        measured_unnormalized_ms=measured.tolist(),
        fit_index=fit_idx.tolist(),
        drift={
            "canary_key": ckey,
            "baseline_ms": baseline,
            "canary_medians_ms": canary_ms,
            "factors": sorted(set(factors.tolist())),
            "tolerance": drift_tolerance,
        },
        seconds=time.perf_counter() - started,
    )
    if plot_path is not None:
        report.plot_path = str(plot_fidelity(report, plot_path))
    return report


def plot_fidelity(report: FidelityReport, path: str | Path) -> Path:
    """Predicted (raw and calibrated) against measured latency, with ±5% and ±10% bands, as PNG."""
    Figure = require("matplotlib.figure", "tools").Figure

    from sgnas.fileio import atomic_write_with

    measured = np.asarray(report.measured_ms)
    raw = np.asarray(report.predicted_raw_ms)
    cal = Calibration.from_dict(report.calibration).apply(raw)
    test = np.setdiff1d(np.arange(report.n), report.fit_index)
    lo, hi = 0.9 * min(measured.min(), raw.min(), cal.min()), 1.1 * max(
        measured.max(), raw.max(), cal.max()
    )
    xs = np.linspace(lo, hi, 2)
    fig = Figure(figsize=(5.5, 5.0), dpi=120)
    ax = fig.subplots()
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.9", label="±10%")
    ax.fill_between(xs, xs * 0.95, xs * 1.05, color="0.8", label="±5%")
    ax.plot(xs, xs, color="0.3", lw=0.8)
    ax.scatter(measured, raw, s=12, marker="o", color="tab:orange", label="LUT sum (raw)")
    ax.scatter(measured[test], cal[test], s=12, marker="x", color="tab:blue",
               label="calibrated (held-out)")
    r, c = report.raw, report.calibrated_heldout
    ax.set_title(
        f"{report.device} / {report.space}: raw MAPE {r['mape']:.1%}, "
        f"calibrated {c['mape']:.1%}", fontsize=9
    )
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    atomic_write_with(path, lambda fh: fig.savefig(fh, format="png"))
    return path
