import numpy as np
import pytest

from sgnas.search import InheritedAccuracy


def test_cache_counts_and_lru(tiny):
    rng = np.random.default_rng(0)
    a, b, c = (tiny.sample(rng) for _ in range(3))
    calls = []

    def score(arch):
        calls.append(arch)
        return float(len(calls))

    ev = InheritedAccuracy(score=score, cache_size=2)
    assert ev(a) == 1.0 and ev(b) == 2.0
    assert ev(a) == 1.0  # cached; a becomes most recent
    assert ev(c) == 3.0  # evicts b
    assert ev(b) == 4.0
    assert ev(a) == 5.0  # evicted by b
    assert calls == [a, b, c, b, a]
    stats = ev.stats()
    assert stats["calls"] == 6 and stats["evaluations"] == 5 and stats["cache_hits"] == 1


def test_needs_model_or_score():
    with pytest.raises(ValueError):
        InheritedAccuracy()
