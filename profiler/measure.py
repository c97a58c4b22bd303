"""The one measuring path: a model (a LUT key, a whole architecture, an ONNX file) → its
:class:`~profiler.backends.base.ModelSpec` → one live runner → a
:class:`~profiler.protocol.Measurement`.

Three separable pieces, so that other timing protocols can reuse any of them:

* :class:`ModelBuilder` writes the ONNX graph(s) of a LUT entry or a network into a folder and
  returns the spec (optionally checking the graph against its torch module);
* :func:`measure_spec` opens one runner of the device's backend for a spec, times it with a protocol
  (:func:`profiler.protocol.measure`) and closes it;
* :class:`Measurer` combines both, keeping only the graph of the last model on disk (re-measuring the
  same model reuses it). LUT builds, validation, checks and ``sgnas generate --measure`` all use it.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence, TypeVar

from sgnas.errors import SgnasError
from sgnas.lut import Lut
from sgnas.space import Architecture, SearchSpace

from . import graphs
from .backends.base import ModelSpec, make_runner
from .devices import DeviceDescriptor, check_host, device_from_dict, load_device
from .protocol import Measurement, ProtocolConfig, measure


M = TypeVar("M", bound="Measurer")


def check_device_space(device: DeviceDescriptor, space: SearchSpace) -> None:
    """A device whose ``input_size`` differs from the space's cannot measure that space."""
    if device.input_size is not None and device.input_size != space.input_size:
        raise SgnasError(
            f"device {device.name} profiles at input {device.input_size}, space {space.name!r} has "
            f"input {space.input_size}; choose the matching --space"
        )


def discard(spec: ModelSpec) -> None:
    """Delete the ONNX file(s) of ``spec``."""
    for path in (spec.onnx_path, spec.onnx_path_fp16):
        if path is not None:
            Path(path).unlink(missing_ok=True)


class ModelBuilder:
    """Writes the graphs of LUT entries and networks of ``space`` for ``device`` into ``folder``.

    ``seed`` fixes weights and input. With ``verify`` each graph is checked against its torch module
    once per layer shape (entries) or once (networks).
    """

    def __init__(self, device: DeviceDescriptor, space: SearchSpace | None, folder: Path,
                 seed: int = 0, verify: bool = False) -> None:
        self.device = device
        self.space = space
        self.folder = Path(folder)
        self.seed = seed
        self.verify = verify
        self.fp16 = device.precision == "fp16"
        self._checked: set[str] = set()
        self._specs: dict[str, graphs.KeySpec] | None = None

    def _space(self, what: str) -> SearchSpace:
        if self.space is None:
            raise SgnasError(f"cannot build {what} without a search space")
        return self.space

    def _save(self, ident: str, name: str, model: Any, model16: Any, shape: Sequence[int],
              module: Any) -> ModelSpec:
        stem = hashlib.sha1(ident.encode()).hexdigest()[:12]
        path = graphs.save_model(model, self.folder / f"{stem}.onnx")
        path16 = graphs.save_model(model16, self.folder / f"{stem}.fp16.onnx") if model16 else None
        return ModelSpec(path, tuple(shape), name=name, torch_factory=lambda: copy.deepcopy(module),
                         onnx_path_fp16=path16, seed=self.seed)

    def entry(self, key: str) -> ModelSpec:
        """The spec of LUT entry ``key``."""
        space = self._space(f"LUT entry {key}")
        if self._specs is None:
            self._specs = graphs.key_specs(space)
        if key not in self._specs:
            raise SgnasError(f"{key} is not a LUT key of space {space.name!r}")
        spec = self._specs[key]
        kg = graphs.key_graph(space, spec, self.device.batch_size, seed=self.seed, fp16=self.fp16)
        shape_id = spec.layer.shape_key if spec.layer is not None else key
        if self.verify and shape_id not in self._checked:
            graphs.check_against_torch(kg.module, kg.model, kg.input_shape, seed=self.seed)
            self._checked.add(shape_id)
        return self._save(f"entry:{key}", key, kg.model, kg.model_fp16, kg.input_shape, kg.module)

    def network(self, arch: Architecture, name: str = "network") -> ModelSpec:
        """The spec of the whole network of ``arch``."""
        space = self._space(f"network {name}")
        batch = self.device.batch_size
        modules, model = graphs.network_graph(space, arch, batch, seed=self.seed)
        shape = (batch, 3, space.input_size, space.input_size)
        if self.verify and "network" not in self._checked:
            graphs.check_against_torch(modules, model, shape, seed=self.seed)
            self._checked.add("network")
        model16 = (graphs.network_graph(space, arch, batch, dtype="fp16", modules=modules)[1]
                   if self.fp16 else None)
        return self._save(f"network:{arch}", name, model, model16, shape, modules)

    def onnx_file(self, path: str | os.PathLike, input_shape: Sequence[int],
                  name: str = "model") -> ModelSpec:
        """The spec of an existing ONNX model (also used as the fp16 model on fp16 devices)."""
        p = Path(path)
        return ModelSpec(p, tuple(input_shape), name=name, onnx_path_fp16=p if self.fp16 else None)


def measure_spec(device: DeviceDescriptor, spec: ModelSpec, protocol: ProtocolConfig | None = None,
                 cache_dir: Path | None = None) -> Measurement:
    """Open one runner of ``device``'s backend for ``spec``, measure it with ``protocol`` (default:
    the device's) and close it."""
    return measure_spec_info(device, spec, protocol, cache_dir)[0]


#: ``Runner.info`` keys that name one entry's temporary files, not how the device runs.
_PER_ENTRY_INFO = ("onnx",)


def runner_provenance(info: dict) -> dict:
    """The part of a runner's ``info`` recorded as ``environment["runner"]`` of a LUT."""
    return {k: v for k, v in info.items() if k not in _PER_ENTRY_INFO}


def measure_spec_info(
    device: DeviceDescriptor,
    spec: ModelSpec,
    protocol: ProtocolConfig | None = None,
    cache_dir: Path | None = None,
) -> tuple[Measurement, dict]:
    """:func:`measure_spec` plus the runner's provenance (how it actually ran: precision, API)."""
    with make_runner(device, spec, cache_dir=cache_dir) as runner:
        m = measure(runner, protocol if protocol is not None else device.protocol)
        return m, runner_provenance(runner.info)


class Measurer:
    """Measures LUT entries, networks and ONNX files on ``device``, one live runner at a time.

    Graphs go to ``folder`` (default: a temporary folder removed by :meth:`close`); only the last
    model's files are kept, so measuring it again reuses them. Use it as a context manager.
    """

    def __init__(self, device: DeviceDescriptor, space: SearchSpace | None = None, *,
                 protocol: ProtocolConfig | None = None, seed: int = 0, verify: bool = False,
                 cache_dir: str | os.PathLike | None = None,
                 folder: str | os.PathLike | None = None, prefix: str = "sgnas-measure-") -> None:
        self.device = device
        self.space = space
        self.protocol = protocol if protocol is not None else device.protocol
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        #: Provenance of the last runner (how it actually ran), for the LUT's environment.
        self.runner_info: dict = {}
        self._tmp = None if folder is not None else tempfile.TemporaryDirectory(prefix=prefix)
        root = Path(folder) if folder is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        root.mkdir(parents=True, exist_ok=True)
        self.builder = ModelBuilder(device, space, root, seed=seed, verify=verify)
        self._current: tuple[str, ModelSpec] | None = None
        self._pinned: set[str] = set()

    def __enter__(self: M) -> M:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete the graphs written so far."""
        self._discard()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _discard(self) -> None:
        if self._current is not None and self._current[0] not in self._pinned:
            discard(self._current[1])
        self._current = None

    def _cached(self, ident: str, build: Any) -> ModelSpec:
        if self._current is not None and self._current[0] == ident:
            return self._current[1]
        self._discard()
        spec = build()
        self._current = (ident, spec)
        return spec

    def entry_spec(self, key: str, keep: bool = False) -> ModelSpec:
        """The spec of LUT entry ``key``; with ``keep`` its files stay until :meth:`close` (for a
        canary runner activated repeatedly)."""
        if keep:
            self._pinned.add(f"entry:{key}")
            return self.builder.entry(key)
        return self._cached(f"entry:{key}", lambda: self.builder.entry(key))

    def network_spec(self, arch: Architecture, name: str = "network") -> ModelSpec:
        """The spec of the whole network of ``arch``."""
        return self._cached(f"network:{name}:{arch}", lambda: self.builder.network(arch, name))

    def file_spec(self, path: str | os.PathLike, input_shape: Sequence[int],
                  name: str = "model") -> ModelSpec:
        """The spec of an existing ONNX file."""
        return self.builder.onnx_file(path, input_shape, name)

    def measure(self, spec: ModelSpec) -> Measurement:
        """Measure ``spec`` with this measurer's device, protocol and engine cache; the runner's
        provenance is kept in :attr:`runner_info`."""
        m, self.runner_info = measure_spec_info(self.device, spec, self.protocol, self.cache_dir)
        return m

    def entry(self, key: str) -> Measurement:
        """Measure LUT entry ``key``."""
        return self.measure(self.entry_spec(key))

    def network(self, arch: Architecture, name: str = "network") -> Measurement:
        """Measure the whole network of ``arch``."""
        return self.measure(self.network_spec(arch, name))


def lut_device(lut: Lut) -> DeviceDescriptor:
    """The device a LUT was measured on: its recorded descriptor, else the named one."""
    try:
        return device_from_dict(dict(lut.device), where=f"device of LUT {lut.path}")
    except SgnasError:
        return load_device(lut.device_name)


def measure_networks(device: DeviceDescriptor, space: SearchSpace, archs: Sequence[Architecture],
                     force: bool = False, seed: int = 0) -> list[Measurement]:
    """Measure each network of ``archs`` end to end on ``device`` (checked against this host
    first, ``force`` overrides a GPU model mismatch)."""
    check_host(device, force=force)
    check_device_space(device, space)
    with Measurer(device, space, seed=seed) as m:
        return [m.network(arch, f"net{i}") for i, arch in enumerate(archs)]


def measure_lut_networks(space: SearchSpace, lut: Lut, archs: Sequence[Architecture],
                         force: bool = False) -> list[float]:
    """Median latency (ms) of each network on this host, on the device ``lut`` was measured on."""
    return [m.median_ms for m in measure_networks(lut_device(lut), space, archs, force=force)]


__all__ = ["Measurer", "ModelBuilder", "check_device_space", "discard", "lut_device",
           "measure_lut_networks", "measure_networks", "measure_spec"]
