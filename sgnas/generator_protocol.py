"""The ``Generator`` protocol: what generation needs of a trained generator, whatever its kind.

Both kinds implement it: the per-cost :class:`~sgnas.generator.GeneratorBundle` and the
device-conditioned :class:`~sgnas.shared_generator.SharedBundle`. Framework-free: costs,
architectures and decoding results are the caller's objects.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, Sequence, runtime_checkable


@runtime_checkable
class Generator(Protocol):
    """A trained generator ready to serve cost targets."""

    #: the checkpoint ``kind`` tag of this kind of generator
    kind: ClassVar[str]
    #: whether :meth:`argmax` is available (per-decision argmax without a cost window)
    has_argmax: ClassVar[bool]
    space: Any
    meta: dict
    path: str | None

    @property
    def signal(self) -> str:
        """The accuracy signal it learned from (older checkpoints: ``"supernet"``)."""
        ...

    @property
    def default_eps(self) -> float | None:
        """The decoding window's default ``eps`` (``None``: no lower edge, at most the target)."""
        ...

    def check_space(self, cost: Any) -> None:
        """Raise :class:`~sgnas.errors.SpaceMismatchError` unless ``cost`` is of its space."""
        ...

    def trained_for(self, cost: Any) -> bool:
        """Whether ``cost`` is a cost model it was trained on."""
        ...

    def match_note(self, cost: Any) -> str:
        """A ``note: ...`` line saying how it serves ``cost`` (``""`` when trained for it);
        raise :class:`~sgnas.errors.SgnasError` when it cannot serve it."""
        ...

    def decode(self, target: float, cost: Any, eps: float | None = 0.01,
               extra: Sequence = ()) -> tuple[Any, Any]:
        """``(architecture, Decoded)``: the most probable architecture with ``cost`` in the window
        ``[target (1 - eps), target]`` meeting the constraints ``extra``."""
        ...

    def argmax(self, targets: Sequence[float], cost: Any) -> list:
        """The per-decision argmax architecture of each target (when :attr:`has_argmax`)."""
        ...

    def describe(self, cost: Any) -> dict:
        """Facts for a report beyond path and signal (e.g. the devices of a shared generator)."""
        ...
