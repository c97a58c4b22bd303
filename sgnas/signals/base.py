"""The accuracy-signal interface and its registry.

A signal scores architectures, higher is better: ``signal.score(archs) -> np.ndarray`` (float64,
one value per architecture). Architectures are NB201 cells (:class:`~sgnas.nb201.space.Cell` or
their strings) or architectures of a unified space (:class:`~sgnas.space.Architecture` or their
``space:357-33-...`` strings); the space is taken from the ``space`` option or the first
architecture. An architecture the space calls degenerate (an NB201 cell whose output does not
depend on its input) scores ``-inf`` under signals that measure the network, the lowest under
every rank rule.

Signals are made by name through :data:`SIGNALS` (a :class:`~sgnas.registry.Registry` of factories
``factory(**options) -> Signal``): ``get_signal("naswot", data=(x, y))``. A name may carry one
argument after a colon, passed as the factory's first option: ``ensemble:flops+naswot+synflow``,
``table:scores.csv``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import SgnasError
from ..registry import Registry

#: Signal factories by name; the modules of :mod:`sgnas.signals` register themselves.
SIGNALS: Registry[Callable[..., "Signal"]] = Registry("signal", discover="sgnas.signals")


class Signal:
    """Base class: ``name``, ``score(archs)``, ``describe()``."""

    name: str = "signal"

    def score(self, archs: Sequence[Any]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name and settings (JSON-able), for logs and cache keys."""
        return {"signal": self.name}

    def __call__(self, arch: Any) -> float:
        """One architecture's score (the ``arch -> float`` evaluator form of the searches)."""
        return float(self.score([arch])[0])


def split_name(text: str) -> tuple[str, str | None]:
    """``"ensemble:a+b"`` -> ``("ensemble", "a+b")``; ``"naswot"`` -> ``("naswot", None)``."""
    name, sep, arg = str(text).partition(":")
    return name.strip(), (arg.strip() if sep else None)


def get_signal(name: str, **options: Any) -> Signal:
    """The signal ``name`` (optionally ``name:argument``) made with ``options``; an unknown name is
    an :class:`~sgnas.errors.SgnasError` listing the known ones."""
    base, arg = split_name(name)
    factory = SIGNALS.get(base)
    if arg is not None:
        return factory(arg, **options)
    return factory(**options)


def signal_names() -> list[str]:
    """Registered signal names."""
    return SIGNALS.names()


# ------------------------------------------------------------------------------ architectures
def resolve_space(space: Any, archs: Sequence[Any]) -> Any:
    """The space object: ``space`` (an object or a registered name) or the first architecture's."""
    from ..space import get_space

    if space is not None:
        return get_space(space) if isinstance(space, str) else space
    if not len(archs):
        raise SgnasError("no architectures to score and no space given")
    first = archs[0]
    from ..nb201.space import Cell

    if isinstance(first, Cell):
        return get_space("nb201")
    if isinstance(first, str):
        text = first.strip()
        if text.startswith("|") or text.startswith("nb201:"):
            return get_space("nb201")
        return get_space(text.partition(":")[0])
    name = getattr(first, "space", None)
    if isinstance(name, str):
        return get_space(name)
    raise SgnasError(f"cannot tell the space of {type(first).__name__}; pass space=")


def as_archs(space: Any, archs: Sequence[Any]) -> list[Any]:
    """``archs`` as the space's architecture objects (strings parsed, wrong spaces refused)."""
    from ..nb201.space import NB201Space
    from ..space import Architecture

    out = []
    for a in archs:
        if isinstance(space, NB201Space):
            out.append(space.cell(a))
            continue
        if isinstance(a, str):
            a = Architecture.parse(a)
        if not isinstance(a, Architecture):
            raise SgnasError(f"expected an architecture of space {space.name!r}, got "
                             f"{type(a).__name__}")
        if a.space != space.name:
            raise SgnasError(f"architecture {a} is of space {a.space!r}, not {space.name!r}")
        out.append(space.validate(a))
    return out


def arch_key(arch: Any) -> str:
    """The string an architecture is stored under in score tables and caches."""
    return str(arch)


def is_degenerate(space: Any, arch: Any) -> bool:
    """Whether the space calls ``arch`` degenerate (an NB201 cell without input-output path; a
    space's own ``is_degenerate(arch)`` when it has one)."""
    fn = getattr(space, "is_degenerate", None)
    if callable(fn):
        return bool(fn(arch))
    from ..nb201.space import Cell

    if isinstance(arch, Cell):
        return not arch.is_connected()
    return False


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1 = lowest) with ties sharing their mean rank; ``-inf`` ranks lowest."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    sv = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return r


__all__ = ["SIGNALS", "Signal", "arch_key", "as_archs", "get_signal", "is_degenerate", "ranks",
           "resolve_space", "signal_names", "split_name"]
