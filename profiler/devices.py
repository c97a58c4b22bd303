"""Device descriptors: what to measure on, with which runtime, precision, batch and protocol.

A descriptor is a YAML file (``devices/<name>.yaml``) whose fields are those of
:class:`DeviceDescriptor`; ``protocol`` holds :class:`~profiler.protocol.ProtocolConfig` fields and
may be partial (defaults fill the rest). Unknown fields are errors, so a typo never passes silently.
:func:`check_host` verifies that the machine matches a descriptor before anything is measured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from sgnas.config import load_dataclass
from sgnas.errors import SgnasError, first_line, require
from sgnas.registry import Registry
from sgnas.shipped import shipped_dir

from .protocol import ProtocolConfig

#: Folder of the descriptors shipped with the project (package data of an installed wheel).
DEVICES_DIR = shipped_dir("devices")

KINDS = ("cpu", "gpu")
#: fp32 means TF32 off on GPUs; tf32 allows TF32 math (Ampere and newer).
PRECISIONS = ("fp32", "fp16", "tf32")


@dataclass(frozen=True)
class Backend:
    """A measuring backend: the runtime module it needs, the pip extra installing that, the
    device kinds it runs on and the factory ``runner(device, model, cache_dir=...)`` of its
    :class:`~profiler.backends.base.Runner`."""

    name: str
    runtime: str
    extra: str
    runner: Callable[..., Any]
    kinds: tuple[str, ...] = ("cpu",)


#: The one list of backends. Each module of :mod:`profiler.backends` registers itself with
#: :func:`register_backend` (imported on the first lookup of an unknown name); the modules import
#: without their runtimes, which are required only by :func:`profiler.backends.make_runner`.
BACKENDS: Registry[Backend] = Registry("backend", discover="profiler.backends")


def register_backend(name: str, runtime: str, extra: str, runner: Callable[..., Any],
                     kinds: Sequence[str] = ("cpu",)) -> Backend:
    """Register the backend ``name`` running on device ``kinds`` (a duplicate name is an error)."""
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"backend {name}: kinds must be among {', '.join(KINDS)}, got {list(kinds)}")
    return BACKENDS.register(name, Backend(name, runtime, extra, runner, tuple(kinds)))


@dataclass(frozen=True)
class DeviceDescriptor:
    """A measurement target (see ``devices/*.yaml``)."""

    name: str
    description: str
    kind: str  # "cpu" | "gpu"
    backend: str  # "onnxruntime" | "openvino" | "tensorrt" | "torch"
    precision: str  # "fp32" | "fp16" | "tf32" (GPU only)
    batch_size: int
    #: Input resolution of the whole network; None = the search space's own input size.
    input_size: int | None = None
    #: CPU intra-op threads (required for CPU devices).
    threads: int | None = None
    #: Pin the calling thread (and the runtime's workers where it allows) to fixed CPUs.
    pin_threads: bool = False
    #: Substring expected in the GPU name, e.g. "V100" (GPU devices; None accepts any GPU).
    gpu_model: str | None = None
    #: Capture a CUDA graph of one inference when possible (falls back to plain launches).
    cuda_graphs: bool = False
    #: TensorRT builder workspace limit in MiB.
    workspace_mb: int = 1024
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)

    def __post_init__(self) -> None:
        where = f"device {self.name}"
        if self.kind not in KINDS:
            raise SgnasError(f"{where}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.backend not in BACKENDS:
            raise SgnasError(
                f"{where}: backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}"
            )
        if self.kind not in BACKENDS.get(self.backend).kinds:
            raise SgnasError(f"{where}: backend {self.backend} does not run on kind {self.kind}")
        if self.precision not in PRECISIONS:
            raise SgnasError(
                f"{where}: precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}"
            )
        if self.kind == "cpu" and self.precision != "fp32":
            raise SgnasError(f"{where}: cpu devices measure precision fp32 only")
        if self.batch_size < 1:
            raise SgnasError(f"{where}: batch_size must be >= 1")
        if self.input_size is not None and self.input_size < 1:
            raise SgnasError(f"{where}: input_size must be >= 1 or null")
        if self.kind == "cpu" and self.threads is None:
            raise SgnasError(f"{where}: threads is required for cpu devices")
        if self.threads is not None and self.threads < 1:
            raise SgnasError(f"{where}: threads must be >= 1")
        if self.workspace_mb < 1:
            raise SgnasError(f"{where}: workspace_mb must be >= 1")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["protocol"] = self.protocol.to_dict()
        return d


# --------------------------------------------------------------------- loading
def known_devices() -> list[str]:
    """Names of the descriptors in :data:`DEVICES_DIR`, sorted."""
    if not DEVICES_DIR.is_dir():
        return []
    return sorted(p.stem for p in DEVICES_DIR.glob("*.yaml"))


def _resolve(name_or_path: str) -> Path:
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = path.suffix in (".yaml", ".yml") or "/" in text or "\\" in text
    if looks_like_path:
        if not path.is_file():
            raise SgnasError(f"device file not found: {text}")
        return path
    candidate = DEVICES_DIR / f"{text}.yaml"
    if not candidate.is_file():
        known = ", ".join(known_devices()) or "(none)"
        raise SgnasError(f"unknown device {text!r}; known devices: {known} (or pass a .yaml path)")
    return candidate


def device_from_dict(data: dict, where: str = "device") -> DeviceDescriptor:
    """Validate a mapping (a parsed descriptor file) and build the descriptor."""
    if isinstance(data, dict) and data.get("protocol", 0) is None:
        data = {k: v for k, v in data.items() if k != "protocol"}
    return load_dataclass(DeviceDescriptor, data, where=where)


def load_device(name_or_path: str) -> DeviceDescriptor:
    """Load ``devices/<name>.yaml`` or a descriptor file path, validated."""
    yaml = require("yaml", "tools")

    path = _resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SgnasError(f"cannot read device file {path}: {first_line(exc)}") from exc
    device = device_from_dict(data, where=str(path))
    if device.name != path.stem:
        raise SgnasError(f"{path}: field 'name' is {device.name!r} but the file is {path.name}")
    return device


# ------------------------------------------------------------------- host check
def gpu_names() -> list[str]:
    """Names of the CUDA GPUs visible here, the current one first (torch, else nvidia-smi)."""
    try:
        import torch

        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            cur = torch.cuda.current_device()
            order = [cur] + [i for i in range(n) if i != cur]
            return [torch.cuda.get_device_name(i) for i in order]
    except Exception:  # a broken CUDA install must not hide nvidia-smi's answer
        pass
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def check_host(device: DeviceDescriptor, force: bool = False) -> None:
    """Refuse to measure ``device`` on a host that does not match it.

    A GPU device on a host without a CUDA GPU is always an error. A GPU whose name does not contain
    ``device.gpu_model`` is an error unless ``force`` (then a warning). A pinned CPU device needs as
    many available CPUs as threads.
    """
    if device.kind == "gpu":
        names = gpu_names()
        if not names:
            raise SgnasError(
                f"device {device.name} needs an NVIDIA GPU with CUDA, but none was found on this host"
            )
        if device.gpu_model and device.gpu_model.lower() not in names[0].lower():
            msg = (f"device {device.name} expects a GPU matching {device.gpu_model!r}, "
                   f"but this host's GPU is {names[0]!r}")
            if not force:
                raise SgnasError(f"{msg}; use --force to override")
            warnings.warn(f"{msg}; measuring anyway (--force)", stacklevel=2)
    elif device.pin_threads:
        cpus_for(device)


#: Affinities saved by active thread pins (:class:`profiler.backends.base.ThreadPin`), outermost
#: first: while a runner is pinned (a live reference), a second runner still sees the CPUs the
#: process had before any pin.
PIN_STACK: list[set[int]] = []


def available_cpus() -> list[int]:
    """CPUs this process may run on, sorted (all CPUs where affinity is not supported); while
    threads are pinned, the CPUs it had before the first pin."""
    if PIN_STACK:
        return sorted(PIN_STACK[0])
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def cpus_for(device: DeviceDescriptor) -> list[int]:
    """The CPUs a pinned CPU device uses: the first ``device.threads`` available ones."""
    cpus = available_cpus()
    threads = device.threads or 1
    if threads > len(cpus):
        raise SgnasError(
            f"device {device.name} pins {threads} threads but only {len(cpus)} CPUs are available"
        )
    return cpus[:threads]
