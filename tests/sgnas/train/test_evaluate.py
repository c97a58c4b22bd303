from __future__ import annotations

import numpy as np
import pytest
import torch

from sgnas.space import get_space
from sgnas.supernet import UnifiedSupernet
from sgnas.evaluation.data import DataConfig, build_datasets, calibration_loader, eval_loader
from sgnas.evaluation.evaluate import (
    batch_norms,
    evaluate_arch,
    inherited_accuracy,
    recalibrate_bn,
    sample_eval,
    summarize,
)


@pytest.fixture(scope="module")
def setup(image_folder):
    space = get_space("tiny")
    ds = build_datasets(DataConfig(root=str(image_folder), batch_size=4, workers=0, held_out=4),
                        space)
    torch.manual_seed(0)
    model = UnifiedSupernet(space)
    calib = calibration_loader(ds.train, 4, 2, seed=0)
    test = eval_loader(ds.test, 4)
    return space, model, calib, test


def _stats(model):
    return [t.clone() for bn in batch_norms(model) for t in (bn.running_mean, bn.running_var)]


def test_recalibration_changes_stats_and_is_deterministic(setup):
    space, model, calib, _ = setup
    arch = space.sample(np.random.default_rng(1))
    model.eval()
    for bn in batch_norms(model):
        bn.momentum = 0.3
    before = _stats(model)
    assert recalibrate_bn(model, arch, calib, batches=2) == 2
    first = _stats(model)
    assert any(not torch.equal(a, b) for a, b in zip(before, first))
    assert all(bn.momentum == 0.3 for bn in batch_norms(model))
    assert not model.training
    # a different path gives different statistics, the same path the same ones
    recalibrate_bn(model, space.sample(np.random.default_rng(2)), calib, batches=2)
    assert any(not torch.equal(a, b) for a, b in zip(first, _stats(model)))
    rng_state = torch.get_rng_state()
    recalibrate_bn(model, arch, calib, batches=2)
    assert all(torch.equal(a, b) for a, b in zip(first, _stats(model)))
    assert torch.equal(rng_state, torch.get_rng_state())


def test_recalibration_is_a_cumulative_average(setup):
    space, model, _, _ = setup
    arch = space.sample(np.random.default_rng(3))
    xs = [torch.randn(4, 3, 16, 16) for _ in range(3)]
    recalibrate_bn(model, arch, xs, batches=3)
    # the stem's first BN sees the same input for every path: its mean is the average of batch means
    bn = next(m for m in model.stem.modules() if isinstance(m, torch.nn.BatchNorm2d))
    conv = next(m for m in model.stem.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        means = torch.stack([conv(x).mean(dim=(0, 2, 3)) for x in xs]).mean(0)
    assert torch.allclose(bn.running_mean, means, atol=1e-5)
    assert int(bn.num_batches_tracked) == 3


def test_evaluate_and_sample_eval(setup):
    space, model, calib, test = setup
    arch = space.sample(np.random.default_rng(0))
    top1 = inherited_accuracy(model, arch, calib, test, calib_batches=1)
    assert 0.0 <= top1 <= 1.0
    assert evaluate_arch(model, arch, test) == top1  # BN stays recalibrated for arch
    assert evaluate_arch(model, arch, test, max_batches=1) in (0.0, 0.25, 0.5, 0.75, 1.0)
    res = sample_eval(model, space, 3, np.random.default_rng(5), calib, test, calib_batches=1,
                      eval_batches=1)
    assert len(res) == 3 and all(0.0 <= t <= 1.0 for _, t in res)
    rng = np.random.default_rng(5)
    assert [a for a, _ in res] == [space.sample(rng) for _ in range(3)]
    again = sample_eval(model, space, 0, rng, calib, test, calib_batches=1, eval_batches=1,
                        archs=[a for a, _ in res])
    assert again == res


def test_summarize():
    s = summarize([0.5, 0.7])
    assert s["n"] == 2 and s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1414, 1e-3)
    assert summarize([0.4])["std"] == 0.0
    assert summarize([])["n"] == 0
