"""The TensorRT backend against fakes of the TensorRT 10/11 Python API and of the CUDA binding."""

import dataclasses
import enum
import sys
import types

import numpy as np
import pytest

from profiler.backends import ModelSpec, make_runner
from profiler.backends.cuda_api import CudaApi, CudaError
from profiler.backends.tensorrt import TensorRTRunner, slug, trt_major
from profiler.devices import load_device
from sgnas.errors import SgnasError

SHAPE = (8, 4, 8, 8)
OUT_SHAPE = (8, 6, 8, 8)
GPU = "Tesla V100-SXM2-16GB"


# ------------------------------------------------------------------ fake tensorrt
def make_fake_trt(version: str, calls: list, parse_ok: bool = True, fp16_flag: bool = True):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version

    class Logger:
        WARNING = "warning"

        def __init__(self, severity):
            self.severity = severity

    class MemoryPoolType(enum.Enum):
        WORKSPACE = 0

    members = {"TF32": 1}
    if fp16_flag:
        members["FP16"] = 2
    BuilderFlag = enum.Enum("BuilderFlag", members)

    class TensorIOMode(enum.Enum):
        INPUT = 1
        OUTPUT = 2

    class DataType(enum.Enum):
        FLOAT = 0
        HALF = 1

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return b"NEW:" + self.data

    class Config:
        def __init__(self):
            self.cache = None

        def set_memory_pool_limit(self, pool, size):
            calls.append(("set_memory_pool_limit", pool, size))

        def set_flag(self, flag):
            calls.append(("set_flag", flag))

        def create_timing_cache(self, data):
            calls.append(("create_timing_cache", bytes(data)))
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            calls.append(("set_timing_cache", cache.data, ignore_mismatch))
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class Network:
        pass

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            calls.append(("create_network", flags))
            return Network()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            calls.append(("build_serialized_network",))
            return b"ENGINE"

    class ParserError:
        def __str__(self):
            return "In node 0 (Conv): unsupported"

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = 0 if parse_ok else 1

        def parse_from_file(self, path):
            calls.append(("parse_from_file", path))
            return parse_ok

        def get_error(self, i):
            return ParserError()

    class Context:
        def __init__(self):
            self.addresses = {}

        def set_tensor_address(self, name, ptr):
            calls.append(("set_tensor_address", name, ptr))
            self.addresses[name] = ptr

        def set_input_shape(self, name, shape):
            calls.append(("set_input_shape", name, tuple(shape)))

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
            return SHAPE if name == "x" else OUT_SHAPE

        def get_tensor_dtype(self, name):
            return DataType.FLOAT

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            assert data == b"ENGINE"
            return Engine()

    def nptype(dtype):
        return {DataType.FLOAT: np.float32, DataType.HALF: np.float16}[dtype]

    for obj in (Logger, MemoryPoolType, BuilderFlag, TensorIOMode, DataType, Builder, OnnxParser,
                Runtime, nptype):
        setattr(trt, obj.__name__, obj)
    return trt


class FakeCuda(CudaApi):
    name = "fake"
    STREAM = 0xBEEF

    def __init__(self, calls, capture_fails=False):
        self.calls = calls
        self.capture_fails = capture_fails
        self.next_ptr = 0x1000
        self.live = set()
        self.events = 0
        self.record_order = []
        self.streams_destroyed = 0
        self.htod = {}

    def device_name(self):
        return GPU

    def malloc(self, nbytes):
        ptr = self.next_ptr
        self.next_ptr += 0x1000
        self.live.add(ptr)
        return ptr

    def free(self, ptr):
        self.live.remove(ptr)

    def memcpy_htod(self, ptr, host):
        self.htod[ptr] = host.copy()

    def memcpy_dtoh(self, host, ptr):
        host[...] = 7.0

    def stream_create(self):
        return ("stream", self.STREAM)

    def stream_handle(self, stream):
        return stream[1]

    def stream_synchronize(self, stream):
        pass

    def stream_destroy(self, stream):
        self.streams_destroyed += 1

    def event_create(self):
        self.events += 1
        return self.events

    def event_record(self, event, stream):
        assert stream == ("stream", self.STREAM)
        self.record_order.append(event)

    def event_elapsed_ms(self, start, end):
        return 0.5 + 0.001 * start  # distinct per event pair

    def event_destroy(self, event):
        pass

    def capture(self, stream, enqueue):
        self.calls.append(("begin_capture",))
        enqueue()
        if self.capture_fails:
            raise CudaError("cudaStreamEndCapture: operation not permitted when stream is capturing")
        self.calls.append(("end_capture",))
        return "graph"

    def graph_launch(self, graph, stream):
        self.calls.append(("graph_launch", graph, stream))

    def graph_destroy(self, graph):
        self.calls.append(("graph_destroy", graph))


@pytest.fixture
def onnx_files(tmp_path):
    fp32, fp16 = tmp_path / "block.onnx", tmp_path / "block-fp16.onnx"
    fp32.write_bytes(b"fp32")
    fp16.write_bytes(b"fp16")
    return fp32, fp16


def install(monkeypatch, version, **kw):
    calls = []
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt(version, calls, **kw))
    return calls


def names(calls, what):
    return [c for c in calls if c[0] == what]


def test_build_run_and_time_on_trt10_fp16(monkeypatch, tmp_path, onnx_files):
    calls = install(monkeypatch, "10.9.0.34")
    cache = tmp_path / "cache" / f"timing-{slug(GPU)}-trt10.9.0.34.cache"
    cache.parent.mkdir()
    cache.write_bytes(b"OLD")
    cuda = FakeCuda(calls)
    device = load_device("v100")
    runner = TensorRTRunner(device, ModelSpec(onnx_files[0], SHAPE), cache_dir=tmp_path / "cache",
                            cuda=cuda)
    with runner:
        trt = sys.modules["tensorrt"]
        assert ("create_network", 0) in calls
        assert ("set_memory_pool_limit", trt.MemoryPoolType.WORKSPACE, 1024 << 20) in calls
        assert ("set_flag", trt.BuilderFlag.FP16) in calls
        assert ("create_timing_cache", b"OLD") in calls
        assert ("set_timing_cache", b"OLD", False) in calls
        assert cache.read_bytes() == b"NEW:OLD"  # saved after the build
        assert calls.index(("create_timing_cache", b"OLD")) < calls.index(("build_serialized_network",))
        assert names(calls, "parse_from_file") == [("parse_from_file", str(onnx_files[0]))]
        addressed = {c[1] for c in names(calls, "set_tensor_address")}
        assert addressed == {"x", "y"}
        assert len(cuda.live) == 2
        assert cuda.htod[runner._buffers["x"]].shape == SHAPE
        # one plain enqueue before capture, one inside the capture, all on the private stream
        executes = names(calls, "execute_async_v3")
        assert executes == [("execute_async_v3", FakeCuda.STREAM)] * 2
        assert calls.index(executes[0]) < calls.index(("begin_capture",))
        assert runner.info["cuda_graph"] is True
        assert runner.info["timing_cache_hit"] is True

        before = len(names(calls, "graph_launch"))
        t = runner.time_iterations(4)
        assert len(names(calls, "graph_launch")) == before + 4
        assert len(names(calls, "execute_async_v3")) == 2  # replay, no new enqueue
        assert t.shape == (4,)
        starts = cuda.record_order[0::2]
        np.testing.assert_allclose(t, [0.5 + 0.001 * s for s in starts])
        np.testing.assert_array_equal(runner.run(), np.full(OUT_SHAPE, 7.0, dtype=np.float32))
    assert cuda.live == set()  # every buffer freed
    assert cuda.streams_destroyed == 1
    assert ("graph_destroy", "graph") in calls


@pytest.mark.parametrize("has_fp16_flag", [False, True])
def test_trt11_fp16_uses_the_half_graph_and_no_flag(monkeypatch, tmp_path, onnx_files, has_fp16_flag):
    calls = install(monkeypatch, "11.0.0.1", fp16_flag=has_fp16_flag)
    runner = TensorRTRunner(load_device("h100"), ModelSpec(onnx_files[0], SHAPE,
                                                           onnx_path_fp16=onnx_files[1]),
                            cache_dir=tmp_path, cuda=FakeCuda(calls))
    with runner:
        assert names(calls, "set_flag") == []
        assert names(calls, "parse_from_file") == [("parse_from_file", str(onnx_files[1]))]
        assert ("create_timing_cache", b"") in calls  # no cache file yet
    assert (tmp_path / f"timing-{slug(GPU)}-trt11.0.0.1.cache").read_bytes() == b"NEW:"


def test_trt11_fp16_without_half_graph_is_refused(monkeypatch, onnx_files):
    calls = install(monkeypatch, "11.1.0", fp16_flag=False)
    runner = TensorRTRunner(load_device("h100"), ModelSpec(onnx_files[0], SHAPE),
                            cuda=FakeCuda(calls))
    with pytest.raises(SgnasError, match="onnx_path_fp16"):
        runner.activate()
    assert not runner.is_active


def test_trt10_fp32_sets_no_flag_and_no_cache_without_cache_dir(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.3.0")
    device = dataclasses.replace(load_device("a100"), precision="fp32")
    with TensorRTRunner(device, ModelSpec(onnx_files[0], SHAPE), cuda=FakeCuda(calls)):
        assert names(calls, "set_flag") == []
        assert names(calls, "create_timing_cache") == []


def test_capture_failure_falls_back_to_plain_enqueue(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    cuda = FakeCuda(calls, capture_fails=True)
    runner = TensorRTRunner(load_device("t4"), ModelSpec(onnx_files[0], SHAPE), cuda=cuda)
    with runner:
        assert runner.info["cuda_graph"] is False
        assert "operation not permitted" in runner.info["cuda_graph_error"]
        before = len(names(calls, "execute_async_v3"))
        t = runner.time_iterations(3)
        assert len(names(calls, "execute_async_v3")) == before + 3
        assert names(calls, "graph_launch") == []
        assert t.shape == (3,) and np.all(t > 0)


def test_no_cuda_graphs_when_the_device_disables_them(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    device = dataclasses.replace(load_device("t4"), cuda_graphs=False)
    with TensorRTRunner(device, ModelSpec(onnx_files[0], SHAPE), cuda=FakeCuda(calls)) as r:
        assert names(calls, "begin_capture") == []
        assert r.info["cuda_graph"] is False


def test_parser_errors_are_reported(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0", parse_ok=False)
    cuda = FakeCuda(calls)
    runner = TensorRTRunner(load_device("v100"), ModelSpec(onnx_files[0], SHAPE), cuda=cuda)
    with pytest.raises(SgnasError, match=r"cannot parse .*Conv\): unsupported"):
        runner.activate()
    assert cuda.live == set()


def test_old_tensorrt_is_refused(monkeypatch, onnx_files):
    install(monkeypatch, "8.6.1")
    with pytest.raises(SgnasError, match="TensorRT 10 or newer"):
        make_runner(load_device("v100"), ModelSpec(onnx_files[0], SHAPE))


def test_make_runner_picks_tensorrt(monkeypatch, onnx_files):
    install(monkeypatch, "10.9.0")
    assert isinstance(make_runner(load_device("v100"), ModelSpec(onnx_files[0], SHAPE)),
                      TensorRTRunner)


def test_helpers():
    assert trt_major("10.9.0.34") == 10 and trt_major("11.0") == 11
    assert slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    with pytest.raises(SgnasError):
        trt_major("abc")


def test_cuda_api_selection_reports_every_candidate(monkeypatch):
    import profiler.backends.cuda_api as cuda_api

    def fail(name):
        def make():
            raise CudaError(f"{name} unavailable")
        return make

    monkeypatch.setattr(cuda_api, "CANDIDATES", tuple((n, fail(n)) for n in ("a", "b", "c")))
    with pytest.raises(SgnasError, match=r"a: a unavailable; b: b unavailable; c: c unavailable"):
        cuda_api.select_cuda_api()
    ok = FakeCuda([])
    monkeypatch.setattr(cuda_api, "CANDIDATES", (("a", fail("a")), ("b", lambda: ok)))
    assert cuda_api.select_cuda_api() is ok


def test_cuda_python_wrapper_checks_errors():
    """CudaPythonApi against a fake runtime module (tuple returns, error codes)."""
    from profiler.backends.cuda_api import CudaPythonApi

    class Err(enum.IntEnum):
        cudaSuccess = 0
        cudaErrorInvalidValue = 1

    rt = types.SimpleNamespace(
        cudaError_t=Err,
        cudaGetErrorString=lambda e: (Err.cudaSuccess, b"invalid argument"),
        cudaMalloc=lambda n: (Err.cudaSuccess, 0x42) if n > 0 else (Err.cudaErrorInvalidValue, None),
        cudaEventSynchronize=lambda e: (Err.cudaSuccess,),
        cudaEventElapsedTime=lambda a, b: (Err.cudaSuccess, 1.25),
    )
    api = CudaPythonApi(rt)
    assert api.malloc(16) == 0x42
    with pytest.raises(CudaError, match="cudaMalloc: invalid argument"):
        api.malloc(0)
    assert api.event_elapsed_ms(1, 2) == 1.25


def _real_trt():
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.trt
def test_real_tensorrt_engine(tmp_path):
    if not _real_trt():
        pytest.skip("needs TensorRT and a CUDA GPU")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((6, 4, 3, 3)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(OUT_SHAPE))
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "g", [x], [y], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "conv.onnx"
    onnx.save(model, str(path))
    device = dataclasses.replace(load_device("h100"), precision="fp32", gpu_model=None)
    spec = ModelSpec(path, SHAPE)
    with make_runner(device, spec, cache_dir=tmp_path) as r:
        t = r.time_iterations(10)
        out = r.run()
    assert t.shape == (10,) and np.all(t > 0)
    import torch

    ref = torch.nn.functional.conv2d(torch.from_numpy(spec.make_input()), torch.from_numpy(w),
                                     padding=1).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-2, atol=1e-2)
    assert list(tmp_path.glob("timing-*.cache"))
