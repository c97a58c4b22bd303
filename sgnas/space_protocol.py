"""The one interface every search space implements (framework-free; randomness passed in).

A space is a set of architectures written as ``D`` decisions over ``K`` candidates each
(:meth:`Space.decisions`), some candidates possibly masked out (:meth:`Space.candidate_mask`).
Architectures convert to and from candidate-index vectors (:meth:`Space.arch_from_indices`,
:meth:`Space.indices_of`), parse from their string form (:meth:`Space.parse`) and are checked by
:meth:`Space.validate`. :meth:`Space.sample` draws one with the caller's ``numpy`` generator.
A latency LUT holds entries under string keys; :meth:`Space.lut_keys` names the entries whose sum
predicts one architecture, and :meth:`Space.profiling_plan` says how a device's table is measured.

Networks, supernets and cost tables need torch and live in higher layers, registered per space
*family* (:attr:`Space.family`): :data:`sgnas.network.NETWORKS`, :data:`sgnas.supernet.SUPERNETS`
and :data:`sgnas.costs.COSTS`. Costs of every family share one unit each (FLOPs in millions of
multiply-adds, parameters in millions, latency in ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

#: ``"layers"``: every key is one graph measured on its own and an architecture's latency is the
#: sum of its keys' entries (:mod:`profiler.build`); ``"cells"``: one entry per architecture,
#: composed from measured pieces (:mod:`profiler.cells`).
PlanKind = Literal["layers", "cells"]


@dataclass(frozen=True)
class ProfilingPlan:
    """What to profile for a space: how its LUT is built and the keys the finished LUT holds."""

    kind: PlanKind
    keys: tuple[str, ...]

    @property
    def per_architecture(self) -> bool:
        """Whether the LUT holds one entry per architecture (no additivity is assumed)."""
        return self.kind == "cells"


@runtime_checkable
class Space(Protocol):
    """A search space (see the module docstring). ``name`` is its registry name, recorded in
    architectures, LUTs and checkpoints; ``fingerprint`` hashes its definition."""

    @property
    def name(self) -> str: ...

    @property
    def family(self) -> str:
        """Key of the space's networks, supernets and costs in their registries."""
        ...

    @property
    def fingerprint(self) -> str: ...

    def decisions(self) -> tuple[int, int]:
        """``(D, K)``: decisions and candidates per decision."""
        ...

    def candidate_mask(self) -> np.ndarray:
        """``(D, K)`` bool: which candidates each decision may take."""
        ...

    def arch_from_indices(self, indices: Sequence[int]) -> Any:
        """The architecture with candidate ``indices[d]`` at decision ``d`` (validated)."""
        ...

    def indices_of(self, arch: Any) -> np.ndarray:
        """Inverse of :meth:`arch_from_indices`: ``(D,)`` int64."""
        ...

    def sample(self, rng: np.random.Generator) -> Any:
        """One architecture drawn with ``rng`` (the space's own uniform single-path sampler)."""
        ...

    def validate(self, arch: Any) -> Any:
        """``arch`` if it belongs to the space, else :class:`~sgnas.errors.ArchitectureError`."""
        ...

    def parse(self, text: str) -> Any:
        """The architecture of its string (or JSON) form, validated."""
        ...

    def all_keys(self) -> list[str]:
        """Every LUT key of the space."""
        ...

    def lut_keys(self, arch: Any) -> list[str]:
        """The LUT keys whose entries sum to the (uncalibrated) latency of ``arch``."""
        ...

    def profiling_plan(self) -> ProfilingPlan:
        """How a device's LUT of this space is measured."""
        ...


__all__ = ["PlanKind", "ProfilingPlan", "Space"]
