"""NB201 functional classes: dead edges, canonical forms, and that pruning keeps the function."""

import math

import numpy as np
import pytest
import torch

from sgnas.nb201.space import Cell, all_cells
from sgnas.signals.cells import DEAD, canonical_form, count_forms, live_ops, representatives


def test_dead_edges_are_pruned():
    # node 1 = none; edge 2<-1 conv reads a zero node; node 3 = skip(node 0) + conv(node 2)
    cell = Cell.parse("|none~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    assert live_ops(cell) == (0, 4, 0, 1, 0, 2)
    # edge 1<-0 conv feeds node 1, which feeds nothing on a path to the output
    cell = Cell.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    assert live_ops(cell) == (0, 1, 0, 0, 0, 2)


def test_counts_over_the_space():
    cells = list(all_cells())
    reps, cls = representatives(cells)
    assert int((cls < 0).sum()) == 341  # cells without an input-output path
    assert len(reps) == 5424 and count_forms(cells) == 5425
    assert all(canonical_form(r) == canonical_form(cells[int(np.flatnonzero(cls == i)[0])])
               for i, r in list(enumerate(reps))[:200])


def test_forms_merge_skips_but_keep_shared_terms_apart():
    a = Cell.parse("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|")
    b = Cell.parse("|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|")
    c = Cell.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    assert canonical_form(a) == canonical_form(b) == canonical_form(c)
    # out = conv(x) + pool(conv(x)) with one shared conv, versus two separate convs
    shared = Cell.parse("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|none~0|skip_connect~1|skip_connect~2|")
    separate = Cell.parse("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|skip_connect~2|")
    assert canonical_form(shared) != canonical_form(separate)
    assert canonical_form(Cell.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")) == DEAD


@pytest.mark.parametrize("text", [
    "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|",
    "|none~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|",
])
def test_pruning_keeps_the_network_function(text):
    """Scoring a cell with its dead edges gives what its pruned form gives (gradient proxies),
    so scoring one representative per class loses nothing."""
    from sgnas.signals.compute import NB201Scorer

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)
    scorer = NB201Scorer(["synflow", "jacob_cov", "snip", "grad_norm"], x, y, seed=1)
    cell = Cell.parse(text)
    pruned = Cell(live_ops(cell))
    assert pruned != cell
    full, live = scorer.score_live(cell), scorer.score_live(pruned)
    for name in full:
        assert math.isclose(full[name], live[name], rel_tol=1e-5, abs_tol=1e-6), name


def test_representative_does_not_depend_on_the_batch():
    """A class's representative is its smallest-code member over the whole space, whatever
    other cells are scored with it."""
    from sgnas.signals.cells import representative

    a = Cell.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    b = Cell.parse("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    assert canonical_form(a) == canonical_form(b)
    ra, _ = representatives([a])
    rb, _ = representatives([b, a])
    assert ra[0] == rb[0] == representative(a) == representative(b)
    members = [c for c in all_cells() if canonical_form(c) == canonical_form(a)]
    assert representative(a).code == min(c.code for c in members)
