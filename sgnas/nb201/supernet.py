"""The NAS-Bench-201 weight-sharing supernet: one weight set per (cell position, edge, op).

``model(x, arch)`` runs a single path: the same cell (six op indices, a :class:`Cell` or its
string) in all 3N cell positions, as NB201 networks do. ``model.forward_weighted(x, probs)`` runs
every op of every edge weighted by ``probs`` (a ``(6, 5)`` tensor of per-edge op probabilities, or
``(3N, 6, 5)`` for one distribution per cell position); gradients flow into ``probs``, which is what
a generator trained through the supernet needs. Weights initialize as torch's defaults (Kaiming
uniform for convs and the classifier, BN weight 1 and bias 0), drawn from the global torch RNG.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ArchitectureError
from .network import MacroNetwork, SearchCell
from .space import NUM_EDGES, NUM_OPS, Cell, NB201Space


class NB201Supernet(MacroNetwork):
    """Supernet of the NB201 space (every edge holds all five ops)."""

    def __init__(self, space: NB201Space | None = None):
        space = space or NB201Space()
        super().__init__(space, [tuple(range(space.num_ops))] * space.num_edges)

    def resolve_ops(self, arch: Any) -> tuple[int, ...]:
        """Six op indices of ``arch`` (a :class:`Cell`, its string, or six indices)."""
        if isinstance(arch, torch.Tensor):
            arch = arch.detach().cpu().numpy()
        return self.space.cell(arch).ops

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        ops = self.resolve_ops(arch)
        return self._run(x, lambda m, h: m(h, ops))

    def forward_weighted(self, x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Forward with every edge's output the ``probs``-weighted sum of its op outputs."""
        n_cells = sum(isinstance(m, SearchCell) for m in self.cells)
        if probs.shape == (NUM_EDGES, NUM_OPS):
            per_cell = [probs] * n_cells
        elif probs.shape == (n_cells, NUM_EDGES, NUM_OPS):
            per_cell = list(probs.unbind(0))
        else:
            raise ArchitectureError(
                f"op probabilities must have shape ({NUM_EDGES}, {NUM_OPS}) or "
                f"({n_cells}, {NUM_EDGES}, {NUM_OPS}), got {tuple(probs.shape)}")
        it = iter(per_cell)
        return self._run(x, lambda m, h: m.forward_weighted(h, next(it)))

    def forward_gated(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """Single path of the cell ``onehot`` ``(6, 5)`` picks (a straight-through one-hot), each
        edge's output scaled by its picked entry: the output is the cell's, the gradient reaches
        the picked ops' entries (one op per edge is run)."""
        if onehot.shape != (NUM_EDGES, NUM_OPS):
            raise ArchitectureError(f"one-hot must have shape ({NUM_EDGES}, {NUM_OPS}), "
                                    f"got {tuple(onehot.shape)}")
        picked = onehot.detach().argmax(dim=-1)
        gates = onehot.gather(1, picked[:, None]).squeeze(1)
        ops = picked.tolist()
        return self._run(x, lambda m, h: m.forward_gated(h, ops, gates))

    def export(self, arch: Any) -> "torch.nn.Module":
        """The standalone :class:`~sgnas.nb201.network.NB201Network` of ``arch`` with the
        supernet's weights (BN statistics included) copied in."""
        from .network import NB201Network

        cell = Cell(self.resolve_ops(arch))
        net = NB201Network(self.space, cell)
        state = {}
        for k, v in self.state_dict().items():
            parts = k.split(".")
            if parts[0] == "cells" and len(parts) > 3 and parts[2] == "edges":
                e, op = int(parts[3]), int(parts[4])
                if op != cell.ops[e]:
                    continue
                parts[4] = "0"
            state[".".join(parts)] = v
        net.load_state_dict(state)
        return net


def sample_cells(space: NB201Space, n: int, rng: np.random.Generator) -> list[Cell]:
    """``n`` distinct cells drawn uniformly without replacement."""
    codes = rng.choice(space.num_cells, size=n, replace=False)
    return [Cell.from_code(int(c)) for c in codes]
