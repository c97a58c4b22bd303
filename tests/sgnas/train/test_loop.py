"""Pieces shared by the training loops."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sgnas.errors import SgnasError
from sgnas.evaluation.distributed import DistInfo
from sgnas.train.loop import mix_seed, param_groups, steps_per_epoch, to_cpu, wrap_ddp


def test_mix_seed_is_deterministic_63_bit_and_order_sensitive():
    assert mix_seed(0, 1, 2) == mix_seed(0, 1, 2)
    assert mix_seed(0, 1, 2) != mix_seed(0, 2, 1)
    assert 0 <= mix_seed(7, 3) < 2 ** 63


def test_param_groups_spare_bn_and_biases():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert {p.ndim for p in decay["params"]} == {2, 4}
    assert len(no_decay["params"]) == 4 and all(p.ndim == 1 for p in no_decay["params"])


def test_steps_per_epoch_caps_and_refuses_an_empty_epoch():
    data = list(range(10))
    assert steps_per_epoch(data, 3, DistInfo()) == 3
    assert steps_per_epoch(data, 3, DistInfo(), max_steps=2) == 2
    with pytest.raises(SgnasError, match="no full batch of 11 per process on 1 process"):
        steps_per_epoch(data, 11, DistInfo())


def test_wrap_ddp_is_the_identity_on_one_process():
    model = nn.Linear(2, 2)
    assert wrap_ddp(model, torch.device("cpu"), DistInfo(), find_unused_parameters=True) is model


def test_to_cpu_copies_nested_tensors():
    t = torch.ones(2)
    out = to_cpu({"a": [t, 3], "b": {"c": t}})
    assert out["a"][1] == 3 and torch.equal(out["b"]["c"], t)
    out["a"][0].add_(1)
    assert torch.equal(t, torch.ones(2))
