"""Latency regression checks for CI (``sgnas check``).

Two modes share one comparison rule:

* :func:`check_lut` re-measures a stratified sample of a LUT's entries (stem and head always, the
  layer entries spread over layer shapes and latency quantiles) and a few seeded random networks
  (measured end to end against the LUT's prediction);
* :func:`check_onnx` re-measures any ONNX model against a baseline file written by
  :func:`update_baseline` (``sgnas check --onnx model.onnx --baseline latency.json --update``):
  timed against the copy of the baseline's model kept beside it, interleaved in one run (a paired
  comparison: contention slows both alike, so it is judged whatever the neighbours do), or, for a
  baseline without that copy, against the recorded figure.

An item's tolerance is ``max(floor, k * error)``, where ``error`` is the larger of the relative
uncertainties of the baseline's median and of the median measured now
(:func:`~profiler.check_config.median_error`: the spread IQR / median of the per-pair ratios over
the square root of the pair count for state-normalized measurements, the spread itself otherwise):
a noisy entry or a noisy machine widens its own tolerance, up to ``max_tolerance`` (50% by
default, never below the floor), so that a measurement too noisy to judge cannot hide a large
slowdown.

Telling the machine from the model (:func:`judge`): every measurement is taken with a gauge of the
CPU other processes use (:class:`~profiler.check_measure.NeighbourGauge`); one taken while they
use more than ``cfg.max_neighbour`` cores is *contended* and counts for nothing (unless the target
is paired with the model it is compared to). An item whose first
quiet measurement is slower than ``1 + tolerance`` is a *suspect*; suspects and items without a
quiet measurement are re-measured in up to ``remeasure`` rounds spaced ``remeasure_gap_s`` apart
(a round is skipped while the neighbours are busy). A suspect passes as ``noisy`` when a quiet
re-measurement is within tolerance (``reduce="min"``; with ``"median"`` the median of the quiet
re-measurements decides), fails as ``regressed`` when ``confirm`` quiet measurements all are beyond
it, and is ``inconclusive`` otherwise, as is an item never measured quiet. Items faster than
``1 / (1 + tolerance)`` are reported as ``improved``, a note, not a failure. The median ratio over
all sampled LUT entries is a test of its own (``global-shift``): a slowdown of the whole device or
runtime fails it even when each entry alone stays within its tolerance. A machine probe more than
``state_limit`` off the baseline's speed turns regressions into ``inconclusive``
(:func:`abstain_far_state`), and a baseline or LUT made on another host (:func:`host_verdict`)
makes the whole check inconclusive without measuring. Exit codes: 0 pass, 1 regression, 3
inconclusive (:mod:`profiler.check_report`); bad input raises :class:`SgnasError` (exit 2).

Measuring is injectable: ``measure_fn(target) -> Measurement`` (anything with ``median_ms`` and
``spread``); the default, :class:`~profiler.check_measure.DeviceMeasurer`, builds each target's ONNX
graph and measures it with the device's runtime and protocol. Verdicts and reports live in
:mod:`profiler.check_report`, baseline files in :mod:`profiler.baseline`; their public names are
importable from here too.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sgnas.errors import SgnasError
from sgnas.lut import Lut, load_lut, require_measured
from sgnas.space import SearchSpace, get_space

from .baseline import (
    baseline_model,
    check_copy_replaceable,
    model_copy_folder,
    owns_model_copy,
    store_model_copy,
    BASELINE_SCHEMA,
    host_changes,
    LATENCY_FIELDS,
    Baseline,
    check_same_device,
    device_dict,
    file_sha256,
    load_baseline,
    load_onnx,
    onnx_input_shape,
    write_baseline,
)
from .devices import DeviceDescriptor, load_device
from .lock import ProfileLock
from .check_config import MAX_TOLERANCE, CheckConfig, MeasureFn, Target, median_error, parse_tolerance
from .check_measure import (DeviceMeasurer, NeighbourGauge, NoGauge, lut_canary, preflight,
                            provenance, reference_now_ms)
from .measure import PAIRED_INTERLEAVE, Reference, for_onnx, lut_measurer_args, lut_reference
from .probe import PROBE_KEY, machine_factor
from .check_report import (
    EXIT_INCONCLUSIVE,
    IMPROVED,
    INCONCLUSIVE,
    MISMATCH,
    NOISY,
    OK,
    REGRESSED,
    REPORT_SCHEMA,
    CheckReport,
    ItemResult,
    noise_summary,
    report_notes,
)

__all__ = [
    "BASELINE_SCHEMA", "EXIT_INCONCLUSIVE", "INCONCLUSIVE", "abstain_far_state", "host_changes",
    "host_verdict", "judge", "IMPROVED", "LATENCY_FIELDS", "MAX_TOLERANCE", "MISMATCH", "NOISY", "OK",
    "REGRESSED", "REPORT_SCHEMA", "Baseline", "CheckConfig", "CheckReport", "DeviceMeasurer",
    "ItemResult", "MeasureFn", "Target", "check_lut", "machine_noise", "runtime_target", "check_onnx", "check_same_device", "compare",
    "device_dict", "file_sha256", "global_shift", "load_baseline", "lut_model_error", "lut_targets",
    "model_input_shape", "network_targets", "onnx_input_shape", "parse_tolerance", "preflight",
    "device_lock", "stratified_sample", "update_baseline", "write_baseline",
]

# ------------------------------------------------------------------- comparison
def _spread(m: Any) -> float:
    s = getattr(m, "spread", 0.0)
    return float(s) if s is not None else 0.0


def _error(m: Any) -> float:
    return median_error(_spread(m), int(getattr(m, "pairs", 0) or 0))


def _quiet(neighbour: float | None, cfg: CheckConfig) -> bool:
    return neighbour is None or neighbour <= cfg.max_neighbour


#: A paired target whose first ratio is beyond this share of its tolerance is re-measured
#: ``remeasure`` times and judged on the median of all its measurements (a single reading decides
#: only when it is clearly inside).
PAIRED_SUSPECT = 0.5


@dataclass
class _Taken:
    """One measurement of an item: its median, spread, error and the neighbours' load then."""

    ms: float
    spread: float
    error: float
    neighbour: float | None


def _median_taken(taken: Sequence["_Taken"]) -> "_Taken":
    """One measurement standing for several: the medians of their latencies, spreads and errors."""
    return _Taken(float(np.median([t.ms for t in taken])), float(np.median([t.spread for t in taken])),
                  float(np.median([t.error for t in taken])), None)


class _Item:
    """The measurements of one target and the rule that judges them (module docstring)."""

    def __init__(self, target: Target, cfg: CheckConfig) -> None:
        if not (target.baseline_ms > 0 and math.isfinite(target.baseline_ms)):
            raise SgnasError(f"{target.name}: baseline latency {target.baseline_ms!r} ms is not positive")
        self.target, self.cfg = target, cfg
        self.baseline_error = median_error(target.baseline_spread, target.baseline_pairs)
        self.taken: list[_Taken] = []
        self.time_s = 0.0

    def take(self, measure_fn: MeasureFn, gauge: Any) -> None:
        start = time.perf_counter()
        token = gauge.start()
        m = measure_fn(self.target)
        neighbour = gauge.stop(token)
        self.time_s += time.perf_counter() - start
        self.taken.append(_Taken(float(m.median_ms), _spread(m), _error(m), neighbour))

    def tol(self, t: _Taken) -> float:
        return self.cfg.item_tolerance(self.baseline_error, t.error, self.target.tolerance_floor)

    def within(self, t: _Taken, share: float = 1.0) -> bool:
        return t.ms / self.target.baseline_ms <= 1.0 + share * self.tol(t)

    @property
    def quiet(self) -> list[_Taken]:
        """The measurements judged: those taken while the rest of the machine was quiet (all of
        them for a paired target)."""
        return [t for t in self.taken if self.target.paired or _quiet(t.neighbour, self.cfg)]

    @property
    def suspect(self) -> bool:
        """Slower than tolerance in its first quiet measurement (a paired target: slower than
        half of it)."""
        quiet = self.quiet
        return bool(quiet) and not self.within(quiet[0], PAIRED_SUSPECT if self.target.paired else 1.0)

    @property
    def pending(self) -> bool:
        """Needs another measurement: none quiet yet, or a suspect not yet cleared (``min``) or
        not yet measured ``remeasure`` times (``median``, and every paired target)."""
        quiet = self.quiet
        if not quiet:
            return True
        if not self.suspect:
            return False
        if self.target.paired:
            return len(quiet) < 1 + self.cfg.remeasure
        return self.cfg.reduce == "median" or not any(self.within(t) for t in quiet[1:])

    def result(self) -> ItemResult:
        cfg, target = self.cfg, self.target
        first = self.taken[0]
        quiet = self.quiet
        again = self.taken[1:]
        need = min(cfg.confirm, 1 + cfg.remeasure)
        note = ""
        if not quiet:
            final = min(self.taken, key=lambda t: t.ms)
            status = INCONCLUSIVE
        elif not self.suspect:
            final = quiet[0]
            ratio = final.ms / target.baseline_ms
            status = IMPROVED if ratio < 1.0 / (1.0 + self.tol(final)) else OK
        elif target.paired:  # the median of every measurement decides
            final = _median_taken(quiet)
            if self.within(final):
                status = OK if self.within(quiet[0]) else NOISY
                note = (f"first ratio {first.ms / target.baseline_ms:.3f}x re-measured "
                        f"{len(again)} time(s); their median decides")
            else:
                status = REGRESSED if len(quiet) >= need else INCONCLUSIVE
        elif cfg.reduce == "median" and quiet[1:]:
            final = _median_taken(quiet[1:])
            if self.within(final):
                status = NOISY
            else:
                status = REGRESSED if len(quiet) >= need else INCONCLUSIVE
        else:
            cleared = [t for t in quiet[1:] if self.within(t)]
            final = min(cleared or quiet[1:] or quiet, key=lambda t: t.ms)
            if cleared:
                status = NOISY
            elif len(quiet) >= need:
                status = REGRESSED
            else:
                status = INCONCLUSIVE
        ratio = final.ms / target.baseline_ms
        if status in (REGRESSED, INCONCLUSIVE) and target.informational:
            status = OK if self.within(final) else MISMATCH
        busy = [t.neighbour for t in self.taken
                if t.neighbour is not None and not _quiet(t.neighbour, cfg)]
        if status == MISMATCH:
            note = ("slower than the LUT predicts, but the LUT records no end-to-end error to judge it "
                    "by (calibrate it with sgnas-profile --validate); not failed")
        elif status == NOISY and not target.paired:
            note = (f"first run {first.ms:.4f} ms ({first.ms / target.baseline_ms:.2f}x) "
                    f"was not confirmed by {len(again)} re-measurement(s)")
        elif status == REGRESSED and again:
            note = (f"the median of {len(quiet)} measurements (paired)" if target.paired else
                    f"confirmed by {len(again)} re-measurement(s) ({cfg.reduce})")
        elif status == INCONCLUSIVE:
            note = (f"{len(busy)} of {len(self.taken)} measurement(s) taken while other "
                    f"processes used up to {max(busy, default=0.0):.2f} cores (limit "
                    f"{cfg.max_neighbour:.2f}) do not count; "
                    + ("none was quiet" if not quiet else
                       f"{len(quiet)} quiet, slower, {need} needed to confirm a regression"))
        elif status == IMPROVED:
            note = ("faster than the LUT predicts" if target.kind == "network"
                    else "faster than the baseline beyond tolerance: consider refreshing it")
        return ItemResult(
            name=target.name, kind=target.kind, baseline_ms=float(target.baseline_ms),
            now_ms=final.ms, ratio=float(ratio), tolerance=self.tol(final), status=status,
            spread_now=final.spread, baseline_spread=float(target.baseline_spread),
            measurements_ms=[t.ms for t in self.taken], time_s=self.time_s, note=note,
            arch=None if target.arch is None else str(target.arch),
            neighbour=[t.neighbour for t in self.taken],
        )


def judge(targets: Sequence[Target], cfg: CheckConfig, measure_fn: MeasureFn,
          gauge: Any = None, gap_s: float | None = None) -> list[ItemResult]:
    """Measure every target once, then re-measure the suspects (and the items with no quiet
    measurement yet) in up to ``cfg.remeasure`` rounds spaced by ``gap_s`` (default
    ``cfg.remeasure_gap_s``), and judge each (module docstring). The gauge also reads the
    neighbours during each gap: a round that starts while they are busy is skipped (its
    measurements would not count).

    ``gauge`` (:class:`~profiler.check_measure.NeighbourGauge`, default none) measures the other
    processes' CPU use around every measurement.
    """
    gauge = gauge if gauge is not None else NoGauge()
    gap = cfg.remeasure_gap_s if gap_s is None else gap_s
    items = [_Item(t, cfg) for t in targets]
    for item in items:
        item.take(measure_fn, gauge)
    for _ in range(cfg.remeasure):
        pending = [i for i in items if i.pending and not i.target.informational]
        if not pending:
            break
        if gap > 0:
            token = gauge.start()
            time.sleep(gap)
            if not _quiet(gauge.stop(token), cfg) and not all(i.target.paired for i in pending):
                continue  # the neighbours are busy right now: a measurement would not count
        for item in pending:
            item.take(measure_fn, gauge)
    return [i.result() for i in items]


def compare(target: Target, cfg: CheckConfig, measure_fn: MeasureFn, gauge: Any = None) -> ItemResult:
    """Measure ``target``, re-measure it if it is a suspect, and judge it (see :func:`judge`)."""
    return judge([target], cfg, measure_fn, gauge, gap_s=0.0)[0]


def global_shift(results: Sequence[ItemResult], cfg: CheckConfig) -> ItemResult | None:
    """The global-shift test over the LUT entries among ``results`` (``None`` if too few).

    A shift measured while other processes kept the machine busy (over half of the entries'
    first measurements contended) is ``inconclusive`` rather than a regression."""
    entries = [r for r in results if r.kind == "entry"]
    if len(entries) < max(cfg.global_min_entries, 1):
        return None
    ratios = [r.ratio for r in entries]
    ratio = float(np.median(ratios))
    tol = cfg.tolerance
    busy = sum(1 for r in entries if r.neighbour and not _quiet(r.neighbour[0], cfg))
    if ratio > 1.0 + tol and busy * 2 > len(entries):
        status, note = INCONCLUSIVE, (f"{busy} of {len(entries)} entries were measured while "
                                      "other processes kept the machine busy")
    elif ratio > 1.0 + tol:
        status, note = REGRESSED, "the whole device or runtime is slower than when the LUT was recorded"
    elif ratio < 1.0 / (1.0 + tol):
        status, note = IMPROVED, "the whole device or runtime is faster: consider re-profiling the LUT"
    else:
        status, note = OK, ""
    return ItemResult(
        name="global-shift", kind="global", baseline_ms=1.0, now_ms=ratio, ratio=ratio,
        tolerance=tol, status=status, measurements_ms=[float(r) for r in ratios], note=note,
    )


def abstain_far_state(items: Sequence[ItemResult | None], noise: dict, cfg: CheckConfig) -> None:
    """Turn regressions into ``inconclusive`` when the machine probe ran more than
    ``cfg.state_limit`` off the baseline's speed (the machine, not the model, may have changed)."""
    factor = noise.get("machine_factor")
    if factor is None or not math.isfinite(factor) or factor <= 0:
        return
    if abs(math.log(factor)) <= math.log1p(cfg.state_limit):
        return
    for r in items:
        if r is not None and r.status == REGRESSED:
            r.status = INCONCLUSIVE
            r.note = "; ".join(filter(None, [
                f"the machine runs at {factor:.2f}x its baseline speed (probe), beyond "
                f"±{100 * cfg.state_limit:.0f}%: make the baseline again in this state", r.note]))


def host_verdict(recorded_env: dict | None, now_env: dict | None, device: DeviceDescriptor,
                 what: str, cfg: CheckConfig, advice: str) -> str | None:
    """The reason a check is inconclusive because ``what`` was made on another host (``None``: the
    same host, or not checked)."""
    if now_env is None or cfg.allow_host_change:
        return None
    changes = host_changes(recorded_env, now_env, device.backend)
    if not changes:
        return None
    return (f"{what} was made on another host or runtime ({'; '.join(changes[:3])}): it is no "
            f"baseline for this one; {advice} (--allow-host-change compares anyway)")


def runtime_target(probe_base: dict | None, cfg: CheckConfig) -> Target | None:
    """The ``runtime`` test: the reference / probe ratio (probe timed interleaved with the
    reference, :meth:`profiler.measure.Measurer.probe`) now against the recorded one.

    The reference and the probe see the same machine state, so a slower machine leaves the ratio
    alone; a slower runtime raises it. Judged like every item (:func:`compare`, re-measured while
    a suspect), with ``cfg.runtime_tolerance`` as its floor. ``None`` without a recorded probe.
    """
    if not cfg.probe or not probe_base or not probe_base.get("reference_ratio"):
        return None
    return Target("runtime", "runtime", float(probe_base["reference_ratio"]),
                  float(probe_base.get("spread") or 0.0),
                  baseline_pairs=int(probe_base.get("pairs") or 0),
                  tolerance_floor=cfg.runtime_tolerance)


def machine_noise(measurer: Any, probe_base: dict | None, reference_base_ms: float | None) -> dict:
    """Noise figures of a normalized check: the machine factor (probe now / then), the reference
    now / then, the runtime factor."""
    out: dict = {}
    ref_now = reference_now_ms(measurer) if measurer is not None else None
    if ref_now and reference_base_ms:
        out["reference_vs_baseline"] = ref_now / reference_base_ms
    last = getattr(measurer, "last_probe", None)
    if last is not None and probe_base:
        out["probe_ms"] = last["ms"]
        out["machine_factor"] = machine_factor(last, probe_base)
        if probe_base.get("reference_ratio"):
            out["runtime_factor"] = last["reference_ratio"] / float(probe_base["reference_ratio"])
    return out


def _runtime_note(results: list[ItemResult]) -> None:
    """A ``runtime`` item beyond its tolerance is *inconclusive*, not a regression: the host check
    has passed (same machine, same runtime version), so the reference running longer relative to
    the machine probe is the machine's state (memory-bound and compute-bound work slowing
    differently), not the checked model. On this 2-vCPU machine it crossed its 15% floor once in
    20 quiet runs while the model itself read 0.95x its baseline."""
    for r in results:
        if r.kind == "runtime" and r.status == REGRESSED:
            r.status = INCONCLUSIVE
            r.note = "; ".join(filter(None, [
                f"the reference model runs {r.ratio:.2f}x as long relative to the machine probe "
                "as when recorded, with the same runtime version: the machine's state, not the "
                "model; re-run, or make the baseline again on this runner", r.note]))


def _resolve_device(device: DeviceDescriptor | str | os.PathLike) -> DeviceDescriptor:
    if isinstance(device, (str, os.PathLike)):
        return load_device(str(device))
    return device


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


def lut_targets(lut: Lut, space: SearchSpace, cfg: CheckConfig, rng: np.random.Generator) -> list[Target]:
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
    return [_entry_target(k, lut.entries[k]) for k in keys]


def _entry_target(key: str, entry: Any) -> Target:
    if entry.ratio_spread is not None and entry.ratio_n:
        return Target(key, "entry", float(entry.median_ms), float(entry.ratio_spread),
                      baseline_pairs=int(entry.ratio_n))
    return Target(key, "entry", float(entry.median_ms), float(entry.spread))


def lut_model_error(lut: Lut, calibrated: bool) -> float | None:
    """The LUT's recorded end-to-end prediction error (MAPE, a fraction) of its calibrated or raw
    prediction, as ``sgnas-profile --validate`` stores it in the calibration's metrics."""
    cal = lut.calibration
    metrics = getattr(cal, "metrics", None) or {}
    keys = ("heldout_calibrated_mape",) if calibrated else ("raw_mape", "heldout_raw_mape")
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value) and value >= 0:
            return float(value)
    return None


def network_targets(lut: Lut, space: SearchSpace, cfg: CheckConfig, rng: np.random.Generator) -> list[Target]:
    """``cfg.networks`` random architectures, each with the LUT's (calibrated) prediction.

    The baseline spread of a network is the LUT's recorded end-to-end error, so its tolerance is
    ``max(floor, k * max(error, spread now))``. Without a recorded error (a LUT never validated) a
    network cannot fail: it is reported as ``mismatch`` when slower than predicted, unless
    ``cfg.network_tolerance`` is given explicitly.
    """
    calibrated = cfg.calibrated and lut.calibration is not None
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


# ---------------------------------------------------------------------- LUT check
def _skipped(mode: str, source: str, now: dict, recorded: dict, cfg: CheckConfig,
             reason: str, env: dict) -> CheckReport:
    """The report of a check that measured nothing: inconclusive for ``reason``."""
    return CheckReport(mode=mode, source=source, device=now, baseline_device=recorded, results=[],
                       config=cfg, environment=env, inconclusive_reason=reason)


def _here(device: DeviceDescriptor, measure_fn: MeasureFn | None, host_env: dict | None) -> dict | None:
    """This host's environment for the host check: given, collected when measuring for real,
    ``None`` (no host check) for injected measurements."""
    if host_env is not None:
        return dict(host_env)
    return provenance(device) if measure_fn is None else None


def _host_gate(mode: str, source: str, device: DeviceDescriptor, recorded_device: dict,
               recorded_env: dict | None, where: str, advice: str, cfg: CheckConfig,
               measure_fn: MeasureFn | None, host_env: dict | None
               ) -> tuple[dict | None, CheckReport | None]:
    """The checks before measuring, common to both modes: this host can run the device, and the
    LUT or baseline was made here. Returns this host's environment and, when it was made
    elsewhere, the report of the abstained check (:func:`host_verdict`)."""
    if measure_fn is None:
        preflight(device, force=cfg.force)
    env = _here(device, measure_fn, host_env)
    reason = host_verdict(recorded_env, env, device, where, cfg, advice)
    if not reason:
        return env, None
    return env, _skipped(mode, source, device_dict(device), recorded_device, cfg, reason, env or {})


def _judge_measured(targets: list[Target], cfg: CheckConfig, measure_fn: MeasureFn,
                    measurer: DeviceMeasurer | None, gauge: Any, probe_base: dict | None,
                    runtime: bool) -> list[ItemResult]:
    """Judge ``targets`` (:func:`judge`), with the ``runtime`` test when ``runtime`` and a probe
    was recorded, then close the measurer; the gauge defaults to the real one when measuring."""
    if gauge is None:
        gauge = NeighbourGauge() if measurer is not None else NoGauge()
    test = runtime_target(probe_base, cfg) if runtime else None
    if measurer is not None and probe_base:
        measurer.probe_chain = int(probe_base.get("chain") or 40)
    try:
        results = judge([*targets, *([test] if test else [])], cfg, measure_fn, gauge,
                        gap_s=None if measurer is not None else 0.0)
        if measurer is not None:
            measurer.finish()
    finally:
        if measurer is not None:
            measurer.close()
    _runtime_note(results)
    return results


@contextmanager
def device_lock(device: DeviceDescriptor, measure_fn: MeasureFn | None, what: str,
                note: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the device's profile lock (:class:`~profiler.lock.ProfileLock`, waiting for it) while
    measuring for real: one measurement per device at a time. Notices go to ``note``."""
    if measure_fn is not None:
        yield
        return
    with ProfileLock(device.name, what=what, wait=True, warn=note):
        yield


def check_lut(lut: Lut | str | os.PathLike, device: DeviceDescriptor | str,
              cfg: CheckConfig | None = None, measure_fn: MeasureFn | None = None,
              host_env: dict | None = None, gauge: Any = None,
              note: Callable[[str], None] | None = None) -> CheckReport:
    """Re-measure a stratified sample of ``lut``'s entries and ``cfg.networks`` reference networks.

    ``lut`` is a :class:`sgnas.lut.Lut` or a path; ``device`` a descriptor or a device name. Raises
    :class:`SgnasError` for a LUT of another device (unless ``cfg.allow_device_change``), another
    search space, or a device this host cannot run. A LUT built on another host (its recorded
    environment against ``host_env``, by default this host's) gives an inconclusive report without
    measuring. ``measure_fn`` replaces the device measurement (then no host, runtime or neighbour
    check is made unless ``host_env`` / ``gauge`` are given); without it the device's profile lock
    is held while measuring (:func:`device_lock`; notices go to ``note``).
    """
    cfg = cfg or CheckConfig()
    if not isinstance(lut, Lut):
        lut = load_lut(lut)
    require_measured(lut, "sgnas check")  # a predicted table: nothing measured to re-check
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
    with device_lock(device, measure_fn, "sgnas check", note):
        return _check_lut_here(lut, space, device, targets, where, cfg, measure_fn, host_env, gauge)


def _check_lut_here(lut: Lut, space: SearchSpace, device: DeviceDescriptor, targets: list[Target],
                    where: str, cfg: CheckConfig, measure_fn: MeasureFn | None,
                    host_env: dict | None, gauge: Any) -> CheckReport:
    """:func:`check_lut` once its input is validated (and the device locked)."""
    now = device_dict(device)
    env, skipped = _host_gate("lut", str(lut.path or ""), device, dict(lut.device),
                              lut.environment, where,
                              f"build the LUT on this runner first (sgnas-profile --device "
                              f"{device.name} --space {lut.space} --out LUT) and check against it",
                              cfg, measure_fn, host_env)
    if skipped is not None:
        return skipped
    measurer = None
    canary_lut_ms = None
    reference, state_ms = lut_reference(lut)
    if measure_fn is None:
        canary_key, canary_lut_ms = lut_canary(lut, space)
        seed = int((lut.build or {}).get("seed", 0))
        measurer = DeviceMeasurer(device, space, canary_key=canary_key if cfg.canary else None,
                                  seed=seed, **lut_measurer_args(lut))
        measure_fn = measurer
        if reference is not None:
            measurer.open_reference()
    probe_base = (lut.reference or {}).get(PROBE_KEY)
    results = _judge_measured(targets, cfg, measure_fn, measurer, gauge, probe_base,
                              runtime=reference is not None)
    machine = machine_noise(measurer, probe_base, state_ms)
    drift = measurer.drift() if measurer is not None else getattr(measure_fn, "drift", lambda: None)()
    noise = noise_summary(results, drift)
    noise.update(machine)
    canary_now = measurer.canary_ms() if measurer is not None else None
    if canary_now is not None and canary_lut_ms:
        noise["canary_vs_lut"] = canary_now / canary_lut_ms
    shift = global_shift(results, cfg)
    abstain_far_state([*results, shift], noise, cfg)
    report = CheckReport(
        mode="lut",
        source=str(lut.path or ""),
        device=now,
        baseline_device=dict(lut.device),
        results=results,
        config=cfg,
        global_result=shift,
        noise=noise,
        environment=env or {},
    )
    report.notes.extend(report_notes(report, lut))
    return report


# --------------------------------------------------------------------- ONNX check
def model_input_shape(path: str | os.PathLike, device: DeviceDescriptor, cfg: CheckConfig) -> tuple[int, ...]:
    """``cfg.input_shape`` if given, else the shape read from the ONNX graph (see :func:`onnx_input_shape`)."""
    if cfg.input_shape is not None:
        load_onnx(Path(path))
        return tuple(int(x) for x in cfg.input_shape)
    return onnx_input_shape(path, device.batch_size, device.input_size)


def _onnx_target(path: Path, shape: tuple[int, ...], baseline_ms: float, spread: float,
                 pairs: int = 0) -> Target:
    return Target(path.name, "model", baseline_ms, spread, baseline_pairs=pairs, path=str(path),
                  input_shape=shape)


def _replaceable(path: Path) -> None:
    """Refuse to overwrite a file at ``path`` that is not an sgnas baseline (or is corrupt); an
    older schema's baseline may be replaced."""
    try:
        load_baseline(path)
    except SgnasError as exc:
        try:
            data = json.loads(path.read_text())
            older = (isinstance(data, dict) and data.get("kind") == "sgnas-latency-baseline"
                     and data.get("schema_version") != BASELINE_SCHEMA)
        except (OSError, ValueError):
            older = False
        if not older:
            raise SgnasError(f"{exc}; not overwritten: delete it to record a new baseline "
                             "there") from exc


def _median_run(runs: list[Any]) -> Any:
    """The run whose median is the median of the runs' (its spread and pairs stay consistent)."""
    order = sorted(runs, key=lambda m: float(m.median_ms))
    return order[(len(order) - 1) // 2]


def update_baseline(onnx_path: str | os.PathLike, device: DeviceDescriptor | str, baseline_path: str | os.PathLike,
                    cfg: CheckConfig | None = None, measure_fn: MeasureFn | None = None,
                    gauge: Any = None, note: Callable[[str], None] | None = None) -> Baseline:
    """Measure ``onnx_path`` on ``device`` and write (or refresh) its baseline atomically.

    The model is measured ``cfg.baseline_runs`` times, spaced by ``cfg.remeasure_gap_s``; the
    baseline is the run of median latency, with every run's median and the other processes' CPU
    use (cores) during each recorded beside it. With ``cfg.model_copy`` a copy of the model is
    kept beside the baseline (:func:`~profiler.baseline.store_model_copy`) for paired checks. An
    existing baseline of another device is only replaced with ``cfg.allow_device_change``; a
    corrupt file, or one that is no baseline, is never replaced (:class:`SgnasError`), nor is a
    folder in the copy's place that is not the baseline's copy; a baseline of another model is.
    Measuring for real holds the device's profile lock (:func:`device_lock`; notices to ``note``).
    """
    cfg = cfg or CheckConfig()
    device = _resolve_device(device)
    onnx_path = Path(onnx_path)
    shape = model_input_shape(onnx_path, device, cfg)
    if Path(baseline_path).exists():
        _replaceable(Path(baseline_path))
        old = load_baseline(baseline_path) if _loads(Path(baseline_path)) else None
        if old is not None:
            check_same_device(old.device, device_dict(device), f"baseline {baseline_path}",
                              cfg.allow_device_change)
    owned_copy = owns_model_copy(baseline_path)  # the replaced baseline's own copy
    if cfg.model_copy:
        check_copy_replaceable(baseline_path)
    own = measure_fn is None
    reference: dict = {}
    probed: dict = {}
    gauge = gauge if gauge is not None else (NeighbourGauge() if own else NoGauge())
    target = _onnx_target(onnx_path, shape, 1.0, 0.0)
    runs: list[Any] = []
    load: list[float | None] = []

    def measure_runs(fn: MeasureFn) -> None:
        for i in range(cfg.baseline_runs):
            if i and own and cfg.remeasure_gap_s > 0:
                time.sleep(cfg.remeasure_gap_s)
            token = gauge.start()
            runs.append(fn(target))
            load.append(gauge.stop(token))

    if own:
        preflight(device, force=cfg.force)
        ref = for_onnx(device)
        with device_lock(device, None, "sgnas check --update", note), \
                DeviceMeasurer(device, reference=ref) as measurer:
            measurer.open_reference()
            measure_runs(measurer)
            reference = {"model": ref.name, "state_ms": measurer.current_state_ms()}
            if cfg.probe:
                probed = measurer.probe(" while recording the baseline")
    else:
        measure_runs(measure_fn)  # type: ignore[arg-type]
    m = _median_run(runs)
    record = m.to_dict() if hasattr(m, "to_dict") else dict(vars(m))
    record["runs_ms"] = [float(r.median_ms) for r in runs]
    record["neighbour"] = load
    env = provenance(device) if own else {}
    kept = store_model_copy(baseline_path, onnx_path) if cfg.model_copy else ""
    written = write_baseline(baseline_path, onnx_path, device, record, shape, env,
                             reference=reference, probe=probed, model_copy=kept)
    if not kept and owned_copy:
        shutil.rmtree(model_copy_folder(baseline_path), ignore_errors=True)
    return written


def _loads(path: Path) -> bool:
    try:
        load_baseline(path)
        return True
    except SgnasError:
        return False


def check_onnx(path: str | os.PathLike, device: DeviceDescriptor | str, baseline: Baseline | str | os.PathLike,
               cfg: CheckConfig | None = None, measure_fn: MeasureFn | None = None,
               host_env: dict | None = None, gauge: Any = None,
               note: Callable[[str], None] | None = None) -> CheckReport:
    """Re-measure the ONNX model at ``path`` on ``device`` and compare it with ``baseline``.

    When the baseline keeps a copy of its model (and ``cfg.model_copy``), the model is timed
    against that copy, interleaved, and judged on their ratio (a paired comparison, stated in the
    baseline's milliseconds); otherwise against the recorded figure, state-normalized by the
    recorded reference model when the baseline has one.

    Raises :class:`SgnasError` for a baseline of another device (unless ``cfg.allow_device_change``),
    of another model (unless ``cfg.allow_model_change``), or with another input shape. A baseline
    made on another host gives an inconclusive report without measuring; ``measure_fn``,
    ``host_env``, ``gauge`` and ``note`` as in :func:`check_lut`.
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
    copy = baseline_model(baseline) if cfg.model_copy else None
    with device_lock(device, measure_fn, "sgnas check", note):
        return _check_onnx_here(path, tuple(shape), device, baseline, copy, sha, where, cfg,
                                measure_fn, host_env, gauge)


def _check_onnx_here(path: Path, shape: tuple[int, ...], device: DeviceDescriptor,
                     baseline: Baseline, copy: Path | None, sha: str, where: str,
                     cfg: CheckConfig, measure_fn: MeasureFn | None, host_env: dict | None,
                     gauge: Any) -> CheckReport:
    """:func:`check_onnx` once its input is validated (and the device locked)."""
    now = device_dict(device)
    env, skipped = _host_gate("onnx", str(path), device, dict(baseline.device),
                              baseline.environment, where,
                              f"make the baseline on this runner first (sgnas check --onnx {path} "
                              f"--device {device.name} --baseline {baseline.path or 'PATH'} "
                              "--update)", cfg, measure_fn, host_env)
    if skipped is not None:
        return skipped
    if copy is not None:
        target = Target(path.name, "model", baseline.median_ms, path=str(path),
                        input_shape=tuple(shape), paired=True)
    else:
        target = _onnx_target(path, tuple(shape), baseline.median_ms, baseline.spread,
                              int(baseline.measurement.get("pairs") or 0))
    measurer = None
    ref = baseline.reference or {}
    state_ms = float(ref["state_ms"]) if ref.get("model") and ref.get("state_ms") else None
    if measure_fn is None:
        if copy is not None:
            measurer = DeviceMeasurer(device, reference=Reference.file(copy, shape),
                                      state_ms=baseline.median_ms,
                                      network_interleave=PAIRED_INTERLEAVE)
        else:
            reference = Reference.from_name(ref["model"]) if state_ms is not None else None
            measurer = DeviceMeasurer(device, reference=reference, state_ms=state_ms)
        measure_fn = measurer
        if measurer.reference is not None:
            measurer.open_reference()
    results = _judge_measured([target], cfg, measure_fn, measurer, gauge, baseline.probe,
                              runtime=state_ms is not None and copy is None)
    if sha != baseline.model_sha256:
        results[0].note = "; ".join(filter(None, [results[0].note, "model changed since the baseline"]))
    if copy is not None:
        machine = machine_noise(measurer, None, baseline.median_ms)
        machine["paired_with"] = str(copy)
    else:
        machine = machine_noise(measurer, baseline.probe, state_ms)
    noise = noise_summary(results, None)
    noise.update(machine)
    abstain_far_state(results, noise, cfg)
    report = CheckReport(
        mode="onnx", source=str(path), device=now, baseline_device=dict(baseline.device),
        results=results, config=cfg, global_result=None, noise=noise,
        environment=env or {},
    )
    report.notes.extend(report_notes(report))
    if copy is not None:
        factor = machine.get("reference_vs_baseline")
        report.notes.append(
            f"note: timed against the baseline's own model ({copy}), interleaved: the ratio is "
            "new / baseline model now" + (f"; the baseline model runs {factor:.2f}x its recorded "
                                          "latency (the machine's state, not judged)"
                                          if factor else ""))
    elif baseline.model_copy and cfg.model_copy:
        report.notes.append(
            f"note: the baseline's copy of its model ({baseline.model_copy}) is missing: compared "
            "with the recorded figure instead of timing the two side by side; keep the copy "
            "beside the baseline (commit it), or record the baseline again with --update")
    if measure_fn is measurer and state_ms is None and copy is None:
        report.notes.append("note: the baseline was recorded without a reference model (older "
                            "protocol): compared in absolute terms; refresh it with --update")
    return report
