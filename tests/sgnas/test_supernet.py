"""Unified supernet: single path, weighted forward, forced sampling, export, parameter counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgnas.errors import ArchitectureError, SgnasError
from sgnas.network import SubNetwork, block_params
from sgnas.space import SKIP_INDEX, Architecture, get_space
from sgnas.supernet import (
    FAIRNAS_CANDIDATES,
    GREEDYNAS_CANDIDATES,
    UnifiedSupernet,
    candidate_supernet_params,
    param_ratios,
    supernet_params,
)


@pytest.fixture(scope="module")
def space():
    return get_space("tiny")


@pytest.fixture(scope="module")
def supernet(space, randomize_bn):
    net = UnifiedSupernet(space, generator=torch.Generator().manual_seed(0))
    return randomize_bn(net).eval()


@pytest.fixture(scope="module")
def free_supernet(space, randomize_bn):
    net = UnifiedSupernet(space, forced_sampling=False, generator=torch.Generator().manual_seed(1))
    return randomize_bn(net, 1).eval()


def _x(space, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, space.input_size, space.input_size, generator=g)


def test_forward_shapes_and_inputs(space, supernet):
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    x = _x(space)
    with torch.no_grad():
        y = supernet(x, arch)
        y_np = supernet(x, space.choices(arch))
        y_t = supernet(x, torch.as_tensor(space.choices(arch)))
    assert y.shape == (2, space.num_classes)
    assert torch.equal(y, y_np) and torch.equal(y, y_t)


def test_forced_sampling_rejects_skip_before_kernel(space, supernet, free_supernet):
    choices = np.array([[0, 1, 3, 3, 3, 3]] * space.num_layers)
    choices[2] = [0, SKIP_INDEX, 1, 3, 3, 3]
    x = _x(space)
    with pytest.raises(ArchitectureError, match="layer 2: forced sampling"):
        supernet(x, choices)
    with torch.no_grad():
        assert free_supernet(x, choices).shape == (2, space.num_classes)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 6), dtype=np.int64), "shape"),
        (np.full((4, 6), 0.5), "integers"),
        (np.full((4, 6), 4), "0..3"),
        (np.array([[0, 3, 3, 3, 3, 3]] * 4), "active sub-blocks"),
        (Architecture("tiny", ((3,),) * 4), "sub-blocks"),
        (Architecture("imagenet", ((3, 3),) * 19), "space"),
    ],
)
def test_bad_paths_are_rejected(space, supernet, bad, match):
    with pytest.raises(ArchitectureError, match=match):
        supernet(_x(space), bad)


@pytest.mark.parametrize("train", [False, True])
def test_one_hot_weighted_equals_single_path(space, supernet, train):
    rng = np.random.default_rng(1)
    x = _x(space, seed=1)
    supernet.train(train)
    try:
        for _ in range(3):
            arch = space.sample(rng)
            probs = torch.as_tensor(space.one_hot(arch))
            state = {k: v.clone() for k, v in supernet.state_dict().items()}
            single = supernet(x, arch)
            supernet.load_state_dict(state)  # undo running-stat updates in train mode
            weighted = supernet.forward_weighted(x, probs)
            supernet.load_state_dict(state)
            assert torch.allclose(weighted, single, atol=1e-5), str(arch)
    finally:
        supernet.eval()


def test_one_hot_weighted_equals_single_path_without_forced_sampling(space, free_supernet):
    rng = np.random.default_rng(2)
    x = _x(space, seed=2)
    for _ in range(3):
        choices = space.sample_choices(rng, forced_sampling=False)
        probs = torch.as_tensor(np.eye(4, dtype=np.float32)[choices])
        with torch.no_grad():
            single = free_supernet(x, choices)
            weighted = free_supernet.forward_weighted(x, probs)
        assert torch.allclose(weighted, single, atol=1e-5)


def test_weighted_forward_is_differentiable_in_probs(space, supernet):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(space.num_layers, space.max_expansion, 4, generator=g, requires_grad=True)
    out = supernet.forward_weighted(_x(space), logits.softmax(-1))
    out.logsumexp(1).sum().backward()
    grad = logits.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert (grad.abs().sum(dim=(1, 2)) > 0).all()  # every layer gets a gradient
    assert (grad[..., SKIP_INDEX].abs() > 0).any()  # the skip logits too (via e and BN mixing)


def test_weighted_forward_checks_shape(space, supernet):
    with pytest.raises(SgnasError, match="probs"):
        supernet.forward_weighted(_x(space), torch.zeros(space.num_layers, 6, 3))
    with pytest.raises(SgnasError, match="probs"):
        supernet.forward_weighted(_x(space), np.zeros((space.num_layers, 6, 4)))


def test_shadow_bn_is_selected_by_expansion(space, randomize_bn):
    net = randomize_bn(UnifiedSupernet(space, generator=torch.Generator().manual_seed(4))).eval()
    x = _x(space)
    e3 = Architecture("tiny", ((3, 5, 7), (3, 3), (3, 3), (3, 3)))
    e2 = Architecture("tiny", ((3, 5), (3, 3), (3, 3), (3, 3)))
    with torch.no_grad():
        before3, before2 = net(x, e3), net(x, e2)
        net.layers[0].project_bn[1].bias.add_(1.0)  # BN of e = 3 in layer 0
        assert not torch.allclose(net(x, e3), before3)
        assert torch.equal(net(x, e2), before2)


def test_export_subnet_reproduces_single_path(space, supernet):
    rng = np.random.default_rng(5)
    x = _x(space, seed=5)
    for _ in range(3):
        arch = space.sample(rng)
        net = supernet.export_subnet(arch)
        assert isinstance(net, SubNetwork) and net.arch == arch and not net.training
        with torch.no_grad():
            assert torch.allclose(net(x), supernet(x, arch), atol=1e-5)
        n_params = sum(p.numel() for p in net.parameters())
        assert n_params < sum(p.numel() for p in supernet.parameters())


def test_export_subnet_from_free_positions(space, free_supernet):
    rng = np.random.default_rng(6)
    x = _x(space, seed=6)
    choices = space.sample_choices(rng, forced_sampling=False)
    choices[0] = [2, 3, 0, 3, 1, 3]  # kernels 7, 3, 5 at scattered positions
    net = free_supernet.export_subnet(choices)
    assert net.arch == space.arch_from_choices(choices)
    assert net.blocks[0].config == (3, 5, 7)
    with torch.no_grad():
        assert torch.allclose(net(x), free_supernet(x, choices), atol=1e-5)


def test_export_subnet_with_se_and_hswish(space, supernet):
    arch = space.sample(np.random.default_rng(7))
    net = supernet.export_subnet(arch, se=True, activation="hswish",
                                 generator=torch.Generator().manual_seed(0))
    assert net.se and net.activation == "hswish"
    e = len(arch.layers[1])
    rows = supernet.layers[1].expand.conv.weight[: e * space.layers[1].c_in]
    assert torch.equal(net.blocks[1].expand.conv.weight, rows)  # FS placement: first e groups
    assert net.blocks[1].se.reduce.out_channels == e * space.layers[1].c_in // 4
    with torch.no_grad():
        assert net(_x(space)).shape == (2, space.num_classes)


@pytest.mark.parametrize("name", ["tiny", "imagenet"])
@pytest.mark.parametrize("shadow_bn", [True, False])
def test_supernet_params_match_module(name, shadow_bn):
    space = get_space(name)
    net = UnifiedSupernet(space, shadow_bn=shadow_bn)
    assert supernet_params(space, shadow_bn) == sum(p.numel() for p in net.parameters())


def test_candidate_supernet_params_match_modules(space):
    from sgnas.blocks import Head, MixConvBlock, Stem

    modules = [Stem(space), Head(space)]
    for layer in space.layers:
        modules += [MixConvBlock(layer, (k,) * e, se=se) for k, e, se in GREEDYNAS_CANDIDATES]
    want = sum(p.numel() for m in modules for p in m.parameters())
    assert candidate_supernet_params(space, GREEDYNAS_CANDIDATES) == want
    assert len(GREEDYNAS_CANDIDATES) + 1 == 13  # + skip
    assert len(FAIRNAS_CANDIDATES) == 6
    assert block_params(space.layers[0], (3, 3, 3), se=True) > block_params(space.layers[0], (3, 3, 3))


def test_param_ratios_imagenet():
    r = param_ratios()
    assert r["space"] == "imagenet"
    assert r["unified_params"] == supernet_params(get_space("imagenet"))
    assert r["ratio_unified_greedynas13"] == pytest.approx(
        r["unified_params"] / r["greedynas13_params"])
    # the unified supernet is several times smaller than both conventional ones
    assert 0 < r["ratio_unified_greedynas13"] < r["ratio_unified_fairnas6"] < 1
    assert r["ratio_unified_greedynas13_layers"] < r["ratio_unified_greedynas13"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_single_path_and_export_on_cuda(space, free_supernet):
    net = free_supernet.to("cuda")
    try:
        choices = space.sample_choices(np.random.default_rng(8), forced_sampling=False)
        x = _x(space).cuda()
        with torch.no_grad():
            single = net(x, choices)
            probs = torch.eye(4, device="cuda")[torch.as_tensor(choices, device="cuda")]
            weighted = net.forward_weighted(x, probs)
            deployed = net.export_subnet(choices)(x)
        assert next(net.export_subnet(choices).parameters()).is_cuda
        assert torch.allclose(weighted, single, rtol=1e-2, atol=1e-3)  # TF32 convs
        assert torch.allclose(deployed, single, rtol=1e-2, atol=1e-3)
    finally:
        net.to("cpu")
