"""The TensorRT backend against fakes of the TensorRT 10/11 Python API and of the CUDA binding."""

import dataclasses
import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from profiler.backends import ModelSpec, make_runner
from profiler.backends import tensorrt as trt_backend
from profiler.backends.cuda_api import CudaError, CudaPythonApi, PyCudaApi
from profiler.backends.tensorrt import TensorRTRunner, slug, trt_major
from profiler.devices import load_device
from sgnas.errors import SgnasError


def _fakes():
    name = "sgnas_test_trt_fakes"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("trt_fakes.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


F = _fakes()
SHAPE, OUT_SHAPE, GPU, FakeCuda, Knobs = F.SHAPE, F.OUT_SHAPE, F.GPU, F.FakeCuda, F.Knobs


@pytest.fixture
def onnx_files(tmp_path):
    fp32, fp16 = tmp_path / "block.onnx", tmp_path / "block-fp16.onnx"
    fp32.write_bytes(b"fp32")
    fp16.write_bytes(b"fp16")
    return fp32, fp16


@pytest.fixture(autouse=True)
def no_wheel_metadata(monkeypatch):
    """No TensorRT wheel is installed here; tests say which CUDA it was built for when it matters."""
    monkeypatch.setattr(trt_backend, "wheel_cuda_major", lambda major: 13 if major >= 11 else 12,
                        raising=False)


def install(monkeypatch, version, **kw):
    calls = []
    monkeypatch.setitem(sys.modules, "tensorrt", F.make_fake_trt(version, calls, Knobs(**kw)))
    return calls


def names(calls, what):
    return [c for c in calls if c[0] == what]


def spec(onnx_files, shape=SHAPE):
    return ModelSpec(onnx_files[0], shape, onnx_path_fp16=onnx_files[1])


def gpu(name, **changes):
    return dataclasses.replace(load_device(name), **changes)


# ------------------------------------------------------------------ the main flow
def test_build_run_and_time_on_v100_with_trt_10_4_fp16(monkeypatch, tmp_path, onnx_files):
    calls = install(monkeypatch, "10.4.0.26")
    cache_dir = tmp_path / "cache"
    cache = cache_dir / f"timing-{slug(GPU)}-trt10.4.0.26.cache"
    cache_dir.mkdir()
    cache.write_bytes(b"TC:gpu0:OLD")
    cuda = FakeCuda(calls, cc=(7, 0))
    runner = TensorRTRunner(load_device("v100"), spec(onnx_files), cache_dir=cache_dir, cuda=cuda)
    with runner:
        trt = sys.modules["tensorrt"]
        strongly_typed = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        assert ("create_network", strongly_typed) in calls
        assert ("set_memory_pool_limit", trt.MemoryPoolType.WORKSPACE, 1024 << 20) in calls
        assert ("set_flag", trt.BuilderFlag.FP16) not in calls
        assert ("set_timing_cache", b"OLD", False) in calls
        assert cache.read_bytes() == b"TC:gpu0:OLD+"  # saved after the build
        assert names(calls, "parse_from_file") == [("parse_from_file", str(onnx_files[1]))]
        assert {c[1] for c in names(calls, "set_tensor_address")} == {"x", "y"}
        assert len(cuda.live) == 2
        assert cuda.htod[runner._buffers["x"]].shape == SHAPE
        # the stream exists before the input copy, which runs on it
        assert calls.index(("stream_create",)) < calls.index(names(calls, "memcpy_htod")[0])
        executes = names(calls, "execute_async_v3")
        assert executes == [("execute_async_v3", FakeCuda.STREAM)] * 2
        assert calls.index(executes[0]) < calls.index(("begin_capture",))
        assert runner.info["cuda_graph"] is True and runner.info["timing_cache_hit"] is True
        assert runner.info["precision_built"].startswith("fp16 (strongly typed")
        assert runner.info["compute_capability"] == "7.0"

        before = len(names(calls, "graph_launch"))
        t = runner.time_iterations(4)
        assert len(names(calls, "graph_launch")) == before + 4
        assert len(names(calls, "execute_async_v3")) == 2  # replay, no new enqueue
        np.testing.assert_allclose(t, [0.5 + 0.001 * s for s in cuda.record_order[0::2]])
        np.testing.assert_array_equal(runner.run(), np.full(OUT_SHAPE, 7.0, dtype=np.float32))
    assert cuda.live == set() and cuda.streams_destroyed == 1
    assert ("graph_destroy", "graph") in calls


# ------------------------------------------------------------------ 1. support matrix
@pytest.mark.parametrize("version", ["10.5.0", "10.9.0.34", "11.0.0"])
def test_v100_needs_tensorrt_10_0_to_10_4_and_says_what_to_install(monkeypatch, onnx_files, version):
    calls = install(monkeypatch, version)
    with pytest.raises(SgnasError, match=r"Volta .*needs TensorRT 10\.0-10\.4.*pip install "
                                         r"'tensorrt-cu12>=10\.0,<10\.5'") as exc:
        make_runner(load_device("v100"), spec(onnx_files))
    assert "\n" not in str(exc.value) and "v100-torch" in str(exc.value)
    assert calls == []  # refused before building


def test_compute_capability_read_from_the_gpu_is_checked_before_building(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    cuda = FakeCuda(calls, cc=(7, 0))  # a V100 behind a descriptor that names no GPU
    runner = TensorRTRunner(gpu("a100", gpu_model=None), spec(onnx_files), cuda=cuda)
    with pytest.raises(SgnasError, match=r"compute capability 7\.0.*needs TensorRT 10\.0-10\.4"):
        runner.activate()
    assert names(calls, "create_network") == [] and cuda.live == set()


def test_tf32_on_a_gpu_without_it_is_refused(monkeypatch, onnx_files):
    install(monkeypatch, "10.9.0")
    with pytest.raises(SgnasError, match="has no TF32"):
        TensorRTRunner(gpu("t4", precision="tf32"), spec(onnx_files), cuda=FakeCuda([]))


# ------------------------------------------------------------------ 2./3. precision
@pytest.mark.parametrize("version", ["10.9.0", "11.1.0"])
def test_fp16_is_a_strongly_typed_half_graph_on_10_and_11(monkeypatch, tmp_path, onnx_files, version):
    calls = install(monkeypatch, version)
    runner = TensorRTRunner(load_device("h100"), spec(onnx_files), cache_dir=tmp_path,
                            cuda=FakeCuda(calls, cc=(9, 0), runtime=13 if version >= "11" else 12))
    with runner:
        assert names(calls, "set_flag") == []  # no FP16 (weak typing) flag on either
        assert names(calls, "parse_from_file") == [("parse_from_file", str(onnx_files[1]))]
        trt = sys.modules["tensorrt"]
        flags = 0 if version.startswith("11") else 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        assert names(calls, "create_network") == [("create_network", flags)]
        assert runner.info["strongly_typed"] is True
    assert (tmp_path / f"timing-{slug(GPU)}-trt{version}.cache").read_bytes() == b"TC:gpu0:+"


@pytest.mark.parametrize("version", ["10.9.0", "11.1.0"])
def test_fp16_without_half_graph_is_refused(monkeypatch, onnx_files, version):
    calls = install(monkeypatch, version)
    runner = TensorRTRunner(load_device("h100"), ModelSpec(onnx_files[0], SHAPE),
                            cuda=FakeCuda(calls, cc=(9, 0)))
    with pytest.raises(SgnasError, match="onnx_path_fp16"):
        runner.activate()
    assert not runner.is_active and names(calls, "build_serialized_network") == []


def test_fp32_clears_tf32_and_records_it(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.3.0")
    with TensorRTRunner(gpu("a100", precision="fp32"), spec(onnx_files),
                        cuda=FakeCuda(calls, cc=(8, 0))) as r:
        trt = sys.modules["tensorrt"]
        assert ("clear_flag", trt.BuilderFlag.TF32) in calls
        assert names(calls, "set_flag") == [] and names(calls, "create_timing_cache") == []
        assert names(calls, "parse_from_file") == [("parse_from_file", str(onnx_files[0]))]
        assert r.info["tf32"] is False and r.info["precision_built"] == "fp32 (strongly typed, TF32 off)"


def test_tf32_sets_the_flag(monkeypatch, onnx_files):
    calls = install(monkeypatch, "11.0.0")
    with TensorRTRunner(gpu("h100", precision="tf32"), spec(onnx_files),
                        cuda=FakeCuda(calls, cc=(9, 0), runtime=13)) as r:
        assert ("set_flag", sys.modules["tensorrt"].BuilderFlag.TF32) in calls
        assert r.info["tf32"] is True


def test_fake_trt_has_version_true_flags(monkeypatch):
    assert hasattr(F.make_fake_trt("10.9.0", []).BuilderFlag, "FP16")
    assert not hasattr(F.make_fake_trt("11.0.0", []).BuilderFlag, "FP16")


# ------------------------------------------------------------------ 4. stream-ordered copies
def test_input_and_output_copies_run_on_the_private_stream(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    cuda = FakeCuda(calls, cc=(7, 5))
    with TensorRTRunner(load_device("t4"), spec(onnx_files), cuda=cuda) as r:
        stream = ("stream", FakeCuda.STREAM)
        assert names(calls, "memcpy_htod") == [("memcpy_htod", r._buffers["x"],
                                                int(np.prod(SHAPE)) * 4, stream)]
        assert calls.index(("stream_create",)) < calls.index(names(calls, "memcpy_htod")[0])
        assert r.run().shape == OUT_SHAPE
        assert names(calls, "memcpy_dtoh")[0][3] == stream


# ------------------------------------------------------------------ 5. checked returns, clean-up
@pytest.mark.parametrize("knob, call", [("address_ok", "set_tensor_address"),
                                        ("context_none", "create_execution_context")])
def test_failed_tensorrt_calls_are_one_line_errors_and_free_everything(monkeypatch, onnx_files,
                                                                       knob, call):
    calls = install(monkeypatch, "10.9.0", **{knob: knob == "context_none"})
    cuda = FakeCuda(calls, cc=(7, 5))
    runner = TensorRTRunner(load_device("t4"), spec(onnx_files), cuda=cuda)
    with pytest.raises(SgnasError, match=rf"TensorRT {call}.* failed") as exc:
        runner.activate()
    assert "\n" not in str(exc.value)
    assert cuda.live == set() and cuda.streams_destroyed == 1


def test_engine_input_shape_differing_from_the_model_is_refused(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0", engine_input_shape=(16, 4, 8, 8))
    cuda = FakeCuda(calls, cc=(7, 5))
    runner = TensorRTRunner(load_device("t4"), spec(onnx_files), cuda=cuda)
    with pytest.raises(SgnasError, match=r"engine's input x has shape \(16, 4, 8, 8\), the model's"):
        runner.activate()
    assert names(calls, "memcpy_htod") == [] and cuda.live == set()


def test_corrupt_timing_cache_is_rebuilt_with_a_warning(monkeypatch, tmp_path, onnx_files, caplog):
    calls = install(monkeypatch, "10.9.0")
    cache = tmp_path / f"timing-{slug(GPU)}-trt10.9.0.cache"
    cache.write_bytes(b"\x00garbage")
    with caplog.at_level(logging.WARNING):
        with TensorRTRunner(load_device("t4"), spec(onnx_files), cache_dir=tmp_path,
                            cuda=FakeCuda(calls, cc=(7, 5))) as r:
            assert r.info["timing_cache_hit"] is False
    assert "corrupt" in caplog.text
    assert cache.read_bytes() == b"TC:gpu0:+"


def test_mismatching_timing_cache_is_replaced(monkeypatch, tmp_path, onnx_files, caplog):
    calls = install(monkeypatch, "10.9.0")
    cache = tmp_path / f"timing-{slug(GPU)}-trt10.9.0.cache"
    cache.write_bytes(b"TC:othergpu:X")
    with caplog.at_level(logging.WARNING):
        with TensorRTRunner(load_device("t4"), spec(onnx_files), cache_dir=tmp_path,
                            cuda=FakeCuda(calls, cc=(7, 5))) as r:
            assert r.info["timing_cache_hit"] is False
    assert "does not match" in caplog.text and cache.read_bytes() == b"TC:gpu0:+"


def test_a_failing_free_does_not_skip_the_rest(monkeypatch, onnx_files, caplog):
    calls = install(monkeypatch, "10.9.0")
    cuda = FakeCuda(calls, cc=(7, 5), free_fails={0x1000})  # the first buffer
    runner = TensorRTRunner(load_device("t4"), spec(onnx_files), cuda=cuda)
    runner.activate()
    with caplog.at_level(logging.WARNING):
        runner.deactivate()
    assert cuda.live == set() and cuda.streams_destroyed == 1
    assert "illegal memory access" in caplog.text and not runner.is_active


# ------------------------------------------------------------------ 6. capture
def test_capture_failure_falls_back_to_plain_enqueue(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    cuda = FakeCuda(calls, capture_fails=True, cc=(7, 5))
    with TensorRTRunner(load_device("t4"), spec(onnx_files), cuda=cuda) as runner:
        assert runner.info["cuda_graph"] is False
        assert "operation not permitted" in runner.info["cuda_graph_error"]
        before = len(names(calls, "execute_async_v3"))
        t = runner.time_iterations(3)
        assert len(names(calls, "execute_async_v3")) == before + 3
        assert names(calls, "graph_launch") == [] and t.shape == (3,)


def test_no_cuda_graphs_when_the_device_disables_them(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    with TensorRTRunner(gpu("t4", cuda_graphs=False), spec(onnx_files),
                        cuda=FakeCuda(calls, cc=(7, 5))) as r:
        assert names(calls, "begin_capture") == [] and r.info["cuda_graph"] is False


class FakePyCudaDriver:
    """pycuda.driver as released: streams without begin_capture."""

    class Stream:
        def __init__(self):
            self.handle = 0xABC

        def synchronize(self):
            pass

    class Event:
        def record(self, stream):
            pass

        def synchronize(self):
            pass

        def time_since(self, other):
            return 0.3

    class _Alloc(int):
        def free(self):
            pass

    class Context:
        @staticmethod
        def get_device():
            class Device:
                def name(self):
                    return "Tesla T4"

                def compute_capability(self):
                    return (7, 5)
            return Device()

    def __init__(self):
        self.copies = []
        self.next = 0x100

    def mem_alloc(self, n):
        self.next += 0x100
        return self._Alloc(self.next)

    def memcpy_htod_async(self, ptr, host, stream):
        self.copies.append(("htod", stream))

    def memcpy_dtoh_async(self, host, ptr, stream):
        self.copies.append(("dtoh", stream))

    def get_version(self):
        return (12, 4, 0)


def test_pycuda_without_stream_capture_says_so_and_times_plain_enqueues(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    drv = FakePyCudaDriver()
    api = PyCudaApi(drv)
    assert api.supports_capture is False
    with pytest.raises(CudaError, match="no stream capture"):
        api.capture(drv.Stream(), lambda: None)
    with TensorRTRunner(load_device("t4"), spec(onnx_files), cuda=api) as r:
        assert r.info["cuda_graph"] is False
        assert "pycuda binding here cannot capture" in r.info["cuda_graph_error"]
        r.time_iterations(2)
    assert [kind for kind, _ in drv.copies] == ["htod"]
    assert all(isinstance(s, FakePyCudaDriver.Stream) for _, s in drv.copies)


# ------------------------------------------------------------------ 7. dynamic shapes
def test_dynamic_input_gets_an_optimization_profile_pinned_to_the_model(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0", network_input_shape=(-1, 4, 8, 8),
                    engine_input_shape=(-1, 4, 8, 8))
    with TensorRTRunner(load_device("t4"), spec(onnx_files), cuda=FakeCuda(calls, cc=(7, 5))) as r:
        assert names(calls, "add_optimization_profile") == [
            ("add_optimization_profile", {"x": (SHAPE, SHAPE, SHAPE)})]
        assert ("set_input_shape", "x", SHAPE) in calls
        assert r.info["optimization_profile"] is True


def test_failed_set_input_shape_is_an_error(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0", network_input_shape=(-1, 4, 8, 8),
                    engine_input_shape=(-1, 4, 8, 8), input_shape_ok=False)
    cuda = FakeCuda(calls, cc=(7, 5))
    with pytest.raises(SgnasError, match=r"set_input_shape\(x\) failed"):
        TensorRTRunner(load_device("t4"), spec(onnx_files), cuda=cuda).activate()
    assert cuda.live == set()


# ------------------------------------------------------------------ 8. CudaPythonApi for real
def test_cuda_python_runtime_end_to_end_with_thread_local_capture(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    rt = F.make_fake_cudart(cc=(8, 0), runtime_version=12080)
    api = CudaPythonApi(rt)
    with TensorRTRunner(load_device("a100"), spec(onnx_files), cuda=api) as r:
        assert r.info["cuda_graph"] is True and r.info["gpu"] == "NVIDIA A100-SXM4-40GB"
        assert rt.state.modes == [rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal]
        stream = r._stream
        assert [c[2] for c in rt.state.copies] == [stream]  # the input copy, on the stream
        launches = rt.state.launches
        r.time_iterations(3)
        assert rt.state.launches == launches + 3
        r.run()
    s = rt.state
    assert s.sizes == {} and s.streams == set() and s.graphs == set() and s.execs == set()
    assert s.events == set()


def test_cuda_python_invalidated_capture_is_ended_and_the_error_cleared(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    rt = F.make_fake_cudart(invalidate_capture=True)
    with TensorRTRunner(load_device("a100"), spec(onnx_files), cuda=CudaPythonApi(rt)) as r:
        assert r.info["cuda_graph"] is False
        assert "cudaStreamEndCapture" in r.info["cuda_graph_error"]
        assert rt.state.capturing == {}  # the stream left capture mode
        assert rt.state.last_error == F.Err.cudaSuccess  # the sticky error was cleared
        r.time_iterations(2)  # plain enqueues still work


def test_cuda_python_captures_in_thread_local_mode():
    rt = F.make_fake_cudart()
    api = CudaPythonApi(rt)
    stream = api.stream_create()
    graph = api.capture(stream, lambda: None)
    assert rt.state.modes == [rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal]
    api.graph_launch(graph, stream)
    api.graph_destroy(graph)
    assert rt.state.graphs == set() and rt.state.execs == set() and rt.state.launches == 1


def test_cuda_python_invalidated_capture_clears_the_sticky_error():
    rt = F.make_fake_cudart(invalidate_capture=True)
    api = CudaPythonApi(rt)
    stream = api.stream_create()
    with pytest.raises(CudaError, match="cudaStreamEndCapture: cudaErrorStreamCaptureInvalidated"):
        api.capture(stream, lambda: None)
    assert rt.state.capturing == {} and rt.state.last_error == F.Err.cudaSuccess


def test_cuda_python_enqueue_failure_during_capture_recovers():
    rt = F.make_fake_cudart()
    api = CudaPythonApi(rt)
    stream = api.stream_create()

    def enqueue():
        raise SgnasError("TensorRT execute_async_v3 failed")

    with pytest.raises(SgnasError):
        api.capture(stream, enqueue)
    assert rt.state.capturing == {} and rt.state.graphs == set()


def test_cuda_python_wrapper_checks_errors():
    rt = F.make_fake_cudart()
    api = CudaPythonApi(rt)
    ptr = api.malloc(16)
    with pytest.raises(CudaError, match="cudaMalloc: cudaErrorInvalidValue"):
        api.malloc(0)
    stream = api.stream_create()
    with pytest.raises(CudaError, match="cudaMemcpyAsync"):
        api.memcpy_htod(ptr, np.zeros(8, dtype=np.float32), stream)  # 32 bytes into 16
    api.memcpy_htod(ptr, np.zeros(4, dtype=np.float32), stream)
    assert api.event_elapsed_ms(1, 2) == 0.25 and api.compute_capability() == (8, 0)
    assert api.runtime_major() == 12


# ------------------------------------------------------------------ 9. CUDA majors agree
def test_cuda_python_13_beside_a_cuda_12_tensorrt_is_refused(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0")
    rt = F.make_fake_cudart(cc=(8, 0), runtime_version=13000)
    runner = TensorRTRunner(load_device("a100"), spec(onnx_files), cuda=CudaPythonApi(rt))
    with pytest.raises(SgnasError, match=r"built for CUDA 12 .*pip install 'cuda-python>=12,<13'"):
        runner.activate()
    assert names(calls, "create_network") == [] and rt.state.sizes == {}


def test_trt_extra_pins_cuda_python_to_the_tensorrt_cuda_major():
    import tomllib

    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, major in (("trt", 12), ("trt-volta", 12), ("trt-cu13", 13)):
        reqs = extras[extra]
        assert any(r.startswith(f"tensorrt-cu{major}") for r in reqs), reqs
        assert f"cuda-python>={major},<{major + 1}" in reqs, reqs
    assert "<10.5" in next(r for r in extras["trt-volta"] if r.startswith("tensorrt"))


# ------------------------------------------------------------------ misc
def test_parser_errors_are_reported(monkeypatch, onnx_files):
    calls = install(monkeypatch, "10.9.0", parse_ok=False)
    cuda = FakeCuda(calls, cc=(7, 5))
    runner = TensorRTRunner(load_device("t4"), spec(onnx_files), cuda=cuda)
    with pytest.raises(SgnasError, match=r"cannot parse .*Conv\): unsupported"):
        runner.activate()
    assert cuda.live == set()


def test_old_tensorrt_is_refused(monkeypatch, onnx_files):
    install(monkeypatch, "8.6.1")
    with pytest.raises(SgnasError, match="TensorRT 10 or newer"):
        make_runner(load_device("t4"), spec(onnx_files))


def test_make_runner_picks_tensorrt(monkeypatch, onnx_files):
    install(monkeypatch, "10.9.0")
    assert isinstance(make_runner(load_device("t4"), spec(onnx_files)), TensorRTRunner)


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
    assert ok.skipped == ["a: a unavailable"]  # the fallback is recorded, not silent


def _real_trt():
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.trt
def test_real_tensorrt_engine(tmp_path, monkeypatch):
    if not _real_trt():
        pytest.skip("needs TensorRT and a CUDA GPU")
    monkeypatch.undo()  # the real wheel metadata
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
    device = gpu("h100", precision="fp32", gpu_model=None)
    model_spec = ModelSpec(path, SHAPE)
    with make_runner(device, model_spec, cache_dir=tmp_path) as r:
        t = r.time_iterations(10)
        out = r.run()
        assert r.info["tf32"] is False
    assert t.shape == (10,) and np.all(t > 0)
    import torch

    ref = torch.nn.functional.conv2d(torch.from_numpy(model_spec.make_input()), torch.from_numpy(w),
                                     padding=1).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3)
    assert list(tmp_path.glob("timing-*.cache"))
