"""TensorRT 10/11 on an NVIDIA GPU.

Build: ``builder.create_network(0)`` (explicit batch is the only mode since TensorRT 10), the ONNX
parser, a workspace pool limit and a persistent timing cache per GPU and TensorRT version
(``<cache_dir>/timing-<gpu>-trt<version>.cache``; it makes rebuilds fast and is saved atomically
after each build). Precision: on TensorRT 10 an fp16 device sets ``BuilderFlag.FP16``; TensorRT 11
has no such flag and takes precision from the graph, so fp16 devices use ``ModelSpec.onnx_path_fp16``
(a half-precision export), which TensorRT 10 also prefers when it is given.

Run: one device buffer per I/O tensor, the input filled once, ``set_tensor_address`` for each, and
``execute_async_v3`` on a private non-blocking stream. With ``cuda_graphs`` one enqueue is captured
into a CUDA graph after a first plain enqueue (TensorRT needs one before capture); if capture fails,
plain enqueues are timed instead. Per-iteration latencies come from CUDA events around each launch;
no host-device copies are in the timed region.
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


class TensorRTRunner(Runner):
    """TensorRT engine runner; ``cuda`` selects the CUDA binding (default: :func:`select_cuda_api`)."""

    backend = "tensorrt"

    def __init__(self, device, model: ModelSpec, cache_dir: Path | None = None,
                 cuda: CudaApi | None = None) -> None:
        super().__init__(device, model)
        if device.kind != "gpu":
            raise SgnasError(f"device {device.name}: the tensorrt backend needs a gpu device")
        self.trt = require("tensorrt", "trt")
        self.version = str(getattr(self.trt, "__version__", "0"))
        self.major = trt_major(self.version)
        if self.major < 10:
            raise SgnasError(f"TensorRT {self.version} is too old: sgnas needs TensorRT 10 or newer")
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
        self._outputs: list[tuple[str, tuple[int, ...], np.dtype]] = []
        self._events: list[tuple[Any, Any]] = []

    # ---------------------------------------------------------------- build
    def onnx_file(self) -> Path:
        """The ONNX graph to build from, by precision and TensorRT version."""
        fp16 = self.device.precision == "fp16"
        if fp16 and self.major >= 11:
            if self.model.onnx_path_fp16 is None:
                raise SgnasError(
                    f"device {self.device.name}: TensorRT {self.version} takes precision from the "
                    "graph, so an fp16 device needs a half-precision ONNX (ModelSpec.onnx_path_fp16)"
                )
            return self.model.require_onnx(self.backend, fp16=True)
        if fp16 and self.model.onnx_path_fp16 is not None:
            return self.model.require_onnx(self.backend, fp16=True)
        return self.model.require_onnx(self.backend)

    def timing_cache_path(self, gpu_name: str) -> Path | None:
        """``<cache_dir>/timing-<gpu>-trt<version>.cache``, or None without a cache folder."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"timing-{slug(gpu_name)}-trt{self.version}.cache"

    def _set_timing_cache(self, config: Any, path: Path | None) -> bool:
        """Attach the timing cache stored at ``path`` (empty when absent); True if one was loaded."""
        data = path.read_bytes() if path is not None and path.is_file() else b""
        cache = config.create_timing_cache(data)
        if config.set_timing_cache(cache, ignore_mismatch=False) is False:
            log.warning("timing cache %s does not match this GPU or TensorRT; starting a new one", path)
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, ignore_mismatch=False)
            return False
        return bool(data)

    def build(self, gpu_name: str) -> Any:
        """Parse the ONNX file and build a serialized engine (saving the timing cache)."""
        trt = self.trt
        logger = self._logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        path = self.onnx_file()
        if not parser.parse_from_file(str(path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise SgnasError(f"TensorRT cannot parse {path}: {'; '.join(errors) or 'unknown error'}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.device.workspace_mb) << 20)
        if self.device.precision == "fp16" and self.major < 11:
            flag = getattr(trt.BuilderFlag, "FP16", None)
            if flag is not None:
                config.set_flag(flag)
        cache_path = self.timing_cache_path(gpu_name)
        cache_hit = self._set_timing_cache(config, cache_path) if cache_path is not None else False
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise SgnasError(f"TensorRT failed to build an engine from {path} (see the log above)")
        if cache_path is not None:
            atomic_write_bytes(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
        self.info.update(onnx=str(path), timing_cache=str(cache_path) if cache_path else None,
                         timing_cache_hit=cache_hit)
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

    def _activate(self) -> None:
        trt = self.trt
        if self.cuda is None:
            self.cuda = select_cuda_api()
        cuda = self.cuda
        gpu_name = cuda.device_name()
        serialized = self.build(gpu_name)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(serialized)
        if self._engine is None:
            raise SgnasError(f"TensorRT could not deserialize the engine of {self.model.name}")
        engine = self._engine
        context = self._context = engine.create_execution_context()

        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1:
            raise SgnasError(f"model {self.model.name}: expected 1 input, the engine has {len(inputs)}")
        for name in inputs:
            shape = tuple(engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                context.set_input_shape(name, self.model.input_shape)
                shape = self.model.input_shape
            dtype = self._np_dtype(engine.get_tensor_dtype(name))
            ptr = self._alloc(name, shape, dtype)
            cuda.memcpy_htod(ptr, self.model.make_input(dtype))
            context.set_tensor_address(name, ptr)
        for name in outputs:
            shape = tuple(context.get_tensor_shape(name))
            dtype = self._np_dtype(engine.get_tensor_dtype(name))
            context.set_tensor_address(name, self._alloc(name, shape, dtype))
            self._outputs.append((name, shape, dtype))

        self._stream = cuda.stream_create()
        self._stream_handle = cuda.stream_handle(self._stream)
        self._enqueue()  # TensorRT needs one enqueue before capture; also loads kernels
        cuda.stream_synchronize(self._stream)
        reason = None
        if self.device.cuda_graphs:
            self._graph, reason = try_capture(self._capture)
        self.info.update(tensorrt=self.version, gpu=gpu_name, cuda_api=cuda.name,
                         precision=self.device.precision, cuda_graph=self._graph is not None)
        if reason:
            self.info["cuda_graph_error"] = reason

    def _alloc(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> int:
        nbytes = max(math.prod(shape) * np.dtype(dtype).itemsize, 1)
        ptr = self.cuda.malloc(nbytes)
        self._buffers[name] = ptr
        return ptr

    def _capture(self) -> Any:
        graph = self.cuda.capture(self._stream, self._enqueue)
        try:
            self.cuda.graph_launch(graph, self._stream)
            self.cuda.stream_synchronize(self._stream)
        except BaseException:
            self.cuda.graph_destroy(graph)
            raise
        return graph

    def _release(self) -> None:
        cuda = self.cuda
        if cuda is not None:
            if self._stream is not None:
                try:
                    cuda.stream_synchronize(self._stream)
                except Exception as exc:  # keep freeing; report once
                    log.warning("stream synchronize failed during cleanup: %s", exc)
            if self._graph is not None:
                cuda.graph_destroy(self._graph)
            for start, end in self._events:
                cuda.event_destroy(start)
                cuda.event_destroy(end)
            self._context = None  # the context goes before its buffers and engine
            for ptr in self._buffers.values():
                cuda.free(ptr)
            if self._stream is not None:
                cuda.stream_destroy(self._stream)
        self._context = None
        self._engine = None
        self._runtime = None
        self._reset()

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
        self.cuda.memcpy_dtoh(host, self._buffers[name])
        return host


RUNNER = TensorRTRunner
register_backend("tensorrt", "tensorrt", "trt", RUNNER)
