"""The ``supernet`` signal: accuracy inherited from a trained supernet (the SGNAS signal).

It wraps an evaluator, any ``arch -> float`` callable such as
:class:`sgnas.search.evaluator.InheritedAccuracy` (BN recalibrated on training images, top-1 on
held-out images). Building one from a checkpoint and a data folder needs the training code, so it
happens above the core: :func:`sgnas.search.signals.supernet_signal` (and ``sgnas score --signal
supernet --checkpoint ... --data ...``). Architectures are scored as given (a dead NB201 cell gets
the accuracy its network has, about chance).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import SgnasError
from .base import SIGNALS, Signal, as_archs, resolve_space


class SupernetSignal(Signal):
    """Scores from ``evaluator(arch)`` (see the module docstring)."""

    name = "supernet"

    def __init__(self, evaluator: Callable[[Any], float], space: Any = None) -> None:
        self.evaluator = evaluator
        self.space = space if space is not None else getattr(getattr(evaluator, "model", None),
                                                             "space", None)

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        space = resolve_space(self.space, archs)
        return np.array([float(self.evaluator(a)) for a in as_archs(space, archs)])

    def describe(self) -> dict[str, Any]:
        stats = getattr(self.evaluator, "stats", None)
        return {"signal": "supernet", **({"evaluator": stats()} if callable(stats) else {})}


def _make(evaluator: Callable[[Any], float] | None = None, *, space: Any = None) -> SupernetSignal:
    if evaluator is None:
        raise SgnasError("signal 'supernet' needs a trained supernet: on the command line "
                         "--checkpoint FILE --data DIR; in Python evaluator= (an InheritedAccuracy, "
                         "see sgnas.search.signals.supernet_signal)")
    return SupernetSignal(evaluator, space)


SIGNALS.register("supernet", _make)

__all__ = ["SupernetSignal"]
