"""The NAS-Bench-201 cell space: 4 nodes, 6 edges, 5 ops per edge, 5**6 = 15,625 cells.

A cell is written in NB201's standard string form ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node 1
takes node 0, node 2 takes nodes 0 and 1, node 3 takes nodes 0, 1 and 2; ``op~i`` is the op on the
edge from node ``i``. The six edges, in string order, are ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``.

:class:`Cell` stores the six op indices into :data:`OPS`. Its *code* ``sum(op_e * 5**(5-e))``
(edge 0 most significant) indexes the 5x5x5x5x5x5 tensors of :mod:`sgnas.nb201.cost`. The official
benchmark index (the row order of NB201's tables) is not a simple function of the ops; it is read
from a benchmark table (:class:`sgnas.nb201.bench.BenchmarkIndex`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Iterator, Sequence

import numpy as np

from ..errors import ArchitectureError
from ..space_protocol import ProfilingPlan

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: ``(to_node, from_node)`` of each edge, in the order of the arch string.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_EDGES = len(EDGES)
NUM_OPS = len(OPS)
NUM_CELLS = NUM_OPS ** NUM_EDGES
SPACE_NAME = "nb201"


def edge_name(e: int) -> str:
    """Human name of edge ``e``, e.g. ``edge 2 (node 2 <- node 1)``."""
    to, frm = EDGES[e]
    return f"edge {e} (node {to} <- node {frm})"


@dataclass(frozen=True)
class Cell:
    """One NB201 cell: the op index of each of the six edges (in :data:`EDGES` order)."""

    ops: tuple[int, ...]
    space: str = field(default=SPACE_NAME, compare=False)

    def __post_init__(self) -> None:
        try:
            ops = tuple(int(o) for o in self.ops)
        except (TypeError, ValueError) as exc:
            raise ArchitectureError(f"cell ops must be op indices ({exc})") from None
        if len(ops) != NUM_EDGES:
            raise ArchitectureError(f"a cell has {NUM_EDGES} edges, got {len(ops)} ops")
        for e, o in enumerate(ops):
            if not 0 <= o < NUM_OPS:
                raise ArchitectureError(f"{edge_name(e)}: op index {o} not in 0..{NUM_OPS - 1}")
        object.__setattr__(self, "ops", ops)

    @property
    def op_names(self) -> tuple[str, ...]:
        return tuple(OPS[o] for o in self.ops)

    @property
    def code(self) -> int:
        """Position in the base-5 enumeration of cells (edge 0 most significant)."""
        c = 0
        for o in self.ops:
            c = c * NUM_OPS + o
        return c

    @classmethod
    def from_code(cls, code: int) -> "Cell":
        if not 0 <= int(code) < NUM_CELLS:
            raise ArchitectureError(f"cell code {code} not in 0..{NUM_CELLS - 1}")
        ops, c = [], int(code)
        for _ in range(NUM_EDGES):
            ops.append(c % NUM_OPS)
            c //= NUM_OPS
        return cls(tuple(reversed(ops)))

    def __str__(self) -> str:
        parts, e = [], 0
        for node in (1, 2, 3):
            ins = []
            for src in range(node):
                ins.append(f"{OPS[self.ops[e]]}~{src}")
                e += 1
            parts.append("|" + "|".join(ins) + "|")
        return "+".join(parts)

    @classmethod
    def parse(cls, text: str) -> "Cell":
        """Parse the standard string; errors name the edge and the op at fault."""
        if not isinstance(text, str):
            raise ArchitectureError(f"an NB201 cell string is a str, got {type(text).__name__}")
        body = text.strip()
        if body.startswith(SPACE_NAME + ":"):
            body = body[len(SPACE_NAME) + 1:]
        nodes = body.split("+")
        if len(nodes) != 3:
            raise ArchitectureError(
                f"cannot parse NB201 cell {text!r}: want 3 nodes joined by '+' "
                f"(|op~0|+|op~0|op~1|+|op~0|op~1|op~2|), got {len(nodes)}")
        ops: list[int] = []
        for node, part in enumerate(nodes, start=1):
            if not (part.startswith("|") and part.endswith("|")) or len(part) < 2:
                raise ArchitectureError(f"node {node}: {part!r} must look like |op~0|...|")
            items = part[1:-1].split("|")
            if len(items) != node:
                raise ArchitectureError(
                    f"node {node}: needs {node} input edge(s), got {len(items)} in {part!r}")
            for src, item in enumerate(items):
                e = len(ops)
                name, sep, idx = item.partition("~")
                if not sep or idx != str(src):
                    raise ArchitectureError(
                        f"{edge_name(e)}: {item!r} must be op~{src}")
                if name not in OPS:
                    raise ArchitectureError(
                        f"{edge_name(e)}: unknown op {name!r}; known: {', '.join(OPS)}")
                ops.append(OPS.index(name))
        return cls(tuple(ops))

    def to_dict(self) -> dict:
        return {"space": SPACE_NAME, "arch": str(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def is_connected(self) -> bool:
        """Whether any path of non-``none`` edges leads from the input to node 3."""
        reach = {0}
        for e, (to, frm) in enumerate(EDGES):
            if self.ops[e] != 0 and frm in reach:
                reach.add(to)
        return 3 in reach

    def live_edges(self) -> list[int]:
        """The non-``none`` edges on a path from the input (node 0) to the output (node 3)."""
        reach, useful = {0}, {3}
        for e, (to, frm) in enumerate(EDGES):
            if self.ops[e] != 0 and frm in reach:
                reach.add(to)
        for e in reversed(range(NUM_EDGES)):
            to, frm = EDGES[e]
            if self.ops[e] != 0 and to in useful:
                useful.add(frm)
        return [e for e, (to, frm) in enumerate(EDGES)
                if self.ops[e] != 0 and frm in reach and to in useful]


def all_cells() -> Iterator[Cell]:
    """Every cell, in :attr:`Cell.code` order."""
    for ops in itertools.product(range(NUM_OPS), repeat=NUM_EDGES):
        yield Cell(ops)


@dataclass(frozen=True)
class NB201Space:
    """NAS-Bench-201's topology space with its fixed network (TinyNetwork C=16, N=5).

    Implements :class:`sgnas.space_protocol.Space`: one decision per edge over the five ops.
    """

    #: Registry key of its network, supernet and costs (:mod:`sgnas.space_protocol`).
    family: ClassVar[str] = "nb201"

    name: str = SPACE_NAME
    input_size: int = 32
    num_classes: int = 10
    channels: int = 16
    cells_per_stage: int = 5
    ops: tuple[str, ...] = OPS
    edges: tuple[tuple[int, int], ...] = EDGES
    description: str = field(default="NAS-Bench-201 cell space, 6 edges x 5 ops, 15,625 cells",
                             compare=False)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    @property
    def num_cells(self) -> int:
        return self.num_ops ** self.num_edges

    def to_dict(self) -> dict:
        return {"name": self.name, "input_size": self.input_size, "num_classes": self.num_classes,
                "channels": self.channels, "cells_per_stage": self.cells_per_stage,
                "ops": list(self.ops), "edges": [list(e) for e in self.edges]}

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the space's definition; LUTs and checkpoints record it."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # ---------------------------------------------------------------- sampling
    def sample_choices(self, rng: np.random.Generator, forced_sampling: bool = True) -> np.ndarray:
        """Uniform single path: one op index per edge, shape ``(6,)`` (``forced_sampling`` unused)."""
        return rng.integers(0, self.num_ops, size=self.num_edges).astype(np.int64)

    def sample(self, rng: np.random.Generator) -> Cell:
        """A uniform connected cell (dead cells are resampled; supernet training samples paths
        with :meth:`sample_choices`)."""
        while True:
            cell = Cell(tuple(self.sample_choices(rng)))
            if cell.is_connected():
                return cell

    def mutate(self, cell: Cell, prob: float, rng: np.random.Generator) -> Cell:
        """Evolution's mutation on a cell: each edge takes a different op with probability
        ``prob``; when none did, one uniformly chosen edge does (so the child always differs).
        A dead child is drawn again."""
        while True:
            child = self._mutate_once(cell, prob, rng)
            if child.is_connected():
                return child

    def _mutate_once(self, cell: Cell, prob: float, rng: np.random.Generator) -> Cell:
        ops = list(cell.ops)
        flip = rng.random(self.num_edges) < prob
        if not flip.any():
            flip[int(rng.integers(self.num_edges))] = True
        for e in np.flatnonzero(flip):
            ops[e] = (ops[e] + int(rng.integers(1, self.num_ops))) % self.num_ops
        return Cell(tuple(ops))

    def crossover(self, a: Cell, b: Cell, rng: np.random.Generator) -> Cell:
        """Evolution's crossover on cells: each edge's op from ``a`` or ``b`` with equal odds; a
        dead child is drawn again (after 20 dead draws, ``a`` is returned)."""
        for _ in range(20):
            pick = rng.random(self.num_edges) < 0.5
            child = Cell(tuple(x if p else y for p, x, y in zip(pick, a.ops, b.ops)))
            if child.is_connected():
                return child
        return a

    # ------------------------------------------------------------- conversion
    def cell(self, arch: "Cell | str | Sequence[int] | np.ndarray") -> Cell:
        """A :class:`Cell` from a cell, its string form or six op indices."""
        if isinstance(arch, Cell):
            return arch
        if isinstance(arch, str):
            return Cell.parse(arch)
        try:
            values = np.asarray(arch).reshape(-1).tolist()
        except (TypeError, ValueError) as exc:
            raise ArchitectureError(f"cannot read a cell from {type(arch).__name__} ({exc})") from None
        return Cell(tuple(values))

    def validate(self, arch: Cell) -> Cell:
        """``arch`` if it is a cell (a :class:`Cell` is valid by construction)."""
        if not isinstance(arch, Cell):
            raise ArchitectureError(f"expected an NB201 cell, got {type(arch).__name__}")
        return arch

    def parse(self, text: str) -> Cell:
        """A cell from its standard string (``nb201:`` prefix allowed) or ``{"arch": ...}`` JSON."""
        body = text.strip()
        if body.startswith("{"):
            try:
                data = json.loads(body)
            except json.JSONDecodeError as exc:
                raise ArchitectureError(f"NB201 cell is not valid JSON ({exc.msg})") from None
            if not isinstance(data, dict) or not isinstance(data.get("arch"), str):
                raise ArchitectureError('NB201 cell JSON needs the key "arch" (the cell string)')
            if data.get("space", self.name) != self.name:
                raise ArchitectureError(f"architecture is for space {data['space']!r}, "
                                        f"expected {self.name!r}")
            body = data["arch"]
        return Cell.parse(body)

    # ---------------------------------------------------- generator decision view
    def decisions(self) -> tuple[int, int]:
        """``(6, 5)``: one decision per edge over the five ops (see :mod:`sgnas.generator`)."""
        return self.num_edges, self.num_ops

    def candidate_mask(self) -> np.ndarray:
        """Every op is allowed on every edge."""
        return np.ones((self.num_edges, self.num_ops), dtype=bool)

    def arch_from_indices(self, indices: Sequence[int]) -> Cell:
        """The cell with op ``indices[e]`` on edge ``e``."""
        return self.cell([int(i) for i in np.asarray(indices).reshape(-1)])

    def indices_of(self, arch: "Cell | str | Sequence[int]") -> np.ndarray:
        """The six op indices of a cell (inverse of :meth:`arch_from_indices`)."""
        return np.asarray(self.cell(arch).ops, dtype=np.int64)

    def all_choices(self) -> np.ndarray:
        """``(15625, 6)`` op indices of every cell, in :attr:`Cell.code` order."""
        return np.array(list(itertools.product(range(self.num_ops), repeat=self.num_edges)),
                        dtype=np.int64)

    def alive_mask(self) -> np.ndarray:
        """``(15625,)`` bool, :meth:`all_choices` order: whether a cell passes data from its input
        to its output (the 341 others output zeros and score chance)."""
        return _alive_mask().copy()

    def is_degenerate(self, arch: "Cell | str | Sequence[int]") -> bool:
        """Whether the cell has no path of non-``none`` edges from its input to its output."""
        return not self.cell(arch).is_connected()

    # ------------------------------------------------------------- LUT keys
    def cell_key(self, arch: "Cell | str | Sequence[int]") -> str:
        """LUT key of a cell in a per-cell table: its standard string."""
        return str(self.cell(arch))

    def all_keys(self) -> list[str]:
        """Every LUT key of a per-cell table (all cells, in :attr:`Cell.code` order)."""
        return [str(c) for c in all_cells()]

    def lut_keys(self, arch: "Cell | str | Sequence[int]") -> list[str]:
        """The one key of a per-cell table that predicts ``arch``: its cell's entry."""
        return [self.cell_key(arch)]

    def profiling_plan(self) -> ProfilingPlan:
        """A per-cell table composed from measured pieces (:mod:`profiler.cells`)."""
        return ProfilingPlan("cells", tuple(self.all_keys()))


@functools.lru_cache(maxsize=1)
def _alive_mask() -> np.ndarray:
    return np.array([c.is_connected() for c in all_cells()], dtype=bool)


def nb201_space() -> NB201Space:
    return NB201Space()
