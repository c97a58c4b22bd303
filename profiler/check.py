"""Latency regression checks for CI (``sgnas check``).

Two modes share one comparison rule:

* :func:`check_lut` re-measures a stratified sample of a LUT's entries (stem and head always, the
  layer entries spread over layer shapes and latency quantiles) and a few seeded random networks
  (measured end to end against the LUT's prediction);
* :func:`check_onnx` re-measures any ONNX model against a baseline file written by
  :func:`write_baseline` (``sgnas check --onnx model.onnx --baseline latency.json --update``).

An item's tolerance is ``max(floor, k * spread)``, where ``spread`` (IQR / median) is the larger of
the one recorded with the baseline and the one measured now: a noisy entry or a noisy machine widens
its own tolerance, up to ``max_tolerance`` (50% by default, never below the floor), so that a
measurement too noisy to judge cannot hide a large slowdown. An item slower than ``1 + tolerance`` is a *suspect* and is re-measured up to
``remeasure`` times; it fails (``regressed``) only if the re-measurements (their minimum, or their
median) stay beyond tolerance, and passes as ``noisy`` otherwise. Items faster than
``1 / (1 + tolerance)`` are reported as ``improved``, a note, not a failure. Finally the median ratio
over all sampled LUT entries is a test of its own (``global-shift``): a slowdown of the whole
device or runtime fails it even when each entry alone stays within its tolerance.

Measuring is injectable: ``measure_fn(target) -> Measurement`` (anything with ``median_ms`` and
``spread``); the default, :class:`DeviceMeasurer`, builds each target's ONNX graph and measures it
with the device's runtime and protocol.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sgnas.errors import SgnasError
from sgnas.fileio import atomic_write_bytes, atomic_write_json
from sgnas.space import Architecture, SearchSpace, get_space

OK, IMPROVED, NOISY, REGRESSED = "ok", "improved", "noisy", "regressed"
#: A network slower than the LUT predicts, when the LUT records no end-to-end error: reported, not failed.
MISMATCH = "mismatch"
BASELINE_SCHEMA = 1
REPORT_SCHEMA = 1
#: Device settings that shape latency; a baseline recorded with other values is not comparable.
LATENCY_FIELDS = ("name", "backend", "precision", "batch_size", "threads", "pin_threads",
                  "input_size", "gpu_model", "cuda_graphs")
#: Tolerances at or above this (1000%) are refused: the check would not check anything.
MAX_TOLERANCE = 10.0


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# ------------------------------------------------------------------ configuration
def parse_tolerance(text: str | float) -> float:
    """Parse a tolerance given in percent (``"10%"`` or ``"10"``) into a fraction (0.1).

    A bare number below 1 (``"0.1"``) is refused as ambiguous (10% or 0.1%?); write ``"0.1%"``.
    Negative values, non-numbers and tolerances of 1000% or more raise :class:`SgnasError`.
    """
    raw = str(text).strip()
    body = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(body)
    except ValueError:
        raise SgnasError(f"tolerance {raw!r} is not a percentage (write e.g. 10%)") from None
    if not math.isfinite(value) or value < 0:
        raise SgnasError(f"tolerance {raw!r} must be a percentage >= 0 (e.g. 10%)")
    if not raw.endswith("%") and 0 < value < 1:
        raise SgnasError(f"tolerance {raw!r} is ambiguous: write {value * 100:g}% or {value:g}%")
    fraction = value / 100.0
    if fraction >= MAX_TOLERANCE:
        raise SgnasError(f"tolerance {raw!r} is too large (must be below {MAX_TOLERANCE * 100:g}%)")
    return fraction


@dataclass(frozen=True)
class CheckConfig:
    """How a check samples, measures and judges.

    ``tolerance`` is the floor (fraction) of every item's tolerance and the threshold of the
    global-shift test; ``spread_k`` scales the recorded/measured spread into a tolerance. ``sample``
    is the number of LUT entries to re-measure (``None``: all). Suspects are re-measured up to
    ``remeasure`` times, reduced by ``reduce`` (``"min"`` stops at the first re-measurement within
    tolerance; ``"median"`` always takes all). ``network_tolerance`` overrides the tolerance floor of
    reference networks (their baseline is a prediction, not a measurement). ``max_tolerance`` caps
    the spread-derived tolerance. ``canary`` re-measures the LUT build's canary entry at the start
    and the end of a LUT check to report drift.
    """

    tolerance: float = 0.10
    spread_k: float = 2.0
    max_tolerance: float = 0.5
    sample: int | None = 40
    networks: int = 3
    seed: int = 0
    remeasure: int = 3
    reduce: str = "min"
    calibrated: bool = True
    network_tolerance: float | None = None
    global_min_entries: int = 3
    canary: bool = True
    allow_device_change: bool = False
    allow_model_change: bool = False
    force: bool = False
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance < MAX_TOLERANCE:
            raise SgnasError(f"tolerance {self.tolerance!r} out of range [0, {MAX_TOLERANCE})")
        if self.network_tolerance is not None and not 0 <= self.network_tolerance < MAX_TOLERANCE:
            raise SgnasError(f"network tolerance {self.network_tolerance!r} out of range")
        if not 0 < self.max_tolerance < MAX_TOLERANCE:
            raise SgnasError(f"maximum tolerance {self.max_tolerance!r} out of range (0, {MAX_TOLERANCE})")
        if self.spread_k < 0:
            raise SgnasError(f"spread factor k must be >= 0, got {self.spread_k}")
        if self.sample is not None and self.sample < 2:
            raise SgnasError(f"--sample must be at least 2 (stem and head), got {self.sample}")
        if self.networks < 0:
            raise SgnasError(f"--networks must be >= 0, got {self.networks}")
        if self.remeasure < 0:
            raise SgnasError(f"--remeasure must be >= 0, got {self.remeasure}")
        if self.reduce not in ("min", "median"):
            raise SgnasError(f"re-measurement reduction must be 'min' or 'median', not {self.reduce!r}")

    def item_tolerance(self, baseline_spread: float, now_spread: float, floor: float | None = None) -> float:
        """``max(floor, min(k * max(baseline_spread, now_spread), max_tolerance))``.

        A missing or non-finite spread counts as maximal noise (the cap).
        """
        floor = self.tolerance if floor is None else floor
        spreads = [s if s is not None and math.isfinite(s) else math.inf
                   for s in (baseline_spread, now_spread)]
        widened = min(self.spread_k * max(spreads), self.max_tolerance) if self.spread_k else 0.0
        return float(max(floor, widened))


# ----------------------------------------------------------------- targets, results
@dataclass(frozen=True)
class Target:
    """One thing to re-measure: a LUT ``"entry"``, a reference ``"network"`` or an ONNX ``"model"``.

    ``baseline_ms`` is what it is compared with (the LUT entry, the LUT's prediction of the network,
    the baseline file's median); ``tolerance_floor`` overrides the configured floor. An
    ``informational`` target is reported as ``mismatch`` instead of failing.
    """

    name: str
    kind: str
    baseline_ms: float
    baseline_spread: float = 0.0
    arch: Architecture | None = None
    path: str | None = None
    input_shape: tuple[int, ...] | None = None
    tolerance_floor: float | None = None
    informational: bool = False


MeasureFn = Callable[[Target], Any]


@dataclass
class ItemResult:
    """The verdict on one item; ``measurements_ms`` lists every median taken (first one first)."""

    name: str
    kind: str
    baseline_ms: float
    now_ms: float
    ratio: float
    tolerance: float
    status: str
    spread_now: float = 0.0
    baseline_spread: float = 0.0
    measurements_ms: list[float] = field(default_factory=list)
    time_s: float = 0.0
    note: str = ""
    arch: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == REGRESSED

    def describe(self) -> str:
        """One line: what was compared and the verdict."""
        if self.kind == "global":
            text = (f"median ratio {self.ratio:.3f}x over {len(self.measurements_ms)} entries, "
                    f"limit {1 + self.tolerance:.3f}x: {self.status}")
        else:
            text = (f"baseline {self.baseline_ms:.4f} ms, now {self.now_ms:.4f} ms, ratio "
                    f"{self.ratio:.3f}x, limit {1 + self.tolerance:.3f}x (tolerance "
                    f"{100 * self.tolerance:.1f}%, spread then {100 * self.baseline_spread:.1f}% / now "
                    f"{100 * self.spread_now:.1f}%): {self.status}")
            if len(self.measurements_ms) > 1:
                runs = ", ".join(f"{m:.4f}" for m in self.measurements_ms)
                text += f"; measured {len(self.measurements_ms)} times: {runs} ms"
        if self.arch:
            text += f"; architecture {self.arch}"
        if self.note:
            text += f"; {self.note}"
        return text

    def to_dict(self) -> dict:
        return _finite(asdict(self))


def _finite(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by ``None`` (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _spread(m: Any) -> float:
    s = getattr(m, "spread", 0.0)
    return float(s) if s is not None else 0.0


def compare(target: Target, cfg: CheckConfig, measure_fn: MeasureFn) -> ItemResult:
    """Measure ``target``, re-measure it if it is a suspect, and judge it (see the module docstring)."""
    if not (target.baseline_ms > 0 and math.isfinite(target.baseline_ms)):
        raise SgnasError(f"{target.name}: baseline latency {target.baseline_ms!r} ms is not positive")
    floor = target.tolerance_floor
    start = time.perf_counter()

    def tol_of(m: Any) -> float:
        return cfg.item_tolerance(target.baseline_spread, _spread(m), floor)

    def within(m: Any) -> bool:
        return float(m.median_ms) / target.baseline_ms <= 1.0 + tol_of(m)

    first = measure_fn(target)
    taken = [first]
    final_ms, final_spread = float(first.median_ms), _spread(first)
    status = None
    if not within(first) and cfg.remeasure > 0 and not target.informational:
        again = []
        for _ in range(cfg.remeasure):
            m = measure_fn(target)
            again.append(m)
            if cfg.reduce == "min" and within(m):
                break
        taken.extend(again)
        if cfg.reduce == "min":
            best = min(again, key=lambda m: float(m.median_ms))
            final_ms, final_spread = float(best.median_ms), _spread(best)
        else:
            final_ms = float(np.median([float(m.median_ms) for m in again]))
            final_spread = float(np.median([_spread(m) for m in again]))
        tol = cfg.item_tolerance(target.baseline_spread, final_spread, floor)
        status = NOISY if final_ms / target.baseline_ms <= 1.0 + tol else REGRESSED
    tol = cfg.item_tolerance(target.baseline_spread, final_spread, floor)
    ratio = final_ms / target.baseline_ms
    if status is None:
        if ratio > 1.0 + tol:
            status = REGRESSED
        elif ratio < 1.0 / (1.0 + tol):
            status = IMPROVED
        else:
            status = OK
    if status == REGRESSED and target.informational:
        status = MISMATCH
    note = ""
    if status == MISMATCH:
        note = ("slower than the LUT predicts, but the LUT records no end-to-end error to judge it "
                "by (calibrate it with sgnas-profile --validate); not failed")
    elif status == NOISY:
        note = (f"first run {float(first.median_ms):.4f} ms ({float(first.median_ms) / target.baseline_ms:.2f}x) "
                f"was not confirmed by {len(taken) - 1} re-measurement(s)")
    elif status == REGRESSED and len(taken) > 1:
        note = f"confirmed by {len(taken) - 1} re-measurement(s) ({cfg.reduce})"
    elif status == IMPROVED:
        note = ("faster than the LUT predicts" if target.kind == "network"
                else "faster than the baseline beyond tolerance: consider refreshing it")
    return ItemResult(
        name=target.name,
        kind=target.kind,
        baseline_ms=float(target.baseline_ms),
        now_ms=final_ms,
        ratio=float(ratio),
        tolerance=tol,
        status=status,
        spread_now=final_spread,
        baseline_spread=float(target.baseline_spread),
        measurements_ms=[float(m.median_ms) for m in taken],
        time_s=time.perf_counter() - start,
        note=note,
        arch=None if target.arch is None else str(target.arch),
    )


def global_shift(results: Sequence[ItemResult], cfg: CheckConfig) -> ItemResult | None:
    """The global-shift test over the LUT entries among ``results`` (``None`` if too few)."""
    entries = [r for r in results if r.kind == "entry"]
    if len(entries) < max(cfg.global_min_entries, 1):
        return None
    ratios = [r.ratio for r in entries]
    ratio = float(np.median(ratios))
    tol = cfg.tolerance
    if ratio > 1.0 + tol:
        status, note = REGRESSED, "the whole device or runtime is slower than when the LUT was recorded"
    elif ratio < 1.0 / (1.0 + tol):
        status, note = IMPROVED, "the whole device or runtime is faster: consider re-profiling the LUT"
    else:
        status, note = OK, ""
    return ItemResult(
        name="global-shift", kind="global", baseline_ms=1.0, now_ms=ratio, ratio=ratio,
        tolerance=tol, status=status, measurements_ms=[float(r) for r in ratios], note=note,
    )


# --------------------------------------------------------------------------- report
@dataclass
class CheckReport:
    """The outcome of a check: per-item results, the global-shift test, the noise seen, provenance."""

    mode: str
    source: str
    device: dict
    baseline_device: dict
    results: list[ItemResult]
    config: CheckConfig
    global_result: ItemResult | None = None
    noise: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=_now)

    @property
    def items(self) -> list[ItemResult]:
        """Every test case: the items, then the global-shift test."""
        return self.results + ([self.global_result] if self.global_result is not None else [])

    @property
    def failures(self) -> list[ItemResult]:
        return [r for r in self.items if r.failed]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0 when everything is within tolerance, 1 on a regression."""
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in (OK, NOISY, IMPROVED, MISMATCH, REGRESSED)}
        for r in self.items:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def summary(self) -> str:
        """One line: verdict, counts and the noise seen."""
        c = self.counts()
        verdict = "PASS" if self.passed else "FAIL"
        text = (f"{verdict}: {len(self.items)} checks on device {self.device.get('name', '?')}: "
                f"{c[OK]} ok, {c[NOISY]} noisy, {c[IMPROVED]} improved, "
                + (f"{c[MISMATCH]} mismatch, " if c[MISMATCH] else "") + f"{c[REGRESSED]} regressed")
        return text + "; " + self.noise_line()

    def noise_line(self) -> str:
        n = self.noise
        parts = []
        if n.get("median_spread") is not None:
            parts.append(f"median spread {100 * n['median_spread']:.1f}% this run")
        if n.get("baseline_median_spread") is not None:
            parts.append(f"{100 * n['baseline_median_spread']:.1f}% in the baseline")
        if n.get("canary_drift") is not None:
            parts.append(f"canary drift {100 * n['canary_drift']:+.1f}% during the check")
        if n.get("canary_vs_lut") is not None:
            parts.append(f"canary {n['canary_vs_lut']:.2f}x its LUT value")
        if n.get("remeasured"):
            parts.append(f"{n['remeasured']} suspect(s) re-measured")
        return "noise: " + (", ".join(parts) if parts else "not measured")

    def table(self) -> str:
        """A fixed-width table: key, baseline ms, now ms, ratio, tolerance, status."""
        rows = [("key", "baseline ms", "now ms", "ratio", "tol", "status")]
        for r in self.results:
            rows.append((r.name, f"{r.baseline_ms:.4f}", f"{r.now_ms:.4f}", f"{r.ratio:.3f}x",
                         f"{100 * r.tolerance:.1f}%", r.status))
        g = self.global_result
        if g is not None:
            rows.append((f"global-shift (median of {len(g.measurements_ms)})", "-", "-",
                         f"{g.ratio:.3f}x", f"{100 * g.tolerance:.1f}%", g.status))
        widths = [max(len(row[i]) for row in rows) for i in range(6)]
        lines = []
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:5], widths[1:5])]
            lines.append("  ".join(cells + [row[5]]))
        notes = [f"{r.name}: {r.note}" for r in self.items
                 if r.note and (r.status in (NOISY, REGRESSED, MISMATCH) or r.kind == "global")]
        return "\n".join(lines + [""] + notes + self.notes + [self.summary()])

    def to_dict(self) -> dict:
        cfg = asdict(self.config)
        return _finite({
            "schema_version": REPORT_SCHEMA,
            "kind": "sgnas-check",
            "mode": self.mode,
            "source": self.source,
            "created": self.created,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "device": self.device,
            "baseline_device": self.baseline_device,
            "environment": self.environment,
            "config": cfg,
            "noise": self.noise,
            "global": None if self.global_result is None else self.global_result.to_dict(),
            "results": [r.to_dict() for r in self.results],
            "notes": list(self.notes),
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str) + "\n"

    def to_junit(self) -> str:
        """JUnit XML: one ``<testcase>`` per item and the global-shift test, ``<failure>`` on regression."""
        from .junit import JUnitCase, junit_xml

        dev = self.device.get("name", "device")
        cases = []
        for r in self.items:
            failure = None
            if r.failed:
                failure = (f"{r.name} regressed: {r.ratio:.3f}x > {1 + r.tolerance:.3f}x "
                           f"({r.now_ms:.4f} ms vs {r.baseline_ms:.4f} ms)"
                           if r.kind != "global" else
                           f"global shift: median ratio {r.ratio:.3f}x > {1 + r.tolerance:.3f}x")
            cases.append(JUnitCase(
                name=r.name, classname=f"sgnas.check.{dev}.{r.kind}", time_s=r.time_s,
                failure=failure, failure_type="LatencyRegression", details=r.describe(),
            ))
        props = {"mode": self.mode, "source": self.source, "device": self.device,
                 "baseline_device": self.baseline_device, "noise": self.noise,
                 "environment": self.environment}
        return junit_xml(f"sgnas check {dev}", cases, props, timestamp=self.created)

    def write_json(self, path: str | os.PathLike) -> None:
        atomic_write_bytes(path, self.to_json().encode())

    def write_junit(self, path: str | os.PathLike) -> None:
        atomic_write_bytes(path, self.to_junit().encode("utf-8"))


def _noise(results: Sequence[ItemResult], drift: float | None) -> dict:
    measured = [r for r in results if r.kind != "global"]
    recorded = [r for r in measured if r.kind != "network"]
    out: dict[str, Any] = {
        "median_spread": float(np.median([r.spread_now for r in measured])) if measured else None,
        "max_spread": float(max((r.spread_now for r in measured), default=0.0)) if measured else None,
        "baseline_median_spread": (float(np.median([r.baseline_spread for r in recorded]))
                                   if recorded else None),
        "remeasured": sum(len(r.measurements_ms) > 1 for r in measured),
        "noisy": sum(r.status == NOISY for r in measured),
        "canary_drift": drift,
    }
    return out


# ----------------------------------------------------------------------- devices
def device_dict(device: Any) -> dict:
    """A device descriptor as a plain dict (``to_dict()``, a dataclass, or a mapping)."""
    if isinstance(device, dict):
        return dict(device)
    if hasattr(device, "to_dict"):
        return dict(device.to_dict())
    try:
        return asdict(device)
    except TypeError:
        return {k: v for k, v in vars(device).items() if not k.startswith("_")}


def _resolve_device(device: Any):
    if isinstance(device, (str, os.PathLike)):
        from .devices import load_device

        return load_device(str(device))
    return device


def check_same_device(recorded: dict, now: dict, what: str, allow_change: bool = False) -> None:
    """Raise :class:`SgnasError` if ``what`` was recorded on another device, or with other settings."""
    if allow_change:
        return
    r_name, n_name = recorded.get("name"), now.get("name")
    if r_name != n_name:
        raise SgnasError(
            f"{what} was recorded on device {r_name!r}, this check runs on {n_name!r}; "
            f"use one recorded on {n_name!r} or pass --allow-device-change"
        )
    changed = [f"{k} {recorded[k]!r} -> {now[k]!r}" for k in LATENCY_FIELDS
               if k in recorded and k in now and recorded[k] != now[k]]
    if changed:
        raise SgnasError(
            f"device {n_name!r} changed since {what} was recorded ({', '.join(changed)}); "
            f"refresh the baseline or pass --allow-device-change"
        )


# ------------------------------------------------------------------- LUT sampling
def stratified_sample(
    keys_by_shape: dict[str, list[tuple[str, float]]],
    fixed: Sequence[str],
    n: int | None,
    rng: np.random.Generator,
) -> list[str]:
    """Pick ``n`` keys: all of ``fixed`` (stem, head), the rest spread over shapes and latency.

    ``keys_by_shape`` maps a layer shape to its ``(key, latency_ms)`` entries. The remaining budget
    is shared evenly over the shapes (the extra picks go to randomly chosen shapes); within a shape,
    its entries sorted by latency are cut into as many contiguous bins as it gets picks and one key is
    drawn from each bin, so fast and slow configurations are both covered. When the budget is
    smaller than the number of shapes, the bins are taken over all entries sorted by latency.
    ``n=None`` returns every key.
    """
    fixed = list(dict.fromkeys(fixed))
    if n is None:
        return fixed + [k for entries in keys_by_shape.values() for k, _ in entries]
    budget = max(n - len(fixed), 0)
    shapes = [s for s, entries in keys_by_shape.items() if entries]
    total = sum(len(keys_by_shape[s]) for s in shapes)
    budget = min(budget, total)
    picked: list[str] = []

    def draw(entries: list[tuple[str, float]], m: int) -> list[str]:
        ordered = sorted(entries, key=lambda e: (e[1], e[0]))
        bins = np.array_split(np.arange(len(ordered)), m)
        return [ordered[int(rng.choice(b))][0] for b in bins if len(b)]

    if budget == 0 or not shapes:
        return fixed
    if budget < len(shapes):
        everything = [e for s in shapes for e in keys_by_shape[s]]
        picked = draw(everything, budget)
    else:
        share = {s: budget // len(shapes) for s in shapes}
        extra = budget - sum(share.values())
        for s in rng.permutation(shapes)[:extra]:
            share[str(s)] += 1
        # a shape with fewer entries than its share passes the surplus on to the others
        surplus = 0
        for s in shapes:
            cap = len(keys_by_shape[s])
            if share[s] > cap:
                surplus += share[s] - cap
                share[s] = cap
        for s in shapes:
            room = len(keys_by_shape[s]) - share[s]
            take = min(room, surplus)
            share[s] += take
            surplus -= take
        for s in shapes:
            picked.extend(draw(keys_by_shape[s], share[s]))
    return fixed + picked


def lut_targets(lut: Any, space: SearchSpace, cfg: CheckConfig, rng: np.random.Generator) -> list[Target]:
    """The LUT entries to re-measure (stratified sample, see :func:`stratified_sample`)."""
    fixed = [k for k in (space.stem_key, space.head_key) if k in lut.entries]
    by_shape: dict[str, list[tuple[str, float]]] = {}
    seen: set[str] = set(fixed)
    for layer in space.layers:
        for config in space.configs:
            key = layer.key(config)
            if key in lut.entries and key not in seen:
                seen.add(key)
                by_shape.setdefault(layer.shape_key, []).append((key, lut.entries[key].median_ms))
    keys = stratified_sample(by_shape, fixed, cfg.sample, rng)
    return [Target(k, "entry", float(lut.entries[k].median_ms), float(lut.entries[k].spread))
            for k in keys]


def lut_model_error(lut: Any, calibrated: bool) -> float | None:
    """The LUT's recorded end-to-end prediction error (MAPE, a fraction) of its calibrated or raw
    prediction, as ``sgnas-profile --validate`` stores it in the calibration's metrics."""
    cal = getattr(lut, "calibration", None)
    metrics = getattr(cal, "metrics", None) or {}
    keys = ("heldout_calibrated_mape",) if calibrated else ("raw_mape", "heldout_raw_mape")
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
            return float(value)
    return None


def network_targets(lut: Any, space: SearchSpace, cfg: CheckConfig, rng: np.random.Generator) -> list[Target]:
    """``cfg.networks`` random architectures, each with the LUT's (calibrated) prediction.

    The baseline spread of a network is the LUT's recorded end-to-end error, so its tolerance is
    ``max(floor, k * max(error, spread now))``. Without a recorded error (a LUT never validated) a
    network cannot fail: it is reported as ``mismatch`` when slower than predicted, unless
    ``cfg.network_tolerance`` is given explicitly.
    """
    calibrated = cfg.calibrated and getattr(lut, "calibration", None) is not None
    error = lut_model_error(lut, calibrated)
    floor = cfg.network_tolerance if cfg.network_tolerance is not None else cfg.tolerance
    informational = error is None and cfg.network_tolerance is None
    out = []
    for i in range(cfg.networks):
        arch = space.sample(rng)
        predicted = float(lut.predict_ms(arch, calibrated=calibrated))
        out.append(Target(f"network-{i}", "network", predicted, error or 0.0, arch=arch,
                          tolerance_floor=floor, informational=informational))
    return out


# --------------------------------------------------------------------- measuring
class DeviceMeasurer:
    """The default ``measure_fn``: measures targets on ``device`` with its runtime and protocol.

    LUT entries and networks are built as ONNX graphs (:mod:`profiler.graphs`) in a temporary
    folder; ``"model"`` targets run their own file. Every call opens a fresh runner (one live session
    at a time). With ``canary_key`` a fixed LUT entry is re-measured periodically and at
    :meth:`finish`, and :meth:`drift` reports its relative change. Use it as a context manager.
    """

    def __init__(self, device: Any, space: SearchSpace | None = None, protocol: Any = None,
                 cache_dir: str | os.PathLike | None = None, canary_key: str | None = None,
                 seed: int = 0) -> None:
        from .protocol import ProtocolConfig

        self.device = device
        self.space = space
        if protocol is None:
            protocol = getattr(device, "protocol", None)
        if isinstance(protocol, dict):
            protocol = ProtocolConfig.from_dict(protocol)
        self.protocol = protocol if protocol is not None else ProtocolConfig()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.seed = seed
        self._tmp = tempfile.TemporaryDirectory(prefix="sgnas-check-")
        #: (identity, ModelSpec) of the last target built; its files are deleted when the next is built
        self._current: tuple[str, Any] | None = None
        self.canary = None
        if canary_key is not None:
            from .backends.base import make_runner
            from .protocol import CanaryMonitor

            spec = self._entry_spec(canary_key, f"canary:{canary_key}")
            self.canary = CanaryMonitor(make_runner(device, spec, cache_dir=self.cache_dir),
                                        self.protocol)

    def __enter__(self) -> "DeviceMeasurer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._tmp.cleanup()

    def _discard(self) -> None:
        """Delete the graph files of the last target (a full ImageNet check builds ~900)."""
        if self._current is not None:
            spec = self._current[1]
            for path in (spec.onnx_path, spec.onnx_path_fp16):
                if path is not None:
                    Path(path).unlink(missing_ok=True)
            self._current = None

    @property
    def _fp16(self) -> bool:
        return getattr(self.device, "precision", "fp32") == "fp16"

    @property
    def _batch(self) -> int:
        return int(getattr(self.device, "batch_size", 1) or 1)

    def _entry_spec(self, key: str, ident: str):
        from . import graphs

        if self.space is None:
            raise SgnasError(f"cannot build LUT entry {key} without a search space")
        specs = graphs.key_specs(self.space)
        if key not in specs:
            raise SgnasError(f"{key} is not a LUT key of space {self.space.name!r}")
        kg = graphs.key_graph(self.space, specs[key], batch_size=self._batch, seed=self.seed,
                              fp16=self._fp16)
        return self._save(ident, key, kg.model, kg.model_fp16, kg.input_shape, kg.module)

    def _network_spec(self, target: Target, ident: str):
        from . import graphs

        modules, model = graphs.network_graph(self.space, target.arch, batch_size=self._batch,
                                              seed=self.seed)
        model16 = None
        if self._fp16:
            _, model16 = graphs.network_graph(self.space, target.arch, batch_size=self._batch,
                                              dtype="fp16", modules=modules)
        shape = (self._batch, 3, self.space.input_size, self.space.input_size)
        return self._save(ident, target.name, model, model16, shape, modules)

    def _save(self, ident: str, name: str, model: Any, model16: Any, shape: Sequence[int], module: Any):
        from .backends.base import ModelSpec
        from .graphs import save_model

        stem = hashlib.sha1(ident.encode()).hexdigest()[:12]
        path = save_model(model, Path(self._tmp.name) / f"{stem}.onnx")
        path16 = save_model(model16, Path(self._tmp.name) / f"{stem}.fp16.onnx") if model16 else None
        return ModelSpec(path, tuple(shape), name=name, torch_factory=lambda: module,
                         onnx_path_fp16=path16, seed=self.seed)

    def spec(self, target: Target):
        """The :class:`~profiler.backends.base.ModelSpec` that ``target`` runs."""
        from .backends.base import ModelSpec

        if target.kind in ("entry", "network"):
            ident = f"{target.kind}:{target.name}:{target.arch}"
            if self._current is not None and self._current[0] == ident:
                return self._current[1]
            self._discard()
            spec = (self._entry_spec(target.name, ident) if target.kind == "entry"
                    else self._network_spec(target, ident))
            self._current = (ident, spec)
            return spec
        if target.path is None or target.input_shape is None:
            raise SgnasError(f"{target.name}: a model target needs a path and an input shape")
        path = Path(target.path)
        return ModelSpec(path, tuple(target.input_shape), name=target.name,
                         onnx_path_fp16=path if self._fp16 else None)

    def __call__(self, target: Target):
        from .backends.base import make_runner
        from .protocol import measure

        runner = make_runner(self.device, self.spec(target), cache_dir=self.cache_dir)
        with runner:
            m = measure(runner, self.protocol)
        if self.canary is not None:
            self.canary.step()
        return m

    def finish(self) -> None:
        """Measure the canary once more, so :meth:`drift` spans the whole check."""
        if self.canary is not None and self.canary.medians:
            self.canary.measure_now()

    def drift(self) -> float | None:
        """Relative change of the canary from the first to the last measurement of this check."""
        if self.canary is None or len(self.canary.medians) < 2:
            return None
        return float(self.canary.drift())

    def canary_ms(self) -> float | None:
        """The canary's first median in this check."""
        return float(self.canary.medians[0]) if self.canary is not None and self.canary.medians else None


def preflight(device: Any, force: bool = False) -> None:
    """Fail early when ``device`` cannot be measured here (wrong host, missing runtime)."""
    from sgnas.errors import require

    from .backends.base import BACKENDS
    from .devices import check_host

    check_host(device, force=force)
    backend = getattr(device, "backend", None)
    if backend not in BACKENDS:
        raise SgnasError(f"device {device.name}: unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    runtime, extra, _ = BACKENDS[backend]
    require(runtime, extra)


def _lut_canary(lut: Any, space: SearchSpace) -> tuple[str, float | None]:
    """The canary key the LUT build used (or the build's default) and its first recorded median."""
    from .build import canary_key

    drift = getattr(lut, "drift", None) or {}
    key = drift.get("canary_key") or canary_key(space)
    medians = drift.get("canary_medians_ms") or []
    return str(key), (float(medians[0]) if medians and drift.get("canary_key") else None)


def _environment(device: Any) -> dict:
    try:
        from .environment import collect_environment
    except ImportError:
        return {}
    try:
        return dict(collect_environment(device))
    except Exception as exc:  # provenance must never break a check
        return {"error": f"{type(exc).__name__}: {exc}"}


# ---------------------------------------------------------------------- LUT check
def check_lut(lut: Any, device: Any, cfg: CheckConfig | None = None,
              measure_fn: MeasureFn | None = None) -> CheckReport:
    """Re-measure a stratified sample of ``lut``'s entries and ``cfg.networks`` reference networks.

    ``lut`` is a :class:`sgnas.lut.Lut` or a path; ``device`` a descriptor or a device name. Raises
    :class:`SgnasError` for a LUT of another device (unless ``cfg.allow_device_change``), another
    search space, or a device this host cannot run. ``measure_fn`` replaces the device measurement
    (then no host or runtime check is made).
    """
    from sgnas.lut import Lut, load_lut

    cfg = cfg or CheckConfig()
    if not isinstance(lut, Lut):
        lut = load_lut(lut)
    device = _resolve_device(device)
    space = get_space(lut.space)
    where = f"LUT {lut.path}" if lut.path else "the LUT"
    if space.fingerprint != lut.space_fingerprint:
        raise SgnasError(
            f"{where} was measured for another definition of space {lut.space!r} "
            f"(fingerprint {lut.space_fingerprint}, now {space.fingerprint}); re-run sgnas-profile"
        )
    now = device_dict(device)
    check_same_device(dict(lut.device), now, where, cfg.allow_device_change)

    rng = np.random.default_rng(cfg.seed)
    targets = lut_targets(lut, space, cfg, rng)
    if not targets:
        raise SgnasError(f"{where} has no entries to check")
    targets += network_targets(lut, space, cfg, rng)

    measurer = None
    canary_lut_ms = None
    if measure_fn is None:
        preflight(device, force=cfg.force)
        canary_key, canary_lut_ms = _lut_canary(lut, space)
        seed = int((getattr(lut, "build", None) or {}).get("seed", 0))
        measurer = DeviceMeasurer(device, space, canary_key=canary_key if cfg.canary else None,
                                  seed=seed)
        measure_fn = measurer
    try:
        results = [compare(t, cfg, measure_fn) for t in targets]
        if measurer is not None:
            measurer.finish()
    finally:
        if measurer is not None:
            measurer.close()
    drift = measurer.drift() if measurer is not None else getattr(measure_fn, "drift", lambda: None)()
    noise = _noise(results, drift)
    canary_now = measurer.canary_ms() if measurer is not None else None
    if canary_now is not None and canary_lut_ms:
        noise["canary_vs_lut"] = canary_now / canary_lut_ms
    report = CheckReport(
        mode="lut",
        source=str(lut.path or ""),
        device=now,
        baseline_device=dict(lut.device),
        results=results,
        config=cfg,
        global_result=global_shift(results, cfg),
        noise=noise,
        environment=_environment(device) if measurer is not None else {},
    )
    report.notes.extend(_notes(report, lut))
    return report


def _notes(report: CheckReport, lut: Any = None) -> list[str]:
    notes = []
    improved = [r for r in report.results if r.status == IMPROVED and r.kind != "network"]
    if improved:
        notes.append(f"note: {len(improved)} item(s) got faster beyond tolerance; "
                     "refresh the baseline (sgnas-profile, or --update) to tighten the check")
    noisy = [r for r in report.results if r.status == NOISY]
    if noisy:
        notes.append(f"note: {len(noisy)} suspect(s) were noise (not confirmed on re-measurement)")
    if lut is not None and report.config.networks and getattr(lut, "calibration", None) is None:
        notes.append("note: the LUT has no calibration; networks are compared with its raw sum")
    mismatched = [r for r in report.results if r.status == MISMATCH]
    if mismatched:
        notes.append(f"note: {len(mismatched)} network(s) slower than the LUT predicts; the LUT "
                     "records no end-to-end error, so they are not failed")
    return notes


# --------------------------------------------------------------------- baselines
@dataclass
class Baseline:
    """The recorded latency of one ONNX model on one device (``sgnas check --onnx ... --update``)."""

    model_sha256: str
    input_shape: tuple[int, ...]
    device: dict
    measurement: dict
    environment: dict = field(default_factory=dict)
    created: str = field(default_factory=_now)
    model_path: str = ""
    schema_version: int = BASELINE_SCHEMA
    path: str | None = field(default=None, compare=False)

    @property
    def median_ms(self) -> float:
        return float(self.measurement["median_ms"])

    @property
    def spread(self) -> float:
        return float(self.measurement.get("spread", 0.0) or 0.0)

    def to_dict(self) -> dict:
        return _finite({
            "schema_version": self.schema_version,
            "kind": "sgnas-latency-baseline",
            "created": self.created,
            "model": {"path": self.model_path, "sha256": self.model_sha256,
                      "input_shape": list(self.input_shape)},
            "device": dict(self.device),
            "environment": dict(self.environment),
            "measurement": dict(self.measurement),
        })

    @classmethod
    def from_dict(cls, d: dict, path: str | None = None) -> "Baseline":
        model = d["model"]
        measurement = dict(d["measurement"])
        median = float(measurement["median_ms"])
        if not (median > 0 and math.isfinite(median)):
            raise ValueError(f"median_ms {median!r} is not positive")
        return cls(
            model_sha256=str(model["sha256"]),
            input_shape=tuple(int(x) for x in model["input_shape"]),
            device=dict(d["device"]),
            measurement=measurement,
            environment=dict(d.get("environment") or {}),
            created=str(d.get("created", "")),
            model_path=str(model.get("path", "")),
            schema_version=int(d["schema_version"]),
            path=path,
        )


def load_baseline(path: str | os.PathLike) -> Baseline:
    """Load a baseline file; a missing, corrupt or foreign file raises :class:`SgnasError`."""
    path = Path(path)
    if not path.exists():
        raise SgnasError(f"baseline {path} not found; record it first with --update")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SgnasError(f"baseline {path} is corrupt ({getattr(exc, 'msg', exc)})") from exc
    except OSError as exc:
        raise SgnasError(f"cannot read baseline {path}: {exc.strerror}") from exc
    if not isinstance(data, dict) or data.get("kind") != "sgnas-latency-baseline":
        raise SgnasError(f"baseline {path} is corrupt or not an sgnas latency baseline")
    if data.get("schema_version") != BASELINE_SCHEMA:
        raise SgnasError(f"baseline {path} has schema version {data.get('schema_version')!r}, "
                         f"this sgnas reads {BASELINE_SCHEMA}; refresh it with --update")
    try:
        return Baseline.from_dict(data, path=str(path))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SgnasError(f"baseline {path} is corrupt (bad field: {exc})") from exc


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a model file (and of its external-data side files, when it has any)."""
    path = Path(path)
    h = hashlib.sha256()
    try:
        h.update(path.read_bytes())
        for side in sorted(_external_data_files(path)):
            h.update(side.name.encode())
            h.update(side.read_bytes())
    except OSError as exc:
        raise SgnasError(f"cannot read model {path}: {exc.strerror}") from exc
    return h.hexdigest()


def _external_data_files(path: Path) -> set[Path]:
    import onnx

    model = _load_onnx(path)
    out = set()
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            for entry in init.external_data:
                if entry.key == "location":
                    out.add(path.parent / entry.value)
    return out


def _load_onnx(path: Path):
    from sgnas.errors import require

    onnx = require("onnx", "tools")
    if not path.is_file():
        raise SgnasError(f"ONNX model not found: {path}")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise SgnasError(f"{path} is not a valid ONNX model ({type(exc).__name__})") from exc


def onnx_input_shape(path: str | os.PathLike, batch_size: int = 1,
                     input_size: int | None = None) -> tuple[int, ...]:
    """The input shape of a single-input ONNX model; a dynamic first dimension becomes ``batch_size``
    and dynamic spatial dimensions of a 4-D (NCHW) input become ``input_size``."""
    path = Path(path)
    model = _load_onnx(path)
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise SgnasError(f"{path} has {len(inputs)} inputs; sgnas check measures single-input models")
    inp = inputs[0]
    if not inp.type.HasField("tensor_type") or not inp.type.tensor_type.HasField("shape"):
        raise SgnasError(f"{path}: input {inp.name!r} has no static rank; pass --input-shape")
    dims = list(inp.type.tensor_type.shape.dim)
    shape = []
    for i, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value > 0:
            shape.append(int(d.dim_value))
        elif i == 0:
            shape.append(int(batch_size))
        elif len(dims) == 4 and i in (2, 3) and input_size:
            shape.append(int(input_size))
        else:
            name = d.dim_param or "?"
            raise SgnasError(f"{path}: dimension {i} ({name}) of input {inp.name!r} is dynamic; "
                             "pass --input-shape")
    return tuple(shape)


def model_input_shape(path: str | os.PathLike, device: Any, cfg: CheckConfig) -> tuple[int, ...]:
    """``cfg.input_shape`` if given, else the shape read from the ONNX graph (see :func:`onnx_input_shape`)."""
    if cfg.input_shape is not None:
        _load_onnx(Path(path))
        return tuple(int(x) for x in cfg.input_shape)
    return onnx_input_shape(path, int(getattr(device, "batch_size", 1) or 1),
                            getattr(device, "input_size", None))


def write_baseline(path: str | os.PathLike, onnx_path: str | os.PathLike, device: Any,
                   measurement: Any, input_shape: Sequence[int],
                   environment: dict | None = None) -> Baseline:
    """Write the baseline of ``onnx_path`` on ``device`` atomically and return it."""
    m = measurement.to_dict() if hasattr(measurement, "to_dict") else dict(measurement)
    baseline = Baseline(
        model_sha256=file_sha256(onnx_path),
        input_shape=tuple(int(x) for x in input_shape),
        device=device_dict(device),
        measurement=m,
        environment=dict(environment or {}),
        model_path=str(onnx_path),
    )
    atomic_write_json(path, baseline.to_dict(), indent=1)
    baseline.path = str(path)
    return baseline


def _onnx_target(path: Path, shape: tuple[int, ...], baseline_ms: float, spread: float) -> Target:
    return Target(path.name, "model", baseline_ms, spread, path=str(path), input_shape=shape)


def update_baseline(onnx_path: str | os.PathLike, device: Any, baseline_path: str | os.PathLike,
                    cfg: CheckConfig | None = None, measure_fn: MeasureFn | None = None) -> Baseline:
    """Measure ``onnx_path`` on ``device`` and write (or refresh) its baseline atomically.

    An existing baseline of another device is only replaced with ``cfg.allow_device_change``; a
    corrupt one or one of another model is replaced.
    """
    cfg = cfg or CheckConfig()
    device = _resolve_device(device)
    onnx_path = Path(onnx_path)
    shape = model_input_shape(onnx_path, device, cfg)
    if Path(baseline_path).exists():
        try:
            old = load_baseline(baseline_path)
        except SgnasError:
            old = None
        if old is not None:
            check_same_device(old.device, device_dict(device), f"baseline {baseline_path}",
                              cfg.allow_device_change)
    own = measure_fn is None
    if own:
        preflight(device, force=cfg.force)
        with DeviceMeasurer(device) as measurer:
            m = measurer(_onnx_target(onnx_path, shape, 1.0, 0.0))
    else:
        m = measure_fn(_onnx_target(onnx_path, shape, 1.0, 0.0))
    env = _environment(device) if own else {}
    return write_baseline(baseline_path, onnx_path, device, m, shape, env)


def check_onnx(path: str | os.PathLike, device: Any, baseline: Baseline | str | os.PathLike,
               cfg: CheckConfig | None = None, measure_fn: MeasureFn | None = None) -> CheckReport:
    """Re-measure the ONNX model at ``path`` on ``device`` and compare it with ``baseline``.

    Raises :class:`SgnasError` for a baseline of another device (unless ``cfg.allow_device_change``),
    of another model (unless ``cfg.allow_model_change``), or with another input shape.
    """
    cfg = cfg or CheckConfig()
    device = _resolve_device(device)
    path = Path(path)
    if not isinstance(baseline, Baseline):
        baseline = load_baseline(baseline)
    where = f"baseline {baseline.path}" if baseline.path else "the baseline"
    now = device_dict(device)
    check_same_device(baseline.device, now, where, cfg.allow_device_change)
    sha = file_sha256(path)
    if sha != baseline.model_sha256 and not cfg.allow_model_change:
        raise SgnasError(
            f"{where} is for another model (sha256 {baseline.model_sha256[:12]}, {path} has "
            f"{sha[:12]}); refresh it with --update or pass --allow-model-change"
        )
    shape = model_input_shape(path, device, cfg)
    if tuple(shape) != tuple(baseline.input_shape):
        raise SgnasError(f"{path} takes input {list(shape)}, {where} was recorded with "
                         f"{list(baseline.input_shape)}")
    target = _onnx_target(path, tuple(shape), baseline.median_ms, baseline.spread)
    measurer = None
    if measure_fn is None:
        preflight(device, force=cfg.force)
        measurer = DeviceMeasurer(device)
        measure_fn = measurer
    try:
        results = [compare(target, cfg, measure_fn)]
    finally:
        if measurer is not None:
            measurer.close()
    if sha != baseline.model_sha256:
        results[0].note = "; ".join(filter(None, [results[0].note, "model changed since the baseline"]))
    report = CheckReport(
        mode="onnx", source=str(path), device=now, baseline_device=dict(baseline.device),
        results=results, config=cfg, global_result=None, noise=_noise(results, None),
        environment=_environment(device) if measurer is not None else {},
    )
    report.notes.extend(_notes(report))
    return report
