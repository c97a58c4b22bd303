"""The torch CUDA runner's process-wide flags, without a GPU: set as declared, always restored."""

import dataclasses

import pytest
import torch

from profiler.backends import ModelSpec
from profiler.backends.torch import TorchCudaRunner
from profiler.devices import load_device


@pytest.fixture
def flags():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    yield
    (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.allow_tf32) = saved


def current():
    return (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32)


@pytest.mark.parametrize("precision, during", [("fp32", (True, False, False)),
                                               ("tf32", (True, True, True))])
def test_tf32_as_declared_and_restored_when_activation_fails(monkeypatch, flags, precision, during):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    seen = []

    def factory():
        seen.append(current())
        raise RuntimeError("CUDA error: out of memory")  # activation fails after the flags changed

    device = dataclasses.replace(load_device("h100-torch"), precision=precision)
    runner = TorchCudaRunner(device, ModelSpec(None, (1, 3, 8, 8), torch_factory=factory))
    torch.backends.cuda.matmul.allow_tf32 = not during[1]
    torch.backends.cudnn.allow_tf32 = not during[2]
    before = current()
    with pytest.raises(RuntimeError, match="out of memory"):
        runner.activate()
    assert seen == [during]
    assert current() == before and not runner.is_active


def test_tf32_on_a_gpu_without_it_is_refused(monkeypatch, flags):
    from sgnas.errors import SgnasError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 0))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    device = dataclasses.replace(load_device("v100-torch"), precision="tf32")
    before = current()
    with pytest.raises(SgnasError, match="no TF32"):
        TorchCudaRunner(device, ModelSpec(None, (1, 3, 8, 8), torch_factory=torch.nn.Identity)
                        ).activate()
    assert current() == before


@pytest.mark.gpu
def test_real_cuda_fp32_runs_with_tf32_off():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    device = dataclasses.replace(load_device("h100-torch"), precision="fp32", gpu_model=None)
    spec = ModelSpec(None, (2, 3, 16, 16), torch_factory=lambda: torch.nn.Conv2d(3, 4, 3))
    before = current()
    with TorchCudaRunner(device, spec) as r:
        assert current()[1:] == (False, False)
        assert r.info["tf32"] is False and r.info["precision_built"] == "fp32 (TF32 off)"
        assert r.time_iterations(5).shape == (5,)
    assert current() == before
