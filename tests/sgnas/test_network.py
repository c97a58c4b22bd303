"""Standalone networks and their analytic FLOPs/params against independent counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sgnas.errors import ArchitectureError, SgnasError
from sgnas.network import (
    SubNetwork,
    build_network,
    count_macs,
    num_params,
    fixed_flops,
    fixed_params,
    layer_flops_table,
    layer_params_table,
)
from sgnas.space import Architecture, get_space


def hooked_flops(model: nn.Module, input_size: int) -> int:
    """Multiply-adds of every Conv2d and Linear, measured by forward hooks on a batch of 1."""
    total = 0

    def conv_hook(m: nn.Conv2d, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        total += out.numel() * (m.in_channels // m.groups) * k

    def linear_hook(m: nn.Linear, inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, input_size, input_size))
    for h in handles:
        h.remove()
    return total


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("se", [False, True])
def test_counts_match_independent_count_tiny(se):
    space = get_space("tiny")
    rng = np.random.default_rng(0)
    for _ in range(4):
        arch = space.sample(rng)
        net = build_network(space, arch, se=se, activation="hswish" if se else "relu6")
        assert count_macs(space, arch, se=se) == hooked_flops(net, space.input_size)
        assert num_params(space, arch, se=se) == numel(net)


def test_counts_match_independent_count_imagenet():
    space = get_space("imagenet")
    arch = space.sample(np.random.default_rng(1))
    net = build_network(space, arch, se=True)
    assert count_macs(space, arch, se=True) == hooked_flops(net, space.input_size)
    assert num_params(space, arch, se=True) == numel(net)


@pytest.mark.parametrize("name", ["tiny", "imagenet"])
@pytest.mark.parametrize("se", [False, True])
def test_tables_decompose_counts(name, se):
    space = get_space(name)
    flops, params = layer_flops_table(space, se), layer_params_table(space, se)
    assert flops.shape == params.shape == (space.num_layers, 80)
    assert flops.dtype == np.int64 and (flops > 0).all() and (params > 0).all()
    rng = np.random.default_rng(2)
    rows = np.arange(space.num_layers)
    for _ in range(5):
        arch = space.sample(rng)
        idx = [space.config_index[c] for c in arch.layers]
        assert count_macs(space, arch, se) == fixed_flops(space) + flops[rows, idx].sum()
        assert num_params(space, arch, se) == fixed_params(space) + params[rows, idx].sum()


def test_imagenet_reference_values():
    space = get_space("imagenet")
    mbv2_like = Architecture("imagenet", ((3,) * 6,) * 19)
    # stem 3x3 conv at 112: 3*32*9*112^2; dw 3x3: 32*9*112^2; pw: 32*16*112^2
    stem = 3 * 32 * 9 * 112**2 + 32 * 9 * 112**2 + 32 * 16 * 112**2
    head = 320 * 1280 * 7 * 7 + 1280 * 1000
    assert fixed_flops(space) == stem + head
    # layer 0: 16 -> 32, stride 2, 112 -> 56, e = 6 with k3
    l0 = 16 * 96 * 112**2 + 6 * 16 * 9 * 56**2 + 96 * 32 * 56**2
    assert layer_flops_table(space)[0, space.config_index[(3,) * 6]] == l0
    assert 400e6 < count_macs(space, mbv2_like) < 500e6


def test_build_network():
    space = get_space("tiny")
    arch = space.sample(np.random.default_rng(3))
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a = build_network(space, arch, dropout=0.2, generator=g1)
    b = build_network(space, arch, dropout=0.2, generator=g2)
    assert isinstance(a, SubNetwork) and a.space is space and a.arch == arch and a.training
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert [blk.config for blk in a.blocks] == list(arch.layers)
    assert a.head.dropout.p == 0.2
    out = a.eval()(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, space.num_classes)


def test_build_network_rejects_bad_input():
    space = get_space("tiny")
    with pytest.raises(ArchitectureError):
        build_network(space, Architecture("tiny", ((3,),) * 4))
    with pytest.raises(ArchitectureError):
        count_macs(space, Architecture("tiny", ((3, 3),) * 3))
    with pytest.raises(SgnasError, match="activation"):
        build_network(space, space.sample(np.random.default_rng(0)), activation="gelu")
