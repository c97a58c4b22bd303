"""The fixed NAS-Bench-201 network (TinyNetwork) around a cell, and its analytic FLOPs and params.

Layout (C = 16, N = 5): 3x3 conv 3->C + BN; N cells at C; a ResNet basic block C->2C at stride 2;
N cells at 2C; a basic block 2C->4C at stride 2; N cells at 4C; BN + ReLU, global average pool,
linear classifier. Cell ops: ``nor_conv_kxk`` is ReLU-Conv-BN (no conv bias, affine BN),
``avg_pool_3x3`` is a 3x3 average pool (stride 1, padding 1, padding excluded), ``skip_connect`` the
identity and ``none`` the zero op. Node j of a cell sums the edge ops applied to nodes 0..j-1; the
cell outputs node 3.

Counting convention (NB201's): params are all trainable parameters of all modules (every edge
counts, connected to the output or not); FLOPs are the multiply-accumulates of Conv2d and Linear
layers (the linear bias included), pooling, BN, ReLU and additions not counted. Values in millions.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .space import EDGES, NUM_EDGES, OPS, Cell, NB201Space


# ------------------------------------------------------------------------------- ops
class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, c: int) -> nn.Module:
    """The module of cell op ``name`` at ``c`` channels, stride 1."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {name!r}")


class ResNetBasicBlock(nn.Module):
    """NB201's reduction: ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN, plus AvgPool2 + 1x1 conv."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2, padding=0),
                                        nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class SearchCell(nn.Module):
    """A cell whose edge ``e`` holds the candidate ops ``candidates[e]`` (indices into OPS).

    ``forward(x, ops)`` runs one op per edge (``ops[e]`` an index into OPS, which must be a
    candidate); ``forward_weighted(x, probs)`` sums every candidate of edge e weighted by
    ``probs[e, op]`` (shape ``(6, 5)``).
    """

    def __init__(self, c: int, candidates: Sequence[Sequence[int]]):
        super().__init__()
        self.candidates = [tuple(int(o) for o in cand) for cand in candidates]
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(OPS[o], c) for o in cand) for cand in self.candidates)
        self._slot = [{o: i for i, o in enumerate(cand)} for cand in self.candidates]

    def forward(self, x: torch.Tensor, ops: Sequence[int],
                gates: torch.Tensor | None = None) -> torch.Tensor:
        """The single path ``ops``; with ``gates``, edge ``e``'s output scaled by ``gates[e]``."""
        nodes = [x]
        e = 0
        for node in (1, 2, 3):
            total = None
            for src in range(node):
                op = int(ops[e])
                if op != 0:  # "none" adds zero
                    out = self.edges[e][self._slot[e][op]](nodes[src])
                    if gates is not None:
                        out = gates[e] * out
                    total = out if total is None else total + out
                e += 1
            nodes.append(total if total is not None else x.mul(0.0))
        return nodes[3]

    def forward_gated(self, x: torch.Tensor, ops: Sequence[int], gates: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with edge ``e``'s output scaled by ``gates[e]`` (a straight-through
        one-hot entry: 1 in the forward pass, so the output is the single path's)."""
        return self.forward(x, ops, gates)

    def forward_weighted(self, x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        e = 0
        for node in (1, 2, 3):
            total = 0
            for src in range(node):
                for slot, op in enumerate(self.candidates[e]):
                    if op == 0:
                        continue
                    total = total + probs[e, op] * self.edges[e][slot](nodes[src])
                e += 1
            nodes.append(total if torch.is_tensor(total) else x.mul(0.0))
        return nodes[3]


class MacroNetwork(nn.Module):
    """The NB201 macro with :class:`SearchCell` cells whose edges hold ``candidates``."""

    def __init__(self, space: NB201Space, candidates: Sequence[Sequence[int]]):
        super().__init__()
        c, n = space.channels, space.cells_per_stage
        self.space = space
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        cells: list[nn.Module] = []
        c_prev = c
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                cells.append(ResNetBasicBlock(c_prev, width))
            cells.extend(SearchCell(width, candidates) for _ in range(n))
            c_prev = width
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, space.num_classes)

    def _run(self, x: torch.Tensor, cell_fn) -> torch.Tensor:
        x = self.stem(x)
        for m in self.cells:
            x = cell_fn(m, x) if isinstance(m, SearchCell) else m(x)
        x = self.pool(self.lastact(x)).flatten(1)
        return self.classifier(x)


class NB201Network(MacroNetwork):
    """The standalone NB201 network of one cell (every edge holds its one op)."""

    def __init__(self, space: NB201Space, cell: Cell | str):
        cell = space.cell(cell)
        super().__init__(space, [(o,) for o in cell.ops])
        self.cell = cell

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops = self.cell.ops
        return self._run(x, lambda m, h: m(h, ops))


# --------------------------------------------------------------------- analytic costs
def _op_cost(op: str, c: int, hw: int) -> tuple[int, int]:
    """(MACs, params) of one cell edge op at ``c`` channels on an ``hw`` x ``hw`` map."""
    if op == "nor_conv_3x3":
        return 9 * c * c * hw * hw, 9 * c * c + 2 * c
    if op == "nor_conv_1x1":
        return c * c * hw * hw, c * c + 2 * c
    return 0, 0


def _stages(space: NB201Space) -> list[tuple[int, int]]:
    """(channels, map size) of each of the three stages."""
    c, s = space.channels, space.input_size
    return [(c, s), (2 * c, (s + 1) // 2), (4 * c, (s + 3) // 4)]


def fixed_cost(space: NB201Space) -> tuple[int, int]:
    """(MACs, params) of everything but the cells: stem, two reductions, last BN, classifier."""
    stages = _stages(space)
    c0, s0 = stages[0]
    flops = 3 * c0 * 9 * s0 * s0
    params = 3 * c0 * 9 + 2 * c0
    for (ci, _), (co, so) in zip(stages[:-1], stages[1:]):
        flops += 9 * ci * co * so * so + 9 * co * co * so * so + ci * co * so * so
        params += 9 * ci * co + 2 * co + 9 * co * co + 2 * co + ci * co
    c_last = stages[-1][0]
    params += 2 * c_last + c_last * space.num_classes + space.num_classes
    flops += c_last * space.num_classes + space.num_classes
    return flops, params


def edge_costs(space: NB201Space) -> tuple[list[list[int]], list[list[int]]]:
    """Per edge and op, the (MACs, params) that op adds to the whole network (all 3N cells)."""
    flops = [[0] * len(OPS) for _ in range(NUM_EDGES)]
    params = [[0] * len(OPS) for _ in range(NUM_EDGES)]
    for c, hw in _stages(space):
        for e in range(NUM_EDGES):
            for o, name in enumerate(OPS):
                f, p = _op_cost(name, c, hw)
                flops[e][o] += f * space.cells_per_stage
                params[e][o] += p * space.cells_per_stage
    return flops, params


def count_flops(space: NB201Space, cell: Cell | str) -> float:
    """FLOPs (MACs, millions) of the NB201 network of ``cell``."""
    cell = space.cell(cell)
    base, _ = fixed_cost(space)
    per_edge, _ = edge_costs(space)
    return (base + sum(per_edge[e][o] for e, o in enumerate(cell.ops))) / 1e6


def count_params(space: NB201Space, cell: Cell | str) -> float:
    """Trainable parameters (millions) of the NB201 network of ``cell``."""
    cell = space.cell(cell)
    _, base = fixed_cost(space)
    _, per_edge = edge_costs(space)
    return (base + sum(per_edge[e][o] for e, o in enumerate(cell.ops))) / 1e6


__all__ = ["EDGES", "MacroNetwork", "NB201Network", "SearchCell", "count_flops", "count_params",
           "edge_costs", "fixed_cost", "make_op"]
