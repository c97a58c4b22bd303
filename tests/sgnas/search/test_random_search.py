import numpy as np
import pytest

from sgnas.errors import SgnasError
from sgnas.search import check_target, random_search, sample_under


def test_random_search_respects_constraint_and_keeps_best(tiny, kernel_cost, synthetic):
    score, _ = synthetic
    result = random_search(tiny, kernel_cost, score, 300.0, n=60, rng=np.random.default_rng(0))
    assert result.strategy == "random"
    assert result.evaluations == len(result.candidates) == len(result.history) == 60
    assert all(c["cost"] <= 300.0 for c in result.candidates)
    assert len({c["arch"] for c in result.candidates}) == 60
    assert result.best_accuracy == max(c["accuracy"] for c in result.candidates)
    assert score(result.best) == result.best_accuracy
    assert result.history[-1]["best_so_far"] == result.best_accuracy
    assert result.rejected["sampling"] > 0  # about half of uniform samples cost more than 300


def test_random_search_is_reproducible(tiny, kernel_cost, synthetic):
    score, _ = synthetic
    a = random_search(tiny, kernel_cost, score, 400.0, n=20, rng=np.random.default_rng(9))
    b = random_search(tiny, kernel_cost, score, 400.0, n=20, rng=np.random.default_rng(9))
    assert a.candidates == b.candidates


def test_target_below_range(tiny, kernel_cost, synthetic):
    score, _ = synthetic
    with pytest.raises(SgnasError, match="below the smallest achievable ksq"):
        random_search(tiny, kernel_cost, score, 10.0, n=5, rng=np.random.default_rng(0))
    assert check_target(kernel_cost, 72.0) == (72.0, 1176.0)


def test_unreachable_candidates_raise(tiny, kernel_cost, synthetic):
    score, _ = synthetic
    with pytest.raises(SgnasError, match="no new architecture"):
        random_search(tiny, kernel_cost, score, 72.0, n=2, rng=np.random.default_rng(0),
                      max_tries=100)


def test_sample_under_excludes(tiny, kernel_cost):
    rng = np.random.default_rng(0)
    arch, cost, _ = sample_under(tiny, kernel_cost, 1176.0, rng, 10)
    assert cost == kernel_cost.exact(arch)
    assert sample_under(tiny, kernel_cost, 72.0, rng, 20) is None
