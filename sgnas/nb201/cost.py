"""Costs of NB201 cells as ``(5,)*6`` tables, and their exact expectation under per-edge
distributions.

A per-cell table ``T[o0, ..., o5]`` (FLOPs, params, a device's measured latency per cell) needs no
additivity assumption: with independent per-edge op distributions ``p_e`` (six probability vectors
over the 5 ops), the expected cost ``sum over cells P(cell) T(cell)`` is the contraction
``einsum("abcdef,a,b,c,d,e,f->", T, p0, ..., p5)``, exact and differentiable in the ``p_e``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SgnasError
from .network import count_flops, count_params, edge_costs, fixed_cost
from .space import NUM_EDGES, NUM_OPS, Cell, NB201Space, all_cells

TABLE_SHAPE = (NUM_OPS,) * NUM_EDGES


def _additive_table(base: float, per_edge: list[list[float]]) -> np.ndarray:
    table = np.full(TABLE_SHAPE, float(base))
    for e in range(NUM_EDGES):
        shape = [1] * NUM_EDGES
        shape[e] = NUM_OPS
        table = table + np.asarray(per_edge[e], dtype=np.float64).reshape(shape)
    return table


def flops_table(space: NB201Space | None = None) -> np.ndarray:
    """MFLOPs (multiply-adds) of every cell's network, shape ``(5,)*6``."""
    space = space or NB201Space()
    base, _ = fixed_cost(space)
    per_edge, _ = edge_costs(space)
    return _additive_table(base, per_edge) / 1e6


def params_table(space: NB201Space | None = None) -> np.ndarray:
    """Millions of parameters of every cell's network, shape ``(5,)*6``."""
    space = space or NB201Space()
    _, base = fixed_cost(space)
    _, per_edge = edge_costs(space)
    return _additive_table(base, per_edge) / 1e6


def path_flops_table(space: NB201Space | None = None) -> np.ndarray:
    """MFLOPs of every cell's network counting only the cell edges on a path from the cell's input
    to its output (an edge out of a node the input never reaches, or into a node that never reaches
    the output, computes nothing the network uses), shape ``(5,)*6``. A data-free accuracy
    signal: more useful computation ranks higher."""
    space = space or NB201Space()
    base, _ = fixed_cost(space)
    per_edge, _ = edge_costs(space)
    out = np.empty(space.num_cells)
    for cell in all_cells():
        out[cell.code] = base + sum(per_edge[e][cell.ops[e]] for e in cell.live_edges())
    return out.reshape(TABLE_SHAPE) / 1e6


def lut_table(lut, space: NB201Space | None = None) -> np.ndarray:
    """The per-cell latency (ms) of a per-cell LUT, shape ``(5,)*6``."""
    space = space or NB201Space()
    if lut.space != space.name or lut.space_fingerprint != space.fingerprint:
        raise SgnasError(f"LUT of device {lut.device_name!r} is for space {lut.space!r}, "
                         f"not {space.name!r}")
    out = np.empty(space.num_cells)
    for cell in all_cells():
        out[cell.code] = lut.latency_ms(str(cell))
    return out.reshape(TABLE_SHAPE)


def cell_cost(table: np.ndarray | torch.Tensor, cell: Cell) -> float:
    """One cell's entry of a ``(5,)*6`` table."""
    return float(table[tuple(cell.ops)])


_EINSUM = "abcdef,za,zb,zc,zd,ze,zf->z"


def expected_cost(table: np.ndarray | torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Exact expected cost under independent per-edge op distributions.

    ``probs`` has shape ``(6, 5)`` (one distribution per edge; returns a scalar) or ``(B, 6, 5)``
    (returns ``(B,)``); rows should sum to 1. Differentiable with respect to ``probs``.
    """
    t = torch.as_tensor(table, dtype=probs.dtype, device=probs.device)
    if tuple(t.shape) != TABLE_SHAPE:
        raise SgnasError(f"a cell cost table has shape {TABLE_SHAPE}, got {tuple(t.shape)}")
    single = probs.dim() == 2
    p = probs.unsqueeze(0) if single else probs
    if tuple(p.shape[1:]) != (NUM_EDGES, NUM_OPS):
        raise SgnasError(f"op probabilities must have shape ({NUM_EDGES}, {NUM_OPS}) or "
                         f"(B, {NUM_EDGES}, {NUM_OPS}), got {tuple(probs.shape)}")
    out = torch.einsum(_EINSUM, t, *p.unbind(1))
    return out[0] if single else out


def cell_report(cell: Cell | str, lut_path: str | None = None,
                space: NB201Space | None = None) -> dict:
    """FLOPs (multiply-adds), params and, with a per-cell LUT, latency (ms) of a cell's network;
    the keys of ``sgnas cost``'s report."""
    from ..lut import load_lut

    space = space or NB201Space()
    cell = space.cell(cell)
    out = {"arch": str(cell), "space": space.name, "se": False,
           "flops": int(round(count_flops(space, cell) * 1e6)),
           "params": int(round(count_params(space, cell) * 1e6))}
    if lut_path is not None:
        lut = load_lut(lut_path, space=space.name)
        out.update(lut=str(lut_path), device=lut.device_name, lut_fingerprint=lut.fingerprint,
                   latency_ms_raw=lut.predict_ms(cell, calibrated=False, space=space),
                   latency_ms_calibrated=(lut.predict_ms(cell, space=space)
                                          if lut.calibration is not None else None))
    return out


__all__ = ["cell_report", "TABLE_SHAPE", "cell_cost", "count_flops", "count_params", "expected_cost",
           "flops_table", "lut_table", "params_table"]
