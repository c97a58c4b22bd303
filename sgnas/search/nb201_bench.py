"""Search on NAS-Bench-201 scored against ground truth (the paper's Table 3 protocol).

For each constraint (a per-cell cost table and a maximum) and seed, every method picks one cell:
``random`` and ``evolution`` search with the supernet evaluator under the same budget of distinct
supernet evaluations (equal search time: the evaluation is what costs), ``generator`` calls a
:data:`Generate` hook. The pick is then looked up in the ground truth: its CIFAR-10 / CIFAR-100 /
ImageNet16-120 test accuracy, the oracle (best cell meeting the same constraint) per metric, the
regret, and whether the constraint holds. :func:`summarise` gives mean +- std over seeds of the
per-seed means over constraints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import SgnasError
from ..nb201.constraint import CellCost, Constraint, oracle
from ..nb201.groundtruth import REPORTED, GroundTruth
from ..nb201.space import Cell, NB201Space
from .evolution import EvolutionConfig, evolution_search
from .random_search import random_search

#: The generator hook: ``generate(table, target) -> Cell`` (or its string) for a ``(5,)*6`` cost
#: table and a maximum cost; a hook that also takes a ``name`` keyword gets the cost's name
#: (``"flops"`` or the latency.csv device, e.g. ``"gold_6226"``), to pick a device's generator.
Generate = Callable[[np.ndarray, float], "Cell | str"]
SEARCH_METHODS = ("random", "evolution")
METHODS = SEARCH_METHODS + ("generator",)


@dataclass
class SearchBudget:
    """Distinct supernet evaluations per search, and how evolution spends them."""

    evaluations: int = 20
    generations: int = 2

    def evolution_config(self) -> EvolutionConfig:
        """Population ``evaluations // generations``; half mutants, a quarter crossovers."""
        if self.evaluations < 2 or self.generations < 1:
            raise SgnasError(f"a search budget needs >= 2 evaluations and >= 1 generation, got "
                             f"{self.evaluations} / {self.generations}")
        pop = max(2, self.evaluations // self.generations)
        return EvolutionConfig(population=pop, top_k=max(2, pop // 2),
                               generations=max(1, self.evaluations // pop),
                               mutants=pop // 2, mutation_prob=1.0 / 6, crossovers=pop // 4)


@dataclass
class Pick:
    """One method's cell for one constraint and seed, with its search cost."""

    cell: Cell
    evaluations: int
    seconds: float


def search_pick(method: str, cost: CellCost, target: float, evaluate: Callable[[Cell], float],
                budget: SearchBudget, seed: int, space: NB201Space | None = None,
                generate: Generate | None = None) -> Pick:
    """Run ``method`` once under ``cost <= target`` and return its cell."""
    space = space or NB201Space()
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    if method == "random":
        res = random_search(space, cost, evaluate, target, n=budget.evaluations, rng=rng)
        return Pick(res.best, res.evaluations, time.perf_counter() - start)
    if method == "evolution":
        res = evolution_search(space, cost, evaluate, target, budget.evolution_config(), rng=rng)
        return Pick(res.best, res.evaluations, time.perf_counter() - start)
    if method == "generator":
        if generate is None:
            raise SgnasError("method 'generator' needs a generate(table, target) hook")
        import torch

        torch.manual_seed(seed)
        extra = {"name": cost.name} if _takes_name(generate) else {}
        out = generate(cost.table, float(target), **extra)
        cell = out if isinstance(out, Cell) else space.cell(out)
        return Pick(cell, 0, time.perf_counter() - start)
    raise SgnasError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def _takes_name(fn: Callable) -> bool:
    """Whether ``fn`` accepts a ``name`` keyword (the cost's name: ``"flops"`` or the device)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "name" or p.kind is p.VAR_KEYWORD for p in params)


def score_pick(gt: GroundTruth, constraint: Constraint | None, cell: Cell) -> dict[str, Any]:
    """Ground truth of ``cell`` under ``constraint``: per reported dataset its test accuracy, the
    oracle's and the regret; the cost and whether the constraint holds."""
    out: dict[str, Any] = {"arch": str(cell)}
    for name, column in REPORTED.items():
        table = gt.acc(column)
        o_cell, o_acc = oracle(table, constraint)
        acc = float(table[cell.ops])
        out[name] = acc
        out[f"{name}_oracle"] = o_acc
        out[f"{name}_regret"] = o_acc - acc
        # what a blind pick scores: the mean over every cell meeting the constraint
        feasible = table if constraint is None else table[constraint.mask()]
        out[f"{name}_feasible_mean"] = float(np.mean(feasible))
        if name == "cifar10":
            out["oracle_arch"] = str(o_cell)
    if constraint is not None:
        out["cost"] = constraint.cost.exact(cell)
        out["holds"] = bool(constraint.holds(cell))
    else:
        out["holds"] = True
    return out


def _mean_std(values: Iterable[float]) -> dict[str, float]:
    v = np.asarray(list(values), dtype=np.float64)
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": round(float(v.mean()), 4), "std": round(std, 4)}


def summarise(rows: list[dict[str, Any]], keys: tuple[str, ...] = ("method",)) -> dict[str, Any]:
    """Mean +- std over seeds of each seed's mean over constraints, grouped by ``keys``.

    Metrics: test accuracy and regret per reported dataset, the CIFAR-10 oracle and the mean over
    the cells meeting each constraint (a blind pick's expectation), the fraction of constraints
    met, distinct supernet evaluations and search seconds per search.
    """
    groups: dict[tuple, dict[int, list[dict[str, Any]]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), {}).setdefault(r["seed"], []).append(r)
    metrics = [*REPORTED, *(f"{n}_regret" for n in REPORTED), "cifar10_oracle",
               "cifar10_feasible_mean", "holds", "evaluations", "seconds"]
    out: dict[str, Any] = {}
    for key, by_seed in sorted(groups.items()):
        per_seed = {m: [float(np.mean([float(r[m]) for r in rs])) for rs in by_seed.values()]
                    for m in metrics}
        entry: dict[str, Any] = {m: _mean_std(v) for m, v in per_seed.items()}
        entry["seeds"] = len(by_seed)
        entry["constraints"] = len(next(iter(by_seed.values())))
        out["/".join(str(k) for k in key)] = entry
    return out



def load_nb201_supernet(checkpoint: str, data_root: str, batch_size: int = 64,
                        cache_dir: str | None = None):
    """An NB201 supernet checkpoint and the data split it was trained with (its held-out half is
    the cifar10-valid protocol's validation half): ``(model, meta, datasets)``."""
    from ..evaluation.checkpoint import load_supernet
    from ..evaluation.data import build_datasets, supernet_data_config

    model, meta = load_supernet(checkpoint)
    if meta.get("space") != "nb201":
        raise SgnasError(f"{checkpoint} is a supernet of {meta.get('space')!r}, not nb201")
    cfg = supernet_data_config(meta, data_root, batch_size=batch_size, workers=0,
                               cache_dir=cache_dir)
    return model, meta, build_datasets(cfg, model.space)


__all__ = ["Generate", "load_nb201_supernet", "METHODS", "Pick", "SEARCH_METHODS", "SearchBudget", "score_pick",
           "search_pick", "summarise"]
