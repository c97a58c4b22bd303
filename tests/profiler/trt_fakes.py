"""Fakes of the TensorRT 10/11 Python API and of a CUDA binding that reject what the real ones reject.

TensorRT: setters return bool, ``create_execution_context`` can return None, timing caches carry the
GPU/version they were made for (a foreign one mismatches, a garbled one is corrupt and yields None),
``BuilderFlag.FP16`` exists on 10.x only and a strongly typed 10.x network refuses it, networks
report their inputs (static or dynamic). CUDA: buffers have sizes and copies are checked against
them, copies and launches must name the stream the caller created, freeing an unknown pointer fails.
"""

from __future__ import annotations

import enum
import types

import numpy as np

from profiler.backends.cuda_api import CudaApi, CudaError

SHAPE = (8, 4, 8, 8)
OUT_SHAPE = (8, 6, 8, 8)
GPU = "Tesla V100-SXM2-16GB"


class Knobs(types.SimpleNamespace):
    """What a fake TensorRT does differently from the happy path."""

    def __init__(self, **kw):
        defaults = dict(parse_ok=True, context_none=False, address_ok=True, input_shape_ok=True,
                        engine_input_shape=SHAPE, network_input_shape=SHAPE, cache_tag=b"gpu0")
        defaults.update(kw)
        super().__init__(**defaults)


def make_fake_trt(version: str, calls: list, knobs: Knobs | None = None):
    knobs = knobs or Knobs()
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version

    class Logger:
        WARNING = "warning"

        def __init__(self, severity):
            self.severity = severity

    class MemoryPoolType(enum.Enum):
        WORKSPACE = 0

    members = {"TF32": 1}
    if major < 11:  # TensorRT 11 removed the weak-typing flags
        members["FP16"] = 2
    BuilderFlag = enum.Enum("BuilderFlag", members)
    NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag",
                                                 {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}, start=0)

    class TensorIOMode(enum.Enum):
        INPUT = 1
        OUTPUT = 2

    class DataType(enum.Enum):
        FLOAT = 0
        HALF = 1

    class TimingCache:
        def __init__(self, tag, payload):
            self.tag, self.payload = tag, payload

        def serialize(self):
            return b"TC:" + knobs.cache_tag + b":" + self.payload + b"+"

    class Config:
        def __init__(self):
            self.cache = None
            self.flags = {BuilderFlag.TF32}  # TF32 is on by default
            self.profiles = []

        def set_memory_pool_limit(self, pool, size):
            calls.append(("set_memory_pool_limit", pool, size))

        def set_flag(self, flag):
            calls.append(("set_flag", flag))
            self.flags.add(flag)

        def clear_flag(self, flag):
            calls.append(("clear_flag", flag))
            self.flags.discard(flag)

        def get_flag(self, flag):
            return flag in self.flags

        def create_timing_cache(self, data):
            data = bytes(data)
            calls.append(("create_timing_cache", data))
            if not data:
                return TimingCache(knobs.cache_tag, b"")
            parts = data.split(b":", 2)
            if len(parts) != 3 or parts[0] != b"TC":
                return None  # corrupt blob
            return TimingCache(parts[1], parts[2])

        def set_timing_cache(self, cache, ignore_mismatch):
            if not isinstance(cache, TimingCache):
                raise TypeError("set_timing_cache(): incompatible function arguments")
            calls.append(("set_timing_cache", cache.payload, ignore_mismatch))
            if cache.tag != knobs.cache_tag and not ignore_mismatch:
                return False
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

        def add_optimization_profile(self, profile):
            calls.append(("add_optimization_profile", dict(profile.shapes)))
            self.profiles.append(profile)
            return len(self.profiles) - 1

    class Input:
        name = "x"

        @property
        def shape(self):
            return knobs.network_input_shape

    class Network:
        def __init__(self, flags):
            self.strongly_typed = major >= 11 or bool(flags & (1 << int(
                NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
            self.num_inputs = 1

        def get_input(self, i):
            return Input()

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi):
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls.append(("build_serialized_network",))
            if network.strongly_typed and "FP16" in members and BuilderFlag.FP16 in config.flags:
                return None  # a strongly typed network rejects weak-typing flags
            if any(d < 0 for d in knobs.network_input_shape) and not config.profiles:
                return None  # dynamic inputs need an optimization profile
            return b"ENGINE"

    class ParserError:
        def __str__(self):
            return "In node 0 (Conv): unsupported"

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = 0 if knobs.parse_ok else 1

        def parse_from_file(self, path):
            calls.append(("parse_from_file", path))
            return knobs.parse_ok

        def get_error(self, i):
            return ParserError()

    class Context:
        def __init__(self):
            self.addresses = {}

        def set_tensor_address(self, name, ptr):
            calls.append(("set_tensor_address", name, ptr))
            self.addresses[name] = ptr
            return knobs.address_ok

        def set_input_shape(self, name, shape):
            calls.append(("set_input_shape", name, tuple(shape)))
            return knobs.input_shape_ok

        def get_tensor_shape(self, name):
            return OUT_SHAPE if name == "y" else SHAPE

        def execute_async_v3(self, stream):
            calls.append(("execute_async_v3", stream))
            return True

    class Engine:
        num_io_tensors = 2
        names = ["x", "y"]

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if name == "x" else TensorIOMode.OUTPUT

        def get_tensor_shape(self, name):
            return knobs.engine_input_shape if name == "x" else OUT_SHAPE

        def get_tensor_dtype(self, name):
            return DataType.FLOAT

        def create_execution_context(self):
            return None if knobs.context_none else Context()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            assert data == b"ENGINE"
            return Engine()

    def nptype(dtype):
        return {DataType.FLOAT: np.float32, DataType.HALF: np.float16}[dtype]

    for obj in (Logger, MemoryPoolType, BuilderFlag, NetworkDefinitionCreationFlag, TensorIOMode,
                DataType, Builder, OnnxParser, Runtime, nptype):
        setattr(trt, obj.__name__, obj)
    return trt


class FakeCuda(CudaApi):
    """A CUDA binding with sized buffers, one stream and capture that can be made to fail."""

    name = "fake"
    STREAM = 0xBEEF

    def __init__(self, calls, capture_fails=False, cc=(7, 0), runtime=12, free_fails=()):
        self.calls = calls
        self.capture_fails = capture_fails
        self.cc = cc
        self.runtime = runtime
        self.free_fails = set(free_fails)
        self.next_ptr = 0x1000
        self.sizes: dict[int, int] = {}
        self.events = 0
        self.record_order = []
        self.stream_live = False
        self.streams_destroyed = 0
        self.htod = {}

    @property
    def live(self):
        return set(self.sizes)

    def device_name(self):
        return GPU

    def compute_capability(self):
        return self.cc

    def runtime_major(self):
        return self.runtime

    def malloc(self, nbytes):
        assert nbytes > 0
        ptr = self.next_ptr
        self.next_ptr += 0x1000
        self.sizes[ptr] = int(nbytes)
        return ptr

    def free(self, ptr):
        if ptr not in self.sizes:
            raise CudaError("cudaFree: invalid argument")
        del self.sizes[ptr]
        if ptr in self.free_fails:
            raise CudaError("cudaFree: an illegal memory access was encountered")

    def _check_stream(self, stream):
        if stream != ("stream", self.STREAM) or not self.stream_live:
            raise CudaError(f"not the live private stream: {stream!r}")

    def memcpy_htod(self, ptr, host, stream=None):
        """``stream=None``: a copy not ordered with the private stream (recorded as such)."""
        if stream is not None:
            self._check_stream(stream)
        if host.nbytes > self.sizes[ptr]:
            raise CudaError(f"copy of {host.nbytes} bytes into a {self.sizes[ptr]}-byte buffer")
        self.calls.append(("memcpy_htod", ptr, host.nbytes, stream))
        self.htod[ptr] = host.copy()

    def memcpy_dtoh(self, host, ptr, stream=None):
        if stream is not None:
            self._check_stream(stream)
        self.calls.append(("memcpy_dtoh", ptr, host.nbytes, stream))
        if host.nbytes > self.sizes[ptr]:
            raise CudaError(f"copy of {host.nbytes} bytes from a {self.sizes[ptr]}-byte buffer")
        host[...] = 7.0

    def stream_create(self):
        self.calls.append(("stream_create",))
        self.stream_live = True
        return ("stream", self.STREAM)

    def stream_handle(self, stream):
        return stream[1]

    def stream_synchronize(self, stream):
        self._check_stream(stream)

    def stream_destroy(self, stream):
        self._check_stream(stream)
        self.stream_live = False
        self.streams_destroyed += 1

    def event_create(self):
        self.events += 1
        return self.events

    def event_record(self, event, stream):
        self._check_stream(stream)
        self.record_order.append(event)

    def event_elapsed_ms(self, start, end):
        return 0.5 + 0.001 * start  # distinct per event pair

    def event_destroy(self, event):
        pass

    def capture(self, stream, enqueue):
        self._check_stream(stream)
        self.calls.append(("begin_capture",))
        enqueue()
        if self.capture_fails:
            raise CudaError("cudaStreamEndCapture: operation not permitted when stream is capturing")
        self.calls.append(("end_capture",))
        return "graph"

    def graph_launch(self, graph, stream):
        self._check_stream(stream)
        self.calls.append(("graph_launch", graph, stream))

    def graph_destroy(self, graph):
        self.calls.append(("graph_destroy", graph))


class Err(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorStreamCaptureInvalidated = 901


def make_fake_cudart(cc=(8, 0), runtime_version=12080, invalidate_capture=False):
    """A fake ``cuda.bindings.runtime``: ``(err, *results)`` returns, sized allocations, capture state."""
    state = types.SimpleNamespace(sizes={}, next=0x10000, streams=set(), capturing={}, modes=[],
                                  last_error=Err.cudaSuccess, graphs=set(), execs=set(), copies=[],
                                  launches=0, events=set())
    ok = Err.cudaSuccess

    def fail(err):
        state.last_error = err
        return (err,)

    rt = types.SimpleNamespace()
    rt.cudaError_t = Err
    rt.cudaStreamNonBlocking = 1
    rt.cudaMemcpyKind = enum.IntEnum("cudaMemcpyKind", {"cudaMemcpyHostToDevice": 1,
                                                        "cudaMemcpyDeviceToHost": 2})
    rt.cudaStreamCaptureMode = enum.IntEnum("cudaStreamCaptureMode", {
        "cudaStreamCaptureModeGlobal": 0, "cudaStreamCaptureModeThreadLocal": 1,
        "cudaStreamCaptureModeRelaxed": 2}, start=0)
    rt.cudaStreamCaptureStatus = enum.IntEnum("cudaStreamCaptureStatus", {
        "cudaStreamCaptureStatusNone": 0, "cudaStreamCaptureStatusActive": 1,
        "cudaStreamCaptureStatusInvalidated": 2}, start=0)
    rt.state = state
    rt.cudaGetErrorString = lambda e: (ok, Err(e).name.encode())
    rt.cudaGetDeviceCount = lambda: (ok, 1)
    rt.cudaGetDevice = lambda: (ok, 0)
    rt.cudaGetDeviceProperties = lambda d: (ok, types.SimpleNamespace(
        name=b"NVIDIA A100-SXM4-40GB\x00\x00", major=cc[0], minor=cc[1]))
    rt.cudaRuntimeGetVersion = lambda: (ok, runtime_version)

    def cudaGetLastError():
        err, state.last_error = state.last_error, Err.cudaSuccess
        return (err,)

    def cudaMalloc(n):
        if n <= 0:
            return fail(Err.cudaErrorInvalidValue) + (None,)
        ptr = state.next
        state.next += 0x10000
        state.sizes[ptr] = n
        return (ok, ptr)

    def cudaFree(ptr):
        if ptr not in state.sizes:
            return fail(Err.cudaErrorInvalidValue)
        del state.sizes[ptr]
        return (ok,)

    def cudaMemcpyAsync(dst, src, n, kind, stream):
        dev = dst if kind == rt.cudaMemcpyKind.cudaMemcpyHostToDevice else src
        if stream not in state.streams or dev not in state.sizes or n > state.sizes[dev]:
            return fail(Err.cudaErrorInvalidValue)
        state.copies.append((kind, n, stream))
        return (ok,)

    def cudaStreamCreateWithFlags(flags):
        s = 0x500 + len(state.streams) + 1
        state.streams.add(s)
        return (ok, s)

    def stream_op(stream):
        return (ok,) if stream in state.streams else fail(Err.cudaErrorInvalidValue)

    def cudaStreamDestroy(stream):
        if stream not in state.streams:
            return fail(Err.cudaErrorInvalidValue)
        state.streams.discard(stream)
        return (ok,)

    def cudaEventCreate():
        e = 0x900 + len(state.events) + 1
        state.events.add(e)
        return (ok, e)

    def cudaEventDestroy(e):
        state.events.discard(e)
        return (ok,)

    def cudaStreamBeginCapture(stream, mode):
        state.modes.append(mode)
        state.capturing[stream] = "invalidated" if invalidate_capture else "active"
        return (ok,)

    def cudaStreamIsCapturing(stream):
        s = state.capturing.get(stream)
        status = {None: 0, "active": 1, "invalidated": 2}[s]
        return (ok, rt.cudaStreamCaptureStatus(status))

    def cudaStreamEndCapture(stream):
        s = state.capturing.pop(stream, None)
        if s is None:
            return fail(Err.cudaErrorInvalidValue) + (None,)
        if s == "invalidated":
            return fail(Err.cudaErrorStreamCaptureInvalidated) + (None,)
        g = 0x700 + len(state.graphs) + 1
        state.graphs.add(g)
        return (ok, g)

    def cudaGraphInstantiate(graph, flags):  # the cuda-python 12/13 signature
        x = 0x800 + len(state.execs) + 1
        state.execs.add(x)
        return (ok, x)

    def cudaGraphLaunch(exe, stream):
        if exe not in state.execs or stream not in state.streams:
            return fail(Err.cudaErrorInvalidValue)
        state.launches += 1
        return (ok,)

    def cudaGraphExecDestroy(exe):
        state.execs.discard(exe)
        return (ok,)

    def cudaGraphDestroy(g):
        state.graphs.discard(g)
        return (ok,)

    for fn in (cudaGetLastError, cudaMalloc, cudaFree, cudaMemcpyAsync, cudaStreamCreateWithFlags,
               cudaStreamDestroy, cudaEventCreate, cudaEventDestroy, cudaStreamBeginCapture,
               cudaStreamIsCapturing, cudaStreamEndCapture, cudaGraphInstantiate,
               cudaGraphLaunch, cudaGraphExecDestroy, cudaGraphDestroy):
        setattr(rt, fn.__name__, fn)
    rt.cudaStreamSynchronize = stream_op
    rt.cudaEventRecord = lambda e, s: stream_op(s)
    rt.cudaEventSynchronize = lambda e: (ok,)
    rt.cudaEventElapsedTime = lambda a, b: (ok, 0.25)
    return rt
