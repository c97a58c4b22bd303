"""Random search baseline: uniform architectures under the constraint; the most accurate wins."""

from __future__ import annotations

import time
from typing import Callable, Container, Protocol

import numpy as np

from ..errors import SgnasError
from ..space import Architecture, SearchSpace
from .result import SearchResult

Evaluate = Callable[[Architecture], float]


class CostLike(Protocol):
    """What the searches need of a :class:`sgnas.costs.Cost`."""

    name: str
    unit: str

    def exact(self, arch: Architecture) -> float: ...

    def range(self) -> tuple[float, float]: ...


def check_target(cost: CostLike, target: float) -> tuple[float, float]:
    """Raise :class:`SgnasError` when no architecture can meet ``target``; else return the range."""
    lo, hi = (float(v) for v in cost.range())
    if not np.isfinite(target) or target < lo:
        raise SgnasError(
            f"target {target:g} {cost.unit} is below the smallest achievable {cost.name} "
            f"(achievable range {lo:.4g} to {hi:.4g} {cost.unit})"
        )
    return lo, hi


def sample_under(
    space: SearchSpace,
    cost: CostLike,
    target: float,
    rng: np.random.Generator,
    max_tries: int,
    exclude: Container[Architecture] = (),
) -> tuple[Architecture, float, int] | None:
    """Rejection-sample a uniform architecture with ``cost <= target`` that is not in ``exclude``.

    Returns ``(arch, cost, rejected)`` or ``None`` when ``max_tries`` samples all failed.
    """
    for tries in range(max_tries):
        arch = space.sample(rng)
        if arch in exclude:
            continue
        c = float(cost.exact(arch))
        if c <= target:
            return arch, c, tries
    return None


def random_search(
    space: SearchSpace,
    cost: CostLike,
    evaluate: Evaluate,
    target: float,
    n: int = 1000,
    rng: np.random.Generator | None = None,
    max_tries: int = 10_000,
) -> SearchResult:
    """Evaluate ``n`` distinct uniform architectures with ``cost.exact(arch) <= target``; return
    the best.

    Over-constraint and repeated samples are rejected and resampled, up to ``max_tries`` samples per
    candidate; if a candidate cannot be found in that many, :class:`SgnasError` is raised.
    ``history`` has one record per candidate (its accuracy, cost and the best accuracy so far).
    """
    if n < 1:
        raise SgnasError(f"random search needs at least 1 candidate, got {n}")
    if rng is None:
        raise SgnasError("random_search needs a numpy Generator (rng)")
    lo, hi = check_target(cost, target)
    start = time.perf_counter()
    seen: set[Architecture] = set()
    history: list[dict] = []
    candidates: list[dict] = []
    rejected = 0
    best: tuple[float, Architecture, float] | None = None
    for i in range(n):
        found = sample_under(space, cost, target, rng, max_tries, exclude=seen)
        if found is None:
            raise SgnasError(
                f"no new architecture with {cost.name} <= {target:g} {cost.unit} in {max_tries} "
                f"samples after {i} candidates (achievable range {lo:.4g} to {hi:.4g} "
                f"{cost.unit}); "
                "raise the target or --max-tries"
            )
        arch, c, r = found
        rejected += r
        seen.add(arch)
        acc = float(evaluate(arch))
        if best is None or acc > best[0]:
            best = (acc, arch, c)
        candidates.append({"arch": str(arch), "accuracy": acc, "cost": c})
        history.append({"candidate": i, "accuracy": acc, "cost": c, "best_so_far": best[0]})
    assert best is not None
    return SearchResult(
        strategy="random",
        best=best[1],
        best_accuracy=best[0],
        best_cost=best[2],
        target=float(target),
        cost_name=cost.name,
        cost_unit=cost.unit,
        evaluations=len(candidates),
        wall_time_s=time.perf_counter() - start,
        rejected={"sampling": rejected},
        history=history,
        candidates=candidates,
        config={"n": n, "max_tries": max_tries},
        meta={"space": space.name, "space_fingerprint": space.fingerprint},
    )
