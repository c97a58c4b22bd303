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

import copy
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
    gap: float = 0.0  #: certified: no feasible choice beats ``logprob`` by more (0: exact)
    nodes: int = 0  #: branch-and-bound nodes expanded

    @property
    def logprob_given_up(self) -> float:
        """``log p(argmax) - log p(decoded)`` (>= 0)."""
        return self.argmax_logprob - self.logprob


# ------------------------------------------------------------------------ relaxation
_RTOL = 1e-9  # :meth:`Constraint.met`'s tolerance
_TOL = 1e-9  # a bound must beat the incumbent's log-probability by this much to be explored


class _Limits:
    """Every constraint on relative raw sums: each decision's cost minus its least allowed cost
    (so sums start at 0), limits widened by :meth:`Constraint.met`'s tolerance."""

    def __init__(self, constraints: Sequence[Constraint], allowed: np.ndarray) -> None:
        rel, upper, lower = [], [], []
        for c in constraints:
            cost = c.cost
            mins = np.where(allowed, cost.table, np.inf).min(axis=1)
            rel.append(np.where(allowed, cost.table - mins[:, None], 0.0))
            base = cost.fixed + float(mins.sum())
            tol = _RTOL * max(abs(c.upper), 1.0)
            up = cost.raw(c.upper + tol) - base
            upper.append(up + 1e-12 * (abs(up) + abs(base) + 1.0))
            if c.lower is None:
                lower.append(-np.inf)
            else:
                lo = cost.raw(c.lower - tol) - base
                lower.append(lo - 1e-12 * (abs(lo) + abs(base) + 1.0))
        self.rel = np.stack(rel)  # (C, D, K), >= 0
        self.upper = np.asarray(upper)
        self.lower0 = float(lower[0])
        self.scale = np.maximum(np.abs(self.upper), 1e-12)


class _Grid:
    """The first constraint's relative cost rounded down on a grid: a suffix of ``n`` decisions
    with sum ``S`` has grid sum ``Q`` with ``S / step - E <= Q <= S / step`` (``E <= n``: the
    largest rounding it can accumulate), so a window on ``S`` is a range of ``Q``."""

    def __init__(self, lim: _Limits, allowed: np.ndarray, max_bins: int) -> None:
        r0 = lim.rel[0]
        D = r0.shape[0]
        up, lo = lim.upper[0], lim.lower0
        self.window = bool(np.isfinite(lo) and lo > 0)
        if self.window:
            step = (up - lo) / (4.0 * D)  # rounding moves a sum by at most a quarter window
        else:
            step = up / (100.0 * D)  # ... by at most 1% of the limit
        step = max(step, up / max_bins, 1e-300)
        self.step = step
        self.top = max(int(np.floor(up / step + 1e-9)), 0)
        ratio = np.where(allowed, r0 / step, 0.0)
        self.q = np.maximum(np.floor(ratio - 1e-9), 0).astype(np.int64)
        frac = np.where(allowed, ratio - self.q, 0.0).max(axis=1)
        # slack[d]: the rounding a suffix from decision d may accumulate
        self.slack = np.concatenate([np.cumsum(frac[::-1])[::-1], [0.0]]) + 1e-9
        self.lo, self.up = lo, up

    def cells(self, d: int, p0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Range ``[qa, qb]`` of grid sums a suffix from decision ``d`` may take after prefixes
        of relative cost ``p0`` (empty where ``qa > qb``)."""
        qb = np.minimum(np.floor((self.up - p0) / self.step + 1e-9), self.top)
        if self.window:
            qa = np.maximum(np.floor((self.lo - p0) / self.step - self.slack[d]), 0)
        else:
            qa = np.zeros_like(qb)
        return qa.astype(np.int64), qb.astype(np.int64)


def _suffix_tables(scores: np.ndarray, grid: _Grid, allowed: np.ndarray,
                   root_only: bool = False) -> np.ndarray:
    """``H[d, m, Q]``: best total of ``scores[m]`` over decisions ``d..D-1`` with grid sum ``Q``
    (``-inf``: none). ``scores`` is ``(M, D, K)``; with ``root_only`` only ``H[0]`` is kept."""
    M, D, K = scores.shape
    top = grid.top
    cur = np.full((M, top + 1), -np.inf)
    cur[:, 0] = 0.0
    out = None if root_only else np.full((D + 1, M, top + 1), -np.inf)
    if out is not None:
        out[D] = cur
    for d in range(D - 1, -1, -1):
        nxt = np.full((M, top + 1), -np.inf)
        for k in np.flatnonzero(allowed[d]):
            sh = int(grid.q[d, k])
            if sh > top:
                continue
            view = nxt[:, sh:]
            np.maximum(view, cur[:, : top + 1 - sh] + scores[:, d, k, None], out=view)
        cur = nxt
        if out is not None:
            out[d] = cur
    return out if out is not None else cur[None]


class _RangeMax:
    """Range maxima of each level's table over grid sums ``[qa, qb]`` (sparse tables for a
    window, prefix maxima for an upper bound alone)."""

    def __init__(self, H: np.ndarray, grid: _Grid) -> None:
        self.window = grid.window
        if not self.window:
            self.tab = np.maximum.accumulate(H, axis=-1)
            return
        longest = int(np.ceil((grid.up - grid.lo) / grid.step + grid.slack[0])) + 3
        levels = max(int(np.ceil(np.log2(max(longest, 2)))), 1)
        tabs = [H]
        for lv in range(1, levels + 1):
            prev, h = tabs[-1], 1 << (lv - 1)
            cur = prev.copy()
            np.maximum(prev[..., :-h], prev[..., h:], out=cur[..., :-h])
            tabs.append(cur)
        self.tab = np.stack(tabs, axis=1)  # (D + 1, levels + 1, M, N)
        self.levels = levels

    def query(self, d: int, qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
        """``(n, M)`` maxima of level ``d`` over ``[qa, qb]`` (callers drop ``qa > qb``)."""
        if not self.window:
            return self.tab[d][:, qb].T
        n = np.maximum(qb - qa + 1, 1)
        lv = np.minimum(np.floor(np.log2(n)).astype(np.int64), self.levels)
        t = self.tab[d]
        return np.maximum(t[lv, :, qa], t[lv, :, qb - (1 << lv) + 1])


class _Bounds:
    """Upper bounds on the log-probability of any feasible completion of a prefix: the first
    constraint's window through the grid, each further one through Lagrangian relaxation (the
    least over a few multiplier vectors), plus a feasibility test on each further cost's least
    value reachable inside the window."""

    def __init__(self, logp: np.ndarray, lim: _Limits, grid: _Grid, allowed: np.ndarray) -> None:
        self.lim, self.grid = lim, grid
        extra = len(lim.upper) - 1
        norm = lim.rel[1:] / lim.scale[1:, None, None]  # (E, D, K)
        self.lam = _multipliers(logp, norm, grid, allowed) if extra else np.zeros((1, 0))
        scores = [logp - np.tensordot(l, norm, axes=1) for l in self.lam]
        scores += [-n for n in norm]  # feasibility: the least normalized cost of each extra
        self.M = len(self.lam)
        H = _suffix_tables(np.stack(scores), grid, allowed)
        self.rmq = _RangeMax(H, grid)

    def children(self, d: int, p: np.ndarray, g: float, logp_d: np.ndarray,
                 allowed_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds ``(K,)`` of choosing each candidate at decision ``d`` after a prefix with
        relative costs ``p`` and log-probability ``g`` (``-inf``: no feasible completion), and
        the children's relative costs ``(C, K)``."""
        lim = self.lim
        pk = p[:, None] + lim.rel[:, d, :]
        ok = allowed_d & np.all(pk <= lim.upper[:, None], axis=0)
        qa, qb = self.grid.cells(d + 1, pk[0])
        ok &= qa <= qb
        bound = np.full(pk.shape[1], -np.inf)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return bound, pk
        vals = self.rmq.query(d + 1, qa[idx], qb[idx])  # (n, M + E)
        room = (lim.upper[1:, None] - pk[1:, idx]) / lim.scale[1:, None]  # (E, n)
        fits = np.all(vals[:, self.M:].T + room >= -1e-12, axis=0) if room.size else True
        lagr = vals[:, : self.M] + (self.lam @ room).T  # (n, M)
        b = g + logp_d[idx] + lagr.min(axis=1)
        bound[idx] = np.where(fits & np.isfinite(b), b, -np.inf)
        return bound, pk


def _multipliers(logp: np.ndarray, norm: np.ndarray, grid: _Grid, allowed: np.ndarray,
                 rounds: int = 2) -> np.ndarray:
    """A few multiplier vectors near the Lagrangian dual's minimum (coordinate search over a
    geometric grid, on a coarser copy of the grid): ``(3, E)``."""
    coarse = copy.copy(grid)
    factor = max(1, grid.top // 500)
    coarse.step = grid.step * factor
    coarse.top = grid.top // factor
    coarse.q = grid.q // factor
    coarse.slack = grid.slack / factor + 1.0 * np.arange(len(grid.slack))[::-1]
    qa, qb = coarse.cells(0, np.zeros(1))
    values = np.concatenate([[0.0], 2.0 ** np.arange(-2, 11)])
    lam = np.zeros(norm.shape[0])
    for _ in range(rounds if norm.shape[0] > 1 else 1):
        for j in range(norm.shape[0]):
            trials = np.repeat(lam[None], len(values), axis=0)
            trials[:, j] = values
            scores = np.stack([logp - np.tensordot(t, norm, axes=1) for t in trials])
            H = _suffix_tables(scores, coarse, allowed, root_only=True)[0]
            if qa[0] > qb[0]:
                return np.stack([lam] * 3)
            dual = H[:, qa[0]: qb[0] + 1].max(axis=1) + trials.sum(axis=1)
            lam = trials[int(np.argmin(np.where(np.isfinite(dual), dual, np.inf)))]
    return np.stack([lam / np.sqrt(2.0), lam, lam * np.sqrt(2.0)])


def _search(logp: np.ndarray, constraints: Sequence[Constraint], bounds: _Bounds,
            allowed: np.ndarray, max_nodes: int) -> tuple[np.ndarray | None, float, int]:
    """Depth-first branch and bound, children best bound first: ``(choice, upper bound on any
    better feasible choice's log-probability, nodes expanded)``; the choice is exact when the
    bound is not above its log-probability."""
    D = logp.shape[0]
    best, best_lp = None, -np.inf
    choice = np.zeros(D, dtype=np.int64)
    nodes = 0

    def frame(d: int, p: np.ndarray, g: float) -> list:
        b, pk = bounds.children(d, p, g, logp[d], allowed[d])
        keep = np.flatnonzero(b > best_lp + _TOL)
        order = keep[np.argsort(-b[keep], kind="stable")]
        return [order, b[order], 0, pk]

    def leaves(p: np.ndarray, g: float) -> None:
        nonlocal best, best_lp
        d = D - 1
        pk = p[:, None] + bounds.lim.rel[:, d, :]
        ok = allowed[d] & np.all(pk <= bounds.lim.upper[:, None], axis=0)
        if np.isfinite(bounds.lim.lower0):
            ok &= pk[0] >= bounds.lim.lower0
        lp = np.where(ok, g + logp[d], -np.inf)
        for k in np.argsort(-lp, kind="stable"):
            if not lp[k] > best_lp:
                break
            choice[d] = k
            if all(c.met(c.cost.of(choice)) for c in constraints):
                best, best_lp = choice.copy(), float(logp[np.arange(D), choice].sum())
                break

    if D == 1:
        leaves(np.zeros(len(constraints)), 0.0)
        return best, best_lp, 1
    stack = [frame(0, np.zeros(len(constraints)), 0.0)]
    gs = [0.0]
    while stack:
        order, b, pos, pk = stack[-1]
        d = len(stack) - 1
        if pos >= len(order) or not b[pos] > best_lp + _TOL:
            stack.pop()
            gs.pop()
            continue
        if nodes >= max_nodes:
            ub = max(float(f[1][f[2]]) for f in stack if f[2] < len(f[0]))
            return best, max(ub, best_lp), nodes
        stack[-1][2] += 1
        nodes += 1
        k = int(order[pos])
        choice[d] = k
        g = gs[-1] + float(logp[d, k])
        if d + 1 == D - 1:
            leaves(pk[:, k], g)
        else:
            stack.append(frame(d + 1, pk[:, k], g))
            gs.append(g)
    return best, best_lp, nodes


def decode(
    logp: np.ndarray,
    constraints: Sequence[Constraint],
    max_nodes: int = 200_000,
    max_bins: int = 8192,
) -> Decoded:
    """Most probable choice (one candidate per decision) meeting every constraint (module docstring).

    Exact: a branch and bound whose bounds come from a dynamic program on the first constraint's
    cost grid (give it a window: ``lower`` set) with Lagrangian relaxation of the others; every
    candidate answer is checked on exact costs. If ``max_nodes`` runs out first, the best choice
    found is returned with :attr:`Decoded.gap` > 0, a certified bound on the log-probability a
    better one could have. Raises :class:`InfeasibleError` with the achievable region.
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
    if np.isnan(logp).any() or np.isposinf(logp).any():
        raise SgnasError("logp must be finite or -inf (a masked candidate)")
    allowed = np.isfinite(logp)
    if not allowed.any(axis=1).all():
        raise SgnasError("a decision has no allowed candidate")
    argmax = np.where(allowed, logp, -np.inf).argmax(axis=1)
    argmax_lp = float(logp[np.arange(len(argmax)), argmax].sum())
    check_achievable(constraints, allowed)
    lim = _Limits(constraints, allowed)
    grid = _Grid(lim, allowed, max_bins)
    bounds = _Bounds(np.where(allowed, logp, -np.inf), lim, grid, allowed)
    choice, upper, nodes = _search(logp, constraints, bounds, allowed, max_nodes)
    if choice is None:
        if nodes >= max_nodes:
            raise SgnasError(f"decoding found no architecture meeting "
                             f"{', '.join(c.describe() for c in constraints)} within "
                             f"{max_nodes} nodes; raise max_nodes")
        raise InfeasibleError(_region_message(constraints, allowed))
    lp = float(logp[np.arange(len(choice)), choice].sum())
    return Decoded(
        choice=choice,
        logprob=lp,
        argmax_logprob=argmax_lp,
        costs=[c.cost.of(choice) for c in constraints],
        argmax_costs=[c.cost.of(argmax) for c in constraints],
        lagrange=bounds.lam[1].tolist() if bounds.lam.size else [],
        grid_step=grid.step * constraints[0].cost.slope,
        gap=max(upper - lp, 0.0),
        nodes=nodes,
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


def _region_message(constraints: Sequence[Constraint], allowed: np.ndarray) -> str:
    """The least value of each further cost reachable inside the first constraint's window
    (decoded exactly: the most "probable" choice under minus that cost)."""
    c0, rest = constraints[0], constraints[1:]
    parts = []
    for c in rest:
        score = np.where(allowed, -c.cost.table, -np.inf)
        try:
            least = c.cost.of(decode(score, [c0]).choice)
        except InfeasibleError:
            least = np.inf
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


def decode_brute_force(logp: np.ndarray, constraints: Sequence[Constraint],
                       max_archs: int = 10 ** 8, chunk: int = 4_000_000) -> Decoded | None:
    """The exact answer by enumerating every architecture, for small spaces (the reference
    :func:`decode` is tested against): meet in the middle over two halves of the decisions,
    pairs read in order of the first cost so only those inside its window are summed. Returns
    ``None`` when no architecture meets the constraints."""
    logp = np.asarray(logp, dtype=np.float64)
    D = logp.shape[0]
    allowed = np.isfinite(logp)
    if int(np.prod(allowed.sum(axis=1), dtype=np.float64)) > max_archs:
        raise SgnasError(f"{int(np.prod(allowed.sum(axis=1), dtype=np.float64))} architectures "
                         f"exceed max_archs={max_archs} for enumeration")
    half = D // 2

    def side(ds: range) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        combos = np.array(np.meshgrid(*[np.flatnonzero(allowed[d]) for d in ds], indexing="ij"))
        combos = combos.reshape(len(ds), -1).T
        lp = logp[list(ds)][np.arange(len(ds)), combos].sum(axis=1)
        raw = np.stack([c.cost.table[list(ds)][np.arange(len(ds)), combos].sum(axis=1)
                        for c in constraints])
        return combos, lp, raw

    ca, lpa, ra = side(range(0, half)) if half else (np.zeros((1, 0), np.int64), np.zeros(1),
                                                     np.zeros((len(constraints), 1)))
    cb, lpb, rb = side(range(half, D))
    order = np.argsort(rb[0], kind="stable")
    cb, lpb, rb = cb[order], lpb[order], rb[:, order]
    c0 = constraints[0]
    tol0 = _RTOL * max(abs(c0.upper), 1.0)
    span = 1e-9 * (abs(c0.cost.raw(c0.upper)) + 1.0)
    hi_b = np.searchsorted(rb[0], c0.cost.raw(c0.upper + tol0) - c0.cost.fixed - ra[0] + span,
                           side="right")
    lo_b = (np.zeros_like(hi_b) if c0.lower is None else
            np.searchsorted(rb[0], c0.cost.raw(c0.lower - tol0) - c0.cost.fixed - ra[0] - span))
    counts = np.maximum(hi_b - lo_b, 0)
    best, best_lp = None, -np.inf
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        stop = max(int(np.searchsorted(ends, (ends[start - 1] if start else 0) + chunk)), start + 1)
        stop = min(stop, len(counts))
        a = np.repeat(np.arange(start, stop), counts[start:stop])
        if a.size:
            offs = np.arange(a.size) - np.repeat(np.cumsum(counts[start:stop]) - counts[start:stop],
                                                 counts[start:stop])
            b = lo_b[a] + offs
            lp = lpa[a] + lpb[b]
            ok = np.isfinite(lp)
            for j, c in enumerate(constraints):
                value = (c.cost.fixed + ra[j, a] + rb[j, b]) * c.cost.slope + c.cost.intercept
                tol = _RTOL * max(abs(c.upper), 1.0)
                ok &= value <= c.upper + tol
                if c.lower is not None:
                    ok &= value >= c.lower - tol
            if ok.any():
                i = int(np.flatnonzero(ok)[np.argmax(lp[ok])])
                if lp[i] > best_lp:
                    best_lp = float(lp[i])
                    best = np.concatenate([ca[a[i]], cb[b[i]]])
        start = stop
    if best is None:
        return None
    argmax = np.where(allowed, logp, -np.inf).argmax(axis=1)
    return Decoded(choice=best, logprob=float(logp[np.arange(D), best].sum()),
                   argmax_logprob=float(logp[np.arange(D), argmax].sum()),
                   costs=[c.cost.of(best) for c in constraints],
                   argmax_costs=[c.cost.of(argmax) for c in constraints])
