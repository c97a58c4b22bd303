"""One latency check as a library call (``sgnas check``): :func:`run_check` of a :class:`CheckRequest`.

It validates the paths before anything is measured (a report path in a folder that does not exist,
a report that would overwrite the LUT or the baseline), records a baseline (``update``) or checks a
LUT or an ONNX model against its baseline (:mod:`profiler.check`, which holds the device's profile
lock while it measures), and writes the JSON and JUnit reports. Bad input raises
:class:`~sgnas.errors.SgnasError`; notices go to ``note``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from sgnas.errors import SgnasError

from .baseline import Baseline
from .check import CheckConfig, CheckReport, check_lut, check_onnx, update_baseline
from .devices import load_device


@dataclass(frozen=True)
class CheckRequest:
    """What to check: a LUT (``lut``) or an ONNX model (``onnx`` with its ``baseline``, recorded
    anew with ``update``) on ``device`` (a descriptor name or YAML path), judged by ``config``;
    ``json`` / ``junit``: report paths."""

    device: str
    lut: str | None = None
    onnx: str | None = None
    baseline: str | None = None
    update: bool = False
    json: str | None = None
    junit: str | None = None
    config: CheckConfig = field(default_factory=CheckConfig)


@dataclass
class CheckOutcome:
    """A check's :class:`~profiler.check.CheckReport`, or the :class:`~profiler.baseline.Baseline`
    written by an update, and the exit code (0 pass or written, 1 regression, 3 inconclusive)."""

    report: CheckReport | None = None
    baseline: Baseline | None = None
    #: With an update: the most CPU other processes used while it was recorded (cores).
    busy_cores: float | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.report is None else self.report.exit_code


def validate_request(request: CheckRequest) -> None:
    """Refuse a request that cannot be carried out, before anything is measured."""
    if (request.lut is None) == (request.onnx is None):
        raise SgnasError("check one of a LUT (--lut) or an ONNX model (--onnx)")
    cfg = request.config
    if request.lut is not None:
        for flag, value in (("--baseline", request.baseline), ("--update", request.update),
                            ("--allow-model-change", cfg.allow_model_change),
                            ("--no-model-copy", not cfg.model_copy),
                            ("--input-shape", cfg.input_shape)):
            if value:
                raise SgnasError(f"{flag} applies to --onnx, not --lut")
    elif not request.baseline:
        raise SgnasError("--onnx needs --baseline PATH (record it first with --update)")
    for flag, path in (("--json", request.json), ("--junit", request.junit)):
        if not path:
            continue
        for what, other in (("the baseline", request.baseline), ("the LUT", request.lut)):
            if other and _same(path, other):
                raise SgnasError(f"{flag} would overwrite {what} {other}")
        _writable(flag, path)
    if request.update and request.baseline:
        _writable("--baseline", request.baseline)


def run_check(request: CheckRequest, note: Callable[[str], None] | None = None) -> CheckOutcome:
    """Carry out ``request`` (module docstring); the reports are written when a check ran."""
    validate_request(request)
    cfg = request.config
    device = load_device(request.device)
    if request.onnx is not None and request.update:
        assert request.baseline is not None
        baseline = update_baseline(request.onnx, device, request.baseline, cfg, note=note)
        busy = [c for c in baseline.measurement.get("neighbour") or [] if c is not None]
        return CheckOutcome(baseline=baseline, busy_cores=max(busy) if busy else None)
    if request.lut is not None:
        report = check_lut(request.lut, device, cfg, note=note)
    else:
        assert request.onnx is not None and request.baseline is not None
        report = check_onnx(request.onnx, device, request.baseline, cfg, note=note)
    if request.json:
        report.write_json(request.json)
    if request.junit:
        report.write_junit(request.junit)
    return CheckOutcome(report=report)


def _writable(flag: str, path: str) -> None:
    """A report or baseline path must name a file in an existing folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SgnasError(f"{flag} {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise SgnasError(f"{flag} {path} is a folder, expected a file path")


def _same(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


__all__ = ["CheckOutcome", "CheckRequest", "run_check", "validate_request"]
