"""TensorRT 10/11 on an NVIDIA GPU.

Up front: the GPU's compute capability, the TensorRT version and the CUDA major of the TensorRT wheel
and of the CUDA binding are checked against :mod:`.support` (e.g. a V100 needs TensorRT 10.0-10.4 on
CUDA 12); anything outside it is refused with one line naming what to install.

Build: a strongly typed network (``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` on 10.x, the only
mode on 11.x), so precision comes from the graph on both: fp16 devices build the half-precision ONNX
(``ModelSpec.onnx_path_fp16``) and never set the deprecated ``BuilderFlag.FP16``; fp32 clears
``BuilderFlag.TF32`` (on by default), tf32 sets it. Then the ONNX parser, a workspace pool limit, an
optimization profile pinned to the model's shape for inputs with dynamic dimensions, and a persistent
timing cache per GPU and TensorRT version (``<cache_dir>/timing-<gpu>-trt<version>.cache``; a
mismatching or corrupt one is replaced, with a warning; saved atomically after each build). What was
built is recorded in ``info`` (``precision_built``, ``strongly_typed``, ``tf32``).

Run: the private non-blocking stream is created first; one device buffer per I/O tensor, sized from
the engine's shapes (an engine whose input shape differs from the model's is refused), the input
copied on that stream and synchronized, ``set_tensor_address`` for each, ``execute_async_v3`` on the
stream. Every TensorRT call that reports failure (bool or None) is checked. With ``cuda_graphs`` one
enqueue is captured (thread-local mode) after a first plain enqueue (TensorRT needs one before
capture); if capture fails or the binding cannot capture, plain enqueues are timed and ``info`` says
why. Per-iteration latencies come from CUDA events around each launch; no host-device copies are in
the timed region. Resources are freed one by one, each even if an earlier one fails.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from sgnas.errors import SgnasError, require
from sgnas.fileio import atomic_write_bytes

from .base import ModelSpec, Runner, register_backend, try_capture
from .cuda_api import CudaApi, select_cuda_api
from .support import cc_of_model, check_tensorrt, trt_extra

log = logging.getLogger(__name__)

_NP_TYPES = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT32": np.int32,
    "INT64": np.int64,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "BOOL": np.bool_,
}


def trt_major(version: str) -> int:
    """Major version of a TensorRT version string (``"10.9.0.34"`` -> 10)."""
    m = re.match(r"\s*(\d+)", str(version))
    if not m:
        raise SgnasError(f"cannot parse the TensorRT version {version!r}")
    return int(m.group(1))


def slug(text: str) -> str:
    """File-name-safe lower-case form of a GPU name (``"NVIDIA H100 80GB HBM3"`` -> ``nvidia-h100-80gb-hbm3``)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "gpu"


#: Distributions whose presence tells the CUDA major a TensorRT wheel was built for.
_WHEEL_CUDA = {13: ("tensorrt-cu13", "tensorrt_cu13", "tensorrt-cu13-libs", "tensorrt_cu13_libs"),
               12: ("tensorrt-cu12", "tensorrt_cu12", "tensorrt-cu12-libs", "tensorrt_cu12_libs")}


def wheel_cuda_major(trt_major_version: int) -> int | None:
    """CUDA major of the installed TensorRT wheel (from package metadata; 13 for TensorRT 11)."""
    from importlib import metadata

    for cuda, dists in _WHEEL_CUDA.items():
        for dist in dists:
            try:
                metadata.version(dist)
                return cuda
            except metadata.PackageNotFoundError:
                continue
    return 13 if trt_major_version >= 11 else None


#: Precision label recorded in ``info["precision_built"]``.
BUILT = {"fp16": "fp16 (strongly typed, half-precision graph)", "fp32": "fp32 (strongly typed, TF32 off)",
         "tf32": "tf32 (strongly typed, fp32 graph, TF32 on)"}


class TensorRTRunner(Runner):
    """TensorRT engine runner; ``cuda`` selects the CUDA binding (default: :func:`select_cuda_api`)."""

    backend = "tensorrt"

    def __init__(self, device, model: ModelSpec, cache_dir: Path | None = None,
                 cuda: CudaApi | None = None) -> None:
        super().__init__(device, model)
        if device.kind != "gpu":
            raise SgnasError(f"device {device.name}: the tensorrt backend needs a gpu device")
        self.trt = require("tensorrt", trt_extra(device.gpu_model))
        self.version = str(getattr(self.trt, "__version__", "0"))
        self.major = trt_major(self.version)
        if self.major < 10:
            raise SgnasError(f"TensorRT {self.version} is too old: sgnas needs TensorRT 10 or newer")
        self.wheel_cuda = wheel_cuda_major(self.major)
        cc = cc_of_model(device.gpu_model)
        if cc is not None:  # the descriptor names the GPU: refuse before touching it
            check_tensorrt(cc, self.version, device.precision, f"device {device.name}",
                           trt_cuda=self.wheel_cuda)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.cuda = cuda
        self._reset()

    def _reset(self) -> None:
        self._logger = None
        self._runtime = None
        self._engine = None
        self._context = None
        self._stream = None
        self._stream_handle = 0
        self._graph = None
        self._buffers: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self._outputs: list[tuple[str, tuple[int, ...], np.dtype]] = []
        self._events: list[tuple[Any, Any]] = []

    def _checked(self, ok: Any, call: str) -> Any:
        """``ok`` unless it is False/None (TensorRT's failure returns): then a one-line error."""
        if ok is None or ok is False:
            raise SgnasError(f"TensorRT {call} failed for model {self.model.name} (see the log above)")
        return ok

    # ---------------------------------------------------------------- build
    def onnx_file(self) -> Path:
        """The ONNX graph to build: the half-precision one for fp16, else the fp32 one."""
        if self.device.precision == "fp16":
            if self.model.onnx_path_fp16 is None:
                raise SgnasError(
                    f"device {self.device.name}: fp16 builds a strongly typed network from a "
                    "half-precision ONNX (ModelSpec.onnx_path_fp16), which this model lacks"
                )
            return self.model.require_onnx(self.backend, fp16=True)
        return self.model.require_onnx(self.backend)

    def network_flags(self) -> int:
        """``create_network`` flags: strongly typed (explicit on 10.x, the only mode on 11.x)."""
        if self.major >= 11:
            return 0
        flag = getattr(self.trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if flag is None:
            raise SgnasError(f"TensorRT {self.version} has no strongly typed networks; "
                             "install TensorRT 10.0 or newer")
        return 1 << int(flag)

    def timing_cache_path(self, gpu_name: str) -> Path | None:
        """``<cache_dir>/timing-<gpu>-trt<version>.cache``, or None without a cache folder."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"timing-{slug(gpu_name)}-trt{self.version}.cache"

    def _new_cache(self, config: Any, data: bytes) -> Any:
        try:
            cache = config.create_timing_cache(data)
        except Exception as exc:  # a corrupt blob raises in some releases, returns None in others
            log.debug("create_timing_cache raised %s", exc)
            cache = None
        return cache

    def _set_timing_cache(self, config: Any, path: Path | None) -> bool:
        """Attach the timing cache stored at ``path`` (a new one when absent, corrupt or mismatching).

        True if the stored one was used.
        """
        data = path.read_bytes() if path is not None and path.is_file() else b""
        cache = self._new_cache(config, data) if data else None
        if data and cache is None:
            log.warning("timing cache %s is corrupt; building a new one", path)
        if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
            return True
        if cache is not None:
            log.warning("timing cache %s does not match this GPU or TensorRT; starting a new one", path)
        fresh = self._checked(self._new_cache(config, b""), "IBuilderConfig.create_timing_cache")
        self._checked(config.set_timing_cache(fresh, ignore_mismatch=False),
                      "IBuilderConfig.set_timing_cache")
        return False

    def _set_precision(self, config: Any) -> bool:
        """Clear (fp32) or set (tf32) ``BuilderFlag.TF32``; fp16 leaves it alone. Returns TF32 state."""
        trt, precision = self.trt, self.device.precision
        flag = getattr(trt.BuilderFlag, "TF32", None)
        if flag is None:
            if precision == "tf32":
                raise SgnasError(f"TensorRT {self.version} has no BuilderFlag.TF32")
            return False
        if precision == "fp32":
            config.clear_flag(flag)
        elif precision == "tf32":
            config.set_flag(flag)
        return bool(config.get_flag(flag))

    def _add_profile(self, builder: Any, network: Any, config: Any) -> bool:
        """Pin inputs with dynamic dimensions to the model's shape; True if a profile was added."""
        dynamic = []
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            if any(int(d) < 0 for d in tuple(tensor.shape)):
                dynamic.append(tensor)
        if not dynamic:
            return False
        shape = self.model.input_shape
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            dims = tuple(int(d) for d in tuple(tensor.shape))
            if len(dims) != len(shape) or any(d >= 0 and d != s for d, s in zip(dims, shape)):
                raise SgnasError(f"model {self.model.name}: input {tensor.name} has shape {dims}, "
                                 f"which does not admit the model's input shape {shape}")
            profile.set_shape(tensor.name, shape, shape, shape)
        if config.add_optimization_profile(profile) < 0:
            raise SgnasError(f"TensorRT IBuilderConfig.add_optimization_profile failed for model "
                             f"{self.model.name}")
        return True

    def build(self, gpu_name: str) -> Any:
        """Parse the ONNX file and build a serialized engine (saving the timing cache)."""
        trt = self.trt
        logger = self._logger = trt.Logger(trt.Logger.WARNING)
        builder = self._checked(trt.Builder(logger), "Builder")
        network = self._checked(builder.create_network(self.network_flags()), "create_network")
        parser = trt.OnnxParser(network, logger)
        path = self.onnx_file()
        if not parser.parse_from_file(str(path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise SgnasError(f"TensorRT cannot parse {path}: {'; '.join(errors) or 'unknown error'}")
        config = self._checked(builder.create_builder_config(), "create_builder_config")
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.device.workspace_mb) << 20)
        tf32 = self._set_precision(config)
        profile = self._add_profile(builder, network, config)
        cache_path = self.timing_cache_path(gpu_name)
        cache_hit = self._set_timing_cache(config, cache_path) if cache_path is not None else False
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise SgnasError(f"TensorRT failed to build an engine from {path} (see the log above)")
        if cache_path is not None:
            atomic_write_bytes(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
        self.info.update(onnx=str(path), timing_cache=str(cache_path) if cache_path else None,
                         timing_cache_hit=cache_hit, precision_built=BUILT[self.device.precision],
                         strongly_typed=True, tf32=tf32, optimization_profile=profile)
        return serialized

    # ---------------------------------------------------------------- run
    def _np_dtype(self, trt_dtype: Any) -> np.dtype:
        nptype = getattr(self.trt, "nptype", None)
        if nptype is not None:
            try:
                return np.dtype(nptype(trt_dtype))
            except (TypeError, KeyError):
                pass
        name = getattr(trt_dtype, "name", str(trt_dtype)).split(".")[-1].upper()
        if name not in _NP_TYPES:
            raise SgnasError(f"unsupported TensorRT I/O dtype {name}")
        return np.dtype(_NP_TYPES[name])

    def _enqueue(self) -> None:
        if not self._context.execute_async_v3(self._stream_handle):
            raise SgnasError(f"TensorRT execute_async_v3 failed for {self.model.name}")

    def _launch(self) -> None:
        if self._graph is not None:
            self.cuda.graph_launch(self._graph, self._stream)
        else:
            self._enqueue()

    def activate_impl(self) -> None:
        try:
            self._activate()
        except BaseException:
            self._release()
            raise

    def _check_support(self, cuda: CudaApi) -> None:
        binding = cuda.runtime_major() if cuda.name == "cuda-python" else None
        check_tensorrt(cuda.compute_capability(), self.version, self.device.precision,
                       f"device {self.device.name}", trt_cuda=self.wheel_cuda, binding_cuda=binding)

    def _activate(self) -> None:
        trt = self.trt
        if self.cuda is None:
            self.cuda = select_cuda_api()
        cuda = self.cuda
        self._check_support(cuda)  # before anything is built
        gpu_name = cuda.device_name()
        self._stream = cuda.stream_create()  # every copy and launch is ordered on this stream
        self._stream_handle = cuda.stream_handle(self._stream)
        serialized = self.build(gpu_name)
        self._runtime = self._checked(trt.Runtime(self._logger), "Runtime")
        self._engine = self._checked(self._runtime.deserialize_cuda_engine(serialized),
                                     "deserialize_cuda_engine")
        engine = self._engine
        context = self._context = self._checked(engine.create_execution_context(),
                                                "create_execution_context")

        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1:
            raise SgnasError(f"model {self.model.name}: expected 1 input, the engine has {len(inputs)}")
        for name in inputs:
            shape = self._input_shape(name)
            dtype = self._np_dtype(engine.get_tensor_dtype(name))
            ptr = self._alloc(name, shape, dtype)
            self._copy_input(name, ptr, self.model.make_input(dtype))
            self._checked(context.set_tensor_address(name, ptr), f"set_tensor_address({name})")
        for name in outputs:
            shape = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise SgnasError(f"model {self.model.name}: output {name} has unresolved shape {shape}")
            dtype = self._np_dtype(engine.get_tensor_dtype(name))
            ptr = self._alloc(name, shape, dtype)
            self._checked(context.set_tensor_address(name, ptr), f"set_tensor_address({name})")
            self._outputs.append((name, shape, dtype))

        self._enqueue()  # TensorRT needs one enqueue before capture; also loads kernels
        cuda.stream_synchronize(self._stream)
        reason = None
        if self.device.cuda_graphs:
            if cuda.supports_capture:
                self._graph, reason = try_capture(self._capture)
            else:
                reason = f"the {cuda.name} binding here cannot capture CUDA graphs"
        self.info.update(tensorrt=self.version, tensorrt_cuda=self.wheel_cuda, gpu=gpu_name,
                         compute_capability="%d.%d" % cuda.compute_capability(), cuda_api=cuda.name,
                         precision=self.device.precision, cuda_graph=self._graph is not None)
        if cuda.skipped:
            self.info["cuda_api_skipped"] = list(cuda.skipped)
        if reason:
            self.info["cuda_graph_error"] = reason

    def _input_shape(self, name: str) -> tuple[int, ...]:
        """The engine's input shape, resolved to the model's; a mismatch is an error."""
        shape = tuple(int(d) for d in self._engine.get_tensor_shape(name))
        want = self.model.input_shape
        if len(shape) != len(want) or any(d >= 0 and d != w for d, w in zip(shape, want)):
            raise SgnasError(f"model {self.model.name}: the engine's input {name} has shape {shape}, "
                             f"the model's input is {want}")
        if any(d < 0 for d in shape):
            self._checked(self._context.set_input_shape(name, want), f"set_input_shape({name})")
        return want

    def _alloc(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> int:
        nbytes = max(math.prod(shape) * np.dtype(dtype).itemsize, 1)
        ptr = self.cuda.malloc(nbytes)
        self._buffers[name] = ptr
        self._sizes[name] = nbytes
        return ptr

    def _copy_input(self, name: str, ptr: int, host: np.ndarray) -> None:
        if host.nbytes != self._sizes[name]:
            raise SgnasError(f"model {self.model.name}: input {name} has {host.nbytes} bytes, its "
                             f"device buffer {self._sizes[name]}")
        self.cuda.memcpy_htod(ptr, host, self._stream)

    def _capture(self) -> Any:
        graph = self.cuda.capture(self._stream, self._enqueue)
        try:
            self.cuda.graph_launch(graph, self._stream)
            self.cuda.stream_synchronize(self._stream)
        except BaseException:
            self.cuda.graph_destroy(graph)
            raise
        return graph

    def _release(self) -> list[str]:
        """Free everything, each step even when an earlier one fails; returns the failures."""
        cuda, stream, graph = self.cuda, self._stream, self._graph
        steps: list[tuple[str, Any]] = []
        if cuda is not None and stream is not None:
            steps.append(("stream synchronize", lambda: cuda.stream_synchronize(stream)))
        if cuda is not None and graph is not None:
            steps.append(("graph destroy", lambda: cuda.graph_destroy(graph)))
        if cuda is not None:
            for start, end in self._events:
                steps.append(("event destroy", lambda e=start: cuda.event_destroy(e)))
                steps.append(("event destroy", lambda e=end: cuda.event_destroy(e)))
        # the context goes before its buffers, then the engine, then the runtime
        steps.append(("execution context", lambda: setattr(self, "_context", None)))
        if cuda is not None:
            for name, ptr in self._buffers.items():
                steps.append((f"free {name}", lambda p=ptr: cuda.free(p)))
            if stream is not None:
                steps.append(("stream destroy", lambda: cuda.stream_destroy(stream)))
        steps.append(("engine", lambda: setattr(self, "_engine", None)))
        steps.append(("runtime", lambda: setattr(self, "_runtime", None)))
        failures = []
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # keep freeing; report each once
                failures.append(f"{what}: {exc}")
                log.warning("cleanup of %s failed: %s", what, exc)
        self._reset()
        if failures:
            self.info["cleanup_errors"] = failures
        return failures

    def deactivate_impl(self) -> None:
        self._release()

    def _event_pairs(self, n: int) -> list[tuple[Any, Any]]:
        while len(self._events) < n:
            self._events.append((self.cuda.event_create(), self.cuda.event_create()))
        return self._events[:n]

    def time_impl(self, n: int) -> np.ndarray:
        cuda, stream, launch = self.cuda, self._stream, self._launch
        pairs = self._event_pairs(n)
        for start, end in pairs:
            cuda.event_record(start, stream)
            launch()
            cuda.event_record(end, stream)
        cuda.stream_synchronize(stream)
        return np.array([cuda.event_elapsed_ms(s, e) for s, e in pairs], dtype=np.float64)

    def run_impl(self) -> np.ndarray:
        self._launch()
        self.cuda.stream_synchronize(self._stream)
        name, shape, dtype = self._outputs[0]
        host = np.empty(shape, dtype=dtype)
        self.cuda.memcpy_dtoh(host, self._buffers[name], self._stream)
        return host


RUNNER = TensorRTRunner
register_backend("tensorrt", "tensorrt", "trt", RUNNER, kinds=("gpu",))
