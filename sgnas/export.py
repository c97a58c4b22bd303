"""ONNX export of a model to a single verified file.

Exporter: torch's ``torch.export``-based (dynamo) exporter is the default. It is the supported path
on torch >= 2.9 (the TorchScript exporter, ``dynamo=False``, is deprecated and slated for removal),
it produced correct graphs for every block and network of the SGNAS spaces, and it needs
``onnxscript`` (``pip install 'sgnas[export]'``). It takes seconds per model (about 5 s for a small
network, 8 s for an ImageNet network on a CPU), so ``dynamo=False`` remains available where export
time matters (about 0.2 s / 1.7 s). Both write opset 18 by default (the dynamo exporter's lowest
native opset; TensorRT 10, ONNX Runtime and OpenVINO read it).

The serialized model is kept in memory, checked to hold all weights inline (no ``.onnx.data``
file), verified against torch with ONNX Runtime when it is installed, and only then written
atomically, so a failed export never replaces an existing file.
"""

from __future__ import annotations

import copy
import io
import os
import time
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .errors import SgnasError, first_line, require
from .fileio import atomic_write_bytes

DEFAULT_OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "output"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote and how well ONNX Runtime reproduced torch.

    ``opset`` is the one the file declares (the dynamo exporter keeps 18 when it cannot convert
    down to a lower requested opset). ``max_abs_diff`` and ``ref_max_abs`` (largest torch output
    magnitude) are ``None`` when the model was not run (``verify=False`` or ONNX Runtime missing);
    ``verified`` tells which.
    """

    path: str
    exporter: str
    opset: int
    half: bool
    input_shape: tuple[int, ...]
    size_bytes: int
    seconds: float
    verified: bool
    max_abs_diff: float | None = None
    ref_max_abs: float | None = None


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise SgnasError(f"input shape {input_shape!r} is not a sequence of integers") from None
    if len(shape) != 4 or min(shape) < 1:
        raise SgnasError(f"input shape {shape} must be 4 positive sizes (N, C, H, W)")
    return shape


def onnx_bytes(
    module: nn.Module,
    example: torch.Tensor,
    opset: int = DEFAULT_OPSET,
    dynamo: bool = True,
) -> bytes:
    """Serialized ONNX model of ``module`` (already in the wanted mode and dtype) on ``example``,
    weights inline, one input ``input`` and one output ``output``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            require("onnxscript", "export")
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                opset_version=opset,
                external_data=False,
                verbose=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
            )
            if program is None:
                raise SgnasError("torch.onnx.export returned no program")
            return program.model_proto.SerializeToString()
        buf = io.BytesIO()
        torch.onnx.export(
            module,
            (example,),
            buf,  # type: ignore[arg-type]  # torch accepts a file object
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
        )
        return buf.getvalue()


def _check_single_file(data: bytes) -> int:
    """Check the model and that it holds all weights inline; return its default-domain opset."""
    onnx = require("onnx", "export")
    from onnx.external_data_helper import uses_external_data

    model = onnx.load_from_string(data)
    external = [t.name for t in model.graph.initializer if uses_external_data(t)]
    if external:
        raise SgnasError(f"exported ONNX model keeps {len(external)} tensors in an external file")
    onnx.checker.check_model(model)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), -1)


def run_onnxruntime(data: bytes, inputs: np.ndarray, threads: int = 1) -> np.ndarray | None:
    """Output of the serialized model on ``inputs`` with ONNX Runtime (CPU), or ``None`` when it is
    not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def export_onnx(
    module: nn.Module,
    input_shape: Sequence[int],
    path: str | os.PathLike,
    verify: bool = True,
    opset: int = DEFAULT_OPSET,
    dynamo: bool = True,
    half: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    generator: torch.Generator | None = None,
) -> ExportResult:
    """Export ``module`` (a copy, in eval mode; ``half`` converts it to fp16 first) for a static
    ``input_shape`` to a single ONNX file at ``path``.

    With ``verify``, ONNX Runtime (if installed) runs the model on a random input drawn from
    ``generator`` (seeded 0 by default) and the export fails with :class:`SgnasError` when
    ``max|onnx - torch| > atol + rtol * max|torch|`` (defaults: fp32 1e-6 + 1e-4, fp16 1e-3 +
    2e-2). Nothing is written on failure.
    """
    shape = _check_shape(input_shape)
    if half and rtol is None:
        rtol = 2e-2
    if half and atol is None:
        atol = 1e-3
    rtol = 1e-4 if rtol is None else rtol
    atol = 1e-6 if atol is None else atol
    model = copy.deepcopy(module).eval()
    if half:
        model = model.half()
    try:
        param = next(model.parameters())
        device, dtype = param.device, param.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float16 if half else torch.float32
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    example = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)

    start = time.perf_counter()
    try:
        data = onnx_bytes(model, example, opset, dynamo)
    except SgnasError:
        raise
    except Exception as exc:  # exporter failures come in many types
        raise SgnasError(f"ONNX export failed: {first_line(exc)}") from exc
    seconds = time.perf_counter() - start
    written_opset = _check_single_file(data)

    diff = ref_max = None
    verified = False
    if verify:
        with torch.no_grad():
            ref = model(example).float().cpu().numpy()
        out = run_onnxruntime(data, example.cpu().numpy())
        if out is not None:
            if out.shape != ref.shape:
                raise SgnasError(
                    f"ONNX model output shape {out.shape} differs from torch's {ref.shape}"
                )
            diff = float(np.max(np.abs(out.astype(np.float32) - ref))) if ref.size else 0.0
            ref_max = float(np.max(np.abs(ref))) if ref.size else 0.0
            if not diff <= atol + rtol * ref_max:
                raise SgnasError(
                    f"ONNX model does not match torch: max abs diff {diff:.3g} "
                    f"(torch outputs up to {ref_max:.3g})"
                )
            verified = True
    atomic_write_bytes(path, data)
    return ExportResult(
        path=os.fspath(path),
        exporter="dynamo" if dynamo else "torchscript",
        opset=written_opset,
        half=half,
        input_shape=shape,
        size_bytes=len(data),
        seconds=seconds,
        verified=verified,
        max_abs_diff=diff,
        ref_max_abs=ref_max,
    )
