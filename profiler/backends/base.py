"""The runner interface shared by all backends, and the lazy backend factory.

A :class:`Runner` is a context manager in the style of Polygraphy: ``activate()`` builds or loads
the model and prepares its input once, ``time_iterations(n)`` returns ``n`` per-iteration latencies
with nothing but inference in the timed region, ``run()`` returns the first output for checks, and
``deactivate()`` frees everything (so only one session lives at a time while measuring).
"""

from __future__ import annotations

import abc
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np

from sgnas.errors import SgnasError, first_line, require
from sgnas.registry import UnknownNameError

from ..devices import (  # noqa: F401 (re-exported)
    BACKENDS,
    PIN_STACK,
    Backend,
    DeviceDescriptor,
    available_cpus,
    cpus_for,
    register_backend,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch


log = logging.getLogger(__name__)
T = TypeVar("T")

@dataclass(frozen=True)
class ModelSpec:
    """What a runner runs: an ONNX file and/or a torch module factory, and the input shape.

    ``onnx_path`` is an fp32 single-file ONNX model; ``onnx_path_fp16`` the same graph converted to
    half precision (used by fp16 TensorRT devices; TensorRT 11 takes precision from the graph).
    ``torch_factory`` builds the module for the torch backend. The input is drawn once from
    ``numpy.random.default_rng(seed)``.
    """

    onnx_path: Path | None
    input_shape: tuple[int, ...]
    name: str = "model"
    torch_factory: Callable[[], "torch.nn.Module"] | None = field(default=None, compare=False)
    onnx_path_fp16: Path | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        shape = tuple(int(d) for d in self.input_shape)
        if not shape or any(d < 1 for d in shape):
            raise SgnasError(f"model {self.name}: invalid input shape {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        for attr in ("onnx_path", "onnx_path_fp16"):
            value = getattr(self, attr)
            if value is not None:
                object.__setattr__(self, attr, Path(value))

    def make_input(self, dtype: Any = np.float32) -> np.ndarray:
        """The model input: standard normal values of :attr:`input_shape`, cast to ``dtype``."""
        rng = np.random.default_rng(self.seed)
        return np.ascontiguousarray(rng.standard_normal(self.input_shape).astype(dtype))

    def require_onnx(self, backend: str, fp16: bool = False) -> Path:
        """The ONNX file for ``backend`` (the fp16 one if ``fp16``); error if missing."""
        path = self.onnx_path_fp16 if fp16 else self.onnx_path
        label = "onnx_path_fp16" if fp16 else "onnx_path"
        if path is None:
            raise SgnasError(f"model {self.name}: the {backend} backend needs {label}")
        if not path.is_file():
            raise SgnasError(f"model {self.name}: ONNX file not found: {path}")
        return path


class Runner(abc.ABC):
    """Runs one model on one device; subclasses implement the ``*_impl`` methods."""

    backend = "base"

    def __init__(self, device: "DeviceDescriptor", model: ModelSpec) -> None:
        self.device = device
        self.model = model
        self.is_active = False
        #: Facts about how the model actually runs (provider, CUDA graph used, ...), for provenance.
        self.info: dict[str, Any] = {"backend": self.backend}

    # ------------------------------------------------------------ lifecycle
    def activate(self) -> None:
        """Build/load the model and prepare its input; activating an active runner raises."""
        if self.is_active:
            raise SgnasError(f"runner for {self.model.name} is already active")
        self.activate_impl()
        self.is_active = True

    def deactivate(self) -> None:
        """Free the session/engine and restore any process state changed by :meth:`activate`."""
        if not self.is_active:
            return
        try:
            self.deactivate_impl()
        finally:
            self.is_active = False

    def __enter__(self) -> "Runner":
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    # ------------------------------------------------------------- running
    def time_iterations(self, n: int) -> np.ndarray:
        """``n`` per-iteration latencies in milliseconds (float64)."""
        self._check_active()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        out = np.asarray(self.time_impl(int(n)), dtype=np.float64)
        if out.shape != (n,):
            raise RuntimeError(f"{type(self).__name__}.time_impl returned shape {out.shape}, want ({n},)")
        return out

    def run(self) -> np.ndarray:
        """Run one inference and return the first output as a numpy array."""
        self._check_active()
        return np.asarray(self.run_impl())

    def _check_active(self) -> None:
        if not self.is_active:
            raise SgnasError(f"runner for {self.model.name} is not active (use it as a context manager)")

    @abc.abstractmethod
    def activate_impl(self) -> None: ...

    @abc.abstractmethod
    def deactivate_impl(self) -> None: ...

    @abc.abstractmethod
    def time_impl(self, n: int) -> np.ndarray: ...

    @abc.abstractmethod
    def run_impl(self) -> np.ndarray: ...


def get_backend(device: "DeviceDescriptor") -> Backend:
    """The backend of ``device``, with its runtime imported (a missing one raises
    :class:`~sgnas.errors.MissingDependencyError` naming the extra to install)."""
    try:
        backend = BACKENDS.get(device.backend)
    except UnknownNameError:
        raise SgnasError(
            f"device {device.name}: unknown backend {device.backend!r}; known: {', '.join(BACKENDS)}"
        ) from None
    require(backend.runtime, backend.extra)
    return backend


def make_runner(device: "DeviceDescriptor", model: ModelSpec, cache_dir: Path | None = None) -> Runner:
    """The runner of ``device.backend`` for ``model`` (see :func:`get_backend`).

    ``cache_dir`` holds persistent build caches (the TensorRT timing cache).
    """
    return get_backend(device).runner(device, model, cache_dir=cache_dir)


# ------------------------------------------------------------- CPU thread pinning
class ThreadPin:
    """Pins the calling thread to ``cpus`` (Linux ``sched_setaffinity``) and restores it later.

    Threads the calling thread starts afterwards inherit the mask.
    """

    def __init__(self, cpus: list[int]) -> None:
        self.cpus = list(cpus)
        self._saved: set[int] | None = None

    def pin(self) -> bool:
        if not hasattr(os, "sched_setaffinity"):
            warnings.warn("thread pinning is not supported on this platform; running unpinned",
                          stacklevel=2)
            return False
        self._saved = os.sched_getaffinity(0)
        PIN_STACK.append(set(self._saved))
        os.sched_setaffinity(0, self.cpus)
        return True

    def restore(self) -> None:
        if self._saved is not None:
            os.sched_setaffinity(0, self._saved)
            self._saved = None
            if PIN_STACK:
                PIN_STACK.pop()


def refuse_fp16_on_cpu(device: "DeviceDescriptor", backend: str) -> None:
    """CPU backends measure fp32 only."""
    if device.precision != "fp32":
        raise SgnasError(
            f"device {device.name}: the {backend} CPU backend supports precision fp32 only, "
            f"not {device.precision}"
        )


def try_capture(capture: Callable[[], T], what: str = "CUDA graph") -> tuple[T | None, str | None]:
    """Run ``capture()``; on failure return ``(None, reason)`` so the caller falls back to eager."""
    try:
        return capture(), None
    except Exception as exc:  # capture fails in backend-specific ways; plain launches still work
        reason = f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__
        log.warning("%s capture failed, timing plain launches instead (%s)", what, reason)
        return None, reason
