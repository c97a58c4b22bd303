"""OpenVINO on CPU.

The model is compiled with the latency hint, an explicit thread count and ``f32`` inference
precision (without it OpenVINO may silently run bf16 on CPUs that support it). With ``pin_threads``
OpenVINO pins its own stream threads (``ENABLE_CPU_PINNING``). The input tensor is set once; the timed
region is the synchronous ``infer()`` call alone.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sgnas.errors import SgnasError, first_line

from .base import ModelSpec, Runner, cpus_for, refuse_fp16_on_cpu, register_backend


class OpenVinoRunner(Runner):
    """OpenVINO CPU runner."""

    backend = "openvino"

    def __init__(self, device, model: ModelSpec, cache_dir: Path | None = None) -> None:
        super().__init__(device, model)
        refuse_fp16_on_cpu(device, self.backend)
        self._compiled = None
        self._request = None
        self._input: np.ndarray | None = None

    def compile_config(self) -> dict:
        """Properties passed to ``Core.compile_model``."""
        return {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(self.device.threads or 1),
            "INFERENCE_PRECISION_HINT": "f32",
            "ENABLE_CPU_PINNING": bool(self.device.pin_threads),
        }

    def activate_impl(self) -> None:
        import openvino as ov

        path = self.model.require_onnx(self.backend)
        if self.device.pin_threads:
            cpus_for(self.device)  # enough CPUs for the pinned threads
        core = ov.Core()
        try:
            compiled = core.compile_model(str(path), "CPU", self.compile_config())
        except Exception as exc:  # OpenVINO raises plain RuntimeError/Exception subclasses
            raise SgnasError(f"OpenVINO cannot compile {path}: {first_line(exc)}") from exc
        if len(compiled.inputs) != 1:
            raise SgnasError(f"model {self.model.name}: expected 1 input, the graph has "
                             f"{len(compiled.inputs)}")
        request = compiled.create_infer_request()
        x = self.model.make_input(np.float32)
        request.set_input_tensor(ov.Tensor(x, shared_memory=True))
        self._compiled, self._request, self._input = compiled, request, x
        self.info.update(openvino=ov.get_version(), threads=int(self.device.threads or 1),
                         precision=str(compiled.get_property("INFERENCE_PRECISION_HINT")))

    def deactivate_impl(self) -> None:
        self._request = None
        self._compiled = None
        self._input = None

    def time_impl(self, n: int) -> np.ndarray:
        infer = self._request.infer
        clock = time.perf_counter_ns
        out = np.empty(n, dtype=np.int64)
        for i in range(n):
            t0 = clock()
            infer()
            out[i] = clock() - t0
        return out / 1e6

    def run_impl(self) -> np.ndarray:
        self._request.infer()
        return np.array(self._request.get_output_tensor(0).data)


RUNNER = OpenVinoRunner
register_backend("openvino", "openvino", "openvino", RUNNER, kinds=("cpu",))
