"""Signals from the architecture alone: ``flops`` and ``params`` (larger is better).

NB201: the multiply-adds / parameters (millions) of :mod:`sgnas.nb201.network` (every edge counts,
as NB201 counts them); unified spaces: :func:`sgnas.network.count_flops` / ``count_params``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .base import SIGNALS, Signal, as_archs, resolve_space


class CountSignal(Signal):
    """``flops`` or ``params`` of each architecture (millions)."""

    def __init__(self, name: str, space: Any = None) -> None:
        self.name = name
        self.space = space

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        from ..costs import make_cost

        space = resolve_space(self.space, archs)
        cost = make_cost(self.name, space)  # millions, in every space's own tables
        return np.array([cost.exact(a) for a in as_archs(space, archs)], dtype=np.float64)


def _flops(space: Any = None) -> CountSignal:
    return CountSignal("flops", space)


def _params(space: Any = None) -> CountSignal:
    return CountSignal("params", space)


SIGNALS.register("flops", _flops)
SIGNALS.register("params", _params)

__all__ = ["CountSignal"]
