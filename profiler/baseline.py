"""The latency baseline of an ONNX model on a device (``sgnas check --onnx ... --update``).

A baseline file records the model's SHA-256 and input shape, the device descriptor, the measurement
and the environment, and keeps a copy of the model in a folder beside it (``latency.json`` ->
``latency.model/``), so a later check can time the new model against the baseline's own, interleaved
(:func:`store_model_copy`, :func:`baseline_model`). :func:`write_baseline` writes one atomically and
:func:`load_baseline` reads and validates one. :func:`check_same_device` refuses a baseline (or a LUT) recorded on another device or
with other latency-shaping settings.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Sequence

from sgnas.errors import SgnasError, require
from sgnas.fileio import atomic_write_json, json_safe, read_json
from sgnas.lut import utc_now

from .devices import DeviceDescriptor

BASELINE_SCHEMA = 1
#: Device settings that shape latency; a baseline recorded with other values is not comparable.
LATENCY_FIELDS = ("name", "backend", "precision", "batch_size", "threads", "pin_threads",
                  "input_size", "gpu_model", "cuda_graphs")


def device_dict(device: DeviceDescriptor | Mapping[str, Any]) -> dict:
    """A device descriptor (or its mapping) as a plain dict."""
    if isinstance(device, Mapping):
        return dict(device)
    return dict(device.to_dict())


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


#: Recorded environment fields that identify the host (``profiler.environment``).
HOST_FIELDS = ("machine_id", "hostname", "cpu_model", "cpu_count", "cpus_available", "machine")
#: Runtime packages whose version shapes latency, per backend (numpy: the machine probe).
RUNTIME_PACKAGES = {"onnxruntime": ("onnxruntime",), "openvino": ("openvino",),
                    "tensorrt": ("tensorrt", "cuda-python"), "torch": ("torch",)}


def host_changes(recorded: Mapping[str, Any] | None, now: Mapping[str, Any],
                 backend: str | None = None) -> list[str]:
    """How this host (``now``, :func:`profiler.environment.collect_environment`) differs from the
    one ``recorded`` was made on: host fields, GPU model and runtime versions, as ``"field a -> b"``.

    A record without a machine id (made before it was recorded) cannot be tied to this host and
    counts as a difference. An empty list: the same host, the same runtime.
    """
    recorded = dict(recorded or {})
    if not recorded.get("machine_id"):
        return ["it does not record which machine it was made on"]
    out = [f"{k} {recorded[k]!r} -> {now.get(k)!r}" for k in HOST_FIELDS
           if recorded.get(k) is not None and recorded.get(k) != now.get(k)]
    gpu_then = (recorded.get("gpu") or {}).get("name")
    gpu_now = (now.get("gpu") or {}).get("name")
    if gpu_then and gpu_then != gpu_now:
        out.append(f"GPU {gpu_then!r} -> {gpu_now!r}")
    then_pk, now_pk = recorded.get("packages") or {}, now.get("packages") or {}
    for name in ("numpy", *RUNTIME_PACKAGES.get(str(backend), ())):
        if then_pk.get(name) and then_pk.get(name) != now_pk.get(name):
            out.append(f"{name} {then_pk[name]} -> {now_pk.get(name) or 'not installed'}")
    return out


@dataclass
class Baseline:
    """The recorded latency of one ONNX model on one device (``sgnas check --onnx ... --update``)."""

    model_sha256: str
    input_shape: tuple[int, ...]
    device: dict
    measurement: dict
    environment: dict = field(default_factory=dict)
    created: str = field(default_factory=utc_now)
    model_path: str = ""
    schema_version: int = BASELINE_SCHEMA
    path: str | None = field(default=None, compare=False)
    #: State-normalized baselines: the reference model and its latency while the model was
    #: recorded (``{"model": name, "state_ms": ms}``); the measurement is stated in that state.
    reference: dict = field(default_factory=dict)
    #: The machine-speed probe's figures when the baseline was recorded (:mod:`profiler.probe`).
    probe: dict = field(default_factory=dict)
    #: The copy of the model kept with the baseline, relative to the baseline's folder ("": none).
    model_copy: str = ""

    @property
    def median_ms(self) -> float:
        return float(self.measurement["median_ms"])

    @property
    def spread(self) -> float:
        return float(self.measurement.get("spread", 0.0) or 0.0)

    def to_dict(self) -> dict:
        return json_safe({
            "schema_version": self.schema_version,
            "kind": "sgnas-latency-baseline",
            "created": self.created,
            "model": {"path": self.model_path, "sha256": self.model_sha256,
                      "input_shape": list(self.input_shape),
                      **({"copy": self.model_copy} if self.model_copy else {})},
            "device": dict(self.device),
            "environment": dict(self.environment),
            "measurement": dict(self.measurement),
            **({"reference": dict(self.reference)} if self.reference else {}),
            **({"probe": dict(self.probe)} if self.probe else {}),
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
            reference=dict(d.get("reference") or {}),
            probe=dict(d.get("probe") or {}),
            model_copy=str(model.get("copy") or ""),
        )


def load_baseline(path: str | os.PathLike) -> Baseline:
    """Load a baseline file; a missing, corrupt or foreign file raises :class:`SgnasError`."""
    path = Path(path)
    data = read_json(path, "baseline", missing=f"baseline {path} not found; record it first with --update")
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
    onnx = require("onnx", "tools")

    model = load_onnx(path)
    out = set()
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            for entry in init.external_data:
                if entry.key == "location":
                    out.add(path.parent / entry.value)
    return out


def load_onnx(path: Path):
    """The ONNX graph at ``path`` without its external data; :class:`SgnasError` if it is not one."""
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
    model = load_onnx(path)
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


def model_copy_folder(baseline_path: str | os.PathLike) -> Path:
    """The folder that keeps the copy of a baseline's model: ``latency.json`` -> ``latency.model``."""
    p = Path(baseline_path)
    return p.with_name(p.stem + ".model")


def owns_model_copy(baseline_path: str | os.PathLike) -> bool:
    """Whether the model-copy folder beside ``baseline_path`` exists and is the copy the baseline
    there names."""
    folder = model_copy_folder(baseline_path)
    if not folder.exists():
        return False
    try:
        return load_baseline(baseline_path).model_copy.split("/", 1)[0] == folder.name
    except SgnasError:
        return False


def check_copy_replaceable(baseline_path: str | os.PathLike) -> None:
    """Refuse (:class:`SgnasError`) when the model-copy folder of ``baseline_path`` exists but is
    not the copy of the baseline there (a folder of the user's that ``--update`` would replace)."""
    folder = model_copy_folder(baseline_path)
    if folder.exists() and not owns_model_copy(baseline_path):
        raise SgnasError(f"{folder} exists and is not the model copy of baseline {baseline_path}; "
                         "not overwritten: move it away, or choose another --baseline path")


def store_model_copy(baseline_path: str | os.PathLike, onnx_path: str | os.PathLike) -> str:
    """Copy ``onnx_path`` (and its external-data files) into the baseline's model folder
    (:func:`model_copy_folder`), replacing an earlier copy only once the new one is complete;
    returns the copy's path relative to the baseline's folder."""
    onnx_path = Path(onnx_path)
    dest = model_copy_folder(baseline_path)
    files = [onnx_path, *sorted(_external_data_files(onnx_path))]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for f in files:
            rel = f.resolve().relative_to(onnx_path.parent.resolve())
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, tmp / rel)
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            dest.rename(old)
        tmp.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except (OSError, ValueError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SgnasError(f"cannot keep a copy of {onnx_path} in {dest}: {exc}") from exc
    return f"{dest.name}/{onnx_path.name}"


def baseline_model(baseline: Baseline) -> Path | None:
    """The baseline's own copy of its model, verified against the recorded SHA-256; ``None`` when
    the baseline keeps none or the copy is missing (older baselines, or a copy not committed).
    A copy that does not match raises :class:`SgnasError`."""
    if not baseline.model_copy:
        return None
    folder = Path(baseline.path).parent if baseline.path else Path(".")
    copy = folder / baseline.model_copy
    if not copy.is_file():
        return None
    if file_sha256(copy) != baseline.model_sha256:
        raise SgnasError(f"{copy} is not the model baseline {baseline.path} was recorded with "
                         "(its sha256 differs); record the baseline again with --update")
    return copy


def write_baseline(path: str | os.PathLike, onnx_path: str | os.PathLike, device: DeviceDescriptor,
                   measurement: Any, input_shape: Sequence[int],
                   environment: dict | None = None, reference: dict | None = None,
                   probe: dict | None = None, model_copy: str = "") -> Baseline:
    """Write the baseline of ``onnx_path`` on ``device`` atomically and return it (``reference``,
    ``probe`` and ``model_copy``: see :class:`Baseline`)."""
    m = measurement.to_dict() if hasattr(measurement, "to_dict") else dict(measurement)
    baseline = Baseline(
        model_sha256=file_sha256(onnx_path),
        input_shape=tuple(int(x) for x in input_shape),
        device=device_dict(device),
        measurement=m,
        environment=dict(environment or {}),
        model_path=str(onnx_path),
        reference=dict(reference or {}),
        probe=dict(probe or {}),
        model_copy=model_copy,
    )
    atomic_write_json(path, baseline.to_dict(), indent=1)
    baseline.path = str(path)
    return baseline
