"""Exact decoding of a per-decision distribution into the most probable architecture meeting targets.

A search space is seen as ``D`` decisions with ``K`` candidates each (the unified space: layers x its
80 configurations; a cell space: edges x operations). A distribution gives per-candidate
log-probabilities ``logp (D, K)`` (``-inf`` = not allowed) and every cost is additive::

    cost(choice) = slope * (fixed + sum_d table[d, choice[d]]) + intercept     (slope > 0)

so a window on the (calibrated) cost is a window on the raw sum. :func:`decode` solves

    max_choice  sum_d logp[d, choice[d]]
    s.t.        lower_0 <= cost_0(choice) <= upper_0,   cost_j(choice) <= upper_j  (j >= 1)

as a multiple-choice knapsack: a dynamic program over decisions on a fine grid of the first cost
(step ``width / (4 D)``, so rounding moves a sum by at most a quarter of the window), then the grid
cells are tried best first and the first architecture whose exact costs meet every constraint wins.
Further constraints enter by Lagrangian relaxation (``logp - lambda_j * cost_j / upper_j``, each
``lambda_j`` set by bisection to the least value that meets constraint j). An impossible combination
raises :class:`InfeasibleError` whose message gives the achievable region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import SgnasError

#: Default relative width of the window below a target: cost in [target * (1 - eps), target].
DEFAULT_EPS = 0.01
_MAX_BINS = 400_000


class InfeasibleError(SgnasError):
    """No architecture meets the constraints; the message gives the achievable region."""


@dataclass(frozen=True)
class AdditiveCost:
    """An additive cost over decisions: ``slope * (fixed + sum_d table[d, c_d]) + intercept``."""

    name: str
    unit: str
    table: np.ndarray
    fixed: float = 0.0
    slope: float = 1.0
    intercept: float = 0.0
    label: str = ""

    def __post_init__(self) -> None:
        table = np.asarray(self.table, dtype=np.float64)
        if table.ndim != 2 or not np.all(np.isfinite(table)):
            raise SgnasError(f"{self.name} table must be a finite (decisions, candidates) array")
        if not (np.isfinite(self.slope) and self.slope > 0):
            raise SgnasError(f"{self.name}: calibration slope must be positive, got {self.slope}")
        object.__setattr__(self, "table", table)

    @classmethod
    def from_cost(cls, cost, label: str = "") -> "AdditiveCost":
        """From a :class:`~sgnas.costs.TableCost` (its table, fixed part and linear calibration)."""
        return cls(cost.name, cost.unit, cost.table, cost.fixed, cost.slope, cost.intercept,
                   label or cost.name)

    def raw(self, value: float) -> float:
        """The raw-sum value (fixed part included) whose calibrated cost is ``value``."""
        return (value - self.intercept) / self.slope

    def of(self, choice: Sequence[int]) -> float:
        """Calibrated cost of a choice vector."""
        idx = np.asarray(choice, dtype=np.int64)
        raw = self.fixed + float(self.table[np.arange(len(idx)), idx].sum())
        return raw * self.slope + self.intercept

    def bounds(self, allowed: np.ndarray | None = None) -> tuple[float, float]:
        """(min, max) calibrated cost over the allowed candidates."""
        t = self.table if allowed is None else np.where(allowed, self.table, np.nan)
        lo = self.fixed + float(np.nanmin(t, axis=1).sum())
        hi = self.fixed + float(np.nanmax(t, axis=1).sum())
        return lo * self.slope + self.intercept, hi * self.slope + self.intercept


@dataclass(frozen=True)
class Constraint:
    """``lower <= cost <= upper`` (``lower=None``: only the upper bound)."""

    cost: AdditiveCost
    upper: float
    lower: float | None = None

    def met(self, value: float, rtol: float = 1e-9) -> bool:
        tol = rtol * max(abs(self.upper), 1.0)
        return value <= self.upper + tol and (self.lower is None or value >= self.lower - tol)

    def describe(self) -> str:
        label = self.cost.label or self.cost.name
        if self.lower is None:
            return f"{label} <= {self.upper:.4g} {self.cost.unit}"
        return f"{label} in [{self.lower:.4g}, {self.upper:.4g}] {self.cost.unit}"


def window(target: float, eps: float = DEFAULT_EPS) -> tuple[float, float]:
    """``(target * (1 - eps), target)``; ``eps`` must be in (0, 0.5)."""
    if not (0.0 < eps < 0.5):
        raise SgnasError(f"eps must be in (0, 0.5), got {eps:g}")
    return target * (1.0 - eps), target


@dataclass
class Decoded:
    """A decoded choice with its log-probability, the argmax's, and each constraint's cost."""

    choice: np.ndarray
    logprob: float
    argmax_logprob: float
    costs: list[float]
    argmax_costs: list[float]
    lagrange: list[float] = field(default_factory=list)
    grid_step: float = 0.0

    @property
    def logprob_given_up(self) -> float:
        """``log p(argmax) - log p(decoded)`` (>= 0)."""
        return self.argmax_logprob - self.logprob


# --------------------------------------------------------------------------------- DP
def _knapsack(score: np.ndarray, q: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Best total score per grid cell 0..top and the arg choice per (decision, cell)."""
    D, K = score.shape
    best = np.full(top + 1, -np.inf)
    best[0] = 0.0
    arg = np.zeros((D, top + 1), dtype=np.int16 if K < 32_000 else np.int32)
    for d in range(D):
        nxt = np.full(top + 1, -np.inf)
        pick = np.zeros(top + 1, dtype=arg.dtype)
        for k in range(K):
            s = score[d, k]
            if not np.isfinite(s):
                continue
            shift = int(q[d, k])
            if shift > top:
                continue
            cand = best[: top + 1 - shift] + s
            view = nxt[shift:]
            better = cand > view
            view[better] = cand[better]
            pick[shift:][better] = k
        best = nxt
        arg[d] = pick
    return best, arg


def _backtrack(arg: np.ndarray, q: np.ndarray, cell: int) -> np.ndarray:
    D = arg.shape[0]
    choice = np.zeros(D, dtype=np.int64)
    for d in range(D - 1, -1, -1):
        k = int(arg[d, cell])
        choice[d] = k
        cell -= int(q[d, k])
    return choice


class _Grid:
    """The first constraint's cost quantized on a grid fine enough for its window."""

    def __init__(self, c0: Constraint, allowed: np.ndarray) -> None:
        cost = c0.cost
        D = cost.table.shape[0]
        t = np.where(allowed, cost.table, np.inf)
        self.base = t.min(axis=1)  # per-decision minimum
        lo_c = c0.lower if c0.lower is not None else cost.bounds(allowed)[0]
        lo = cost.raw(lo_c) - cost.fixed - self.base.sum()
        hi = cost.raw(c0.upper) - cost.fixed - self.base.sum()
        width = max(hi - lo, 1e-12)
        step = width / (4.0 * D)
        if hi / step > _MAX_BINS:
            step = hi / _MAX_BINS
        self.step = step
        rel = np.where(allowed, cost.table - self.base[:, None], 0.0)
        self.q = np.rint(rel / step).astype(np.int64)
        slack = D * step / 2.0
        self.top = max(int(np.floor((hi + slack) / step)), 0)
        self.first = max(int(np.ceil((lo - slack) / step)), 0)


def decode(
    logp: np.ndarray,
    constraints: Sequence[Constraint],
    max_tries: int = 4096,
    bisection_steps: int = 18,
) -> Decoded:
    """Most probable choice (one candidate per decision) meeting every constraint (module docstring).

    ``constraints[0]`` drives the grid (give it a window: ``lower`` set); the others are enforced
    through Lagrangian relaxation. Raises :class:`InfeasibleError` with the achievable region.
    """
    logp = np.asarray(logp, dtype=np.float64)
    if logp.ndim != 2:
        raise SgnasError(f"logp must be (decisions, candidates), got shape {logp.shape}")
    if not constraints:
        raise SgnasError("decode needs at least one constraint")
    for c in constraints:
        if c.cost.table.shape != logp.shape:
            raise SgnasError(f"{c.cost.name} table has shape {c.cost.table.shape}, "
                             f"the distribution {logp.shape}")
    allowed = np.isfinite(logp)
    if not allowed.any(axis=1).all():
        raise SgnasError("a decision has no allowed candidate")
    argmax = np.where(allowed, logp, -np.inf).argmax(axis=1)
    argmax_lp = float(logp[np.arange(len(argmax)), argmax].sum())
    check_achievable(constraints, allowed)

    c0, rest = constraints[0], list(constraints[1:])
    grid = _Grid(c0, allowed)

    def solve(lam: np.ndarray, check_all: bool = True) -> np.ndarray | None:
        """Best grid cell whose choice meets the first constraint (and, with ``check_all``, the
        others) under multipliers ``lam``."""
        score = logp.copy()
        for l_j, c in zip(lam, rest):
            if l_j > 0:
                score = score - l_j * c.cost.table * c.cost.slope / max(abs(c.upper), 1e-12)
        best, arg = _knapsack(np.where(allowed, score, -np.inf), grid.q, grid.top)
        cells = np.arange(grid.first, grid.top + 1)
        cells = cells[np.isfinite(best[cells])]
        for cell in cells[np.argsort(-best[cells], kind="stable")][:max_tries]:
            choice = _backtrack(arg, grid.q, int(cell))
            if c0.met(c0.cost.of(choice)) and (
                not check_all or all(c.met(c.cost.of(choice)) for c in rest)
            ):
                return choice
        return None

    def meets(lam: np.ndarray, c: Constraint) -> bool:
        ch = solve(lam, check_all=False)
        return ch is not None and c.met(c.cost.of(ch))

    lam = np.zeros(len(rest))
    found: list[np.ndarray] = []
    choice = solve(lam)
    if choice is not None:
        found.append(choice)
    elif rest:
        # coordinate-wise bisection on each multiplier: the least lambda_j meeting constraint j
        for _ in range(2):
            for j, c in enumerate(rest):
                if solve(lam, check_all=False) is None:
                    break
                if meets(lam, c):
                    continue
                lo_l, hi_l = lam[j], max(lam[j] * 2.0, 1.0)
                while hi_l < 1e6:
                    trial = lam.copy()
                    trial[j] = hi_l
                    if meets(trial, c):
                        break
                    lo_l, hi_l = hi_l, hi_l * 4.0
                for _ in range(bisection_steps):
                    mid = 0.5 * (lo_l + hi_l)
                    trial = lam.copy()
                    trial[j] = mid
                    if meets(trial, c):
                        hi_l = mid
                    else:
                        lo_l = mid
                lam[j] = hi_l
                ch = solve(lam)
                if ch is not None:
                    found.append(ch)
            if found:
                break
    if not found:
        raise InfeasibleError(_region_message(constraints, allowed, grid))
    best_choice = max(found, key=lambda ch: float(logp[np.arange(len(ch)), ch].sum()))
    return Decoded(
        choice=best_choice,
        logprob=float(logp[np.arange(len(best_choice)), best_choice].sum()),
        argmax_logprob=argmax_lp,
        costs=[c.cost.of(best_choice) for c in constraints],
        argmax_costs=[c.cost.of(argmax) for c in constraints],
        lagrange=lam.tolist(),
        grid_step=grid.step * c0.cost.slope,
    )


def check_achievable(constraints: Sequence[Constraint], allowed: np.ndarray) -> None:
    """Raise :class:`InfeasibleError` naming the range of the first constraint out of reach."""
    for c in constraints:
        lo, hi = c.cost.bounds(allowed)
        if c.upper < lo or (c.lower is not None and c.lower > hi):
            raise InfeasibleError(
                f"{c.describe()} is not achievable: {c.cost.label or c.cost.name} ranges over "
                f"{lo:.4g} to {hi:.4g} {c.cost.unit}"
            )


def _region_message(constraints: Sequence[Constraint], allowed: np.ndarray, grid: _Grid) -> str:
    """The least value of each further cost reachable inside the first constraint's window."""
    c0, rest = constraints[0], constraints[1:]
    parts = []
    for c in rest:
        score = np.where(allowed, -c.cost.table, -np.inf)
        best, arg = _knapsack(score, grid.q, grid.top)
        least = np.inf
        for cell in range(grid.first, grid.top + 1):
            if np.isfinite(best[cell]):
                ch = _backtrack(arg, grid.q, cell)
                if c0.met(c0.cost.of(ch)):
                    least = min(least, c.cost.of(ch))
        if np.isfinite(least):
            parts.append(f"{c.cost.label or c.cost.name} >= {least:.4g} {c.cost.unit}")
        else:
            parts.append(f"{c.cost.label or c.cost.name} unconstrained")
    lo, hi = c0.cost.bounds(allowed)
    region = "; ".join(parts) if parts else f"{c0.cost.name} ranges over {lo:.4g} to {hi:.4g}"
    return (f"no architecture meets {', '.join(c.describe() for c in constraints)}: with "
            f"{c0.describe()} the achievable region is {region}")


def decode_enumerated(
    logp: np.ndarray,
    choices: np.ndarray,
    values: np.ndarray,
    bounds: Sequence[tuple[float | None, float]],
    labels: Sequence[str] = (),
) -> Decoded:
    """Exact decoding by enumeration, for small spaces whose costs are not additive (e.g. a cell
    space with a latency table per cell): ``choices`` ``(N, D)`` lists every architecture's
    candidate indices, ``values`` ``(N, C)`` its costs, ``bounds`` a ``(lower or None, upper)`` per
    cost. Returns the most probable architecture meeting every bound."""
    logp = np.asarray(logp, dtype=np.float64)
    choices = np.asarray(choices, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64).reshape(len(choices), -1)
    if values.shape[1] != len(bounds):
        raise SgnasError(f"{values.shape[1]} costs per architecture, {len(bounds)} bounds")
    scores = logp[np.arange(logp.shape[0])[None, :], choices].sum(axis=1)
    ok = np.isfinite(scores)
    for j, (lower, upper) in enumerate(bounds):
        ok &= values[:, j] <= upper
        if lower is not None:
            ok &= values[:, j] >= lower
    best = int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))
    if not ok.any():
        names = list(labels) or [f"cost {j}" for j in range(len(bounds))]
        region = ", ".join(f"{n} ranges over {values[:, j].min():.4g} to {values[:, j].max():.4g}"
                           for j, n in enumerate(names))
        raise InfeasibleError(f"no architecture meets the bounds; {region}")
    pick = int(np.flatnonzero(ok)[np.argmax(scores[ok])])
    return Decoded(choice=choices[pick], logprob=float(scores[pick]),
                   argmax_logprob=float(scores[best]), costs=values[pick].tolist(),
                   argmax_costs=values[best].tolist())
