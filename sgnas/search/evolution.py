"""SPOS evolutionary search (Guo et al.): mutation and crossover of the top-k under a constraint.

Each generation evaluates its population (inherited accuracy with BN recalibration), updates the
top-k over everything evaluated so far, and forms the next population from ``mutants`` mutations and
``crossovers`` crossovers of top-k members, filled up with uniform random architectures. Candidates
over the constraint and candidates already seen are rejected. With the defaults (population 50,
20 generations) the search evaluates about 1,000 architectures, as many as the random baseline.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from ..errors import SgnasError
from ..space import Architecture, Config, SearchSpace
from .random_search import CostLike, Evaluate, check_target, sample_under
from .result import SearchResult


@dataclass
class EvolutionConfig:
    """Hyper-parameters of the SPOS evolutionary search (defaults as in SPOS)."""

    population: int = 50
    top_k: int = 10
    generations: int = 20
    mutants: int = 25
    mutation_prob: float = 0.1
    crossovers: int = 25
    #: Attempts per wanted mutant / crossover child (SPOS tries 10x as many as it needs).
    operator_tries: int = 10
    #: Uniform samples drawn at most per random candidate before giving up.
    max_sample_tries: int = 10_000

    def validate(self) -> "EvolutionConfig":
        for name in ("population", "top_k", "generations", "operator_tries", "max_sample_tries"):
            if getattr(self, name) < 1:
                raise SgnasError(f"evolution {name} must be at least 1, got {getattr(self, name)}")
        if self.mutants < 0 or self.crossovers < 0:
            raise SgnasError("evolution mutants and crossovers must be non-negative")
        if self.mutants + self.crossovers > self.population:
            raise SgnasError(
                f"mutants + crossovers ({self.mutants} + {self.crossovers}) exceed the population "
                f"({self.population})"
            )
        if not 0.0 <= self.mutation_prob <= 1.0:
            raise SgnasError(f"mutation probability must be in [0, 1], got {self.mutation_prob}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_layer(space: SearchSpace, rng: np.random.Generator) -> Config:
    """One layer's configuration the SPOS way (:meth:`SearchSpace.sample_layer`)."""
    return space.sample_layer(rng)


def mutate(
    space: SearchSpace, arch: Architecture, prob: float, rng: np.random.Generator
) -> Architecture:
    """Resample each layer's configuration with probability ``prob`` (a space with its own
    ``mutate``, such as NB201's cell space, mutates its architectures itself)."""
    own = getattr(space, "mutate", None)
    if own is not None:
        return own(arch, prob, rng)
    layers = [
        sample_layer(space, rng) if rng.random() < prob else config for config in arch.layers
    ]
    return space.validate(Architecture(space.name, tuple(layers)))


def crossover(
    space: SearchSpace, a: Architecture, b: Architecture, rng: np.random.Generator
) -> Architecture:
    """Per layer, take the configuration of ``a`` or ``b`` with equal probability (per edge for
    a space with its own ``crossover``, such as NB201's cells)."""
    own = getattr(space, "crossover", None)
    if own is not None:
        return own(a, b, rng)
    pick = rng.random(len(a.layers)) < 0.5
    layers = tuple(ca if p else cb for p, ca, cb in zip(pick, a.layers, b.layers))
    return space.validate(Architecture(space.name, layers))


def evolution_search(
    space: SearchSpace,
    cost: CostLike,
    evaluate: Evaluate,
    target: float,
    cfg: EvolutionConfig | None = None,
    rng: np.random.Generator | None = None,
    on_generation: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Run the SPOS evolutionary search for the most accurate architecture with cost <= ``target``.

    ``evaluate(arch) -> accuracy`` is called once per distinct candidate; ``on_generation`` receives
    each generation's history record as it is made.
    """
    cfg = (cfg or EvolutionConfig()).validate()
    if rng is None:
        raise SgnasError("evolution_search needs a numpy Generator (rng)")
    lo, hi = check_target(cost, target)
    start = time.perf_counter()
    scores: dict[Architecture, tuple[float, float]] = {}  # arch -> (accuracy, cost)
    rejected = {"constraint": 0, "duplicate": 0, "sampling": 0}

    population: list[tuple[Architecture, float]] = []
    for _ in range(cfg.population):
        found = sample_under(space, cost, target, rng, cfg.max_sample_tries,
                             exclude={a for a, _ in population})
        if found is None:
            raise SgnasError(
                f"cannot sample architectures with {cost.name} <= {target:g} {cost.unit} "
                f"({cfg.max_sample_tries} tries; achievable range {lo:.4g} to {hi:.4g} {cost.unit})"
            )
        population.append(found[:2])
        rejected["sampling"] += found[2]
    made = {"mutants": 0, "crossovers": 0, "random": len(population)}

    history: list[dict[str, Any]] = []
    top: list[Architecture] = []
    for gen in range(cfg.generations):
        accs = []
        for arch, c in population:
            if arch not in scores:
                scores[arch] = (float(evaluate(arch)), c)
            accs.append(scores[arch][0])
        top = sorted(scores, key=lambda a: -scores[a][0])[: cfg.top_k]
        record = {
            "generation": gen,
            "population": len(population),
            "best_accuracy": max(accs),
            "mean_accuracy": float(np.mean(accs)),
            "best_so_far": scores[top[0]][0],
            "top_k_mean": float(np.mean([scores[a][0] for a in top])),
            "evaluations": len(scores),
            **made,
        }
        history.append(record)
        if on_generation is not None:
            on_generation(record)
        if gen == cfg.generations - 1:
            break
        population, made = _next_population(space, cost, target, cfg, rng, top, scores, rejected)
        if not population:
            break

    best = top[0]
    return SearchResult(
        strategy="evolution",
        best=best,
        best_accuracy=scores[best][0],
        best_cost=scores[best][1],
        target=float(target),
        cost_name=cost.name,
        cost_unit=cost.unit,
        evaluations=len(scores),
        wall_time_s=time.perf_counter() - start,
        rejected=rejected,
        history=history,
        candidates=[{"arch": str(a), "accuracy": s[0], "cost": s[1]} for a, s in scores.items()],
        config=cfg.to_dict(),
        meta={"space": space.name, "space_fingerprint": space.fingerprint},
    )


def _next_population(
    space: SearchSpace,
    cost: CostLike,
    target: float,
    cfg: EvolutionConfig,
    rng: np.random.Generator,
    parents: list[Architecture],
    seen: dict[Architecture, Any],
    rejected: dict[str, int],
) -> tuple[list[tuple[Architecture, float]], dict[str, int]]:
    out: list[tuple[Architecture, float]] = []
    pending: set[Architecture] = set()

    def admit(child: Architecture) -> bool:
        if child in seen or child in pending:
            rejected["duplicate"] += 1
            return False
        c = float(cost.exact(child))
        if c > target:
            rejected["constraint"] += 1
            return False
        out.append((child, c))
        pending.add(child)
        return True

    def pick() -> Architecture:
        return parents[int(rng.integers(len(parents)))]

    made = {"mutants": 0, "crossovers": 0, "random": 0}
    for _ in range(cfg.mutants * cfg.operator_tries):
        if made["mutants"] == cfg.mutants:
            break
        made["mutants"] += admit(mutate(space, pick(), cfg.mutation_prob, rng))
    for _ in range(cfg.crossovers * cfg.operator_tries):
        if made["crossovers"] == cfg.crossovers:
            break
        made["crossovers"] += admit(crossover(space, pick(), pick(), rng))
    while len(out) < cfg.population:
        found = sample_under(space, cost, target, rng, cfg.max_sample_tries,
                             exclude=seen.keys() | pending)
        if found is None:
            break
        arch, c, r = found
        rejected["sampling"] += r
        out.append((arch, c))
        pending.add(arch)
        made["random"] += 1
    return out, made
