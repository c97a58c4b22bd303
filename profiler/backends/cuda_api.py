"""A small CUDA runtime surface for the TensorRT backend: buffers, a stream, events, graph capture.

Three implementations, chosen in this order by :func:`select_cuda_api`:

1. ``cuda-python`` (``cuda.bindings.runtime``, or ``cuda.cudart`` in older releases): binary wheels,
   installed by the ``trt`` extra, no other framework needed;
2. ``torch`` CUDA tensors, streams, events and ``torch.cuda.CUDAGraph``: present wherever the CUDA
   build of torch is;
3. ``pycuda``: supported where installed, last because it builds from source against a CUDA toolkit.

Handles are opaque to callers; :meth:`CudaApi.stream_handle` gives the integer ``cudaStream_t`` that
TensorRT's ``execute_async_v3`` takes. Copies are issued on the caller's stream and synchronized, so
they are ordered with the work on it (as trtexec does). Capture uses the thread-local mode and, when
it fails, ends the capture, frees a partial graph and clears the error (trtexec's
``endCaptureOnError``), so the stream stays usable for plain launches.
"""

from __future__ import annotations

import abc
from typing import Any, Callable

import numpy as np

from sgnas.errors import SgnasError, first_line


class CudaError(RuntimeError):
    """A CUDA runtime call failed."""


class CudaApi(abc.ABC):
    """Buffers, one stream, events and graph capture on the current CUDA device."""

    name = "cuda"
    #: False where the binding cannot capture CUDA graphs (then :meth:`capture` raises).
    supports_capture = True
    #: Why :func:`select_cuda_api` skipped the bindings before this one.
    skipped: list[str] = []

    @abc.abstractmethod
    def device_name(self) -> str: ...

    @abc.abstractmethod
    def compute_capability(self) -> tuple[int, int]:
        """(major, minor) compute capability of the current device."""

    def runtime_major(self) -> int | None:
        """CUDA major version of the runtime this binding uses (None if unknown)."""
        return None

    @abc.abstractmethod
    def malloc(self, nbytes: int) -> int: ...

    @abc.abstractmethod
    def free(self, ptr: int) -> None: ...

    @abc.abstractmethod
    def memcpy_htod(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        """Copy ``host`` to ``ptr`` on ``stream`` and wait for it."""

    @abc.abstractmethod
    def memcpy_dtoh(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        """Copy ``host.nbytes`` bytes from ``ptr`` into ``host`` on ``stream`` and wait for it."""

    @abc.abstractmethod
    def stream_create(self) -> Any:
        """A new non-blocking stream (never the legacy default stream)."""

    @abc.abstractmethod
    def stream_handle(self, stream: Any) -> int: ...

    @abc.abstractmethod
    def stream_synchronize(self, stream: Any) -> None: ...

    @abc.abstractmethod
    def stream_destroy(self, stream: Any) -> None: ...

    @abc.abstractmethod
    def event_create(self) -> Any: ...

    @abc.abstractmethod
    def event_record(self, event: Any, stream: Any) -> None: ...

    @abc.abstractmethod
    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two recorded events (waits for ``end``)."""

    @abc.abstractmethod
    def event_destroy(self, event: Any) -> None: ...

    @abc.abstractmethod
    def capture(self, stream: Any, enqueue: Callable[[], None]) -> Any:
        """Capture the work ``enqueue()`` puts on ``stream`` into an executable CUDA graph."""

    @abc.abstractmethod
    def graph_launch(self, graph: Any, stream: Any) -> None: ...

    @abc.abstractmethod
    def graph_destroy(self, graph: Any) -> None: ...


# ------------------------------------------------------------------ cuda-python
def _import_cudart():
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime  # cuda-python < 12.6
    return runtime


class CudaPythonApi(CudaApi):
    """``cuda-python`` runtime bindings (every call returns ``(cudaError_t, *results)``)."""

    name = "cuda-python"

    def __init__(self, cudart: Any = None) -> None:
        self.rt = cudart if cudart is not None else _import_cudart()

    def _ok(self, err: Any) -> bool:
        return err == self.rt.cudaError_t.cudaSuccess

    def _call(self, fn: str, *args: Any) -> Any:
        result = getattr(self.rt, fn)(*args)
        err, rest = result[0], result[1:]
        if not self._ok(err):
            raise CudaError(f"{fn}: {self._message(err)}")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else rest

    def _message(self, err: Any) -> str:
        try:
            msg = self.rt.cudaGetErrorString(err)[1]
        except Exception:  # an unknown code: report it as is
            return str(err)
        return msg.decode() if isinstance(msg, bytes) else str(msg)

    def device_count(self) -> int:
        return int(self._call("cudaGetDeviceCount"))

    def _props(self) -> Any:
        return self._call("cudaGetDeviceProperties", self._call("cudaGetDevice"))

    def device_name(self) -> str:
        name = self._props().name
        return (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).rstrip("\x00")

    def compute_capability(self) -> tuple[int, int]:
        props = self._props()
        return int(props.major), int(props.minor)

    def runtime_major(self) -> int | None:
        return int(self._call("cudaRuntimeGetVersion")) // 1000

    def malloc(self, nbytes: int) -> int:
        return int(self._call("cudaMalloc", int(nbytes)))

    def free(self, ptr: int) -> None:
        self._call("cudaFree", ptr)

    def memcpy_htod(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        host = np.ascontiguousarray(host)
        self._call("cudaMemcpyAsync", ptr, host.ctypes.data, host.nbytes,
                   self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)
        self.stream_synchronize(stream)  # ``host`` must outlive the copy

    def memcpy_dtoh(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        if not host.flags.c_contiguous:
            raise ValueError("host array must be C-contiguous")
        self._call("cudaMemcpyAsync", host.ctypes.data, ptr, host.nbytes,
                   self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream)
        self.stream_synchronize(stream)

    def stream_create(self) -> Any:
        return self._call("cudaStreamCreateWithFlags", self.rt.cudaStreamNonBlocking)

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_synchronize(self, stream: Any) -> None:
        self._call("cudaStreamSynchronize", stream)

    def stream_destroy(self, stream: Any) -> None:
        self._call("cudaStreamDestroy", stream)

    def event_create(self) -> Any:
        return self._call("cudaEventCreate")

    def event_record(self, event: Any, stream: Any) -> None:
        self._call("cudaEventRecord", event, stream)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        self._call("cudaEventSynchronize", end)
        return float(self._call("cudaEventElapsedTime", start, end))

    def event_destroy(self, event: Any) -> None:
        self._call("cudaEventDestroy", event)

    def capture(self, stream: Any, enqueue: Callable[[], None]) -> Any:
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._call("cudaStreamBeginCapture", stream, mode)
        try:
            enqueue()
            graph = self._call("cudaStreamEndCapture", stream)
        except BaseException:
            self._end_capture_on_error(stream)
            raise
        try:
            exe = self._call("cudaGraphInstantiate", graph, 0)  # cuda-python 12+: (graph, flags)
        except BaseException:
            self.rt.cudaGraphDestroy(graph)
            self.rt.cudaGetLastError()
            raise
        return (graph, exe)

    def _end_capture_on_error(self, stream: Any) -> None:
        """Leave capture mode after a failed capture: end it, drop the partial graph, clear errors."""
        status = self.rt.cudaStreamIsCapturing(stream)
        none = self.rt.cudaStreamCaptureStatus.cudaStreamCaptureStatusNone
        if not self._ok(status[0]) or status[1] != none:
            # An invalidated capture returns no graph; a capture TensorRT failed in returns one
            # that must not be used.
            err, graph = self.rt.cudaStreamEndCapture(stream)
            if self._ok(err) and graph is not None:
                self.rt.cudaGraphDestroy(graph)
        self.rt.cudaGetLastError()

    def graph_launch(self, graph: Any, stream: Any) -> None:
        self._call("cudaGraphLaunch", graph[1], stream)

    def graph_destroy(self, graph: Any) -> None:
        try:
            self._call("cudaGraphExecDestroy", graph[1])
        finally:
            self._call("cudaGraphDestroy", graph[0])


# ------------------------------------------------------------------------ torch
class TorchCudaApi(CudaApi):
    """CUDA through torch: byte tensors as buffers, ``torch.cuda`` streams/events/graphs."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self._buffers: dict[int, Any] = {}

    def device_name(self) -> str:
        return self.torch.cuda.get_device_name()

    def compute_capability(self) -> tuple[int, int]:
        major, minor = self.torch.cuda.get_device_capability()
        return int(major), int(minor)

    def runtime_major(self) -> int | None:
        version = self.torch.version.cuda
        return int(str(version).split(".")[0]) if version else None

    def malloc(self, nbytes: int) -> int:
        t = self.torch.empty(max(int(nbytes), 1), dtype=self.torch.uint8, device="cuda")
        self._buffers[t.data_ptr()] = t
        return t.data_ptr()

    def free(self, ptr: int) -> None:
        self._buffers.pop(ptr, None)

    def _bytes(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a).reshape(-1).view(np.uint8)

    def _buffer(self, ptr: int, nbytes: int) -> Any:
        buf = self._buffers[ptr]
        if nbytes > buf.numel():
            raise CudaError(f"copy of {nbytes} bytes exceeds the {buf.numel()}-byte buffer")
        return buf[:nbytes]

    def memcpy_htod(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        src = self.torch.from_numpy(self._bytes(host).copy())
        with self.torch.cuda.stream(stream):
            self._buffer(ptr, src.numel()).copy_(src)
        stream.synchronize()

    def memcpy_dtoh(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        dst = host.reshape(-1).view(np.uint8)
        with self.torch.cuda.stream(stream):
            out = self._buffer(ptr, dst.size).cpu()  # a blocking copy ordered on ``stream``
        dst[:] = out.numpy()

    def stream_create(self) -> Any:
        return self.torch.cuda.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.cuda_stream)

    def stream_synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        stream.synchronize()

    def event_create(self) -> Any:
        return self.torch.cuda.Event(enable_timing=True)

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(start.elapsed_time(end))

    def event_destroy(self, event: Any) -> None:
        pass

    def capture(self, stream: Any, enqueue: Callable[[], None]) -> Any:
        graph = self.torch.cuda.CUDAGraph()
        # torch.cuda.graph ends the capture when the body raises
        with self.torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            enqueue()
        return graph

    def graph_launch(self, graph: Any, stream: Any) -> None:
        with self.torch.cuda.stream(stream):
            graph.replay()

    def graph_destroy(self, graph: Any) -> None:
        graph.reset()


# ----------------------------------------------------------------------- pycuda
class PyCudaApi(CudaApi):
    """pycuda (``pycuda.autoinit`` creates the context on the first GPU).

    Released pycuda versions have no stream capture; :attr:`supports_capture` says whether the
    installed one has it (``Stream.begin_capture``), and :meth:`capture` raises where it does not.
    """

    name = "pycuda"

    def __init__(self, drv: Any = None) -> None:
        if drv is None:
            import pycuda.autoinit  # noqa: F401  (creates and pushes a context)
            import pycuda.driver as drv
        self.drv = drv
        self.supports_capture = hasattr(drv.Stream, "begin_capture") and hasattr(drv.Stream,
                                                                                 "end_capture")
        self._buffers: dict[int, Any] = {}

    def device_name(self) -> str:
        return self.drv.Context.get_device().name()

    def compute_capability(self) -> tuple[int, int]:
        major, minor = self.drv.Context.get_device().compute_capability()
        return int(major), int(minor)

    def runtime_major(self) -> int | None:
        return int(self.drv.get_version()[0])

    def malloc(self, nbytes: int) -> int:
        alloc = self.drv.mem_alloc(max(int(nbytes), 1))
        self._buffers[int(alloc)] = alloc
        return int(alloc)

    def free(self, ptr: int) -> None:
        alloc = self._buffers.pop(ptr, None)
        if alloc is not None:
            alloc.free()

    def memcpy_htod(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        host = np.ascontiguousarray(host)
        self.drv.memcpy_htod_async(ptr, host, stream)
        stream.synchronize()

    def memcpy_dtoh(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        self.drv.memcpy_dtoh_async(host, ptr, stream)
        stream.synchronize()

    def stream_create(self) -> Any:
        return self.drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        stream.synchronize()

    def event_create(self) -> Any:
        return self.drv.Event()

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def event_elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(end.time_since(start))

    def event_destroy(self, event: Any) -> None:
        pass

    def capture(self, stream: Any, enqueue: Callable[[], None]) -> Any:
        if not self.supports_capture:
            raise CudaError("the installed pycuda has no stream capture (no Stream.begin_capture)")
        stream.begin_capture()
        try:
            enqueue()
        finally:
            graph = stream.end_capture()
        return graph.instantiate()

    def graph_launch(self, graph: Any, stream: Any) -> None:
        graph.launch(stream)

    def graph_destroy(self, graph: Any) -> None:
        pass


def _cuda_python() -> CudaApi:
    api = CudaPythonApi()
    if api.device_count() < 1:
        raise CudaError("no CUDA device")
    return api


def _torch() -> CudaApi:
    import torch

    if not torch.cuda.is_available():
        raise CudaError("torch sees no CUDA device")
    return TorchCudaApi()


def _pycuda() -> CudaApi:
    return PyCudaApi()


#: Implementations in the order they are tried.
CANDIDATES: tuple[tuple[str, Callable[[], CudaApi]], ...] = (
    ("cuda-python", _cuda_python),
    ("torch", _torch),
    ("pycuda", _pycuda),
)


def select_cuda_api() -> CudaApi:
    """The first usable implementation among cuda-python, torch and pycuda.

    Why earlier candidates were skipped is kept in the returned object's ``skipped`` list (the
    runner records it), so a fallback is never silent.
    """
    reasons = []
    for name, make in CANDIDATES:
        try:
            api = make()
        except Exception as exc:  # ImportError, no driver, no device: try the next one
            reasons.append(f"{name}: {first_line(exc)}")
            continue
        api.skipped = list(reasons)
        return api
    raise SgnasError(
        "no usable CUDA GPU binding (pip install 'sgnas[trt]' for cuda-python); tried "
        + "; ".join(reasons)
    )
