"""Latency regression checks for CI (``sgnas check``).

Two modes share one comparison rule:

* :func:`check_lut` re-measures a stratified sample of a LUT's entries (stem and head always, the
  layer entries spread over layer shapes and latency quantiles) and a few seeded random networks
  (measured end to end against the LUT's prediction);
* :func:`check_onnx` re-measures any ONNX model against a baseline file written by
  :func:`write_baseline` (``sgnas check --onnx model.onnx --baseline latency.json --update``).

An item's tolerance is ``max(floor, k * error)``, where ``error`` is the larger of the relative
uncertainties of the baseline's median and of the median measured now
(:func:`~profiler.check_config.median_error`: the spread IQR / median of the per-pair ratios over
the square root of the pair count for state-normalized measurements, the spread itself otherwise):
a noisy entry or a noisy machine widens its own tolerance, up to ``max_tolerance`` (50% by
default, never below the floor), so that a measurement too noisy to judge cannot hide a large
slowdown. An item slower than ``1 + tolerance`` is a *suspect* and is re-measured up to
``remeasure`` times; it fails (``regressed``) only if the re-measurements (their minimum, or their
median) stay beyond tolerance, and passes as ``noisy`` otherwise. Items faster than
``1 / (1 + tolerance)`` are reported as ``improved``, a note, not a failure. Finally the median ratio
over all sampled LUT entries is a test of its own (``global-shift``): a slowdown of the whole
device or runtime fails it even when each entry alone stays within its tolerance.

Measuring is injectable: ``measure_fn(target) -> Measurement`` (anything with ``median_ms`` and
``spread``); the default, :class:`~profiler.check_measure.DeviceMeasurer`, builds each target's ONNX
graph and measures it with the device's runtime and protocol. Verdicts and reports live in
:mod:`profiler.check_report`, baseline files in :mod:`profiler.baseline`; their public names are
importable from here too.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sgnas.errors import SgnasError
from sgnas.lut import Lut, load_lut, require_measured
from sgnas.space import SearchSpace, get_space

from .baseline import (
    BASELINE_SCHEMA,
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
from .check_config import MAX_TOLERANCE, CheckConfig, MeasureFn, Target, median_error, parse_tolerance
from .check_measure import DeviceMeasurer, lut_canary, preflight, provenance, reference_now_ms
from .measure import Reference, for_onnx, lut_measurer_args, lut_reference
from .probe import PROBE_KEY, machine_factor
from .check_report import (
    IMPROVED,
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
    "BASELINE_SCHEMA", "IMPROVED", "LATENCY_FIELDS", "MAX_TOLERANCE", "MISMATCH", "NOISY", "OK",
    "REGRESSED", "REPORT_SCHEMA", "Baseline", "CheckConfig", "CheckReport", "DeviceMeasurer",
    "ItemResult", "MeasureFn", "Target", "check_lut", "machine_noise", "runtime_target", "check_onnx", "check_same_device", "compare",
    "device_dict", "file_sha256", "global_shift", "load_baseline", "lut_model_error", "lut_targets",
    "model_input_shape", "network_targets", "onnx_input_shape", "parse_tolerance", "preflight",
    "stratified_sample", "update_baseline", "write_baseline",
]

# ------------------------------------------------------------------- comparison
def _spread(m: Any) -> float:
    s = getattr(m, "spread", 0.0)
    return float(s) if s is not None else 0.0


def _error(m: Any) -> float:
    return median_error(_spread(m), int(getattr(m, "pairs", 0) or 0))


def compare(target: Target, cfg: CheckConfig, measure_fn: MeasureFn) -> ItemResult:
    """Measure ``target``, re-measure it if it is a suspect, and judge it (see the module docstring)."""
    if not (target.baseline_ms > 0 and math.isfinite(target.baseline_ms)):
        raise SgnasError(f"{target.name}: baseline latency {target.baseline_ms!r} ms is not positive")
    floor = target.tolerance_floor
    start = time.perf_counter()
    baseline_error = median_error(target.baseline_spread, target.baseline_pairs)

    def tol_of(m: Any) -> float:
        return cfg.item_tolerance(baseline_error, _error(m), floor)

    def within(m: Any) -> bool:
        return float(m.median_ms) / target.baseline_ms <= 1.0 + tol_of(m)

    first = measure_fn(target)
    taken = [first]
    final_ms, final_spread, final_error = float(first.median_ms), _spread(first), _error(first)
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
            final_ms, final_spread, final_error = float(best.median_ms), _spread(best), _error(best)
        else:
            final_ms = float(np.median([float(m.median_ms) for m in again]))
            final_spread = float(np.median([_spread(m) for m in again]))
            final_error = float(np.median([_error(m) for m in again]))
        tol = cfg.item_tolerance(baseline_error, final_error, floor)
        status = NOISY if final_ms / target.baseline_ms <= 1.0 + tol else REGRESSED
    tol = cfg.item_tolerance(baseline_error, final_error, floor)
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
    for r in results:
        if r.kind == "runtime" and r.status == REGRESSED:
            r.note = "; ".join(filter(None, [
                f"the runtime is slower: the reference model runs {r.ratio:.2f}x as long relative "
                "to the machine probe as when recorded", r.note]))


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
def check_lut(lut: Lut | str | os.PathLike, device: DeviceDescriptor | str,
              cfg: CheckConfig | None = None, measure_fn: MeasureFn | None = None) -> CheckReport:
    """Re-measure a stratified sample of ``lut``'s entries and ``cfg.networks`` reference networks.

    ``lut`` is a :class:`sgnas.lut.Lut` or a path; ``device`` a descriptor or a device name. Raises
    :class:`SgnasError` for a LUT of another device (unless ``cfg.allow_device_change``), another
    search space, or a device this host cannot run. ``measure_fn`` replaces the device measurement
    (then no host or runtime check is made).
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

    measurer = None
    canary_lut_ms = None
    reference, state_ms = lut_reference(lut)
    if measure_fn is None:
        preflight(device, force=cfg.force)
        canary_key, canary_lut_ms = lut_canary(lut, space)
        seed = int((lut.build or {}).get("seed", 0))
        measurer = DeviceMeasurer(device, space, canary_key=canary_key if cfg.canary else None,
                                  seed=seed, **lut_measurer_args(lut))
        measure_fn = measurer
        if reference is not None:
            measurer.open_reference()
    probe_base = (lut.reference or {}).get(PROBE_KEY)
    runtime = runtime_target(probe_base, cfg) if reference is not None else None
    if measurer is not None and probe_base:
        measurer.probe_chain = int(probe_base.get("chain") or 40)
    if runtime is not None:
        targets.append(runtime)
    try:
        results = [compare(t, cfg, measure_fn) for t in targets]
        if measurer is not None:
            measurer.finish()
    finally:
        if measurer is not None:
            measurer.close()
    _runtime_note(results)
    machine = machine_noise(measurer, probe_base, state_ms)
    drift = measurer.drift() if measurer is not None else getattr(measure_fn, "drift", lambda: None)()
    noise = noise_summary(results, drift)
    noise.update(machine)
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
        environment=provenance(device) if measurer is not None else {},
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


def update_baseline(onnx_path: str | os.PathLike, device: DeviceDescriptor | str, baseline_path: str | os.PathLike,
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
    reference: dict = {}
    probed: dict = {}
    if measure_fn is None:
        preflight(device, force=cfg.force)
        ref = for_onnx(device)
        with DeviceMeasurer(device, reference=ref) as measurer:
            measurer.open_reference()
            m = measurer(_onnx_target(onnx_path, shape, 1.0, 0.0))
            reference = {"model": ref.name, "state_ms": measurer.current_state_ms()}
            if cfg.probe:
                probed = measurer.probe(" while recording the baseline")
    else:
        m = measure_fn(_onnx_target(onnx_path, shape, 1.0, 0.0))
    env = provenance(device) if own else {}
    return write_baseline(baseline_path, onnx_path, device, m, shape, env, reference=reference,
                          probe=probed)


def check_onnx(path: str | os.PathLike, device: DeviceDescriptor | str, baseline: Baseline | str | os.PathLike,
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
    target = _onnx_target(path, tuple(shape), baseline.median_ms, baseline.spread,
                          int(baseline.measurement.get("pairs") or 0))
    measurer = None
    ref = baseline.reference or {}
    state_ms = float(ref["state_ms"]) if ref.get("model") and ref.get("state_ms") else None
    if measure_fn is None:
        preflight(device, force=cfg.force)
        reference = Reference.from_name(ref["model"]) if state_ms is not None else None
        measurer = DeviceMeasurer(device, reference=reference, state_ms=state_ms)
        measure_fn = measurer
        if reference is not None:
            measurer.open_reference()
    targets = [target]
    runtime = runtime_target(baseline.probe, cfg) if state_ms is not None else None
    if measurer is not None and baseline.probe:
        measurer.probe_chain = int(baseline.probe.get("chain") or 40)
    if runtime is not None:
        targets.append(runtime)
    try:
        results = [compare(t, cfg, measure_fn) for t in targets]
    finally:
        if measurer is not None:
            measurer.close()
    if sha != baseline.model_sha256:
        results[0].note = "; ".join(filter(None, [results[0].note, "model changed since the baseline"]))
    _runtime_note(results)
    machine = machine_noise(measurer, baseline.probe, state_ms)
    noise = noise_summary(results, None)
    noise.update(machine)
    report = CheckReport(
        mode="onnx", source=str(path), device=now, baseline_device=dict(baseline.device),
        results=results, config=cfg, global_result=None, noise=noise,
        environment=provenance(device) if measurer is not None else {},
    )
    report.notes.extend(report_notes(report))
    if measure_fn is measurer and state_ms is None:
        report.notes.append("note: the baseline was recorded without a reference model (older "
                            "protocol): compared in absolute terms; refresh it with --update")
    return report
