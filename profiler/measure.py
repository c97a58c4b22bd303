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

State-normalized measuring (every backend): give :class:`Measurer` a :class:`Reference` and each
model is timed in alternating short chunks with that reference model of the same runtime, kept live
(:func:`profiler.interleave.interleave`; both sessions with spinning off). The result is the median
ratio model / reference times the reference's latency in a *reference state*: the fixed
``state_ms`` of the LUT or baseline being compared with, or (building a LUT) the running median of
the reference over the build (:class:`~profiler.interleave.ReferenceState`), re-stated at the end.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Sequence, TypeVar

from sgnas.errors import MissingDependencyError, SgnasError, first_line
from sgnas.lut import Lut
from sgnas.space import Architecture, SearchSpace

from . import graphs
from .backends.base import ModelSpec, make_runner
from .devices import DeviceDescriptor, check_host, device_from_dict, load_device
from .interleave import (InterleaveConfig, Interleaved, ReferenceState, interleave, quiet,
                         reference_architecture, reference_key)
from .protocol import Measurement, ProtocolConfig, measure

#: Interleaving of LUT entries: short chunks (a build times hundreds of entries); a noisy entry
#: gets at most 12 pairs (past 12, six more pairs shrink its median's error by under a fifth).
ENTRY_INTERLEAVE = InterleaveConfig(chunk_ms=8.0, min_chunk_iters=3, pairs=6, max_pairs=12,
                                    warmup_ms=16.0, max_spread=0.03)
#: Interleaving of whole networks and ONNX models: at least 3 inferences a chunk, each chunk
#: summed up by its fastest inference (an inference of milliseconds is often cut by the
#: scheduler on a loaded machine, a short block rarely; measured: docs/RESULTS.md).
NETWORK_INTERLEAVE = InterleaveConfig(chunk_ms=30.0, min_chunk_iters=3, pairs=8, max_pairs=24,
                                      warmup_ms=60.0, max_spread=0.02, statistic="min")
#: A model timed against another version of itself (``sgnas check`` of a baseline that keeps its
#: model): as :data:`NETWORK_INTERLEAVE`, the order of the two alternating from round to round.
PAIRED_INTERLEAVE = replace(NETWORK_INTERLEAVE, alternate=True)


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


@dataclass(frozen=True)
class Reference:
    """The reference model others are timed against: a LUT key (``kind="block"``) or a whole
    network (``kind="network"``, ``model`` is the architecture string) of search space ``space``,
    or an ONNX file (``kind="file"``, ``model`` is its path, ``input_shape`` its input).

    Its :attr:`name` (``space:kind:model``) is what LUTs and baselines record.
    """

    space: str
    kind: str
    model: str
    input_shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("block", "network", "file"):
            raise SgnasError(f"reference kind must be block, network or file, not {self.kind!r}")
        if self.kind == "file" and not self.input_shape:
            raise SgnasError(f"reference file {self.model} needs its input shape")

    @property
    def name(self) -> str:
        return f"{self.space}:{self.kind}:{self.model}"

    @classmethod
    def block(cls, space: SearchSpace, key: str | None = None) -> "Reference":
        """The space's reference block (:func:`profiler.interleave.reference_key`) or ``key``."""
        return cls(space.name, "block", key or reference_key(space))

    @classmethod
    def network(cls, space: SearchSpace) -> "Reference":
        """The space's mid-range reference network (:func:`reference_architecture`)."""
        return cls(space.name, "network", str(reference_architecture(space)))

    @classmethod
    def file(cls, path: str | os.PathLike, input_shape: Sequence[int]) -> "Reference":
        """An ONNX model file as the reference (a paired comparison with that model)."""
        return cls("onnx", "file", str(path), tuple(int(x) for x in input_shape))

    @classmethod
    def from_name(cls, name: str) -> "Reference":
        """Parse :attr:`name` of a block or network reference; :class:`SgnasError` when it is
        not one."""
        parts = str(name).split(":", 2)
        if len(parts) != 3 or parts[1] == "file":
            raise SgnasError(f"reference {name!r} is not of the form space:kind:model")
        return cls(parts[0], parts[1], parts[2])

    def spec(self, builder: "ModelBuilder") -> ModelSpec:
        """Build this reference's graph with ``builder`` (a builder of :attr:`space`)."""
        from sgnas.space import get_space, load_architecture

        if self.kind == "file":
            return builder.onnx_file(self.model, self.input_shape, "reference")
        if self.kind == "block":
            return builder.entry(self.model)
        return builder.network(get_space(self.space).validate(load_architecture(self.model)),
                               "reference")


def for_onnx(device: DeviceDescriptor) -> Reference:
    """The reference of ONNX model checks: the mid-range CIFAR-10 network (the ImageNet one on a
    device that profiles at 224 pixels)."""
    from sgnas.space import get_space

    name = "imagenet" if device.input_size == 224 else "cifar10"
    return Reference.network(get_space(name))


def normalized_measurement(result: Interleaved, state_ms: float) -> Measurement:
    """A :class:`Measurement` of an interleaved timing, stated in the reference state ``state_ms``."""
    import numpy as np

    r = np.asarray(result.ratios, dtype=np.float64)
    return Measurement(
        median_ms=result.ratio * state_ms, p10_ms=result.ratio_p10 * state_ms,
        p90_ms=result.ratio_p90 * state_ms, n=result.n * result.entry_iters,
        spread=result.ratio_spread, round_medians=(r * state_ms).tolist(), noisy=result.noisy,
        cov=float(r.std() / r.mean()) if r.mean() > 0 else 0.0,
        mean_ms=float(r.mean()) * state_ms, min_ms=float(r.min()) * state_ms,
        ratio=result.ratio, reference_ms=result.reference_median_ms, pairs=result.n)


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

    def _cells(self, space: Any) -> bool:
        return space.profiling_plan().kind == "cells"

    def entry(self, key: str) -> ModelSpec:
        """The spec of LUT entry ``key`` (of a cell space: a measured piece,
        :func:`profiler.cell_graphs.piece_specs`)."""
        space = self._space(f"LUT entry {key}")
        if self._cells(space):
            return self._piece(space, key)
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

    def _piece(self, space: Any, key: str) -> ModelSpec:
        from . import cell_graphs

        pieces = cell_graphs.piece_specs(space)
        if key not in pieces:
            raise SgnasError(f"{key} is not a measured piece of cell space {space.name!r}")
        p = pieces[key]
        module = cell_graphs.piece_module(space, p, self.seed)
        model = cell_graphs.piece_graph(space, p, module)
        if self.verify and key not in self._checked:
            graphs.check_against_torch(module, model, p.input_shape, seed=self.seed)
            self._checked.add(key)
        return self._save(f"entry:{key}", key, model, None, p.input_shape, module)

    def _cell_network(self, space: Any, arch: Any, name: str) -> ModelSpec:
        from . import cell_graphs

        net = cell_graphs.network_module(space, arch, self.seed)
        model = cell_graphs.network_graph(space, net)
        shape = (1, 3, space.input_size, space.input_size)
        if self.verify and "network" not in self._checked:
            graphs.check_against_torch(net, model, shape, seed=self.seed)
            self._checked.add("network")
        return self._save(f"network:{arch}", name, model, None, shape, net)

    def network(self, arch: Architecture, name: str = "network") -> ModelSpec:
        """The spec of the whole network of ``arch``."""
        space = self._space(f"network {name}")
        if self._cells(space):
            return self._cell_network(space, arch, name)
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


@dataclass(frozen=True)
class MeasurerConfig:
    """How a :class:`Measurer` measures (every field optional).

    ``protocol`` overrides the device's timing protocol; ``seed`` draws graph weights and inputs;
    ``verify`` checks each new graph against torch; ``cache_dir`` keeps engines between runs;
    ``folder`` / ``prefix`` place the graphs (default: a temporary folder). With ``reference``
    every model is timed interleaved with it and stated in ``state_ms`` (else in the running
    median of ``state``, a fresh :class:`~profiler.interleave.ReferenceState` by default);
    ``network_reference`` / ``network_state_ms`` do the same for whole networks and ONNX files.
    ``entry_interleave`` / ``network_interleave`` default to :data:`ENTRY_INTERLEAVE` /
    :data:`NETWORK_INTERLEAVE`.
    """

    protocol: ProtocolConfig | None = None
    seed: int = 0
    verify: bool = False
    cache_dir: str | os.PathLike | None = None
    folder: str | os.PathLike | None = None
    prefix: str = "sgnas-measure-"
    reference: "Reference | None" = None
    state: ReferenceState | None = None
    state_ms: float | None = None
    entry_interleave: InterleaveConfig | None = None
    network_interleave: InterleaveConfig | None = None
    network_reference: "Reference | None" = None
    network_state_ms: float | None = None


class Measurer:
    """Measures LUT entries, networks and ONNX files on ``device``, one live runner at a time,
    as ``config`` (a :class:`MeasurerConfig`) says; keywords override its fields
    (``Measurer(device, space, seed=1, verify=True)``).

    Graphs go to ``folder`` (default: a temporary folder removed by :meth:`close`); only the last
    model's files are kept, so measuring it again reuses them. Use it as a context manager.

    With ``reference`` every model is timed interleaved with that reference model, kept live until
    :meth:`close` (module docstring): results are stated in ``state_ms`` when given (the reference
    state of the LUT or baseline compared with), else in the running median of :attr:`state`.
    A reference that fails to build or run raises :class:`SgnasError` before anything is measured.
    """

    def __init__(self, device: DeviceDescriptor, space: Any = None,
                 config: "MeasurerConfig | None" = None, **overrides: Any) -> None:
        cfg = config if config is not None else MeasurerConfig()
        if overrides:  # the keyword form: each keyword is a MeasurerConfig field
            known = {f.name for f in fields(MeasurerConfig)}
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise TypeError(f"Measurer got unknown keyword(s) {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(known))}")
            cfg = replace(cfg, **overrides)
        #: How this measurer measures (:class:`MeasurerConfig`).
        self.config = cfg
        protocol, seed, verify, cache_dir = cfg.protocol, cfg.seed, cfg.verify, cfg.cache_dir
        folder, prefix, reference, state = cfg.folder, cfg.prefix, cfg.reference, cfg.state
        state_ms, entry_interleave = cfg.state_ms, cfg.entry_interleave
        network_interleave, network_reference = cfg.network_interleave, cfg.network_reference
        network_state_ms = cfg.network_state_ms
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
        self.reference = reference
        self.entry_interleave = entry_interleave or ENTRY_INTERLEAVE
        self.network_interleave = network_interleave or NETWORK_INTERLEAVE
        if state_ms is not None and not state_ms > 0:
            raise SgnasError(f"reference state must be positive, got {state_ms}")
        self.state_ms = state_ms
        #: The reference's latency over this measurer's life (the machine-state record).
        self.state: ReferenceState | None = None
        if reference is not None:
            self.state = state if state is not None else ReferenceState(model=reference.name)
        #: The last interleaved timing (normalized measuring only).
        self.last: Interleaved | None = None
        self._ref_runner: Any = None
        self._ref_root = root / "reference"
        #: Whole networks and ONNX models may have a reference of their own (a whole network,
        #: as long per inference as they are), stated in ``network_state_ms``.
        if network_reference is not None and not (network_state_ms or 0) > 0:
            raise SgnasError("a network reference needs its reference state (network_state_ms)")
        self.network_reference = network_reference
        self.network_state_ms = network_state_ms
        self.network_state: ReferenceState | None = (
            ReferenceState(model=network_reference.name, kind="network")
            if network_reference is not None else None)
        self._net_runner: Any = None
        #: Models measured so far (numbers the machine-state record's samples).
        self.count = 0

    def __enter__(self: M) -> M:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def normalized(self) -> bool:
        """Whether results are stated relative to a live reference."""
        return self.reference is not None

    def close(self) -> None:
        """Close the reference and delete the graphs written so far."""
        try:
            for attr in ("_net_runner", "_ref_runner"):
                runner = getattr(self, attr)
                if runner is not None:
                    setattr(self, attr, None)
                    runner.deactivate()
        finally:
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

    def network_spec(self, arch: Any, name: str = "network") -> ModelSpec:
        """The spec of the whole network of ``arch``."""
        return self._cached(f"network:{name}:{arch}", lambda: self.builder.network(arch, name))

    def file_spec(self, path: str | os.PathLike, input_shape: Sequence[int],
                  name: str = "model") -> ModelSpec:
        """The spec of an existing ONNX file."""
        return self.builder.onnx_file(path, input_shape, name)

    # ------------------------------------------------------------ the reference
    def open_reference(self) -> Any:
        """Build, activate and test-run the reference (once); its live runner.

        Any failure is a one-line :class:`SgnasError` naming the reference.
        """
        if self._ref_runner is None:
            if self.reference is None:
                raise SgnasError("this measurer has no reference")
            self._ref_runner = self._open(self.reference, self._ref_root)
        return self._ref_runner

    def open_network_reference(self) -> Any:
        """The live runner of the network reference (opened once; as :meth:`open_reference`)."""
        self.open_reference()
        if self._net_runner is None:
            if self.network_reference is None:
                raise SgnasError("this measurer has no network reference")
            self._net_runner = self._open(self.network_reference, self._ref_root / "network")
        return self._net_runner

    def _open(self, ref: Reference, root: Path) -> Any:
        from sgnas.space import get_space

        runner = None
        try:
            space = (self.space if ref.kind == "file" or (self.space is not None
                                                           and self.space.name == ref.space)
                     else get_space(ref.space))
            builder = ModelBuilder(self.device, space, root, seed=self.builder.seed)
            runner = quiet(make_runner(self.device, ref.spec(builder), cache_dir=self.cache_dir))
            runner.activate()
            lat = runner.time_iterations(2)
            if not all(x > 0 for x in lat):
                raise SgnasError(f"it reported non-positive latencies {list(lat)}")
        except Exception as exc:
            if runner is not None:
                runner.deactivate()
            if isinstance(exc, MissingDependencyError):
                raise
            raise SgnasError(f"reference model {ref.name} failed to build or run on device "
                             f"{self.device.name}: {first_line(exc)}") from exc
        return runner

    def current_state_ms(self) -> float:
        """The reference state results are stated in (fixed, or the running median)."""
        if self.state_ms is not None:
            return float(self.state_ms)
        if self.state is None or not self.state.samples:
            raise SgnasError("no reference state yet")
        return self.state.state_ms

    def probe(self, what: str = "", chain: int | None = None) -> dict:
        """The machine-speed probe (:mod:`profiler.probe`) timed interleaved with the live reference.

        ``chain`` matmuls per probe iteration; by default as many as make one iteration about as
        long as one inference of the reference (on a loaded CPU a long iteration is cut by the
        scheduler and a short one mostly is not, so probe and reference must be alike in length).
        Returns the probe's record: its absolute latency ``ms`` (the machine's speed), its settings
        and ``reference_ratio`` = reference / probe in the same machine state (the runtime's speed
        relative to the machine's). A failure is a one-line :class:`SgnasError`.
        """
        import numpy as np

        from .probe import ProbeTimer

        ref = self.open_reference()
        try:
            if chain is None:
                one = float(np.median(ProbeTimer(chain=1).time_iterations(20)))
                ref_ms = float(np.median(ref.time_iterations(20)))
                chain = int(min(max(round(ref_ms / one), 1), 400)) if one > 0 else 40
            timer = ProbeTimer(chain=chain)
            result = interleave(timer, ref, self.network_interleave)
        except SgnasError:
            raise
        except Exception as exc:
            raise SgnasError(f"the machine-speed probe failed to run{what}: {first_line(exc)}") from exc
        return {"ms": result.entry_median_ms, "spread": result.ratio_spread, "size": timer.size,
                "chain": timer.chain, "reference_ratio": 1.0 / result.ratio,
                "reference_ms": result.reference_median_ms, "pairs": result.n}

    # ------------------------------------------------------------ measuring
    def measure(self, spec: ModelSpec, kind: str = "model", record: bool = True) -> Measurement:
        """Measure ``spec`` with this measurer's device, protocol and engine cache (interleaved
        with the reference when there is one; ``kind`` ``"entry"`` uses the short entry chunks);
        the runner's provenance is kept in :attr:`runner_info`. ``record=False`` leaves the
        reference's latency out of the machine-state record."""
        if self.reference is None:
            m, self.runner_info = measure_spec_info(self.device, spec, self.protocol,
                                                    self.cache_dir)
            return m
        own = kind != "entry" and self.network_reference is not None
        ref = self.open_network_reference() if own else self.open_reference()
        cfg = self.entry_interleave if kind == "entry" else self.network_interleave
        with quiet(make_runner(self.device, spec, cache_dir=self.cache_dir)) as runner:
            result = interleave(runner, ref, cfg)
            self.runner_info = runner_provenance(runner.info)
        state = self.network_state if own else self.state
        assert state is not None
        if record:
            state.add(result, self.count)
            self.count += 1
        self.last = result
        if own:
            return normalized_measurement(result, float(self.network_state_ms or 0))
        return normalized_measurement(result, self.current_state_ms())

    def entry(self, key: str) -> Measurement:
        """Measure LUT entry ``key``."""
        return self.measure(self.entry_spec(key), "entry")

    def network(self, arch: Any, name: str = "network") -> Measurement:
        """Measure the whole network of ``arch``."""
        return self.measure(self.network_spec(arch, name), "network")


def lut_reference(lut: Lut) -> tuple[Reference | None, float | None]:
    """The reference and reference state a normalized LUT was measured in; ``(None, None)`` for a
    LUT of the older, unnormalized protocol."""
    ref = lut.reference or {}
    if not ref.get("model") or not ref.get("state_ms"):
        return None, None
    return Reference.from_name(str(ref["model"])), float(ref["state_ms"])


def lut_network_reference(lut: Lut) -> tuple[Reference | None, float | None]:
    """The whole-network reference of a normalized LUT and its latency in the LUT's reference
    state (its recorded ratio to the reference block x the block's state), or ``(None, None)``."""
    net = (lut.reference or {}).get("network") or {}
    _, state_ms = lut_reference(lut)
    if not net.get("model") or not net.get("ratio") or state_ms is None:
        return None, None
    return Reference.from_name(str(net["model"])), float(net["ratio"]) * state_ms


def lut_measurer_args(lut: Lut) -> dict:
    """The :class:`Measurer` keywords that state measurements in ``lut``'s reference state."""
    reference, state_ms = lut_reference(lut)
    net, net_ms = lut_network_reference(lut)
    return {"reference": reference, "state_ms": state_ms, "network_reference": net,
            "network_state_ms": net_ms}


def lut_device(lut: Lut) -> DeviceDescriptor:
    """The device a LUT was measured on: its recorded descriptor, else the named one."""
    try:
        return device_from_dict(dict(lut.device), where=f"device of LUT {lut.path}")
    except SgnasError:
        return load_device(lut.device_name)


def measure_networks(device: DeviceDescriptor, space: SearchSpace, archs: Sequence[Architecture],
                     force: bool = False, seed: int = 0, lut: Lut | None = None
                     ) -> list[Measurement]:
    """Measure each network of ``archs`` end to end on ``device`` (checked against this host
    first, ``force`` overrides a GPU model mismatch). With a normalized ``lut`` each network is
    timed against the LUT's reference and stated in the LUT's reference state."""
    check_host(device, force=force)
    check_device_space(device, space)
    kw = lut_measurer_args(lut) if lut is not None else {}
    seed = int((lut.build or {}).get("seed", seed)) if lut is not None else seed
    with Measurer(device, space, seed=seed, **kw) as m:
        return [m.network(arch, f"net{i}") for i, arch in enumerate(archs)]


def measure_lut_networks(space: SearchSpace, lut: Lut, archs: Sequence[Architecture],
                         force: bool = False) -> list[float]:
    """Latency (ms) of each network on this host, on the device ``lut`` was measured on, stated
    in the LUT's reference state when it is normalized (comparable with its predictions)."""
    return [m.median_ms for m in measure_networks(lut_device(lut), space, archs, force=force,
                                                  lut=lut)]


__all__ = ["ENTRY_INTERLEAVE", "NETWORK_INTERLEAVE", "PAIRED_INTERLEAVE", "Measurer", "ModelBuilder", "Reference",
           "check_device_space", "discard", "for_onnx", "lut_device", "lut_measurer_args",
           "lut_network_reference", "lut_reference",
           "measure_lut_networks", "measure_networks", "measure_spec", "normalized_measurement"]
