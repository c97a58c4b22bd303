"""ONNX Runtime on CPU (``CPUExecutionProvider``).

The session runs with an explicit intra-op thread count, one inter-op thread, sequential execution
and all graph optimizations. With ``pin_threads`` the calling thread is pinned to the first CPU and
ORT's worker threads to the next ones through ``session.intra_op_thread_affinities`` (ORT's ids are
1-based logical processors, one ``;``-separated entry per worker thread, i.e. ``threads - 1``
entries). Input and output are bound once with I/O binding; the timed region is
``run_with_iobinding`` alone. Per-node profiling is never enabled (it inflates times).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sgnas.errors import SgnasError

from .base import ModelSpec, Runner, ThreadPin, cpus_for, refuse_fp16_on_cpu, register_backend

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
}


def thread_affinities(cpus: list[int]) -> str | None:
    """ORT's ``session.intra_op_thread_affinities`` for workers on ``cpus[1:]`` (1-based ids)."""
    workers = cpus[1:]
    return ";".join(str(c + 1) for c in workers) if workers else None


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime CPU runner."""

    backend = "onnxruntime"
    #: False: idle intra-op workers do not spin (set when another model runs interleaved).
    allow_spinning = True

    def __init__(self, device, model: ModelSpec, cache_dir: Path | None = None) -> None:
        super().__init__(device, model)
        refuse_fp16_on_cpu(device, self.backend)
        self._pin: ThreadPin | None = None
        self._session = None
        self._binding = None
        self._values: list = []

    def session_options(self, cpus: list[int] | None):
        """The ``SessionOptions`` this runner uses (``cpus`` given when pinning)."""
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(self.device.threads or 1)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.enable_profiling = False
        so.log_severity_level = 3
        if not self.allow_spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if cpus is not None:
            affinities = thread_affinities(cpus)
            if affinities:
                so.add_session_config_entry("session.intra_op_thread_affinities", affinities)
        return so

    def activate_impl(self) -> None:
        import onnxruntime as ort

        path = self.model.require_onnx(self.backend)
        cpus = cpus_for(self.device) if self.device.pin_threads else None
        sess = ort.InferenceSession(str(path), self.session_options(cpus),
                                    providers=["CPUExecutionProvider"])
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        if len(inputs) != 1:
            raise SgnasError(f"model {self.model.name}: expected 1 input, the graph has {len(inputs)}")
        dtype = _ORT_TYPES.get(inputs[0].type, np.float32)
        x = ort.OrtValue.ortvalue_from_numpy(self.model.make_input(dtype), "cpu")
        binding = sess.io_binding()
        binding.bind_ortvalue_input(inputs[0].name, x)
        values = [x]
        for out in outputs:
            shape = out.shape
            if all(isinstance(d, int) and d > 0 for d in shape):
                y = ort.OrtValue.ortvalue_from_shape_and_type(
                    shape, _ORT_TYPES.get(out.type, np.float32), "cpu")
                binding.bind_ortvalue_output(out.name, y)
                values.append(y)
            else:
                binding.bind_output(out.name, "cpu")
        if cpus is not None:
            self._pin = ThreadPin(cpus[:1])
            self._pin.pin()
        self._session, self._binding, self._values = sess, binding, values
        self.info.update(provider="CPUExecutionProvider", onnxruntime=ort.__version__,
                         threads=int(self.device.threads or 1),
                         cpus=cpus)

    def deactivate_impl(self) -> None:
        self._binding = None
        self._values = []
        self._session = None
        if self._pin is not None:
            self._pin.restore()
            self._pin = None

    def time_impl(self, n: int) -> np.ndarray:
        run, binding = self._session.run_with_iobinding, self._binding
        clock = time.perf_counter_ns
        out = np.empty(n, dtype=np.int64)
        for i in range(n):
            t0 = clock()
            run(binding)
            out[i] = clock() - t0
        return out / 1e6

    def run_impl(self) -> np.ndarray:
        self._session.run_with_iobinding(self._binding)
        return np.array(self._binding.copy_outputs_to_cpu()[0])


RUNNER = OnnxRuntimeRunner
register_backend("onnxruntime", "onnxruntime", "onnxruntime", RUNNER, kinds=("cpu",))
