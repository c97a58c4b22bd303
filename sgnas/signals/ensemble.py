"""The ``ensemble`` signal: the mean of its members' ranks, fixed without ground truth.

Each member ranks the architectures scored together (average ranks for ties, ``-inf`` lowest), the
ranks are averaged with equal weight, and the mean rank is the score. ``ensemble:flops+naswot+synflow``
names the members; without a list the members are :data:`DEFAULT_MEMBERS` (a size prior, FLOPs, with
the two proxies that need no labels and cost one forward pass: an activation-pattern measure and
a data-free one). Options are passed to every member whose factory takes them. A degenerate
architecture (``-inf`` under a member that measures the network) stays ``-inf``.

The score of an architecture depends on the others scored with it (ranks are relative): score the
whole candidate set in one call (e.g. all NB201 cells for a table).
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from ..errors import SgnasError
from .base import SIGNALS, Signal, get_signal, ranks, split_name

DEFAULT_MEMBERS: tuple[str, ...] = ("flops", "naswot", "synflow")


def _accepted(factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return options
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return options
    return {k: v for k, v in options.items() if k in params}


class EnsembleSignal(Signal):
    """Rank average of ``members`` (signal names)."""

    def __init__(self, members: Sequence[str] = DEFAULT_MEMBERS, **options: Any) -> None:
        members = tuple(m for m in members if m)
        if len(members) < 2:
            raise SgnasError(f"an ensemble needs two or more members, got {list(members)}")
        if "ensemble" in (split_name(m)[0] for m in members):
            raise SgnasError("an ensemble cannot contain an ensemble")
        self.members = members
        self.name = "ensemble:" + "+".join(members)
        self.signals = []
        for m in members:
            factory = SIGNALS.get(split_name(m)[0])
            self.signals.append(get_signal(m, **_accepted(factory, options)))

    def member_scores(self, archs: Sequence[Any]) -> dict[str, np.ndarray]:
        return {m: s.score(archs) for m, s in zip(self.members, self.signals)}

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        scores = self.member_scores(archs)
        mean = np.mean([ranks(v) for v in scores.values()], axis=0)
        dead = np.any([np.isneginf(v) for v in scores.values()], axis=0)
        return np.where(dead, -np.inf, mean)

    def describe(self) -> dict[str, Any]:
        return {"signal": "ensemble", "members": list(self.members),
                "member_settings": [s.describe() for s in self.signals]}


def _make(members: str | Sequence[str] | None = None, **options: Any) -> EnsembleSignal:
    if members is None:
        members = DEFAULT_MEMBERS
    elif isinstance(members, str):
        members = tuple(m.strip() for m in members.split("+"))
    return EnsembleSignal(members, **options)


SIGNALS.register("ensemble", _make)

__all__ = ["DEFAULT_MEMBERS", "EnsembleSignal"]
