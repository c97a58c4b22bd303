"""ONNX graphs of a cell space (NAS-Bench-201): edge-op terms, fixed parts and whole networks.

The graphs are written with :class:`profiler.graphs.GraphBuilder` (conv + BN folded, as the unified
space's graphs are) from the torch modules of :mod:`sgnas.nb201.network`, so each graph can be checked
against its module (:func:`profiler.graphs.check_against_torch`).

Pieces (:func:`piece_specs`), one per stage ``s`` (channels ``c``, map ``hw``) unless fixed:

* ``s{s}_op_{name}``: one edge op on a ``(1, c, hw, hw)`` input (``none`` is the zero op
  ``x * 0``, used when every input edge of a node is ``none``; ``skip_connect`` is the identity);
* ``s{s}_add``: the sum of two edge outputs (a node with ``k`` non-``none`` inputs adds ``k - 1``);
* ``stem``, ``reduce1``, ``reduce2`` (the residual basic blocks), ``head`` (BN, ReLU, pool, linear);
* ``overhead``: the identity at the network's input, i.e. the cost of one inference call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from sgnas.errors import SgnasError
from sgnas.nb201.network import NB201Network, ResNetBasicBlock, SearchCell, make_op
from sgnas.nb201.space import OPS, Cell, NB201Space

from . import graphs
from .graphs import INPUT_NAME, GraphBuilder


@dataclass(frozen=True)
class Stage:
    """Stage ``index`` of the network: ``channels`` x ``size`` x ``size`` maps."""

    index: int
    channels: int
    size: int


def stages(space: NB201Space) -> list[Stage]:
    """The three stages (channels, map size) of the NB201 network."""
    c, s = space.channels, space.input_size
    return [Stage(0, c, s), Stage(1, 2 * c, (s + 1) // 2), Stage(2, 4 * c, (s + 3) // 4)]


@dataclass(frozen=True)
class PieceSpec:
    """One measured piece: its name, kind (``op``, ``add``, ``stem``, ``reduce``, ``head``,
    ``overhead``), stage (or ``None``), op name (``op`` pieces) and input shape at batch 1."""

    name: str
    kind: str
    stage: int | None
    op: str | None
    input_shape: tuple[int, ...]


def piece_specs(space: NB201Space) -> dict[str, PieceSpec]:
    """Every piece a per-cell table of ``space`` is composed of, in measuring order."""
    st = stages(space)
    out: dict[str, PieceSpec] = {}
    size = space.input_size

    def add(p: PieceSpec) -> None:
        out[p.name] = p

    add(PieceSpec("overhead", "overhead", None, None, (1, 3, size, size)))
    add(PieceSpec("stem", "stem", None, None, (1, 3, size, size)))
    for s in st:
        shape = (1, s.channels, s.size, s.size)
        for op in OPS:
            add(PieceSpec(f"s{s.index}_op_{op}", "op", s.index, op, shape))
        add(PieceSpec(f"s{s.index}_add", "add", s.index, None, shape))
        if s.index > 0:
            prev = st[s.index - 1]
            add(PieceSpec(f"reduce{s.index}", "reduce", s.index, None,
                          (1, prev.channels, prev.size, prev.size)))
    last = st[-1]
    add(PieceSpec("head", "head", None, None, (1, last.channels, last.size, last.size)))
    return out


# ------------------------------------------------------------------- emitters
def _one_conv(module: nn.Module) -> graphs._Folded:
    convs, _ = graphs._convs(module)
    if len(convs) != 1:
        raise SgnasError(f"expected one conv in {type(module).__name__}, found {len(convs)}")
    return convs[0]


def _relu_conv_bn(g: GraphBuilder, x: str, module: nn.Module) -> str:
    return g.conv(g.node("Relu", [x])[0], _one_conv(module))


def _zero(g: GraphBuilder, x: str) -> str:
    return g.node("Mul", [x, g.const(np.array(0.0), "zero")])[0]


def _avg_pool(g: GraphBuilder, x: str, k: int, stride: int, pad: int) -> str:
    return g.node("AveragePool", [x], kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4,
                  count_include_pad=0)[0]


def _emit_op(g: GraphBuilder, x: str, name: str, module: nn.Module) -> str:
    if name == "none":
        return _zero(g, x)
    if name == "skip_connect":
        return x
    if name in ("nor_conv_1x1", "nor_conv_3x3"):
        return _relu_conv_bn(g, x, module)
    if name == "avg_pool_3x3":
        return _avg_pool(g, x, 3, 1, 1)
    raise SgnasError(f"no graph for NB201 op {name!r}")


def _emit_reduce(g: GraphBuilder, x: str, block: ResNetBasicBlock) -> str:
    a = _relu_conv_bn(g, x, block.conv_a)
    b = _relu_conv_bn(g, a, block.conv_b)
    d = g.conv(_avg_pool(g, x, 2, 2, 0), _one_conv(block.downsample))
    return g.node("Add", [d, b])[0]


def _emit_stem(g: GraphBuilder, x: str, stem: nn.Module) -> str:
    return g.conv(x, _one_conv(stem))


def _emit_head(g: GraphBuilder, x: str, lastact: Any, classifier: nn.Linear) -> str:
    bn = lastact[0]
    consts = [g.const(t.detach().numpy(), "bn") for t in
              (bn.weight, bn.bias, bn.running_mean, bn.running_var)]
    h = g.node("BatchNormalization", [x, *consts], epsilon=float(bn.eps))[0]
    h = g.node("Relu", [h])[0]
    h = g.node("GlobalAveragePool", [h])[0]
    h = g.node("Flatten", [h], axis=1)[0]
    w = g.const(classifier.weight.detach().numpy(), "fc_w")
    b = g.const(classifier.bias.detach().numpy(), "fc_b")
    return g.node("Gemm", [h, w, b], transB=1)[0]


def _emit_cell(g: GraphBuilder, x: str, cell_module: SearchCell, ops: Sequence[int]) -> str:
    """One cell as torch's ``SearchCell.forward`` runs it: node j sums its non-``none`` edges."""
    nodes = [x]
    e = 0
    for node in (1, 2, 3):
        terms = []
        for src in range(node):
            op = int(ops[e])
            if op != 0:
                edge: Any = cell_module.edges[e]
                terms.append(_emit_op(g, nodes[src], OPS[op], edge[0]))
            e += 1
        if not terms:
            nodes.append(_zero(g, x))
            continue
        total = terms[0]
        for t in terms[1:]:
            total = g.node("Add", [total, t])[0]
        nodes.append(total)
    return nodes[3]


# --------------------------------------------------------------------- public
class _Sum(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x


def piece_module(space: NB201Space, piece: PieceSpec, seed: int = 0) -> nn.Module:
    """The torch module a piece stands for, randomized, in eval mode."""
    st = stages(space)
    module: nn.Module
    if piece.kind == "op":
        assert piece.stage is not None and piece.op is not None
        module = make_op(piece.op, st[piece.stage].channels)
    elif piece.kind == "add":
        module = _Sum()
    elif piece.kind == "stem":
        c = space.channels
        module = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
    elif piece.kind == "reduce":
        assert piece.stage is not None
        module = ResNetBasicBlock(st[piece.stage - 1].channels, st[piece.stage].channels)
    elif piece.kind == "head":
        c = st[-1].channels
        module = _Head(c, space.num_classes)
    elif piece.kind == "overhead":
        module = nn.Identity()
    else:
        raise SgnasError(f"unknown piece kind {piece.kind!r}")
    return graphs.randomize_(module, torch.Generator().manual_seed(seed))


class _Head(nn.Module):
    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.lastact(x).mean((2, 3)))


def piece_graph(space: NB201Space, piece: PieceSpec, module: nn.Module):
    """ONNX model of ``piece`` (built from ``module``, see :func:`piece_module`)."""
    g = GraphBuilder()
    x = INPUT_NAME
    if piece.kind == "op":
        assert piece.op is not None
        y = _emit_op(g, x, piece.op, module)
        if y == x:  # the identity: keep an explicit node so the graph has one
            y = g.node("Identity", [x])[0]
    elif piece.kind == "add":
        y = g.node("Add", [x, x])[0]
    elif piece.kind == "stem":
        y = _emit_stem(g, x, module)
    elif piece.kind == "reduce":
        assert isinstance(module, ResNetBasicBlock)
        y = _emit_reduce(g, x, module)
    elif piece.kind == "head":
        assert isinstance(module, _Head)
        y = _emit_head(g, x, module.lastact, module.classifier)
    else:
        y = g.node("Identity", [x])[0]
    with torch.no_grad():
        out_shape = tuple(module(torch.zeros(piece.input_shape)).shape)
    return g.model(INPUT_NAME, piece.input_shape, y, out_shape)


def network_module(space: NB201Space, cell: Cell | str, seed: int = 0) -> NB201Network:
    """The NB201 network of ``cell`` with random weights, in eval mode."""
    net = NB201Network(space, cell)
    return graphs.randomize_(net, torch.Generator().manual_seed(seed))  # type: ignore[return-value]


def network_graph(space: NB201Space, net: NB201Network, batch_size: int = 1):
    """ONNX model of the whole NB201 network ``net`` (stem, 15 cells, two reductions, head)."""
    g = GraphBuilder()
    h = _emit_stem(g, INPUT_NAME, net.stem)
    for m in net.cells:
        if isinstance(m, ResNetBasicBlock):
            h = _emit_reduce(g, h, m)
        else:
            assert isinstance(m, SearchCell)
            h = _emit_cell(g, h, m, net.cell.ops)
    y = _emit_head(g, h, net.lastact, net.classifier)
    shape = (batch_size, 3, space.input_size, space.input_size)
    return g.model(INPUT_NAME, shape, y, (batch_size, space.num_classes))


__all__ = ["PieceSpec", "Stage", "network_graph", "network_module", "piece_graph", "piece_module",
           "piece_specs", "stages"]
