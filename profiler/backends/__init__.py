"""Inference runtimes behind one :class:`Runner` interface.

Each backend module registers itself in :data:`~profiler.backends.base.BACKENDS`
(``register_backend(name, runtime, extra, runner)``); the modules import without their runtimes, and
``make_runner(device, model)`` requires the runtime of ``device.backend`` only when asked, so this
package imports with numpy and torch alone.
"""

from .base import BACKENDS, Backend, ModelSpec, Runner, get_backend, make_runner, register_backend

__all__ = ["BACKENDS", "Backend", "ModelSpec", "Runner", "get_backend", "make_runner",
           "register_backend"]
