"""Inference runtimes behind one :class:`Runner` interface.

``make_runner(device, model)`` imports the backend module of ``device.backend`` (onnxruntime,
openvino, tensorrt, torch) only when asked, so this package imports with numpy and torch alone.
"""

from .base import BACKENDS, ModelSpec, Runner, make_runner

__all__ = ["BACKENDS", "ModelSpec", "Runner", "make_runner"]
