"""PyTorch eager on CPU and PyTorch on CUDA (with CUDA graphs), from ``ModelSpec.torch_factory``.

CPU: ``torch.set_num_threads(threads)`` (restored afterwards), optional pinning of the calling thread
to the device's CPUs (intra-op workers started later inherit the mask), ``torch.inference_mode`` and
``perf_counter_ns`` around the forward call.

CUDA: the module runs in eval mode (half precision for fp16 devices) on a private non-default
stream, with ``cudnn.benchmark`` on and TF32 set as declared (``fp32``: TF32 off in matmul and cuDNN,
which PyTorch otherwise allows in convolutions; ``tf32``: on); these process-wide flags are restored
on deactivation and also when activation fails. When the device asks for CUDA graphs, one
forward is captured with ``torch.cuda.CUDAGraph`` after a warm-up on the side stream, and replayed;
if capture fails the runner falls back to eager launches and records that in ``info``. Latencies
come from CUDA events recorded on the private stream around each iteration; the input lives on the
GPU, so no host-device copy is timed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sgnas.errors import SgnasError

from .base import (
    ModelSpec,
    Runner,
    ThreadPin,
    cpus_for,
    refuse_fp16_on_cpu,
    register_backend,
    try_capture,
)


def _first(out: Any) -> torch.Tensor:
    while isinstance(out, (tuple, list)):
        out = out[0]
    if isinstance(out, dict):
        out = next(iter(out.values()))
    return out


def _build(model: ModelSpec) -> torch.nn.Module:
    if model.torch_factory is None:
        raise SgnasError(f"model {model.name}: the torch backend needs ModelSpec.torch_factory")
    module = model.torch_factory()
    if not isinstance(module, torch.nn.Module):
        raise SgnasError(f"model {model.name}: torch_factory returned {type(module).__name__}, "
                         "not a torch.nn.Module")
    return module.eval()


class TorchCpuRunner(Runner):
    """PyTorch eager on CPU."""

    backend = "torch"

    def __init__(self, device, model: ModelSpec, cache_dir: Path | None = None) -> None:
        super().__init__(device, model)
        refuse_fp16_on_cpu(device, self.backend)
        self._module: torch.nn.Module | None = None
        self._x: torch.Tensor | None = None
        self._saved_threads: int | None = None
        self._pin: ThreadPin | None = None

    def activate_impl(self) -> None:
        module = _build(self.model)
        threads = int(self.device.threads or 1)
        cpus = cpus_for(self.device) if self.device.pin_threads else None
        self._saved_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        if cpus is not None:
            self._pin = ThreadPin(cpus)
            self._pin.pin()
        self._module = module
        self._x = torch.from_numpy(self.model.make_input(np.float32))
        self.info.update(device="cpu", torch=torch.__version__, threads=threads, cpus=cpus)

    def deactivate_impl(self) -> None:
        self._module = None
        self._x = None
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None
        if self._pin is not None:
            self._pin.restore()
            self._pin = None

    def time_impl(self, n: int) -> np.ndarray:
        module, x, clock = self._module, self._x, time.perf_counter_ns
        out = np.empty(n, dtype=np.int64)
        with torch.inference_mode():
            for i in range(n):
                t0 = clock()
                module(x)
                out[i] = clock() - t0
        return out / 1e6

    def run_impl(self) -> np.ndarray:
        with torch.inference_mode():
            return _first(self._module(self._x)).float().numpy().copy()


class CudaFlags:
    """``cudnn.benchmark`` and the TF32 switches for one precision, restorable."""

    def __init__(self, precision: str) -> None:
        self.tf32 = precision == "tf32"
        self.precision = precision
        self._saved: tuple[bool, bool, bool] | None = None

    def apply(self) -> None:
        self._saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
                       torch.backends.cudnn.allow_tf32)
        torch.backends.cudnn.benchmark = True
        if self.precision != "fp16":  # fp16 math does not use TF32
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32

    def restore(self) -> None:
        if self._saved is not None:
            (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32) = self._saved
            self._saved = None


#: Precision label recorded in ``info["precision_built"]``.
BUILT = {"fp16": "fp16 (half-precision module)", "fp32": "fp32 (TF32 off)", "tf32": "tf32 (TF32 on)"}


class TorchCudaRunner(Runner):
    """PyTorch on a CUDA GPU: private stream, CUDA events, CUDA graph replay when possible."""

    backend = "torch"
    warmup_launches = 3

    def __init__(self, device, model: ModelSpec, cache_dir: Path | None = None) -> None:
        super().__init__(device, model)
        if not torch.cuda.is_available():
            raise SgnasError(f"device {device.name} needs CUDA, but torch sees no CUDA GPU here")
        self._module: torch.nn.Module | None = None
        self._x: torch.Tensor | None = None
        self._stream: torch.cuda.Stream | None = None
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_out: Any = None
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._flags: CudaFlags | None = None

    def activate_impl(self) -> None:
        self._flags = CudaFlags(self.device.precision)
        self._flags.apply()
        try:
            self._activate()
        except BaseException:
            self.deactivate_impl()
            raise

    def _activate(self) -> None:
        from .support import check_precision

        dev = torch.device("cuda", torch.cuda.current_device())
        check_precision(tuple(torch.cuda.get_device_capability(dev)), self.device.precision,
                        f"device {self.device.name}")
        dtype = torch.float16 if self.device.precision == "fp16" else torch.float32
        module = _build(self.model).to(dev, dtype=dtype)
        stream = torch.cuda.Stream(device=dev)
        self._stream = stream
        stream.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(stream):  # the input copy is ordered with the compute stream
            x = torch.from_numpy(self.model.make_input(np.float32)).to(dev, dtype=dtype)
        self._module, self._x = module, x

        with torch.inference_mode(), torch.cuda.stream(stream):
            for _ in range(self.warmup_launches):
                module(x)
        stream.synchronize()

        reason = None
        if self.device.cuda_graphs:
            self._graph, reason = try_capture(self._capture)
        self.info.update(device=torch.cuda.get_device_name(dev), torch=torch.__version__,
                         cuda=torch.version.cuda, precision=self.device.precision,
                         precision_built=BUILT[self.device.precision],
                         tf32=bool(torch.backends.cudnn.allow_tf32
                                   and self.device.precision != "fp16"),
                         cuda_graph=self._graph is not None)
        if reason:
            self.info["cuda_graph_error"] = reason

    def _capture(self) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode():
            with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
                self._static_out = self._module(self._x)
        with torch.cuda.stream(self._stream):
            graph.replay()
        self._stream.synchronize()
        return graph

    def deactivate_impl(self) -> None:
        try:
            if self._stream is not None:
                self._stream.synchronize()
        finally:
            self._graph = None
            self._static_out = None
            self._events = []
            self._module = None
            self._x = None
            self._stream = None
            if self._flags is not None:
                self._flags.restore()
                self._flags = None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _step(self) -> Any:
        if self._graph is not None:
            self._graph.replay()
            return self._static_out
        return self._module(self._x)

    def _event_pairs(self, n: int) -> list[tuple[torch.cuda.Event, torch.cuda.Event]]:
        while len(self._events) < n:
            self._events.append((torch.cuda.Event(enable_timing=True),
                                 torch.cuda.Event(enable_timing=True)))
        return self._events[:n]

    def time_impl(self, n: int) -> np.ndarray:
        stream, step = self._stream, self._step
        pairs = self._event_pairs(n)
        with torch.inference_mode(), torch.cuda.stream(stream):
            for start, end in pairs:
                start.record(stream)
                step()
                end.record(stream)
        stream.synchronize()
        return np.array([start.elapsed_time(end) for start, end in pairs], dtype=np.float64)

    def run_impl(self) -> np.ndarray:
        with torch.inference_mode(), torch.cuda.stream(self._stream):
            out = _first(self._step())
        self._stream.synchronize()
        return out.float().cpu().numpy()


def runner_class(device) -> type[Runner]:
    """The torch runner for ``device.kind`` (``cpu`` or ``gpu``)."""
    return TorchCudaRunner if device.kind == "gpu" else TorchCpuRunner


def RUNNER(device, model: ModelSpec, cache_dir: Path | None = None) -> Runner:  # noqa: N802
    """Construct the torch runner matching ``device``."""
    return runner_class(device)(device, model, cache_dir=cache_dir)
register_backend("torch", "torch", "cpu", RUNNER, kinds=("cpu", "gpu"))
