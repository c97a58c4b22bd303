"""A complete per-cell latency table of a new device from a few measured cells (NB201).

The model (HELP-style transfer from other devices, kept linear so that it fits on 10 cells):
the latency of cell ``c`` on the new device, in units of its measured cells' mean, is

    y_c = a + sum_j beta_j B[c, j]

where ``B`` (cells x r) holds the leading principal components of *other* devices' per-cell tables
(each table divided by its median, centred; :func:`build_basis`). The new device contributes
only its ``k`` measured cells: ``a`` and ``beta`` are fitted by ridge regression on them, and
the rank ``r`` and the ridge weight are chosen by leave-one-out cross-validation on the same
cells (closed form, ``e_i / (1 - h_ii)``). The leave-one-out relative errors are the predictor's
error estimate; a cell's uncertainty is that error scaled by the cell's leverage
(``sqrt((1 + h_c) / (1 + mean h_train))``), so cells unlike any measured one are less certain.

Why this model: on NAS-Bench-201's 23 devices a device's table is close to a mix of a few
others' (a per-edge additive model in linear latency reaches the same fit, but needs ~30 terms
where the basis needs 4-8), latencies are close to additive in milliseconds (the fit is done in
linear units, not in log units, which fitted worse on held-out devices), and the leave-one-out
error is free. Measured cells keep their measured value and carry no model uncertainty. What k
cells cannot reveal -- cells the basis fits badly on *any* new device -- is added per cell from
the other devices (:attr:`LatencyBasis.cell_error`: each device left out of the basis in turn),
so that the uncertainty holds near the targets, where a max-score pick goes looking for cells
whose latency is underestimated.

:func:`design_cells` picks the cells to measure: half spread over FLOPs (one random cell per
stratum), half greedy D-optimal for the basis' coefficients over a seeded pool; on NB201's
held-out devices (k = 20) it met the latency targets as often as an all-D-optimal design (100%)
at a lower regret, where cells spread over FLOPs alone met them in 88% (docs/RESULTS.md). The project ships a basis built from the training devices of the shared generator
(``lut/nb201-latency-basis.npz``, a few principal components, not the tables).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .errors import SgnasError

#: Fewest measured cells a predicted table is fitted on.
MIN_CELLS = 10
#: Ranks and ridge weights tried by leave-one-out cross-validation.
RANKS: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
RIDGE: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
BASIS_FILE = "nb201-latency-basis.npz"
_FLOOR = 1e-3  # a predicted latency is at least this fraction of the measured cells' mean
#: Relative errors are taken against at least this fraction of the typical latency (cells with no
#: path to the output run in microseconds on some devices; their relative error means nothing).
_REL_FLOOR = 0.1


@dataclass
class LatencyBasis:
    """Principal components of some devices' per-cell tables: ``components`` (cells, r), rows in
    the space's cell order; ``devices``: the tables it was built from."""

    components: np.ndarray
    devices: list[str]
    source: str = ""
    #: Per cell: the relative error of the basis on a device it was not built from (RMS over the
    #: devices left out in turn); the part of a cell's uncertainty that k cells cannot see.
    cell_error: np.ndarray | None = None

    @property
    def rank(self) -> int:
        return int(self.components.shape[1])

    def save(self, path: str | os.PathLike) -> None:
        """Write the basis (float16 components, compressed); atomic."""
        from .fileio import atomic_write_bytes
        import io

        buf = io.BytesIO()
        err = np.zeros(len(self.components)) if self.cell_error is None else self.cell_error
        np.savez_compressed(buf, components=self.components.astype(np.float16),
                            cell_error=np.asarray(err).astype(np.float16),
                            devices=np.array(self.devices), source=np.array(self.source))
        atomic_write_bytes(path, buf.getvalue())


def _components(m: np.ndarray, rank: int) -> np.ndarray:
    m = m / np.median(m, axis=0)
    m = m - m.mean(axis=0)
    u, s, _ = np.linalg.svd(m, full_matrices=False)
    r = min(int(rank), m.shape[1])
    return u[:, :r] * s[:r] / np.sqrt(m.shape[1])


def build_basis(tables: Mapping[str, np.ndarray], rank: int = max(RANKS),
                source: str = "") -> LatencyBasis:
    """The basis of ``tables`` (device name -> per-cell latency in ms, same cell order), with
    each cell's leave-one-device-out error (:attr:`LatencyBasis.cell_error`)."""
    if len(tables) < 3:
        raise SgnasError(f"a latency basis needs at least 3 device tables, got {len(tables)}")
    names = list(tables)
    m = np.stack([np.asarray(tables[n], dtype=np.float64).reshape(-1) for n in names], axis=1)
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise SgnasError("a latency basis needs finite, positive latencies")
    res = []
    for i in range(len(names)):  # each device predicted by the basis of the others, all cells
        x = np.hstack([np.ones((len(m), 1)), _components(np.delete(m, i, axis=1), rank)])
        y = m[:, i] / np.median(m[:, i])
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        res.append((y - x @ coef) / np.maximum(y, _REL_FLOOR))
    err = np.sqrt(np.mean(np.square(res), axis=0))
    return LatencyBasis(_components(m, rank), names, source, err)


def default_basis_path() -> Path:
    """The shipped basis: ``lut/nb201-latency-basis.npz`` of the project."""
    return Path(__file__).resolve().parent.parent / "lut" / BASIS_FILE


def load_basis(path: str | os.PathLike | None = None) -> LatencyBasis:
    """Load a basis file (default: the shipped one)."""
    path = Path(path) if path is not None else default_basis_path()
    if not path.is_file():
        raise SgnasError(f"latency basis not found: {path} (build one with "
                         f"sgnas.lut_predict.build_basis from other devices' tables)")
    try:
        with np.load(path, allow_pickle=False) as z:
            comp = np.asarray(z["components"], dtype=np.float64)
            devices = [str(d) for d in z["devices"]]
            source = str(z["source"])
            err = np.asarray(z["cell_error"], dtype=np.float64) if "cell_error" in z else None
    except (OSError, KeyError, ValueError) as exc:
        raise SgnasError(f"latency basis {path} is corrupt ({exc})") from None
    return LatencyBasis(comp, devices, source, err)


def _ridge_loo(x: np.ndarray, y: np.ndarray, lam: float):
    """Ridge with an unpenalized intercept: (coef, x mean, y mean, inverse, LOO residuals, h)."""
    xm, ym = x.mean(axis=0), y.mean()
    xc = x - xm
    inv = np.linalg.inv(xc.T @ xc + lam * np.eye(x.shape[1]))
    coef = inv @ xc.T @ (y - ym)
    h = np.einsum("ij,jk,ik->i", xc, inv, xc) + 1.0 / len(y)
    loo = (y - ym - xc @ coef) / np.maximum(1.0 - h, 1e-9)
    return coef, xm, ym, inv, loo, h


@dataclass
class TablePrediction:
    """A predicted table: ``latency_ms`` and ``uncertainty_ms`` (one standard error; 0 at the
    measured cells, which keep their measured value) over every cell; ``measured``: their
    positions; ``cv``: leave-one-out errors on the measured cells (relative)."""

    latency_ms: np.ndarray
    uncertainty_ms: np.ndarray
    measured: np.ndarray
    cv: dict = field(default_factory=dict)
    rank: int = 0
    ridge: float = 0.0

    def summary(self) -> dict:
        return {"method": "basis-ridge", "rank": self.rank, "ridge": self.ridge,
                "measured": int(len(self.measured)), "cv": dict(self.cv)}


def predict_table(basis: LatencyBasis, positions: Sequence[int], values_ms: Sequence[float],
                  ranks: Sequence[int] = RANKS, ridge: Sequence[float] = RIDGE,
                  min_cells: int = MIN_CELLS) -> TablePrediction:
    """Every cell's latency from the measured ``values_ms`` at cell ``positions`` (rows of the
    basis). Raises :class:`SgnasError` for fewer than ``min_cells`` cells, repeated positions or
    non-positive / non-finite values."""
    pos = np.asarray(positions, dtype=np.int64).reshape(-1)
    val = np.asarray(values_ms, dtype=np.float64).reshape(-1)
    n = basis.components.shape[0]
    if len(pos) != len(val):
        raise SgnasError(f"{len(pos)} cells but {len(val)} latencies")
    if len(pos) < max(int(min_cells), 3):
        raise SgnasError(f"a predicted table needs at least {max(int(min_cells), 3)} measured "
                         f"cells, got {len(pos)}")
    if len(np.unique(pos)) != len(pos):
        raise SgnasError("a measured cell is given twice")
    if np.any((pos < 0) | (pos >= n)):
        raise SgnasError(f"cell positions must lie in 0..{n - 1}")
    if not np.all(np.isfinite(val)) or np.any(val <= 0):
        raise SgnasError("measured latencies must be finite and positive")
    scale = float(val.mean())
    y = val / scale
    best = None
    for r in ranks:
        if r > basis.rank:
            continue
        x = basis.components[:, :r]
        for lam in ridge:
            coef, xm, ym, inv, loo, h = _ridge_loo(x[pos], y, lam)
            err = float(np.sqrt(np.mean((loo / np.maximum(y, _REL_FLOOR)) ** 2)))
            if best is None or err < best[0]:
                best = (err, r, lam, coef, xm, ym, inv, loo, h)
    if best is None:
        raise SgnasError(f"the latency basis has rank {basis.rank}; no rank of {list(ranks)} fits")
    err, r, lam, coef, xm, ym, inv, loo, h = best
    xc = basis.components[:, :r] - xm
    pred = np.maximum(xc @ coef + ym, _FLOOR) * scale
    h_all = np.einsum("ij,jk,ik->i", xc, inv, xc) + 1.0 / len(y)
    unc = err * pred * np.sqrt((1.0 + h_all) / (1.0 + h.mean()))
    if basis.cell_error is not None:  # what the other devices say the basis misses per cell
        unc = np.sqrt(unc ** 2 + (pred * basis.cell_error) ** 2)
    pred[pos], unc[pos] = val, 0.0
    rel = np.abs(loo / np.maximum(y, _REL_FLOOR))
    cv = {"rmse_rel": err, "mape": float(100 * rel.mean()), "max_rel": float(rel.max()),
          "n": int(len(pos)), "method": "leave-one-out"}
    return TablePrediction(pred, unc, pos, cv, int(r), float(lam))


def design_cells(basis: LatencyBasis, k: int, seed: int = 0, mask: np.ndarray | None = None,
                 spread: np.ndarray | None = None, pool: int = 3000) -> np.ndarray:
    """``k`` cell positions to measure among the cells of ``mask`` (default: all). With
    ``spread`` (a value per cell, e.g. FLOPs) the first ``k // 2`` are one random cell per
    stratum of it (cells across the range, some near any target); the rest (all of them without
    ``spread``) greedy D-optimal for the basis' coefficients over a random pool. ``seed`` draws
    the strata's cells and the pool."""
    n, r = basis.components.shape
    allowed = np.arange(n) if mask is None else np.flatnonzero(np.asarray(mask).reshape(-1))
    if not 1 <= int(k) <= len(allowed):
        raise SgnasError(f"cells to measure: want 1..{len(allowed)}, got {k}")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    if spread is not None and int(k) >= 2:
        values = np.asarray(spread, dtype=np.float64).reshape(-1)[allowed]
        order = allowed[np.lexsort((rng.random(len(allowed)), values))]
        edges = np.linspace(0, len(order), int(k) // 2 + 1).astype(int)
        chosen = [int(order[rng.integers(a, b)]) for a, b in zip(edges[:-1], edges[1:])]
    cand = rng.choice(allowed, size=min(int(pool), len(allowed)), replace=False)
    x_all = np.hstack([np.ones((n, 1)), basis.components])
    x = x_all[cand]
    info = 1e-3 * np.eye(r + 1) + x_all[chosen].T @ x_all[chosen]
    free = ~np.isin(cand, chosen)
    while len(chosen) < int(k):
        gain = np.einsum("ij,jk,ik->i", x, np.linalg.inv(info), x)
        gain[~free] = -np.inf
        i = int(np.argmax(gain))
        free[i] = False
        chosen.append(int(cand[i]))
        info += np.outer(x[i], x[i])
    return np.array(chosen, dtype=np.int64)


def suggest_cells(k: int, seed: int = 0, basis_path: str | os.PathLike | None = None) -> list:
    """``k`` connected NB201 cells for a new device to measure (:func:`design_cells`, half
    spread over FLOPs), for ``sgnas-profile --space nb201 --cells FILE``."""
    from .nb201.cost import flops_table
    from .nb201.space import NB201Space, all_cells

    cells = list(all_cells())
    conn = np.array([c.is_connected() for c in cells])
    pos = design_cells(load_basis(basis_path), k, seed, mask=conn,
                       spread=flops_table(NB201Space()).reshape(-1))
    return [cells[int(i)] for i in pos]


__all__ = ["BASIS_FILE", "LatencyBasis", "MIN_CELLS", "TablePrediction", "build_basis",
           "default_basis_path", "design_cells", "load_basis", "predict_table", "suggest_cells"]
