"""SGNAS: hardware-aware latency lookup tables and one-shot NAS by generating architectures.

The package imports with numpy and torch alone; runtimes (ONNX Runtime, OpenVINO, TensorRT) are
extras imported inside their backends.
"""

from .errors import ArchitectureError, SgnasError
from .space import Architecture, LayerSpec, SearchSpace, get_space, load_architecture

__all__ = [
    "Architecture",
    "ArchitectureError",
    "LayerSpec",
    "SearchSpace",
    "SgnasError",
    "get_space",
    "load_architecture",
]
__version__ = "0.1.0"
