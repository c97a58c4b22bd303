"""Measuring the targets of a latency check on a device (the default ``measure_fn``).

:class:`DeviceMeasurer` builds each LUT entry or network as an ONNX graph and measures it with the
device's runtime and protocol, keeping a canary entry to report drift; :func:`preflight` fails early
on a host that cannot run the device; :func:`provenance` records the host and runtime of a run.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from sgnas.errors import SgnasError, require
from sgnas.space import SearchSpace

if TYPE_CHECKING:
    from .check_config import Target


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
    from .backends.base import BACKENDS
    from .devices import check_host

    check_host(device, force=force)
    backend = getattr(device, "backend", None)
    if backend not in BACKENDS:
        raise SgnasError(f"device {device.name}: unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    runtime, extra, _ = BACKENDS[backend]
    require(runtime, extra)


def lut_canary(lut: Any, space: SearchSpace) -> tuple[str, float | None]:
    """The canary key the LUT build used (or the build's default) and its first recorded median."""
    from .build import canary_key

    drift = getattr(lut, "drift", None) or {}
    key = drift.get("canary_key") or canary_key(space)
    medians = drift.get("canary_medians_ms") or []
    return str(key), (float(medians[0]) if medians and drift.get("canary_key") else None)


def provenance(device: Any) -> dict:
    """The host and runtime of ``device`` as recorded with a measured check (never raises)."""
    try:
        from .environment import collect_environment
    except ImportError:
        return {}
    try:
        return dict(collect_environment(device))
    except Exception as exc:  # provenance must never break a check
        return {"error": f"{type(exc).__name__}: {exc}"}
