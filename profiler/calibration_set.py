"""Choosing the whole networks a LUT is calibrated and checked on.

Uniform random architectures crowd around the middle of the latency range (±7% in the CIFAR-10
space), while a generator returns networks from the ends of it (e.g. every layer ``377777``). A
calibration fitted on the middle extrapolates badly to those. :func:`calibration_networks` draws a
large pool from several families — uniform-configuration networks (every layer the same config,
both ends of the range included), stage-uniform networks (one config per stage), heavy/light
mixtures, uniform random samples — and picks networks spread evenly over the pool's predicted
latency range (the LUT sum), always including the lightest and heaviest. :func:`split_fit_heldout`
splits them so both parts span the range.
"""

from __future__ import annotations

import math

import numpy as np

from sgnas.errors import SgnasError
from sgnas.lut import Lut
from sgnas.space import Architecture, SearchSpace

#: Families of candidate networks, in the order they are tried when filling a latency bin.
FAMILIES = ("uniform", "stage", "mixture", "random")
#: Fewest networks a fit/held-out split can work with: 2 to fit a line, 2 to test it.
MIN_FIT, MIN_HELDOUT = 2, 2


def check_split_size(n: int, fit_fraction: float = 0.5) -> tuple[int, int]:
    """``(n_fit, n_heldout)`` for ``n`` networks; :class:`SgnasError` when no held-out split fits."""
    if not 0.0 < fit_fraction < 1.0:
        raise SgnasError(f"fit fraction must be in (0, 1), got {fit_fraction}")
    if n < MIN_FIT + MIN_HELDOUT:
        raise SgnasError(f"--validate {n} is too small for a held-out split: it needs at least "
                         f"{MIN_FIT + MIN_HELDOUT} networks ({MIN_FIT} to fit, {MIN_HELDOUT} to test)")
    n_fit = min(max(MIN_FIT, int(round(fit_fraction * n))), n - MIN_HELDOUT)
    return n_fit, n - n_fit


def _stages(space: SearchSpace) -> list[list[int]]:
    """Layer indices grouped into stages: consecutive layers with the same output channels."""
    out: list[list[int]] = []
    for i, layer in enumerate(space.layers):
        if out and space.layers[out[-1][-1]].c_out == layer.c_out:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def candidate_pool(space: SearchSpace, table: np.ndarray, per_family: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Candidate networks as config indices, shape ``(N, L)``, and each one's family.

    ``table`` is the LUT's per-layer latency table (``Lut.layer_table``), used to tell heavy
    configurations from light ones.
    """
    L, C = space.num_layers, len(space.configs)
    rows: list[np.ndarray] = [np.full(L, c) for c in range(C)]
    fams = ["uniform"] * C
    stages = _stages(space)
    for _ in range(per_family):
        row = np.empty(L, dtype=np.int64)
        for st in stages:
            row[st] = rng.integers(C)
        rows.append(row)
        fams.append("stage")
    order = np.argsort(table.mean(axis=0))  # configs from light to heavy
    q = max(1, C // 4)
    for _ in range(per_family):
        light, heavy = order[rng.integers(q)], order[C - 1 - rng.integers(q)]
        rows.append(np.where(rng.random(L) < rng.random(), heavy, light))
        fams.append("mixture")
    index = space.config_index
    for _ in range(per_family):
        rows.append(np.array([index[c] for c in space.sample(rng).layers]))
        fams.append("random")
    return np.stack(rows).astype(np.int64), fams


def calibration_networks(space: SearchSpace, lut: Lut, n: int, rng: np.random.Generator,
                         pool_per_family: int | None = None) -> list[Architecture]:
    """``n`` distinct networks spread over the whole predicted-latency range of ``space``.

    The lightest and heaviest candidates (uniform-configuration networks) are always included; the
    rest are one per equal-width bin of predicted latency between them, the bin's candidate closest
    to the bin centre, families taken in turn. Sorted by predicted latency; deterministic for a
    given ``rng`` state.
    """
    if n < 2:
        raise SgnasError(f"a calibration set needs at least 2 networks, got {n}")
    table = lut.layer_table(space)
    pool, fams = candidate_pool(space, table, pool_per_family or max(8 * n, 200), rng)
    pool, first = np.unique(pool, axis=0, return_index=True)
    fams = [fams[i] for i in first]
    pred = table[np.arange(space.num_layers), pool].sum(axis=1)
    if len(pool) < n:
        raise SgnasError(f"only {len(pool)} distinct candidate networks for {n} requested")
    lo, hi = int(np.argmin(pred)), int(np.argmax(pred))
    chosen = [lo, hi]
    taken = np.zeros(len(pool), dtype=bool)
    taken[chosen] = True
    inner = n - 2
    edges = np.linspace(pred[lo], pred[hi], inner + 1) if inner else []
    for b in range(inner):
        centre = 0.5 * (edges[b] + edges[b + 1])
        family = FAMILIES[b % len(FAMILIES)]
        in_bin = (pred >= edges[b]) & (pred <= edges[b + 1]) & ~taken
        pick = _closest(pred, centre, in_bin & np.array([f == family for f in fams]))
        if pick is None:
            pick = _closest(pred, centre, in_bin)
        if pick is None:  # an empty bin: the free candidate nearest its centre
            pick = _closest(pred, centre, ~taken)
        chosen.append(pick)
        taken[pick] = True
    chosen.sort(key=lambda i: pred[i])
    return [Architecture(space.name, tuple(space.configs[c] for c in pool[i])) for i in chosen]


def _closest(pred: np.ndarray, centre: float, mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    return int(idx[np.argmin(np.abs(pred[idx] - centre))])


def split_fit_heldout(predicted: np.ndarray, fit_fraction: float, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(fit, heldout)``: the two ends go to the fit, the rest alternate over the range.

    Sorted by predicted latency, the inner networks are assigned systematically (random phase), so
    both parts cover the bottom, middle and top of the range.
    """
    p = np.asarray(predicted, dtype=np.float64)
    n_fit, n_test = check_split_size(len(p), fit_fraction)
    order = np.argsort(p, kind="stable")
    ends, inner = [order[0], order[-1]], order[1:-1]
    step = len(inner) / n_test
    phase = rng.random() * step
    test_pos = {min(len(inner) - 1, int(math.floor(phase + k * step))) for k in range(n_test)}
    test = np.sort(inner[sorted(test_pos)])
    fit = np.sort(np.setdiff1d(np.concatenate([ends, inner]), test))
    return fit, test


def range_thirds(predicted: np.ndarray, lo: float | None = None, hi: float | None = None
                 ) -> dict[str, np.ndarray]:
    """Indices of the bottom, middle and top third of the latency range ``[lo, hi]``."""
    p = np.asarray(predicted, dtype=np.float64)
    lo = float(p.min()) if lo is None else lo
    hi = float(p.max()) if hi is None else hi
    a, b = lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3
    return {"bottom": np.flatnonzero(p < a), "middle": np.flatnonzero((p >= a) & (p < b)),
            "top": np.flatnonzero(p >= b)}
