"""A generator trained on a tabulated signal decodes to what exhaustive search under that signal
returns, never to a dead cell, and its target marginals are what they claim."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgnas.costs import CellTableCost
from sgnas.errors import SgnasError
from sgnas.nb201.cost import TABLE_SHAPE, flops_table, path_flops_table
from sgnas.nb201.space import Cell, NB201Space
from sgnas.train.score_generator import (
    ScoreGeneratorConfig,
    rank_scores,
    target_marginals,
    train_score_generator,
)


def test_rank_scores_break_ties_and_zero_dead_cells():
    alive = np.array([True, True, False, True])
    r = rank_scores(np.array([3.0, 3.0, 9.0, 1.0]), alive)
    assert r[2] == 0.0 and r[3] == 0.0
    assert sorted(r[alive]) == [0.0, 0.5, 1.0]  # the tie gets two distinct positions
    with pytest.raises(SgnasError, match="non-finite"):
        rank_scores(np.array([np.nan, 1.0]), np.array([True, True]))


def test_target_marginals_concentrate_on_the_best_feasible_cell():
    n = 5 ** 6
    ranks = torch.arange(n, dtype=torch.float32)
    feasible = torch.zeros(1, n, dtype=torch.bool)
    feasible[0, [7, 100, 4242]] = True
    m = target_marginals(ranks, feasible, sharpness=50.0, shape=(6, 5))
    best = Cell.from_code(4242)
    assert m.shape == (1, 6, 5)
    assert [int(i) for i in m[0].argmax(-1)] == list(best.ops)
    assert torch.allclose(m.sum(-1), torch.ones(1, 6))


@pytest.mark.slow
def test_generator_decodes_the_exhaustive_answer_and_no_dead_cell():
    torch.set_num_threads(1)
    space = NB201Space()
    alive = space.alive_mask().reshape(TABLE_SHAPE)
    cost = CellTableCost(space, flops_table(space), "flops", "MFLOPs")
    score = path_flops_table(space) + 1e-3 * np.random.default_rng(0).random(TABLE_SHAPE)
    bundle = train_score_generator(space, cost, score.reshape(-1), "path_flops",
                                   ScoreGeneratorConfig(steps=1000, seed=0))
    assert bundle.meta["signal"] == "path_flops"
    lo, hi = bundle.interval
    hits = 0
    targets = np.linspace(lo, hi, 12)
    for t in targets:
        cell, _ = bundle.decode(float(t), cost, eps=None)
        assert cell.is_connected() and cost.exact(cell) <= t
        ok = alive & (cost.table <= t)
        hits += bool(score[cell.ops] == score[ok].max())
    assert hits >= 10, f"exhaustive answer decoded for {hits} of {len(targets)} targets"


def test_untabulated_cost_is_refused():
    from sgnas.costs import make_cost
    from sgnas.space import get_space

    space = get_space("tiny")
    with pytest.raises(SgnasError, match="tabulated"):
        train_score_generator(space, make_cost("flops", space), np.zeros(3), "x")


@pytest.mark.slow
def test_shared_score_generator_serves_a_new_device_under_its_bound(tmp_path):
    from sgnas.shared_generator import load_shared, save_shared
    from sgnas.train.score_generator import train_score_shared_generator

    torch.set_num_threads(1)
    space = NB201Space()
    rng = np.random.default_rng(0)
    flops = flops_table(space)

    def device(w):  # latency grows with FLOPs, each device its own mix
        return CellTableCost(space, 1.0 + w * flops + rng.random(TABLE_SHAPE), "latency", "ms")

    train = [device(w) for w in (0.01, 0.02, 0.05)]
    score = path_flops_table(space).reshape(-1)
    bundle = train_score_shared_generator(space, train, score, "path_flops",
                                          ScoreGeneratorConfig(steps=150, seed=0))
    assert bundle.meta["decode"] == "upper" and bundle.meta["signal"] == "path_flops"
    save_shared(tmp_path / "shared.pt", bundle)
    loaded = load_shared(tmp_path / "shared.pt")
    new = device(0.03)
    refs = tuple(np.stack([space.indices_of(c) for c in loaded.references], axis=1))
    from sgnas.shared_generator import device_features

    feats = device_features(new.table[refs])
    lo, hi = np.percentile(new.values(), [10, 90])
    for t in np.linspace(lo, hi, 5):
        cell, out = loaded.decode(float(t), new, eps=None, features=feats)
        assert cell.is_connected() and new.exact(cell) <= t
