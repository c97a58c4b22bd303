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


def test_build_evaluator_scores_a_fixed_subset(tiny, image_folder):
    import torch

    from sgnas.search import build_evaluator
    from sgnas.supernet import UnifiedSupernet
    from sgnas.evaluation.data import DataConfig, build_datasets

    ds = build_datasets(DataConfig(root=str(image_folder), batch_size=2, workers=0, held_out=4), tiny)
    model = UnifiedSupernet(tiny, generator=torch.Generator().manual_seed(0)).eval()
    kw = dict(batch_size=2, calib_batches=1, seed=3)
    ev = build_evaluator(model, ds.train, ds.test, eval_batches=2, **kw)
    assert len(ev.eval_loader.dataset) == 4 and ev.eval_batches is None and ev.calib_batches == 1
    again = build_evaluator(model, ds.train, ds.test, eval_batches=2, **kw)
    assert again.eval_loader.dataset.indices == ev.eval_loader.dataset.indices
    whole = build_evaluator(model, ds.train, ds.test, eval_batches=None, **kw)
    assert whole.eval_loader.dataset is ds.test
    arch = tiny.sample(np.random.default_rng(0))
    assert 0.0 <= ev(arch) <= 1.0 and ev.stats()["evaluations"] == 1
