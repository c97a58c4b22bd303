"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def _randomize_bn(module: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so eval outputs depend on every BN."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return module


@pytest.fixture(scope="session")
def randomize_bn():
    """``randomize_bn(module, seed=0) -> module`` with random BN statistics and affine parameters."""
    return _randomize_bn
