"""End-to-end validation of a LUT: whole networks measured against the LUT's prediction.

A LUT's raw prediction is the sum of its entries; it misses whole-network effects (fusion across
blocks, memory traffic between blocks, per-run overhead). :func:`validate_lut` picks whole networks
spread over the LUT's whole predicted range (:func:`profiler.calibration_set.calibration_networks`:
both uniform-configuration ends, stage-uniform and heavy/light networks like those a generator
returns, random ones; ``selection="random"`` for uniform samples), builds each from the same graph
pieces as the LUT entries (:func:`profiler.graphs.network_graph`), measures it end to end, fits a
linear calibration (measured ≈ slope · raw + intercept) on part of them
(:func:`~profiler.calibration_set.split_fit_heldout`: both ends and every other network over the
range) and reports the calibrated figures on the held-out rest, overall and for the bottom,
middle and top third of the range. The calibration, its held-out figures and the networks are
stored in the LUT.

A state-normalized LUT (``lut.reference``): each network is timed interleaved with the LUT's
network reference (else its reference block) and stated in the LUT's reference state, so the machine state now does not read as LUT
error. A LUT of the older protocol: the LUT's canary entry is re-measured every ``canary_every``
networks, and measured latencies are divided by its factor when it is off the build's canary by
more than ``drift_tolerance``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from sgnas import metrics
from sgnas.errors import SgnasError, require
from sgnas.fileio import json_safe
from sgnas.lut import Calibration, Lut
from sgnas.progress import Progress
from sgnas.space import SearchSpace

from .build import canary_key
from .calibration_set import calibration_networks, check_split_size, range_thirds, split_fit_heldout
from .measure import Measurer, lut_measurer_args, lut_reference
from .protocol import CanaryMonitor

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


def third_metrics(predicted: np.ndarray, measured: np.ndarray, raw: np.ndarray,
                  lo: float, hi: float) -> dict:
    """MAPE, largest error and shares within ±5% / ±10% in the bottom, middle and top third of the
    raw-prediction range ``[lo, hi]``."""
    out: dict[str, dict[str, float]] = {}
    for name, idx in range_thirds(raw, lo, hi).items():
        if idx.size == 0:
            out[name] = {"n": 0}
            continue
        p, m = predicted[idx], measured[idx]
        out[name] = {"n": int(idx.size), "mape": metrics.mape(p, m),
                     "max_abs_error": metrics.max_abs_error(p, m),
                     "within_5pct": metrics.share_within(p, m, 5.0),
                     "within_10pct": metrics.share_within(p, m, 10.0)}
    return out


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
    #: Calibrated held-out figures per third of the range (bottom / middle / top).
    heldout_thirds: dict = field(default_factory=dict)
    selection: str = "spread"
    normalized: bool = False

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
            + [f"  held-out {name} third: " + (
                f"{t['n']} networks, MAPE {t['mape']:.1%}, within ±5% {t['within_5pct']:.0%}, "
                f"±10% {t['within_10pct']:.0%}" if t.get("n") else "no networks")
               for name, t in self.heldout_thirds.items()]
            + ([f"  plot: {self.plot_path}"] if self.plot_path else [])
        )


def reference_record(meas: Measurer) -> dict:
    """The live reference's record over a validation (model, the state results are stated in,
    its latency now, its drift); empty for a measurer without a reference."""
    live = meas.network_state if meas.network_state is not None else meas.state
    if live is None or not live.samples:
        return {}
    return {"reference": live.model,
            "reference_state_ms": (meas.network_state_ms if meas.network_state is not None
                                   else meas.state_ms),
            "reference_now_ms": live.state_ms,
            "reference_drift": live.drift()}


def measure_series(items: Sequence[Any], measure_one: Callable[[Any, int], float], *,
                   canary: Callable[[], float] | None = None, canary_every: int = 5,
                   drift_tolerance: float = 0.03, baseline: float | None = None,
                   on_item: Callable[[str, int, int], None] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """The one validation loop: ``measure_one(item, i)`` (ms) for each item, with the drift
    canary of the older protocol (:class:`~profiler.protocol.CanaryMonitor`). Every ``canary_every`` items ``canary()`` is re-measured; when
    it is off ``baseline`` (default: its first median) by more than ``drift_tolerance`` the
    following items get its factor. Returns ``(measured, factors, canary medians)``; divide
    ``measured`` by ``factors`` for the drift-corrected latencies."""
    n = len(items)
    measured, factors = np.zeros(n), np.ones(n)
    mon = (CanaryMonitor(canary, every=canary_every, tolerance=drift_tolerance, normalize=True,
                         baseline=baseline)
           if canary is not None and canary_every > 0 else None)
    for i, item in enumerate(items):
        if mon is not None:
            mon.step()
        measured[i] = measure_one(item, i)
        factors[i] = (mon.correction() if mon is not None else None) or 1.0
        if on_item is not None:
            on_item(str(item), i + 1, n)
    medians = mon.medians if mon is not None else []
    return measured, factors, medians


def calibrate_and_report(lut: Lut, device: str, space: str, archs: Sequence[str], raw: np.ndarray,
                         measured: np.ndarray, *, fit_fraction: float, rng: np.random.Generator,
                         estimator: str = "huber", factors: np.ndarray | None = None,
                         drift: dict | None = None, record: dict | None = None,
                         started: float | None = None, selection: str = "spread",
                         normalized: bool = False, plot_path: str | Path | None = None
                         ) -> FidelityReport:
    """The one validation summary of either kind of LUT: split the networks into fit and held-out
    parts (:func:`~profiler.calibration_set.split_fit_heldout`), fit the calibration on the first,
    set it as ``lut.calibration`` with the one set of metric keys, and report raw figures over
    all networks and raw and calibrated figures on the held-out ones (overall and per third)."""
    factors = np.ones(len(raw)) if factors is None else factors
    record = record or {}
    normalized_ms = measured / factors
    fit_idx, test_idx = split_fit_heldout(raw, fit_fraction, rng)
    calibration = fit_calibration(raw[fit_idx], normalized_ms[fit_idx], estimator)
    raw_all = error_metrics(raw, normalized_ms)
    raw_test = error_metrics(raw[test_idx], normalized_ms[test_idx])
    cal_pred = calibration.apply(raw[test_idx])
    cal_test = error_metrics(cal_pred, normalized_ms[test_idx])
    thirds = third_metrics(cal_pred, normalized_ms[test_idx], raw[test_idx], float(raw.min()),
                           float(raw.max()))
    fit_set = set(fit_idx.tolist())
    calibration.metrics.update(
        {
            "n_validated": len(raw),
            "heldout_n": int(len(test_idx)),
            "selection": selection,
            "normalized": normalized,
            "raw_mape": raw_all["mape"],
            "raw_within_10pct": raw_all["within_10pct"],
            "raw_kendall_tau": raw_all["kendall_tau"],
            "heldout_raw_mape": raw_test["mape"],
            "heldout_calibrated_mape": cal_test["mape"],
            "heldout_calibrated_within_5pct": cal_test["within_5pct"],
            "heldout_calibrated_within_10pct": cal_test["within_10pct"],
            "heldout_calibrated_max_abs_error": cal_test["max_abs_error"],
            "heldout_spearman": cal_test["spearman"],
            "heldout_kendall_tau": cal_test["kendall_tau"],
            "heldout_thirds": thirds,
            "range_ms": [float(raw.min()), float(raw.max())],
            "networks": [[str(a), float(r), float(m), i in fit_set]
                         for i, (a, r, m) in enumerate(zip(archs, raw, normalized_ms))],
            **record,
        }
    )
    calibration.metrics = json_safe(calibration.metrics)
    lut.calibration = calibration
    report = FidelityReport(
        device=device,
        space=space,
        lut_fingerprint=lut.fingerprint,
        n=len(raw),
        n_fit=len(fit_idx),
        raw=raw_all,
        raw_heldout=raw_test,
        calibrated_heldout=cal_test,
        calibration=calibration.to_dict(),
        archs=[str(a) for a in archs],
        predicted_raw_ms=raw.tolist(),
        measured_ms=normalized_ms.tolist(),
        measured_unnormalized_ms=measured.tolist(),
        fit_index=fit_idx.tolist(),
        drift={**(drift or {}), "factors": sorted(set(factors.tolist())), **record},
        seconds=time.perf_counter() - started if started is not None else 0.0,
        heldout_thirds=thirds,
        selection=selection,
        normalized=normalized,
    )
    if plot_path is not None:
        report.plot_path = str(plot_fidelity(report, plot_path))
    return report


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
    selection: str = "spread",
) -> FidelityReport:
    """Measure ``n`` whole networks end to end and compare them with ``lut``'s predictions.

    ``selection`` ``"spread"`` (default) takes :func:`calibration_networks`, ``"random"`` uniform
    samples. Sets ``lut.calibration`` to the calibration fitted on ``fit_fraction`` of the networks
    (the report's held-out figures describe exactly that calibration; they and the networks are
    kept in its ``metrics``). Writes a predicted-vs-measured plot to ``plot_path`` when given.
    """
    if lut.device_name != device.name:
        raise SgnasError(f"LUT was measured on device {lut.device_name!r}, not {device.name!r}")
    if lut.space != space.name:
        raise SgnasError(f"LUT is for space {lut.space!r}, not {space.name!r}")
    check_split_size(n, fit_fraction)
    if selection not in ("spread", "random"):
        raise SgnasError(f"network selection must be spread or random, not {selection!r}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    archs = (calibration_networks(space, lut, n, rng) if selection == "spread"
             else [space.sample(rng) for _ in range(n)])
    raw = np.array([lut.raw_ms(a, space) for a in archs])

    started = time.perf_counter()
    reference, _ = lut_reference(lut)
    normalized = reference is not None
    ckey = lut.drift.get("canary_key") or canary_key(space)
    baseline = (lut.drift.get("canary_medians_ms") or [None])[0]
    with Measurer(device, space, seed=int((lut.build or {}).get("seed", seed)), verify=True,
                  cache_dir=cache_dir, prefix="sgnas-fidelity-", **lut_measurer_args(lut)) as meas:
        bar = Progress(n, f"validating {device.name}", unit="net", enabled=progress)
        measured, factors, canary_ms = measure_series(
            archs, lambda arch, i: meas.network(arch, f"net{i}").median_ms,
            canary=None if normalized else (lambda: meas.entry(ckey).median_ms),
            canary_every=canary_every, drift_tolerance=drift_tolerance, baseline=baseline,
            on_item=lambda *_: bar.update(1))
        bar.close()
        record = reference_record(meas)
    return calibrate_and_report(
        lut, device.name, space.name, [str(a) for a in archs], raw, measured,
        fit_fraction=fit_fraction, rng=rng, estimator=estimator, factors=factors,
        drift={"canary_key": ckey, "baseline_ms": baseline, "canary_medians_ms": canary_ms,
               "tolerance": drift_tolerance},
        record=record, started=started, selection=selection, normalized=normalized,
        plot_path=plot_path)


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
