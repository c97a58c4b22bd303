"""What a latency check is configured with and what it measures: :class:`CheckConfig`, the
tolerance parser and :class:`Target` (one item to re-measure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from sgnas.errors import SgnasError
from sgnas.space import Architecture


#: Tolerances at or above this (1000%) are refused: the check would not check anything.
MAX_TOLERANCE = 10.0


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
    and the end of a LUT check to report drift (LUTs of the older, unnormalized protocol).

    State-normalized baselines and LUTs: items are timed against the recorded reference, so a
    machine-state change cancels out; with ``probe`` the machine-speed probe is timed against the
    reference too, and the ``runtime`` test fails when the reference got slower relative to the
    probe by more than ``runtime_tolerance`` (a slower runtime, not a slower machine).

    Telling the machine from the model: a baseline or LUT recorded on another host (its recorded
    environment differs: machine id, CPU, core count, runtime versions) makes the check
    ``inconclusive`` without measuring, unless ``allow_host_change``. While measuring, the CPU time
    other processes use (``/proc/stat``, in cores; stolen time included) is gauged around every
    measurement: a measurement during which it exceeds ``max_neighbour`` is *contended* and counts
    for nothing (it neither passes nor fails an item). A suspect passes as noisy when a quiet
    re-measurement clears it and fails only when ``confirm`` quiet measurements confirm it; else,
    and for an item never measured quiet, it is ``inconclusive``. So is a confirmed regression
    when the machine probe runs more than ``state_limit`` off the baseline's speed. Re-measurement
    rounds are spaced by ``remeasure_gap_s`` seconds (a round is skipped while the neighbours are
    busy), so a regression must persist over time. ``baseline_runs`` measurements spaced by
    ``remeasure_gap_s`` make a baseline (the run of median latency).

    With ``model_copy`` a baseline keeps a copy of its model, and a check times the model against
    that copy, interleaved in one run (a paired comparison): the verdict rests on the ratio of the
    two measured side by side, not on a figure recorded earlier in another machine state, and
    busy neighbours, which slow both alike, no longer void a measurement.
    """

    tolerance: float = 0.05
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
    probe: bool = True
    runtime_tolerance: float = 0.15
    allow_host_change: bool = False
    max_neighbour: float = 0.25
    confirm: int = 2
    state_limit: float = 0.25
    remeasure_gap_s: float = 1.0
    baseline_runs: int = 3
    model_copy: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.runtime_tolerance < MAX_TOLERANCE:
            raise SgnasError(f"runtime tolerance {self.runtime_tolerance!r} out of range")
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
        if not 0 <= self.max_neighbour < 1000:
            raise SgnasError(f"--max-neighbour-load must be >= 0 cores, got {self.max_neighbour}")
        if self.confirm < 1:
            raise SgnasError(f"--confirm must be >= 1, got {self.confirm}")
        if not 0 < self.state_limit < MAX_TOLERANCE:
            raise SgnasError(f"--state-limit {self.state_limit!r} out of range (0, {MAX_TOLERANCE})")
        if self.remeasure_gap_s < 0:
            raise SgnasError(f"--remeasure-gap must be >= 0 s, got {self.remeasure_gap_s}")
        if self.baseline_runs < 1:
            raise SgnasError(f"--baseline-runs must be >= 1, got {self.baseline_runs}")
        if self.reduce not in ("min", "median"):
            raise SgnasError(f"re-measurement reduction must be 'min' or 'median', not {self.reduce!r}")

    def item_tolerance(self, baseline_error: float, now_error: float, floor: float | None = None) -> float:
        """``max(floor, min(k * max(baseline_error, now_error), max_tolerance))``, the errors
        being the relative uncertainties of the two medians (:func:`median_error`).

        A missing or non-finite error counts as maximal noise (the cap).
        """
        floor = self.tolerance if floor is None else floor
        errors = [e if e is not None and math.isfinite(e) else math.inf
                  for e in (baseline_error, now_error)]
        widened = min(self.spread_k * max(errors), self.max_tolerance) if self.spread_k else 0.0
        return float(max(floor, widened))


def median_error(spread: float | None, pairs: int | None = None) -> float:
    """The relative uncertainty of a median: ``spread / sqrt(pairs)`` for a state-normalized
    measurement (``spread`` the IQR/median of its ``pairs`` per-pair ratios, so this is about the
    median's standard error), the ``spread`` itself where no pair count is known."""
    if spread is None:
        return math.inf
    return float(spread) / math.sqrt(pairs) if pairs and pairs > 1 else float(spread)


# ---------------------------------------------------------------------- targets
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
    #: Pairs behind ``baseline_spread`` (state-normalized baselines and entries; 0: unknown).
    baseline_pairs: int = 0
    arch: Architecture | None = None
    path: str | None = None
    input_shape: tuple[int, ...] | None = None
    tolerance_floor: float | None = None
    informational: bool = False
    #: Timed interleaved with the very model it is compared with (a baseline that keeps its model):
    #: other processes slow both alike, so measurements taken while they are busy count too.
    paired: bool = False


MeasureFn = Callable[[Target], Any]
