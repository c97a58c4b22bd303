"""The NB201 signal protocol on small hand-made tables: ties, windows, bootstrap, baselines."""

from __future__ import annotations

import numpy as np
import pytest

from sgnas.errors import SgnasError
from sgnas.nb201.cost import TABLE_SHAPE, flops_table, path_flops_table
from sgnas.nb201.groundtruth import connected_mask
from sgnas.nb201.space import Cell, NB201Space
from sgnas.search import nb201_quality as q

ALIVE = connected_mask()


def _table(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(TABLE_SHAPE)


def test_exhaustive_regret_is_zero_when_the_signal_is_the_accuracy():
    acc, cost = np.where(ALIVE, _table(1), 0.0), _table(2)  # dead cells score nothing, as in NB201
    for t in (0.2, 0.5, 0.9):
        assert q.exhaustive_regret(acc, acc, cost, t, ALIVE) == pytest.approx(0.0, abs=1e-12)
    assert q.exhaustive_regret(-acc, acc, cost, 0.9, ALIVE) > 0.5  # the worst cell instead


def test_exhaustive_regret_averages_a_tie():
    acc, cost = _table(3), _table(4)
    score = np.zeros(TABLE_SHAPE)  # every cell tied: the mean over feasible connected cells
    ok = ALIVE & (cost <= 0.5)
    expected = acc[cost <= 0.5].max() - acc[ok].mean()
    assert q.exhaustive_regret(score, acc, cost, 0.5, ALIVE) == pytest.approx(expected)


def test_exhaustive_never_picks_a_dead_or_infeasible_cell():
    acc, cost = _table(5), _table(6)
    score = np.where(ALIVE, 0.0, 100.0)  # dead cells would win on the score
    score[cost > 0.3] = 50.0             # so would infeasible ones
    r = q.exhaustive_regret(score, acc, cost, 0.3, ALIVE)
    ok = ALIVE & (cost <= 0.3)
    assert r == pytest.approx(acc[cost <= 0.3].max() - acc[ok].mean())


def test_window_regret_uniform_and_best():
    acc, cost = _table(7), _table(8)
    win = ALIVE & (cost <= 0.6) & (cost >= 0.6 * 0.9)
    oracle = acc[cost <= 0.6].max()
    assert q.window_regret(acc, cost, 0.6, eps=0.1, mask=ALIVE) == pytest.approx(oracle - acc[win].mean())
    assert q.window_regret(acc, cost, 0.6, eps=0.1, mask=ALIVE, best=True) == pytest.approx(
        oracle - acc[win].max())


def test_rank_average_is_the_mean_rank_and_marks_dead_cells():
    a, b = _table(9), _table(10)
    r = q.rank_average([a, b], ALIVE)
    assert (r[~ALIVE] == -1).all() and r[ALIVE].min() >= 0 and r[ALIVE].max() <= 1
    best = np.unravel_index(np.argmax(np.where(ALIVE, a + 0 * b, -np.inf)), TABLE_SHAPE)
    single = q.rank_average([a], ALIVE)
    assert single[best] == pytest.approx(1.0)


def test_rank_quality_interval_brackets_tau():
    acc = _table(11)
    noisy = acc + 0.3 * _table(12)
    rq = q.rank_quality(noisy, acc, ALIVE, boot=30, seed=0)
    assert 0.3 < rq.kendall_tau < 0.95
    assert rq.tau_low <= rq.kendall_tau <= rq.tau_high and rq.cells == int(ALIVE.sum())
    perfect = q.rank_quality(acc, acc, ALIVE, boot=5)
    assert perfect.kendall_tau == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_search_on_the_table_meets_the_constraint_and_spends_its_budget(method):
    acc, cost = _table(13), _table(14)
    regret, evals = q.search_regret(method, acc, acc, cost, 0.5, 40, seed=0, mask=ALIVE)
    assert 0 <= regret < acc[cost <= 0.5].max() - acc[ALIVE & (cost <= 0.5)].mean()
    assert 0 < evals <= 40


def test_check_table_rejects_bad_tables():
    with pytest.raises(SgnasError, match="shape"):
        q.check_table(np.zeros(5))
    bad = _table(0)
    bad[0, 0, 0, 0, 0, 1] = np.nan
    with pytest.raises(SgnasError, match="non-finite"):
        q.check_table(bad)


def test_bootstrap_mean_interval():
    out = q.bootstrap_mean([1.0, 2.0, 3.0, 4.0], boot=500)
    assert out["mean"] == 2.5 and out["ci"][0] < 2.5 < out["ci"][1] and out["n"] == 4


def test_path_flops_counts_only_live_edges():
    full, path = flops_table(), path_flops_table()
    assert (path <= full + 1e-12).all()
    # a 3x3 conv on edge 1 (node 2 <- node 0) feeding a node that reaches the output only via
    # a none edge computes nothing useful
    dead_branch = Cell.parse("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|none~2|")
    assert dead_branch.live_edges() == [0, 4]
    assert path[dead_branch.ops] < full[dead_branch.ops]
    live = Cell.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
    assert path[live.ops] == pytest.approx(full[live.ops])


def test_space_sampling_and_evolution_never_return_dead_cells():
    space = NB201Space()
    rng = np.random.default_rng(0)
    cells = [space.sample(rng) for _ in range(400)]
    assert all(c.is_connected() for c in cells)
    parent = Cell.parse("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    kids = [space.mutate(parent, 0.5, rng) for _ in range(200)]
    assert all(k.is_connected() for k in kids)
    assert space.alive_mask().sum() == ALIVE.sum() == 15625 - 341
