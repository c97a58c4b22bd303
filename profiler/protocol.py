"""The measurement protocol: warm-up, timed rounds, robust statistics, re-measurement, canary drift.

Modelled on how ``trtexec`` measures: a time-based warm-up plus a minimum count, rounds that each last
at least a minimum number of iterations and a minimum duration, the median as headline figure,
percentiles and the coefficient of variation recorded. The headline is the median of the rounds'
medians, which is robust to a round disturbed by another process; the spread is IQR / median over
all samples. An entry whose spread exceeds ``max_spread`` is measured again (keeping the least
noisy attempt) and flagged ``noisy`` if it stays above.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from sgnas.config import load_dataclass
from sgnas.errors import SgnasError


class Timer(Protocol):
    """What the protocol needs of a runner (:class:`profiler.backends.base.Runner` is one)."""

    is_active: bool

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> Any: ...

    def time_iterations(self, n: int) -> np.ndarray: ...

log = logging.getLogger(__name__)

#: Upper bound on iterations of one round or of the warm-up, so a runner reporting ~0 ms can't spin.
MAX_ITERS = 1_000_000


@dataclass(frozen=True)
class ProtocolConfig:
    """How one latency entry is measured (per device; serialized in ``devices/*.yaml``)."""

    warmup_ms: float = 50.0
    warmup_min_iters: int = 5
    rounds: int = 5
    min_iters_per_round: int = 10
    min_round_ms: float = 20.0
    max_spread: float = 0.05
    remeasure: int = 2
    canary_every: int = 50
    #: A warning is logged when the coefficient of variation exceeds this (trtexec uses 2.5%).
    cov_warn: float = 0.025

    def __post_init__(self) -> None:
        checks = {
            "warmup_ms": self.warmup_ms >= 0,
            "warmup_min_iters": self.warmup_min_iters >= 0,
            "rounds": self.rounds >= 1,
            "min_iters_per_round": self.min_iters_per_round >= 1,
            "min_round_ms": self.min_round_ms >= 0,
            "max_spread": self.max_spread > 0,
            "remeasure": self.remeasure >= 0,
            "canary_every": self.canary_every >= 0,
            "cov_warn": self.cov_warn > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise SgnasError(f"protocol.{name} = {getattr(self, name)!r} is out of range")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProtocolConfig":
        """Strictly from a mapping (:func:`sgnas.config.load_dataclass`)."""
        return load_dataclass(cls, d, where="protocol", label="protocol field")


@dataclass
class Measurement:
    """Statistics of one measured entry (all times in milliseconds)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    n: int
    spread: float
    round_medians: list[float]
    noisy: bool
    #: Coefficient of variation (std / mean) over all samples.
    cov: float = 0.0
    #: Number of extra attempts made because the spread was above the threshold.
    remeasured: int = 0
    mean_ms: float = 0.0
    min_ms: float = 0.0
    #: State-normalized measurements (:mod:`profiler.measure` with a reference): the median ratio
    #: to the reference, the reference's absolute median while this was timed, chunk pairs timed.
    #: ``median_ms`` is then ``ratio`` x the reference state the measurer states latencies in.
    ratio: float | None = None
    reference_ms: float | None = None
    pairs: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Measurement":
        """Strictly from a mapping (:func:`sgnas.config.load_dataclass`)."""
        return load_dataclass(cls, d, where="measurement")

    @classmethod
    def from_samples(cls, samples: np.ndarray, round_medians: list[float], max_spread: float,
                     remeasured: int = 0) -> "Measurement":
        """Statistics of ``samples`` (all rounds pooled) with the given per-round medians."""
        s = np.asarray(samples, dtype=np.float64)
        if s.size == 0:
            raise ValueError("no samples")
        p10, p25, p50, p75, p90 = np.percentile(s, [10, 25, 50, 75, 90])
        mean = float(s.mean())
        spread = float((p75 - p25) / p50) if p50 > 0 else math.inf
        cov = float(s.std() / mean) if mean > 0 else math.inf
        return cls(
            median_ms=float(np.median(round_medians)),
            p10_ms=float(p10),
            p90_ms=float(p90),
            n=int(s.size),
            spread=spread,
            round_medians=[float(m) for m in round_medians],
            noisy=spread > max_spread,
            cov=cov,
            remeasured=remeasured,
            mean_ms=mean,
            min_ms=float(s.min()),
        )


def warm_up(runner: Timer, cfg: ProtocolConfig) -> float:
    """Run until ``warmup_ms`` have passed and ``warmup_min_iters`` iterations ran.

    Elapsed time is the larger of the wall clock and the sum of reported latencies. Returns the median
    per-iteration latency of the last warm-up chunk (ms), an estimate used to size the rounds.
    """
    done, elapsed_ms, estimate = 0, 0.0, 0.0
    start = time.perf_counter()
    chunk = max(cfg.warmup_min_iters, 1)
    while True:
        lat = runner.time_iterations(chunk)
        done += len(lat)
        estimate = float(np.median(lat)) if len(lat) else estimate
        elapsed_ms = max(elapsed_ms + float(np.sum(lat)), (time.perf_counter() - start) * 1e3)
        if (done >= cfg.warmup_min_iters and elapsed_ms >= cfg.warmup_ms) or done >= MAX_ITERS:
            return estimate
        remaining = max(cfg.warmup_ms - elapsed_ms, 0.0)
        chunk = _iters_for(remaining, estimate, floor=max(cfg.warmup_min_iters - done, 1))


def _iters_for(duration_ms: float, per_iter_ms: float, floor: int) -> int:
    if per_iter_ms <= 0:
        return max(floor, 1)
    return int(min(max(math.ceil(duration_ms / per_iter_ms), floor, 1), MAX_ITERS))


def _one_round(runner: Timer, cfg: ProtocolConfig, estimate: float) -> np.ndarray:
    n = _iters_for(cfg.min_round_ms, estimate, floor=cfg.min_iters_per_round)
    parts = [np.asarray(runner.time_iterations(n), dtype=np.float64)]
    total, count = float(parts[0].sum()), len(parts[0])
    while total < cfg.min_round_ms and count < MAX_ITERS:
        per = float(np.median(parts[-1])) if len(parts[-1]) else 0.0
        extra = _iters_for(cfg.min_round_ms - total, per, floor=1)
        part = np.asarray(runner.time_iterations(extra), dtype=np.float64)
        parts.append(part)
        total += float(part.sum())
        count += len(part)
        if float(part.sum()) <= 0:
            break
    return np.concatenate(parts)


def _attempt(runner: Timer, cfg: ProtocolConfig, estimate: float, remeasured: int) -> Measurement:
    rounds = [_one_round(runner, cfg, estimate) for _ in range(cfg.rounds)]
    medians = [float(np.median(r)) for r in rounds]
    return Measurement.from_samples(np.concatenate(rounds), medians, cfg.max_spread, remeasured)


def measure(runner: Timer, cfg: ProtocolConfig) -> Measurement:
    """Measure an active ``runner``: warm up, time ``cfg.rounds`` rounds, re-measure while noisy.

    The returned :class:`Measurement` is the attempt with the least spread; ``noisy`` is set when even
    that one exceeds ``cfg.max_spread``. A warning is logged when its CoV exceeds ``cfg.cov_warn``.
    """
    estimate = warm_up(runner, cfg)
    best = _attempt(runner, cfg, estimate, 0)
    tries = 0
    while best.spread > cfg.max_spread and tries < cfg.remeasure:
        tries += 1
        again = _attempt(runner, cfg, float(np.median(best.round_medians)), tries)
        if again.spread < best.spread:
            best = again
    best.remeasured = tries
    best.noisy = best.spread > cfg.max_spread
    if best.cov > cfg.cov_warn:
        log.warning("latency CoV %.1f%% exceeds %.1f%% (median %.4f ms, spread %.1f%%)",
                    100 * best.cov, 100 * cfg.cov_warn, best.median_ms, 100 * best.spread)
    return best


@dataclass
class CanaryMonitor:
    """The one drift canary: a fixed model re-measured every ``every`` entries.

    ``measure_fn()`` times the canary now and returns its median (ms): a LUT entry through a
    :class:`profiler.measure.Measurer`, or a runner (:meth:`of_runner`). Call :meth:`step` before
    each entry (it measures when due: at this run's first step, then every ``every`` entries;
    ``every`` 0: only the first), :meth:`measure_now` for an extra measurement (e.g. at the end).
    :meth:`factor` is the latest median over the ``baseline`` (default: the first median),
    :meth:`correction` that factor where entries should be divided by it (``normalize`` and off
    by more than ``tolerance``, which covers the canary's own noise), else None. A LUT's drift
    record is :meth:`to_dict`; :meth:`from_record` continues one (a resumed build).
    """

    measure_fn: Callable[[], float]
    every: int = 50
    #: The canary's name (a LUT key), recorded as ``canary_key``.
    key: str = ""
    tolerance: float = 0.03
    normalize: bool = False
    #: Median the factor is relative to (e.g. the LUT build's canary); None: the first median.
    baseline: float | None = None
    medians: list[float] = field(default_factory=list)
    #: Entry count at which each canary median was taken.
    at_entries: list[int] = field(default_factory=list)
    entries: int = 0
    _last: int | None = field(default=None, init=False, repr=False)

    @classmethod
    def of_runner(cls, runner: Timer, cfg: ProtocolConfig, key: str = "") -> "CanaryMonitor":
        """A canary timed on ``runner`` by the protocol ``cfg`` every ``cfg.canary_every``
        entries. An active runner is used as is (e.g. a GPU engine kept alive); an inactive one
        is activated for each measurement and deactivated after, so only one session lives at a
        time on CPUs."""
        def once() -> float:
            if runner.is_active:
                return measure(runner, cfg).median_ms
            with runner:
                return measure(runner, cfg).median_ms
        return cls(once, every=cfg.canary_every, key=key)

    @classmethod
    def from_record(cls, record: dict, measure_fn: Callable[[], float],
                    **kw: Any) -> "CanaryMonitor":
        """A canary continuing the drift record ``record`` of a LUT (its medians and entries)."""
        return cls(measure_fn, medians=[float(m) for m in record.get("canary_medians_ms", [])],
                   at_entries=[int(a) for a in record.get("canary_at_entries", [])], **kw)

    def measure_now(self) -> float:
        """Measure the canary now and record its median."""
        median = float(self.measure_fn())
        self.medians.append(median)
        self.at_entries.append(self.entries)
        self._last = self.entries
        return median

    def step(self) -> float | None:
        """Count one entry; measure the canary first when it is due (the run's first step included)."""
        due = self._last is None or (self.every > 0 and self.entries - self._last >= self.every)
        m = self.measure_now() if due else None
        self.entries += 1
        return m

    def factor(self) -> float:
        """Latest canary median over the baseline (1.0 before any measurement)."""
        base = self.baseline or (self.medians[0] if self.medians else 0.0)
        if not self.medians or base <= 0:
            return 1.0
        return self.medians[-1] / base

    def correction(self) -> float | None:
        """The factor entries measured now are divided by, or None (within the tolerance, or not
        normalizing)."""
        f = self.factor()
        return f if self.normalize and abs(f - 1.0) > self.tolerance else None

    def drift(self) -> float:
        """Relative change of the canary from the baseline, e.g. 0.08 for +8%."""
        return self.factor() - 1.0

    def max_drift(self) -> float:
        """Largest absolute relative deviation of any canary median from the baseline."""
        base = self.baseline or (self.medians[0] if self.medians else 0.0)
        if not self.medians or base <= 0:
            return 0.0
        return max(abs(m / base - 1.0) for m in self.medians)

    def to_dict(self) -> dict:
        """The drift record of a LUT (``lut.drift``); empty before any measurement."""
        if not self.medians:
            return {}
        return {"canary_key": self.key, "canary_medians_ms": list(self.medians),
                "canary_at_entries": list(self.at_entries), "drift": self.drift(),
                "max_drift": self.max_drift(), "normalized": self.normalize,
                "tolerance": self.tolerance}
