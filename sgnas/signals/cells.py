"""Functional equivalence of NB201 cells: which edges matter, and one representative per class.

An edge *lives* when its op is not ``none``, its source node carries the input (a path of
non-``none`` edges leads from node 0 to it) and its target node leads on to the output (node 3).
Every other edge adds nothing to the cell's output: it is a zero, reads a node that is identically
zero (every op maps a zero map to zero at initialization: ReLU-conv-BN of zeros in training mode is
BN's bias, 0), or feeds a node the output never reads. :func:`live_ops` replaces such edges by
``none``; a cell whose output node is not reached at all is *dead* (its network ignores its input).

:func:`canonical_form` goes further and writes the output as an expression of node 0: a node is
the multiset of its live edges' terms, ``skip_connect`` passes its source's terms on unchanged
(sums flatten), and every other op wraps its source in a new term. Two cells with the same form
compute the same function up to which (equally initialized) weights sit where, so a score taken at
initialization is computed once per form and shared (NB201's 15,625 cells have 6,466 forms, the
count of unique architectures in the NB201 paper, when dead cells are one class).
"""

from __future__ import annotations

import functools
import itertools
from typing import Iterable, Sequence

import numpy as np

from ..nb201.space import EDGES, OPS, Cell

_SKIP = OPS.index("skip_connect")
DEAD = "dead"


def live_ops(cell: Cell) -> tuple[int, ...]:
    """The cell's op indices with every edge that cannot reach the output set to ``none`` (0)."""
    ops = cell.ops
    reach = {0}
    for e, (to, frm) in enumerate(EDGES):
        if ops[e] != 0 and frm in reach:
            reach.add(to)
    leads = {3}
    for e in reversed(range(len(EDGES))):
        to, frm = EDGES[e]
        if ops[e] != 0 and to in leads:
            leads.add(frm)
    return tuple(o if (o != 0 and EDGES[e][1] in reach and EDGES[e][0] in leads) else 0
                 for e, o in enumerate(ops))


def is_dead(cell: Cell) -> bool:
    """Whether no path of non-``none`` edges leads from the input to the output."""
    return not cell.is_connected()


def canonical_form(cell: Cell) -> str:
    """A string equal for two cells exactly when their outputs are the same expression of the
    input, shared sub-expressions included (see the module docstring); ``"dead"`` for a dead
    cell."""
    if is_dead(cell):
        return DEAD
    ops = live_ops(cell)
    # every live non-skip edge makes one term: op applied to the sum of its source's terms
    node_terms: dict[int, list[int]] = {0: []}  # term ids (edges); node 0 is the input "x"
    term_op: dict[int, str] = {}
    term_in: dict[int, list[int] | None] = {}  # None: the input
    for node in (1, 2, 3):
        acc: list[int] = []
        for e, (to, frm) in enumerate(EDGES):
            if to != node or ops[e] == 0:
                continue
            src = node_terms[frm] if frm else [-1]
            if ops[e] == _SKIP:
                acc.extend(src)
            else:
                term_op[e] = OPS[ops[e]]
                term_in[e] = src
                acc.append(e)
        node_terms[node] = acc
    tree: dict[int, str] = {-1: "x"}
    for e in sorted(term_op):  # edges are in topological order
        tree[e] = f"{term_op[e]}({'+'.join(sorted(tree[t] for t in term_in[e]))})"
    groups: dict[str, list[int]] = {}
    for e in sorted(term_op):
        groups.setdefault(tree[e], []).append(e)
    best = None
    for perm in itertools.product(*(itertools.permutations(g) for g in groups.values())):
        name = {-1: "x"}
        for g in perm:
            for k, e in enumerate(g):
                name[e] = f"{tree[e]}#{k}"
        body = ";".join(sorted(f"{name[e]}<{','.join(sorted(name[t] for t in term_in[e]))}"
                               for e in term_op))
        text = body + "|" + ",".join(sorted(name[t] for t in node_terms[3]))
        best = text if best is None or text < best else best
    return best  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _first_of_form() -> dict[str, int]:
    """Each canonical form's smallest cell code over the whole space."""
    from ..nb201.space import all_cells

    first: dict[str, int] = {}
    for cell in all_cells():  # in code order
        first.setdefault(canonical_form(cell), cell.code)
    return first


def representative(cell: Cell) -> Cell | None:
    """The cell that stands for ``cell``'s class: the class member with the smallest code over
    the whole space (so a cell's score never depends on which other cells were scored with it);
    ``None`` for a dead cell. Members of a class share their function up to which equally
    initialized weights sit where."""
    form = canonical_form(cell)
    if form == DEAD:
        return None
    return Cell(live_ops(Cell.from_code(_first_of_form()[form])))


def representatives(cells: Iterable[Cell]) -> tuple[list[Cell], np.ndarray]:
    """``(reps, cls)``: the :func:`representative` of each class among ``cells`` (in first-seen
    order; dead cells have none) and, per input cell, the index of its representative in
    ``reps`` (-1 for a dead cell)."""
    index: dict[Cell, int] = {}
    reps: list[Cell] = []
    out: list[int] = []
    for cell in cells:
        rep = representative(cell)
        if rep is None:
            out.append(-1)
            continue
        if rep not in index:
            index[rep] = len(reps)
            reps.append(rep)
        out.append(index[rep])
    return reps, np.asarray(out, dtype=np.int64)


def count_forms(cells: Sequence[Cell]) -> int:
    """Number of distinct canonical forms (dead cells counting as one)."""
    return len({canonical_form(c) for c in cells})


__all__ = ["DEAD", "canonical_form", "count_forms", "is_dead", "live_ops", "representative",
           "representatives"]
