import dataclasses
import importlib
import os

import numpy as np
import pytest
import torch

import profiler.backends.base as base
from profiler.backends import ModelSpec, make_runner
from profiler.backends.base import ThreadPin, try_capture
from profiler.backends.onnxruntime import thread_affinities
from profiler.devices import DeviceDescriptor, load_device
from profiler.protocol import ProtocolConfig, measure
from sgnas.errors import MissingDependencyError, SgnasError

SHAPE = (1, 4, 8, 8)
C_OUT = 6


@pytest.fixture(scope="module")
def conv_weight():
    return np.random.default_rng(1).standard_normal((C_OUT, SHAPE[1], 3, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def conv_onnx(tmp_path_factory, conv_weight):
    """A single 3x3 Conv (padding 1, no bias) as a single-file ONNX model."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    n, c, h, w = SHAPE
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, h, w])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, C_OUT, h, w])
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    graph = helper.make_graph([node], "conv", [x], [y], [numpy_helper.from_array(conv_weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "conv.onnx"
    onnx.save(model, str(path))
    return path


def numpy_conv(x, w):
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # n c h w 3 3
    return np.einsum("nchwij,ocij->nohw", win, w)


def torch_factory(weight):
    def build():
        conv = torch.nn.Conv2d(SHAPE[1], C_OUT, 3, padding=1, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(weight))
        return conv

    return build


def spec(conv_onnx=None, weight=None):
    return ModelSpec(conv_onnx, SHAPE, name="conv",
                     torch_factory=torch_factory(weight) if weight is not None else None)


def check_runner(runner, weight, rtol=1e-4, atol=1e-4):
    with runner:
        t = runner.time_iterations(5)
        assert t.shape == (5,) and t.dtype == np.float64
        assert np.all(t > 0)
        y = runner.run()
    expected = numpy_conv(spec().make_input(), weight)
    np.testing.assert_allclose(y, expected, rtol=rtol, atol=atol)
    assert not runner.is_active


def test_onnxruntime_runner(conv_onnx, conv_weight):
    pytest.importorskip("onnxruntime")
    runner = make_runner(load_device("cpu"), spec(conv_onnx))
    check_runner(runner, conv_weight)
    assert runner.info["provider"] == "CPUExecutionProvider"


def test_onnxruntime_pinning_is_applied_and_restored(conv_onnx, conv_weight):
    pytest.importorskip("onnxruntime")
    if len(base.available_cpus()) < 2 or not hasattr(os, "sched_getaffinity"):
        pytest.skip("needs 2 CPUs and sched_setaffinity")
    before = os.sched_getaffinity(0)
    runner = make_runner(load_device("cpu-2t"), spec(conv_onnx))
    cpus = base.available_cpus()[:2]
    with runner:
        assert os.sched_getaffinity(0) == {cpus[0]}
        assert runner.info["cpus"] == cpus
        assert runner.time_iterations(3).shape == (3,)
    assert os.sched_getaffinity(0) == before


def test_onnxruntime_session_options_carry_threads_and_affinities():
    pytest.importorskip("onnxruntime")
    from profiler.backends.onnxruntime import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(load_device("cpu-2t"), spec())
    so = runner.session_options([0, 1])
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op_thread_affinities") == "2"
    assert not so.enable_profiling


def test_thread_affinities_are_one_based_and_skip_the_calling_thread():
    assert thread_affinities([0]) is None
    assert thread_affinities([0, 1]) == "2"
    assert thread_affinities([3, 5, 6]) == "6;7"


def test_openvino_runner(conv_onnx, conv_weight):
    pytest.importorskip("openvino")
    runner = make_runner(load_device("cpu-openvino"), spec(conv_onnx))
    check_runner(runner, conv_weight)
    assert "f32" in runner.info["precision"] or "float32" in runner.info["precision"]


def test_torch_cpu_runner_restores_thread_count(conv_weight):
    threads = torch.get_num_threads()
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    runner = make_runner(load_device("cpu-torch"), spec(weight=conv_weight))
    check_runner(runner, conv_weight)
    assert torch.get_num_threads() == threads
    assert runner.info["threads"] == 1
    if before is not None:
        assert os.sched_getaffinity(0) == before


def test_measure_on_a_real_runner(conv_onnx):
    pytest.importorskip("onnxruntime")
    cfg = ProtocolConfig(warmup_ms=5, warmup_min_iters=2, rounds=2, min_iters_per_round=3,
                         min_round_ms=1, remeasure=0)
    with make_runner(load_device("cpu"), spec(conv_onnx)) as r:
        m = measure(r, cfg)
    assert m.median_ms > 0 and m.n >= 6 and len(m.round_medians) == 2


def test_missing_runtime_names_the_extra(monkeypatch, conv_onnx):
    real = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in ("onnxruntime", "openvino", "tensorrt"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(MissingDependencyError, match=r"onnxruntime is not installed: pip install 'sgnas\[onnxruntime\]'"):
        make_runner(load_device("cpu"), spec(conv_onnx))
    with pytest.raises(MissingDependencyError, match=r"pip install 'sgnas\[openvino\]'"):
        make_runner(load_device("cpu-openvino"), spec(conv_onnx))
    with pytest.raises(MissingDependencyError, match=r"tensorrt is not installed: pip install 'sgnas\[trt\]'"):
        make_runner(load_device("v100"), spec(conv_onnx))


def test_runner_misuse_and_missing_model_file(tmp_path):
    pytest.importorskip("onnxruntime")
    runner = make_runner(load_device("cpu"), spec())
    with pytest.raises(SgnasError, match="not active"):
        runner.time_iterations(1)
    with pytest.raises(SgnasError, match="needs onnx_path"):
        runner.activate()
    runner = make_runner(load_device("cpu"), spec(tmp_path / "missing.onnx"))
    with pytest.raises(SgnasError, match="not found"):
        runner.activate()
    with pytest.raises(SgnasError, match="torch_factory"):
        with make_runner(load_device("cpu-torch"), spec()):
            pass


def test_model_spec_validates_shape_and_makes_deterministic_input():
    with pytest.raises(SgnasError, match="input shape"):
        ModelSpec(None, (1, 0, 4, 4))
    a, b = spec().make_input(), spec().make_input(np.float16)
    assert a.shape == SHAPE and b.dtype == np.float16
    np.testing.assert_allclose(a, b, atol=1e-2)


def test_thread_pin_restores_mask():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no sched_setaffinity")
    before = os.sched_getaffinity(0)
    pin = ThreadPin([min(before)])
    assert pin.pin()
    assert os.sched_getaffinity(0) == {min(before)}
    pin.restore()
    assert os.sched_getaffinity(0) == before


def _gpu_torch_device(**kw):
    d = dict(name="gpu-torch", description="test", kind="gpu", backend="torch", precision="fp16",
             batch_size=1, cuda_graphs=True, protocol=ProtocolConfig())
    d.update(kw)
    return DeviceDescriptor(**d)


def test_torch_backend_selects_runner_by_kind(monkeypatch, conv_weight):
    from profiler.backends import torch as torch_backend

    assert torch_backend.runner_class(load_device("cpu-torch")) is torch_backend.TorchCpuRunner
    assert torch_backend.runner_class(load_device("h100-torch")) is torch_backend.TorchCudaRunner
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SgnasError, match="needs CUDA"):
        make_runner(load_device("h100-torch"), spec(weight=conv_weight))


def test_try_capture_falls_back_on_error():
    assert try_capture(lambda: "graph") == ("graph", None)

    def boom():
        raise RuntimeError("operation not permitted when stream is capturing")

    graph, reason = try_capture(boom)
    assert graph is None and "not permitted" in reason


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graphs", [True, False])
def test_torch_cuda_runner_on_a_real_gpu(conv_weight, cuda_graphs):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    device = _gpu_torch_device(cuda_graphs=cuda_graphs)
    runner = make_runner(device, spec(weight=conv_weight))
    check_runner(runner, conv_weight, rtol=2e-2, atol=2e-2)
    assert runner.info["cuda_graph"] is cuda_graphs
    fp32 = make_runner(dataclasses.replace(device, precision="fp32"), spec(weight=conv_weight))
    check_runner(fp32, conv_weight, rtol=1e-3, atol=1e-3)
