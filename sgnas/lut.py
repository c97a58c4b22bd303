"""The latency lookup table (LUT) file: schema, validated loading, atomic saving, calibration.

A LUT holds, for one device and one search space, the measured latency of every distinct LUT key of
the space (:meth:`SearchSpace.all_keys`: the stem, the head and each layer shape x configuration),
with per-entry statistics and the provenance of the measurement (device descriptor, runtime
versions, date, space fingerprint). A missing key is an error, never zero.

For a cell space (NAS-Bench-201) the entries are keyed per cell, by the cell's standard string
(``space.all_keys()`` lists every cell), and the prediction of a cell is its entry; such a table is
usually imported from a benchmark (``build.provenance == "imported"``, see :mod:`sgnas.lut_import`).
A *predicted* per-cell table (:mod:`sgnas.lut_predict`) has every cell, measured cells as measured,
the others predicted with an ``uncertainty_ms`` per entry, and a top-level ``prediction`` record
(method, measured cells, cross-validated error); :attr:`Lut.predicted` tells it apart, and
:func:`require_measured` refuses it where a measured table is needed. Both keys are absent from
measured tables, which load and save unchanged.

File layout (JSON, ``schema_version`` 1)::

    {"schema_version": 1, "space": "imagenet", "space_fingerprint": "...",
     "device": {...descriptor...}, "input_size": 224, "environment": {...}, "created": "...",
     "complete": true, "drift": {...}, "build": {...}, "calibration": {"slope": ..., "intercept": ...} | null,
     "reference": {...},                                   # optional: state-normalized builds only
     "entries": {"stem_r224_s2_c32_o16": {"median_ms": ..., "p10_ms": ..., ...}, ...}}

State-normalized builds time every entry interleaved with a fixed reference model and store
``median_ms = ratio x reference state``; each entry then also carries ``ratio``, ``ratio_spread``
and ``ratio_n``, and ``reference`` holds the machine-state record (reference model, its state
``state_ms``, its latency over the build). A LUT without ``reference`` (the older protocol) loads
unchanged and reports :attr:`Lut.normalized` False.

:attr:`Lut.fingerprint` identifies the *latency model* a LUT stands for — the space and the device
settings that shape latency (name, backend, precision, batch size, threads, input size) — and not the
measured numbers: re-profiling the same device on another machine of the same kind gives a LUT with
the same fingerprint, so a generator trained for it stays valid.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import SgnasError, SpaceMismatchError
from .fileio import atomic_write_json, read_json
from .space import SearchSpace, get_space
from .space_protocol import Space

SCHEMA_VERSION = 1


@dataclass
class EntryStats:
    """Statistics of one LUT entry, in milliseconds.

    ``median_ms`` is the value the LUT uses (median of round medians; divided by ``canary_factor``
    when the build normalized drift). ``spread`` is the robust spread IQR/median of the rounds and
    ``noisy`` flags an entry whose spread stayed above the protocol's threshold after re-measuring.
    """

    median_ms: float
    p10_ms: float
    p90_ms: float
    n: int
    spread: float
    noisy: bool = False
    canary_factor: float | None = None
    #: State-normalized entries: median ratio to the reference, its spread (IQR/median), pair count.
    ratio: float | None = None
    ratio_spread: float | None = None
    ratio_n: int | None = None
    #: Predicted tables only: the entry's uncertainty (one standard error, ms); 0 for a measured
    #: cell, None in a measured table.
    uncertainty_ms: float | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            "median_ms": float(self.median_ms),
            "p10_ms": float(self.p10_ms),
            "p90_ms": float(self.p90_ms),
            "n": int(self.n),
            "spread": float(self.spread),
            "noisy": bool(self.noisy),
        }
        if self.canary_factor is not None:
            d["canary_factor"] = float(self.canary_factor)
        if self.ratio is not None:
            d["ratio"] = float(self.ratio)
            d["ratio_spread"] = None if self.ratio_spread is None else float(self.ratio_spread)
            d["ratio_n"] = None if self.ratio_n is None else int(self.ratio_n)
        if self.uncertainty_ms is not None:
            d["uncertainty_ms"] = float(self.uncertainty_ms)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EntryStats":
        cf = d.get("canary_factor")
        ratio, rs, rn = d.get("ratio"), d.get("ratio_spread"), d.get("ratio_n")
        unc = d.get("uncertainty_ms")
        return cls(
            median_ms=float(d["median_ms"]),
            p10_ms=float(d["p10_ms"]),
            p90_ms=float(d["p90_ms"]),
            n=int(d["n"]),
            spread=float(d["spread"]),
            noisy=bool(d.get("noisy", False)),
            canary_factor=None if cf is None else float(cf),
            ratio=None if ratio is None else float(ratio),
            ratio_spread=None if rs is None else float(rs),
            ratio_n=None if rn is None else int(rn),
            uncertainty_ms=None if unc is None else float(unc),
        )


@dataclass
class Calibration:
    """A map from the raw LUT sum to measured whole-network latency: ``slope * raw + intercept``.

    ``metrics`` keeps the fit's validation figures (e.g. held-out MAPE before and after).
    """

    slope: float
    intercept: float
    method: str = "linear"
    n_fit: int = 0
    metrics: dict = field(default_factory=dict)

    def apply(self, raw_ms):
        """Calibrated latency; works on floats, numpy arrays and torch tensors (differentiable)."""
        return raw_ms * self.slope + self.intercept

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "slope": float(self.slope),
            "intercept": float(self.intercept),
            "n_fit": int(self.n_fit),
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        method = d.get("method", "linear")
        if method != "linear":
            raise SgnasError(f"unknown LUT calibration method {method!r} (known: linear)")
        return cls(
            slope=float(d["slope"]),
            intercept=float(d["intercept"]),
            method=method,
            n_fit=int(d.get("n_fit", 0)),
            metrics=dict(d.get("metrics", {})),
        )


def utc_now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Lut:
    """A latency lookup table of one device for one search space."""

    space: str
    space_fingerprint: str
    device: dict
    entries: dict[str, EntryStats] = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    created: str = field(default_factory=utc_now)
    input_size: int | None = None
    calibration: Calibration | None = None
    drift: dict = field(default_factory=dict)
    build: dict = field(default_factory=dict)
    complete: bool = False
    #: Machine-state record of a state-normalized build (empty: the older, unnormalized protocol).
    reference: dict = field(default_factory=dict)
    #: Predicted tables only (:mod:`sgnas.lut_predict`): the method, the measured cells and the
    #: predictor's cross-validated error; empty for a measured table.
    prediction: dict = field(default_factory=dict)
    path: str | None = field(default=None, compare=False)
    schema_version: int = SCHEMA_VERSION

    # ------------------------------------------------------------------ identity
    @property
    def device_name(self) -> str:
        return str(self.device.get("name", "?"))

    @property
    def fingerprint(self) -> str:
        """Short hash of the latency model: space fingerprint and the device's latency settings.

        It does not cover the measured numbers (see the module docstring).
        """
        d = self.device
        input_size = self.input_size if self.input_size is not None else d.get("input_size")
        blob = json.dumps(
            [
                self.space_fingerprint,
                d.get("name"),
                d.get("backend"),
                d.get("precision"),
                d.get("batch_size"),
                d.get("threads"),
                input_size,
            ]
        ).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def normalized(self) -> bool:
        """Whether the entries were measured relative to a reference (state-normalized)."""
        return bool(self.reference)

    @property
    def predicted(self) -> bool:
        """Whether the table is predicted from a few measured cells (not measured throughout)."""
        return bool(self.prediction)

    def rescale_to_reference(self, state_ms: float) -> None:
        """Re-state every entry that has a ratio as ``ratio x state_ms`` (p10/p90 scaled alike)."""
        if not state_ms > 0:
            raise SgnasError(f"reference state must be positive, got {state_ms}")
        for e in self.entries.values():
            if e.ratio is None:
                continue
            f = e.ratio * state_ms / e.median_ms if e.median_ms > 0 else 1.0
            e.median_ms, e.p10_ms, e.p90_ms = e.ratio * state_ms, e.p10_ms * f, e.p90_ms * f
        self.reference["state_ms"] = float(state_ms)

    def _where(self) -> str:
        return f"LUT {self.path}" if self.path else f"LUT of device {self.device_name!r}"

    # ------------------------------------------------------------------ lookups
    def latency_ms(self, key: str) -> float:
        """Latency of one entry; a missing key raises :class:`SgnasError`."""
        try:
            return self.entries[key].median_ms
        except KeyError:
            raise SgnasError(
                f"{self._where()} has no entry {key}; re-run sgnas-profile --resume"
            ) from None

    def missing_keys(self, space: SearchSpace | None = None) -> list[str]:
        """Keys of ``space`` (default: the LUT's space) that have no entry."""
        space = space or get_space(self.space)
        return [k for k in space.all_keys() if k not in self.entries]

    def _check_space(self, space: Space) -> None:
        if space.fingerprint != self.space_fingerprint:
            raise SpaceMismatchError(
                f"{self._where()} was measured for space {self.space!r} "
                f"(fingerprint {self.space_fingerprint}), not {space.name!r} ({space.fingerprint})"
            )

    def layer_table(self, space: SearchSpace | None = None) -> np.ndarray:
        """Per-layer latency in ms, shape ``(L, len(space.configs))``, columns in ``space.configs`` order."""
        space = space or get_space(self.space)
        self._check_space(space)
        return np.array(
            [[self.latency_ms(k) for k in row] for row in space.layer_keys()], dtype=np.float64
        )

    def fixed_ms(self, space: SearchSpace | None = None) -> float:
        """Latency of the fixed parts: stem (with the first block) plus head."""
        space = space or get_space(self.space)
        self._check_space(space)
        return self.latency_ms(space.stem_key) + self.latency_ms(space.head_key)

    def raw_ms(self, arch: Any, space: Space | None = None) -> float:
        """Uncalibrated prediction: the sum of the entries of ``space.lut_keys(arch)`` (stem, head
        and the layers' entries; for a cell space, whose LUTs are keyed per cell, its one entry)."""
        space = space or get_space(self.space)
        self._check_space(space)
        total = 0.0
        for key in space.lut_keys(arch):
            total += self.latency_ms(key)
        return float(total)

    def predict_ms(
        self, arch: Any, calibrated: bool = True, space: Space | None = None
    ) -> float:
        """Predicted latency of ``arch``: the raw LUT sum, calibrated when the LUT has a calibration."""
        raw = self.raw_ms(arch, space)
        if calibrated and self.calibration is not None:
            return float(self.calibration.apply(raw))
        return raw

    # ---------------------------------------------------------- serialization
    def to_dict(self) -> dict:
        d = {
            "schema_version": self.schema_version,
            "space": self.space,
            "space_fingerprint": self.space_fingerprint,
            "fingerprint": self.fingerprint,
            "device": dict(self.device),
            "input_size": self.input_size,
            "environment": dict(self.environment),
            "created": self.created,
            "complete": bool(self.complete),
            "drift": dict(self.drift),
            "build": dict(self.build),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "entries": {k: v.to_dict() for k, v in self.entries.items()},
        }
        if self.reference:
            d["reference"] = dict(self.reference)
        if self.prediction:
            d["prediction"] = dict(self.prediction)
        return d

    @classmethod
    def from_dict(cls, d: dict, path: str | None = None) -> "Lut":
        cal = d.get("calibration")
        return cls(
            space=str(d["space"]),
            space_fingerprint=str(d["space_fingerprint"]),
            device=dict(d["device"]),
            entries={str(k): EntryStats.from_dict(v) for k, v in d["entries"].items()},
            environment=dict(d.get("environment") or {}),
            created=str(d.get("created", "")),
            input_size=d.get("input_size"),
            calibration=None if cal is None else Calibration.from_dict(cal),
            drift=dict(d.get("drift") or {}),
            build=dict(d.get("build") or {}),
            complete=bool(d.get("complete", False)),
            reference=dict(d.get("reference") or {}),
            prediction=dict(d.get("prediction") or {}),
            path=path,
            schema_version=int(d["schema_version"]),
        )


class NamedDevice(Protocol):
    """What a LUT check needs of a device descriptor (:class:`profiler.devices.DeviceDescriptor`)."""

    @property
    def name(self) -> str: ...


def load_lut(
    path: str | os.PathLike,
    space: SearchSpace | str | None = None,
    device: "str | NamedDevice | None" = None,
    allow_incomplete: bool = False,
) -> Lut:
    """Load and validate a LUT file.

    Raises :class:`SgnasError` for a missing, corrupt or truncated file, another schema version,
    another device (``device``: a name or an object with ``.name``) or an incomplete table (unless
    ``allow_incomplete``), and :class:`SpaceMismatchError` when the LUT's space fingerprint differs
    from its registered space's or ``space`` names another space.
    """
    path = Path(path)
    data = read_json(path, "LUT", missing=f"LUT file not found: {path}")
    if not isinstance(data, dict) or "schema_version" not in data:
        raise SgnasError(f"LUT {path} is corrupt or truncated (no schema_version)")
    if data["schema_version"] != SCHEMA_VERSION:
        raise SgnasError(
            f"LUT {path} has schema version {data['schema_version']}, this sgnas reads "
            f"{SCHEMA_VERSION}; re-run sgnas-profile"
        )
    try:
        lut = Lut.from_dict(data, path=str(path))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SgnasError(f"LUT {path} is corrupt or truncated (bad field: {exc})") from exc
    check_values(lut, str(path))

    registered = get_space(lut.space)
    if registered.fingerprint != lut.space_fingerprint:
        raise SpaceMismatchError(
            f"LUT {path} was measured for another definition of space {lut.space!r} "
            f"(fingerprint {lut.space_fingerprint}, now {registered.fingerprint}); re-run sgnas-profile"
        )
    if space is not None:
        name = space if isinstance(space, str) else space.name
        if name != lut.space:
            raise SpaceMismatchError(f"LUT {path} is for space {lut.space!r}, not {name!r}")
        if not isinstance(space, str):
            lut._check_space(space)
    if device is not None:
        name = device if isinstance(device, str) else device.name
        if name != lut.device_name:
            raise SgnasError(f"LUT {path} was measured on device {lut.device_name!r}, not {name!r}")
    if not allow_incomplete:
        missing = lut.missing_keys(registered)
        if missing:
            raise SgnasError(
                f"LUT {path} is incomplete: {len(missing)} of {len(registered.all_keys())} entries "
                f"missing (first: {missing[0]}); re-run sgnas-profile --resume"
            )
    return lut


def require_measured(lut: Lut, what: str = "this command") -> Lut:
    """``lut`` if it is measured; :class:`SgnasError` for a predicted table (e.g. re-measuring it
    against a device in ``sgnas check`` would judge the predictor, not the device)."""
    if lut.predicted:
        where = f"LUT {lut.path}" if lut.path else f"the LUT of device {lut.device_name!r}"
        n = lut.prediction.get("measured", "?")
        raise SgnasError(f"{where} is predicted from {n} measured cells, {what} needs a measured "
                         f"LUT (profile the device: sgnas-profile --space {lut.space})")
    return lut


def check_values(lut: Lut, where: str) -> None:
    """Every entry a finite latency >= 0 and the calibration finite, else one :class:`SgnasError`
    naming the file, the entry and the value."""
    import math

    for key, e in lut.entries.items():
        for name in ("median_ms", "p10_ms", "p90_ms"):
            value = getattr(e, name, None)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)
                                          and value >= 0):
                raise SgnasError(f"LUT {where} entry {key}: {name} is {value!r}, expected a finite "
                                 f"latency >= 0 ms; re-profile the device")
    cal = lut.calibration
    if cal is not None:
        for name in ("slope", "intercept"):
            value = getattr(cal, name)
            if not math.isfinite(float(value)):
                raise SgnasError(f"LUT {where} calibration: {name} is {value!r}, expected a finite "
                                 f"number; calibrate again with sgnas-profile --validate N --lut "
                                 f"{where}")


def lut_warnings(lut: Lut, calibration: bool = True) -> list[str]:
    """One-line warnings about a LUT's trustworthiness: measured by the older, unnormalized
    protocol (entries not stated relative to a reference), or uncalibrated (predictions are the raw
    entry sums, which miss whole-network effects)."""
    where = f"LUT {lut.path}" if lut.path else f"the LUT of device {lut.device_name!r}"
    out = []
    if lut.predicted:
        cv = lut.prediction.get("cv") or {}
        out.append(f"{where} is predicted from {lut.prediction.get('measured', '?')} measured "
                   f"cells (cross-validated error {100 * float(cv.get('rmse_rel', 0)):.1f}%): "
                   f"decoding keeps a per-cell margin from its uncertainty")
        return out
    if lut.build.get("granularity") == "cell" or lut.build.get("provenance") == "imported":
        # per-cell tables hold whole-network latencies (imported ones are measured elsewhere)
        if lut.build.get("provenance") == "profiled" and calibration and lut.calibration is None:
            out.append(f"{where} is uncalibrated: its cells are composed from measured pieces; "
                       f"calibrate it with sgnas-profile --space {lut.space} --validate 30")
        return out
    if not lut.normalized:
        out.append(f"{where} was measured by the older, unnormalized protocol (no reference "
                   f"model): its entries carry the machine state of their moment; re-profile it")
    if calibration and lut.calibration is None:
        out.append(f"{where} is uncalibrated: predictions are raw entry sums; calibrate it with "
                   f"sgnas-profile --device {lut.device_name} --space {lut.space} --validate 40 "
                   f"--lut {lut.path or '<lut>'}")
    return out


def save_lut(lut: Lut, path: str | os.PathLike) -> None:
    """Write ``lut`` atomically (the file is always either the old or the complete new table)."""
    atomic_write_json(path, lut.to_dict(), indent=1)
    lut.path = str(path)
