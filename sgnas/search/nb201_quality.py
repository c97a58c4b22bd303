"""Search quality on NAS-Bench-201 ground truth: how well a signal ranks, and what a search costs.

The protocol (docs/nb201.md): cost families FLOPs plus every device of ``latency.csv``; targets
``T`` at the p10/p25/p50/p75/p90 of each family's cost over connected cells; regret = the best
CIFAR-10 test accuracy among cells with cost <= T minus the chosen cell's. Everything here works on
``(5,)*6`` tables indexed by op indices (:mod:`sgnas.nb201.cost`), so a whole protocol costs
milliseconds per signal and search baselines run on the same tables with the same budget.

* :func:`rank_quality`: Kendall tau (and Spearman) of a signal against an accuracy column over the
  connected cells, with a bootstrap interval over cells;
* :func:`exhaustive_regret`: the best cell by the signal among feasible connected cells; a tie is
  scored as the mean over the tied cells (FLOPs has many ties);
* :func:`window_regret`: a uniform pick among connected cells with cost in ``[T (1 - eps), T]``;
* :func:`search_regret`: random search or evolution on the signal table with a budget of distinct
  evaluations (connected cells only);
* :func:`rank_average`: the ensemble rule, fixed without ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import SgnasError
from ..metrics import kendall_tau, spearman
from ..nb201.cost import TABLE_SHAPE
from ..nb201.groundtruth import CIFAR10_TEST, GroundTruth, connected_mask

#: Quantiles of each family's connected-cell cost used as targets.
PROTOCOL_QUANTILES: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class Target:
    """One constraint of the protocol: ``cost[family] <= value``."""

    family: str
    quantile: float
    value: float


def protocol_targets(gt: GroundTruth, families: Sequence[str] | None = None,
                     quantiles: Sequence[float] = PROTOCOL_QUANTILES) -> list[Target]:
    """Targets of every family (default: FLOPs and every loaded device) at ``quantiles`` of the
    connected cells' cost (each the cost of an actual cell)."""
    from ..nb201.groundtruth import FLOPS, spread_targets

    fams = [FLOPS, *gt.devices] if families is None else list(families)
    out = []
    for fam in fams:
        table = gt.cost_table(fam)
        out += [Target(fam, float(q), t)
                for q, t in zip(quantiles, spread_targets(table, quantiles, gt.connected))]
    return out


def check_table(score: np.ndarray, name: str = "signal") -> np.ndarray:
    """``score`` as a float ``(5,)*6`` table; another shape or a non-finite value is an error."""
    s = np.asarray(score, dtype=np.float64)
    if s.shape != TABLE_SHAPE:
        raise SgnasError(f"{name}: a cell table has shape {TABLE_SHAPE}, got {s.shape}")
    if not np.isfinite(s).all():
        raise SgnasError(f"{name}: {int((~np.isfinite(s)).sum())} cells have non-finite scores")
    return s


def rank_average(tables: Sequence[np.ndarray], mask: np.ndarray | None = None) -> np.ndarray:
    """The mean of each table's ranks over the cells of ``mask`` (default: connected cells;
    ties share their average rank), scaled to [0, 1]; cells outside ``mask`` score -1."""
    from ..metrics import _average_ranks

    mask = connected_mask() if mask is None else mask
    if not tables:
        raise SgnasError("a rank average needs at least one member")
    n = int(mask.sum())
    acc = np.zeros(n)
    for t in tables:
        acc += (_average_ranks(np.asarray(t, dtype=np.float64)[mask]) - 1) / max(n - 1, 1)
    out = np.full(TABLE_SHAPE, -1.0)
    out[mask] = acc / len(tables)
    return out


@dataclass(frozen=True)
class RankQuality:
    """Rank correlation of a signal with ground truth over ``cells`` cells, with a bootstrap
    interval (``level`` two-sided) of Kendall tau."""

    kendall_tau: float
    tau_low: float
    tau_high: float
    spearman: float
    cells: int
    level: float = 0.95

    def as_dict(self) -> dict:
        return {"kendall_tau": round(self.kendall_tau, 4),
                "tau_ci": [round(self.tau_low, 4), round(self.tau_high, 4)],
                "spearman": round(self.spearman, 4), "cells": self.cells}


def rank_quality(score: np.ndarray, accuracy: np.ndarray, mask: np.ndarray | None = None,
                 boot: int = 200, seed: int = 0, level: float = 0.95) -> RankQuality:
    """Kendall tau / Spearman of ``score`` vs ``accuracy`` over the cells of ``mask`` (default:
    connected), with a percentile bootstrap interval over cells (``boot`` resamples)."""
    mask = connected_mask() if mask is None else mask
    s = np.asarray(score, dtype=np.float64)[mask]
    a = np.asarray(accuracy, dtype=np.float64)[mask]
    tau = kendall_tau(s, a)
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(boot):
        i = rng.integers(0, s.size, s.size)
        taus.append(kendall_tau(s[i], a[i]))
    lo, hi = np.quantile(taus, [(1 - level) / 2, (1 + level) / 2]) if taus else (tau, tau)
    return RankQuality(tau, float(lo), float(hi), spearman(s, a), int(s.size), level)


def feasible(cost: np.ndarray, target: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Connected cells (``mask``) with ``cost <= target``."""
    mask = connected_mask() if mask is None else mask
    return mask & (np.asarray(cost) <= target)


def oracle_accuracy(accuracy: np.ndarray, cost: np.ndarray, target: float) -> float:
    """The best accuracy among cells with cost <= target."""
    ok = np.asarray(cost) <= target
    if not ok.any():
        raise SgnasError(f"no cell has cost <= {target:g}")
    return float(np.asarray(accuracy)[ok].max())


def exhaustive_regret(score: np.ndarray, accuracy: np.ndarray, cost: np.ndarray, target: float,
                      mask: np.ndarray | None = None) -> float:
    """Regret of the feasible connected cell with the highest score (mean over a tie)."""
    ok = feasible(cost, target, mask)
    if not ok.any():
        raise SgnasError(f"no connected cell has cost <= {target:g}")
    s = np.asarray(score, dtype=np.float64)
    best = s[ok].max()
    tied = ok & (s == best)
    return oracle_accuracy(accuracy, cost, target) - float(np.asarray(accuracy)[tied].mean())


def window_regret(accuracy: np.ndarray, cost: np.ndarray, target: float, eps: float = 0.01,
                  mask: np.ndarray | None = None, best: bool = False) -> float:
    """Regret of a uniform pick (``best``: the best pick by ground truth) among connected cells
    with cost in ``[target (1 - eps), target]``; a window holding no cell starts at the highest
    cost below ``target`` (as decoding does)."""
    ok = feasible(cost, target, mask)
    c = np.asarray(cost)
    lo = target * (1 - eps)
    win = ok & (c >= lo)
    if not win.any():
        win = ok & (c == c[ok].max())
    acc = np.asarray(accuracy)[win]
    return oracle_accuracy(accuracy, cost, target) - float(acc.max() if best else acc.mean())


def search_regret(method: str, score: np.ndarray, accuracy: np.ndarray, cost: np.ndarray,
                  target: float, evaluations: int, seed: int,
                  mask: np.ndarray | None = None) -> tuple[float, int]:
    """Regret of ``random`` search or ``evolution`` on the signal table (connected cells with
    cost <= target, ``evaluations`` distinct evaluations) and the evaluations it made."""
    from .nb201_bench import SearchBudget, search_pick
    from ..nb201.constraint import CellCost
    from ..nb201.space import NB201Space

    s = np.asarray(score, dtype=np.float64)
    evaluate: Callable = lambda cell: float(s[cell.ops])  # noqa: E731
    pick = search_pick(method, CellCost(np.asarray(cost, dtype=np.float64)), float(target),
                       evaluate, SearchBudget(evaluations, generations=4), seed, NB201Space())
    regret = oracle_accuracy(accuracy, cost, target) - float(np.asarray(accuracy)[pick.cell.ops])
    return regret, pick.evaluations


def bootstrap_mean(values: Sequence[float], boot: int = 2000, seed: int = 0,
                   level: float = 0.95) -> dict:
    """Mean with a percentile bootstrap interval."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, (boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": round(float(v.mean()), 3), "ci": [round(float(lo), 3), round(float(hi), 3)],
            "n": int(v.size)}




# ------------------------------------------------------------------------ the whole protocol
@dataclass
class ProtocolConfig:
    """What :func:`signal_report` runs for each signal."""

    quantiles: tuple[float, ...] = PROTOCOL_QUANTILES
    regret_column: str = CIFAR10_TEST
    tau_column: str = "cifar10_valid_acc"
    budget: int = 100
    searches: tuple[str, ...] = ("random", "evolution")
    boot: int = 200


def beats(regrets: np.ndarray, reference: np.ndarray, tol: float = 1e-9) -> dict:
    """Share of targets where ``regrets`` is below / no worse than ``reference``."""
    r, ref = np.asarray(regrets), np.asarray(reference)
    return {"below": round(float(np.mean(r < ref - tol)), 3),
            "no_worse": round(float(np.mean(r <= ref + tol)), 3)}


def signal_report(tables: Sequence[np.ndarray], gt: GroundTruth, targets: Sequence[Target],
                  reference: np.ndarray, cfg: ProtocolConfig | None = None,
                  generator_regrets: Callable[[np.ndarray, int], dict] | None = None) -> dict:
    """Rank quality and regrets of one signal (``tables``: one ``(5,)*6`` table per seed).

    Per seed: Kendall tau over connected cells (bootstrap interval), exhaustive-pick regret over
    ``targets`` (compared target by target with ``reference``, the largest-feasible rule), random
    search and evolution with ``cfg.budget`` distinct evaluations each, and — when given —
    ``generator_regrets(table, seed)`` (a dict with a ``regrets`` array and anything else to
    report). Means over seeds come with a bootstrap interval over (seed, target) pairs.
    """
    cfg = cfg or ProtocolConfig()
    acc = gt.acc(cfg.regret_column)
    valid = gt.acc(cfg.tau_column)
    out: dict = {"seeds": len(tables), "tau": [], "exhaustive": {}, "searches": {}}
    exh_all, search_all = [], {m: [] for m in cfg.searches}
    gen_all, gen_extra = [], []
    for seed, raw in enumerate(tables):
        table = check_table(raw)
        out["tau"].append(rank_quality(table, valid, gt.connected, cfg.boot, seed).as_dict())
        exh = np.array([exhaustive_regret(table, acc, gt.cost_table(t.family), t.value,
                                          gt.connected) for t in targets])
        exh_all.append(exh)
        for m in cfg.searches:
            search_all[m].append(np.array([
                search_regret(m, table, acc, gt.cost_table(t.family), t.value, cfg.budget,
                              seed * 1000 + k, gt.connected)[0] for k, t in enumerate(targets)]))
        if generator_regrets is not None:
            g = generator_regrets(table, seed)
            gen_all.append(np.asarray(g.pop("regrets")))
            gen_extra.append(g)
    exh = np.concatenate(exh_all)
    ref = np.tile(reference, len(tables))
    out["exhaustive"] = {**bootstrap_mean(exh), **beats(exh, ref)}
    for m, rows in search_all.items():
        r = np.concatenate(rows)
        out["searches"][m] = {**bootstrap_mean(r), "evaluations": cfg.budget,
                              "gap_to_exhaustive": round(float((r - exh).mean()), 3)}
    if gen_all:
        r = np.concatenate(gen_all)
        out["generator"] = {**bootstrap_mean(r), **beats(r, ref),
                            "gap_to_exhaustive": bootstrap_mean(r - exh), "per_seed": gen_extra}
    return out


__all__ = ["PROTOCOL_QUANTILES", "ProtocolConfig", "RankQuality", "Target", "beats", "bootstrap_mean", "check_table", "signal_report",
           "exhaustive_regret", "feasible", "oracle_accuracy",
           "protocol_targets", "rank_average", "rank_quality", "search_regret", "window_regret"]
