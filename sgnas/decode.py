"""Exact decoding of a per-decision distribution into the most probable architecture meeting targets.

A search space is seen as ``D`` decisions with ``K`` candidates each (the unified space: layers x its
80 configurations; a cell space: edges x operations). A distribution gives per-candidate
log-probabilities ``logp (D, K)`` (``-inf`` = not allowed) and every cost is additive::

    cost(choice) = slope * (fixed + sum_d table[d, choice[d]]) + intercept     (slope > 0)

so a window on the (calibrated) cost is a window on the raw sum. :func:`decode` solves

    max_choice  sum_d logp[d, choice[d]]
    s.t.        lower_0 <= cost_0(choice) <= upper_0,   cost_j(choice) <= upper_j  (j >= 1)

exactly, by branch and bound over the decisions in order (a multiple-choice knapsack):

* bounds: the first cost, relative to each decision's least candidate, is rounded *down* on a grid
  (``width / (8 D)`` for a window), so a suffix's exact sum ``S`` and grid sum ``Q`` satisfy
  ``S / step - E <= Q <= S / step`` (``E``: the rounding it can accumulate) and the window becomes
  a range of ``Q``; a dynamic program over suffixes gives the best score per ``Q``. Further
  constraints enter by Lagrangian relaxation: for any ``lambda >= 0`` the best of
  ``logp - lambda * cost_j / upper_j`` plus ``lambda * room_j`` bounds every feasible completion;
  the least over a few multipliers near the dual minimum is taken, and a completion whose least
  reachable ``cost_j`` exceeds its room is cut. Rounding only loosens bounds, never cuts a feasible
  choice.
* search: a short depth-first dive, then best bound first; every complete choice is checked on
  exact costs (:meth:`Constraint.met`), so the answer is feasible, and the most probable one once no
  open node's bound exceeds it. If the dive finds nothing, the feasible choice of least further cost
  (a problem with tight bounds) seeds the search, improved by changing one or two decisions.
* ``max_nodes`` caps the search: the best choice found is then returned with :attr:`Decoded.gap`,
  a certified bound on how much more log-probability a feasible choice could have (0: exact).

:func:`decode_brute_force` enumerates small spaces (meet in the middle) as the reference the tests
and ``scripts/bench_decode.py`` compare with. An impossible combination raises
:class:`InfeasibleError` whose message gives the achievable region.
"""

from __future__ import annotations

import copy
import heapq
from dataclasses import dataclass, field
from typing import Callable, Sequence

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
_FINENESS = 8.0  # grid cells per window and decision
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
            step = (up - lo) / (_FINENESS * D)  # rounding moves a sum by 1/_FINENESS window
        else:
            step = up / (25.0 * _FINENESS * D)  # ... by at most 4% / _FINENESS of the limit
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
    qmax = np.where(allowed, grid.q, 0).max(axis=1)
    cur = np.full((M, top + 1), -np.inf)
    cur[:, 0] = 0.0
    reach = 0  # the largest grid sum the suffix so far can reach
    out = None if root_only else np.full((D + 1, M, top + 1), -np.inf)
    if out is not None:
        out[D] = cur
    for d in range(D - 1, -1, -1):
        nxt = np.full((M, top + 1), -np.inf)
        for k in np.flatnonzero(allowed[d]):
            sh = int(grid.q[d, k])
            if sh > top:
                continue
            n = min(reach, top - sh) + 1
            view = nxt[:, sh: sh + n]
            np.maximum(view, cur[:, :n] + scores[:, d, k, None], out=view)
        reach = min(reach + int(qmax[d]), top)
        cur = nxt
        if out is not None:
            out[d] = cur
    return out if out is not None else cur[None]


class _RangeMax:
    """Maxima of each level's table over the grid sums a suffix may take: for a window, over the
    ``width`` cells ending at ``qb`` (a range ``[qa, qb]`` has at most that length at a given
    level); for an upper bound alone, over ``[0, qb]``."""

    def __init__(self, H: np.ndarray, grid: _Grid) -> None:
        self.window = grid.window
        if not self.window:
            self.tab = np.maximum.accumulate(H, axis=-1)
            return
        tab = np.empty_like(H)
        for d in range(H.shape[0]):
            span = int(np.floor((grid.up - grid.lo) / grid.step + grid.slack[d] + 1e-6)) + 2
            tab[d] = _window_max(H[d], span)
        self.tab = tab

    def query(self, d: int, qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
        """``(n, M)`` upper bounds of level ``d``'s maxima over ``[qa, qb]`` (callers drop
        ``qa > qb``)."""
        return self.tab[d][:, qb].T


def _window_max(h: np.ndarray, span: int) -> np.ndarray:
    """``out[..., q] = max(h[..., max(0, q - span + 1): q + 1])`` (doubling, then two halves)."""
    n = h.shape[-1]
    span = max(1, min(span, n))
    k = span.bit_length() - 1
    m = h.copy()
    for j in range(k):  # m[q] = max over the 2^(j+1) cells ending at q
        h_ = 1 << j
        np.maximum(m[..., h_:], m[..., :-h_].copy(), out=m[..., h_:])
    rest = span - (1 << k)
    if rest == 0:
        return m
    out = m.copy()
    np.maximum(out[..., rest:], m[..., :-rest], out=out[..., rest:])
    return out


class _Bounds:
    """Upper bounds on the log-probability of any feasible completion of a prefix: the first
    constraint's window through the grid, each further one through Lagrangian relaxation (the
    least over a few multiplier vectors), plus a feasibility test on each further cost's least
    value reachable inside the window."""

    def __init__(self, logp: np.ndarray, lim: _Limits, grid: _Grid, allowed: np.ndarray) -> None:
        self.lim, self.grid = lim, grid
        extra = len(lim.upper) - 1
        norm = lim.rel[1:] / lim.scale[1:, None, None]  # (E, D, K)
        self.lam = (_members(_multipliers(logp, norm, grid, allowed)) if extra
                    else np.zeros((1, 0)))
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
    """The multiplier vector near the Lagrangian dual's minimum at the root (coordinate search
    over a geometric grid, on a coarser copy of the grid): ``(E,)``."""
    coarse = copy.copy(grid)
    factor = max(1, grid.top // 500)
    coarse.step = grid.step * factor
    coarse.top = grid.top // factor
    coarse.q = grid.q // factor
    coarse.slack = grid.slack / factor + 1.0 * np.arange(len(grid.slack))[::-1]
    qa, qb = coarse.cells(0, np.zeros(1))
    values = np.concatenate([[0.0], 2.0 ** np.arange(-2, 17)])
    lam = np.zeros(norm.shape[0])
    for _ in range(rounds if norm.shape[0] > 1 else 1):
        for j in range(norm.shape[0]):
            trials = np.repeat(lam[None], len(values), axis=0)
            trials[:, j] = values
            scores = np.stack([logp - np.tensordot(t, norm, axes=1) for t in trials])
            H = _suffix_tables(scores, coarse, allowed, root_only=True)[0]
            if qa[0] > qb[0]:
                return lam
            dual = H[:, qa[0]: qb[0] + 1].max(axis=1) + trials.sum(axis=1)
            lam = trials[int(np.argmin(np.where(np.isfinite(dual), dual, np.inf)))]
    return lam


#: Multipliers tried at every node, as factors of the root's dual minimum: deeper in the tree a
#: constraint's room shrinks and larger multipliers bound tighter.
_FACTORS = 2.0 ** np.array([0.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0])


def _members(lam: np.ndarray) -> np.ndarray:
    """The multiplier vectors of the bounds: ``lam`` first, then scaled copies (a fixed ladder
    when ``lam`` is 0: no constraint binds at the root), and with several further costs each
    multiplier alone scaled by 1/4 and 4."""
    if not np.any(lam > 0):
        return np.stack([lam] + [np.full_like(lam, f) for f in (0.5, 2.0, 8.0)])
    members = [lam * f for f in _FACTORS]
    if lam.size > 1:  # several further costs: also move one multiplier at a time
        for j in range(lam.size):
            for f in (0.25, 4.0):
                v = lam.copy()
                v[j] = max(v[j], 1.0) * f
                members.append(v)
    return np.stack(members)


class _Leaves:
    """The last decision: every candidate's exact check, the incumbent kept."""

    def __init__(self, logp: np.ndarray, constraints: Sequence[Constraint], bounds: "_Bounds",
                 allowed: np.ndarray) -> None:
        self.logp, self.constraints, self.lim, self.allowed = logp, constraints, bounds.lim, allowed
        self.best: np.ndarray | None = None
        self.best_lp = -np.inf

    def complete(self, prefix: np.ndarray, p: np.ndarray, g: float) -> None:
        """Try every candidate of the last decision after ``prefix`` (relative costs ``p``,
        log-probability ``g``), most probable first; keep the first meeting every constraint if
        it beats the incumbent."""
        D = self.logp.shape[0]
        d, lim = D - 1, self.lim
        pk = p[:, None] + lim.rel[:, d, :]
        ok = self.allowed[d] & np.all(pk <= lim.upper[:, None], axis=0)
        if np.isfinite(lim.lower0):
            ok &= pk[0] >= lim.lower0
        lp = np.where(ok, g + self.logp[d], -np.inf)
        choice = prefix.copy()
        for k in np.argsort(-lp, kind="stable"):
            if not lp[k] > self.best_lp:
                break
            choice[d] = k
            if all(c.met(c.cost.of(choice)) for c in self.constraints):
                self.best = choice.copy()
                self.best_lp = float(self.logp[np.arange(D), choice].sum())
                break


class _NodeStore:
    """Search nodes in growing arrays: decision, parent, candidate, log-probability, relative
    costs (node 0: the root)."""

    def __init__(self, n_costs: int, capacity: int = 4096) -> None:
        self.n = 1
        self.dec = np.full(capacity, -1, dtype=np.int32)
        self.parent = np.zeros(capacity, dtype=np.int64)
        self.cand = np.zeros(capacity, dtype=np.int32)
        self.g = np.zeros(capacity)
        self.p = np.zeros((capacity, n_costs))

    def add(self, d: int, parent: int, cand: np.ndarray, g: np.ndarray, p: np.ndarray) -> int:
        """Append children; returns the index of the first."""
        n, m = self.n, len(cand)
        if n + m > len(self.dec):
            size = max(2 * len(self.dec), n + m)
            for name in ("dec", "parent", "cand", "g", "p"):
                old = getattr(self, name)
                new = np.zeros((size,) + old.shape[1:], dtype=old.dtype)
                new[:n] = old[:n]
                setattr(self, name, new)
        self.dec[n:n + m] = d
        self.parent[n:n + m] = parent
        self.cand[n:n + m] = cand
        self.g[n:n + m] = g
        self.p[n:n + m] = p
        self.n = n + m
        return n


def _improve(choice: np.ndarray, logp: np.ndarray, constraints: Sequence[Constraint],
             lim: _Limits, allowed: np.ndarray, sweeps: int = 3) -> np.ndarray:
    """Local search from a feasible choice: the best feasible change of one or two decisions,
    repeated while it raises the log-probability (a better incumbent prunes more)."""
    D = len(choice)
    ch = choice.copy()
    idx = np.arange(D)
    lp_table = np.where(allowed, logp, -np.inf)
    for _ in range(sweeps * D):
        p = lim.rel[:, idx, ch].sum(axis=1)  # (C,)
        cur = float(lp_table[idx, ch].sum())
        best_gain, move = 1e-9, None
        for a in range(D):
            for b in range(a, D):
                # change a (and b): relative costs and log-probability of every pair of candidates
                pa = p[:, None] - lim.rel[:, a, ch[a], None] + lim.rel[:, a, :]  # (C, K)
                ga = lp_table[a] - lp_table[a, ch[a]]
                if b == a:
                    cost, gain = pa[:, :, None], ga[:, None]
                else:
                    cost = pa[:, :, None] - lim.rel[:, b, ch[b], None, None] + lim.rel[:, b, None, :]
                    gain = ga[:, None] + (lp_table[b] - lp_table[b, ch[b]])[None, :]
                ok = np.all(cost <= lim.upper[:, None, None], axis=0)
                if np.isfinite(lim.lower0):
                    ok &= cost[0] >= lim.lower0
                gain = np.where(ok, gain, -np.inf)
                flat = int(np.argmax(gain))
                if gain.flat[flat] > best_gain:
                    ka, kb = np.unravel_index(flat, gain.shape)
                    trial = ch.copy()
                    trial[a] = ka
                    if b != a:
                        trial[b] = kb
                    if all(c.met(c.cost.of(trial)) for c in constraints):
                        best_gain, move = float(gain.flat[flat]), trial
        if move is None:
            break
        ch = move
    return ch


def _dive(logp: np.ndarray, bounds: "_Bounds", allowed: np.ndarray, leaves: _Leaves,
          max_nodes: int) -> int:
    """Depth-first from the root, children best bound first, for at most ``max_nodes`` nodes: a
    first incumbent for the best-first search. Returns the nodes expanded."""
    D = logp.shape[0]
    choice = np.zeros(D, dtype=np.int64)
    nodes = 0

    def frame(d: int, p: np.ndarray, g: float) -> list:
        b, pk = bounds.children(d, p, g, logp[d], allowed[d])
        keep = np.flatnonzero(b > leaves.best_lp + _TOL)
        return [keep[np.argsort(-b[keep], kind="stable")], 0, pk, g]

    stack = [frame(0, np.zeros(len(bounds.lim.upper)), 0.0)]
    while stack and nodes < max_nodes and leaves.best is None:
        order, pos, pk, g = stack[-1]
        if pos >= len(order):
            stack.pop()
            continue
        stack[-1][1] += 1
        nodes += 1
        d, k = len(stack) - 1, int(order[pos])
        choice[d] = k
        if d + 1 == D - 1:
            leaves.complete(choice, pk[:, k], g + float(logp[d, k]))
        else:
            stack.append(frame(d + 1, pk[:, k], g + float(logp[d, k])))
    return nodes


def _search(logp: np.ndarray, constraints: Sequence[Constraint], bounds: "_Bounds",
            allowed: np.ndarray, max_nodes: int,
            seed: Callable[[], np.ndarray | None] | None = None,
            ) -> tuple[np.ndarray | None, float, int]:
    """Branch and bound, best bound first (after a short depth-first dive, then ``seed()`` if the
    dive found nothing, for a first incumbent): ``(choice, upper bound on any feasible choice's
    log-probability, nodes expanded)``; the choice is exact when the bound is not above its
    log-probability."""
    D = logp.shape[0]
    leaves = _Leaves(logp, constraints, bounds, allowed)
    if D == 1:
        leaves.complete(np.zeros(1, dtype=np.int64), np.zeros(len(constraints)), 0.0)
        return leaves.best, leaves.best_lp, 1
    nodes = _dive(logp, bounds, allowed, leaves, min(max_nodes, 4 * D))
    if leaves.best is None and seed is not None:
        first = seed()
        if first is not None:
            first = _improve(first, logp, constraints, bounds.lim, allowed)
            leaves.best = first
            leaves.best_lp = float(logp[np.arange(D), first].sum())
    store = _NodeStore(len(constraints))
    heap = [(-np.inf, 0)]

    def prefix(i: int) -> np.ndarray:
        ch = np.zeros(D, dtype=np.int64)
        while i > 0:
            ch[store.dec[i]] = store.cand[i]
            i = int(store.parent[i])
        return ch

    while heap:
        neg, i = heap[0]
        if i and -neg <= leaves.best_lp + _TOL:
            break
        if nodes >= max_nodes:
            return leaves.best, max(-neg, leaves.best_lp), nodes
        heapq.heappop(heap)
        nodes += 1
        d, g, p = int(store.dec[i]) + 1, float(store.g[i]), store.p[i]
        if d == D - 1:
            leaves.complete(prefix(i), p, g)
            continue
        b, pk = bounds.children(d, p, g, logp[d], allowed[d])
        keep = np.flatnonzero(b > leaves.best_lp + _TOL)
        first = store.add(d, i, keep, g + logp[d, keep], pk[:, keep].T)
        for j, k in enumerate(keep):
            heapq.heappush(heap, (-float(b[k]), first + j))
    return leaves.best, leaves.best_lp, nodes


def decode(
    logp: np.ndarray,
    constraints: Sequence[Constraint],
    max_nodes: int = 50_000,
    max_bins: int = 1 << 15,
    _seed: bool = True,
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

    def feasible() -> np.ndarray | None:
        """Any feasible choice: the one of least total normalized further cost (a problem whose
        bounds are tight), decoded on a quarter of the node budget."""
        least = -(lim.rel[1:] / lim.scale[1:, None, None]).sum(axis=0)
        try:
            return decode(np.where(allowed, least, -np.inf), constraints,
                          max(max_nodes // 4, 1), max_bins, _seed=False).choice
        except InfeasibleError:
            raise
        except SgnasError:
            return None

    choice, upper, nodes = _search(logp, constraints, bounds, allowed, max_nodes,
                                   feasible if _seed and len(constraints) > 1 else None)
    if choice is None:
        if nodes >= max_nodes:
            raise SgnasError(f"decoding found no architecture meeting "
                             f"{', '.join(c.describe() for c in constraints)} within "
                             f"{max_nodes} nodes; raise max_nodes")
        raise InfeasibleError(_region_message(constraints, allowed))
    if upper > float(logp[np.arange(len(choice)), choice].sum()):  # budget spent: polish
        choice = _improve(choice, logp, constraints, lim, allowed)
    lp = float(logp[np.arange(len(choice)), choice].sum())
    return Decoded(
        choice=choice,
        logprob=lp,
        argmax_logprob=argmax_lp,
        costs=[c.cost.of(choice) for c in constraints],
        argmax_costs=[c.cost.of(argmax) for c in constraints],
        lagrange=bounds.lam[0].tolist() if bounds.lam.size else [],
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
