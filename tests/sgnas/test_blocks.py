"""Blocks: deployed MixConv block, unified block semantics, BN over channel ranges, P(e)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sgnas.blocks import (
    Head,
    MixConvBlock,
    Stem,
    UnifiedBlock,
    batch_norm_parts,
    build_head,
    build_layer_block,
    build_stem,
    check_config,
    expansion_distribution,
    make_activation,
)
from sgnas.errors import ArchitectureError, SgnasError
from sgnas.space import SKIP_INDEX, LayerSpec, get_space


def test_mixconv_block_shapes_and_residual():
    space = get_space("tiny")
    x = torch.randn(2, 8, 16, 16)
    down = space.layers[0]  # 8 -> 16, stride 2
    block = MixConvBlock(down, (7, 3, 5)).eval()
    assert block.config == (3, 5, 7)
    assert [m.conv.kernel_size[0] for m in block.dw] == [3, 5, 7]
    assert block(x).shape == (2, 16, 8, 8)
    assert not block.residual

    same = space.layers[1]  # 16 -> 16, stride 1
    block = MixConvBlock(same, (3, 3), se=True, activation="hswish").eval()
    assert block.residual
    h = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        y = block(h)
        # zeroing the projection leaves only the residual
        block.project.bn.weight.zero_()
        block.project.bn.bias.zero_()
        assert torch.equal(block(h), h)
    assert y.shape == h.shape
    assert isinstance(block.act, nn.Hardswish)


def test_built_blocks_are_in_eval_mode_and_seeded():
    space = get_space("tiny")
    a = build_layer_block(space.layers[2], (5, 7), generator=torch.Generator().manual_seed(1))
    b = build_layer_block(space.layers[2], (5, 7), generator=torch.Generator().manual_seed(1))
    assert not a.training
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    x = torch.randn(1, 3, 16, 16)
    assert build_stem(space)(x).shape == (1, space.first_block_channels, 16, 16)
    h = torch.randn(1, 24, space.final_size, space.final_size)
    assert build_head(space)(h).shape == (1, space.num_classes)
    assert isinstance(Stem(space, "hswish").act, nn.Hardswish)
    assert isinstance(Head(space).act, nn.ReLU6)


def test_bad_activation_and_config():
    with pytest.raises(SgnasError, match="activation"):
        make_activation("gelu")
    with pytest.raises(ArchitectureError):
        check_config(())
    with pytest.raises(ArchitectureError, match="odd"):
        check_config((3, 4))
    with pytest.raises(ArchitectureError):
        check_config(("a",))


def test_expansion_distribution_matches_enumeration():
    q = torch.tensor([0.9, 0.2, 0.5, 1.0, 0.0, 0.35], dtype=torch.float64)
    got = expansion_distribution(q)
    want = torch.zeros(7, dtype=torch.float64)
    for bits in itertools.product((0, 1), repeat=6):
        p = 1.0
        for b, qi in zip(bits, q.tolist()):
            p *= qi if b else 1 - qi
        want[sum(bits)] += p
    assert torch.allclose(got, want)
    assert got.sum().item() == pytest.approx(1.0)


def test_batch_norm_parts_matches_separate_modules(randomize_bn):
    torch.manual_seed(0)
    a, b = nn.BatchNorm2d(6), nn.BatchNorm2d(4)
    randomize_bn(a, 1), randomize_bn(b, 2)
    ref_a, ref_b = nn.BatchNorm2d(6), nn.BatchNorm2d(4)
    ref_a.load_state_dict(a.state_dict()), ref_b.load_state_dict(b.state_dict())
    x = torch.randn(3, 5, 4, 4)
    # channels: a[1:3], b[0:3]
    out = batch_norm_parts(x, [(a, 1, 3), (b, 0, 3)], training=True)
    pad_a = torch.cat([torch.randn(3, 1, 4, 4), x[:, :2], torch.randn(3, 3, 4, 4)], 1)
    pad_b = torch.cat([x[:, 2:], torch.randn(3, 1, 4, 4)], 1)
    want = torch.cat([ref_a(pad_a)[:, 1:3], ref_b(pad_b)[:, :3]], 1)
    assert torch.allclose(out, want, atol=1e-6)
    assert torch.allclose(a.running_mean[1:3], ref_a.running_mean[1:3])
    assert torch.allclose(b.running_var[:3], ref_b.running_var[:3])
    # untouched channels keep their statistics
    assert not torch.allclose(a.running_mean[[0, 3, 4, 5]], ref_a.running_mean[[0, 3, 4, 5]])
    assert int(a.num_batches_tracked) == 1 and int(b.num_batches_tracked) == 1


def _naive_unified(block: UnifiedBlock, x: torch.Tensor, choices) -> torch.Tensor:
    """Reference semantics: every channel expanded, skipped sub-blocks output zeros."""
    c = block.layer.c_in
    e = sum(int(ch) != SKIP_INDEX for ch in choices)
    h = block.act(block.expand(x))
    outs = []
    for i, ch in enumerate(choices):
        hi = h[:, i * c : (i + 1) * c]
        if ch == SKIP_INDEX:
            size = block.layer.out_size
            outs.append(hi.new_zeros(hi.shape[0], c, size, size))
        else:
            outs.append(block.act(block.dw[i][int(ch)](hi)))
    y = block.project_bn[e - 2](block.project(torch.cat(outs, 1)))
    return y + x if block.layer.residual else y


@pytest.mark.parametrize("train", [False, True])
def test_unified_block_single_path_equals_zeroed_skips(train, randomize_bn):
    space = get_space("tiny")
    torch.manual_seed(0)
    for layer, choices in [
        (space.layers[0], (0, 2, 3, 3, 3, 3)),
        (space.layers[1], (1, 3, 0, 3, 2, 2)),  # skips in between
        (space.layers[3], (2, 2, 2, 2, 2, 2)),
    ]:
        block = randomize_bn(UnifiedBlock(layer)).train(train)
        x = torch.randn(2, layer.c_in, layer.in_size, layer.in_size)
        got = block(x, choices)
        want = _naive_unified(block, x, choices)
        assert torch.allclose(got, want, atol=1e-5), layer


def test_unified_block_updates_bn_of_active_channels_only():
    layer = get_space("tiny").layers[1]
    block = UnifiedBlock(layer).train()
    before = block.expand.bn.running_mean.clone()
    block(torch.randn(2, 16, 8, 8), (0, 3, 1, 3, 3, 3))  # sub-blocks 0 and 2
    changed = (block.expand.bn.running_mean != before).view(6, 16).any(dim=1)
    assert changed.tolist() == [True, False, True, False, False, False]
    assert int(block.project_bn[0].num_batches_tracked) == 1  # e = 2
    assert int(block.project_bn[1].num_batches_tracked) == 0


def test_unified_block_rejects_bad_expansion():
    block = UnifiedBlock(get_space("tiny").layers[1])
    x = torch.randn(1, 16, 8, 8)
    with pytest.raises(ArchitectureError, match="active sub-blocks"):
        block(x, (0, 3, 3, 3, 3, 3))
    with pytest.raises(ArchitectureError, match="sub-block choices"):
        block(x, (0, 0))
    with pytest.raises(SgnasError, match="shape"):
        block.forward_weighted(x, torch.zeros(6, 3))


def test_unified_block_without_shadow_bn_has_one_projection_bn():
    block = UnifiedBlock(get_space("tiny").layers[1], shadow_bn=False).eval()
    assert len(block.project_bn) == 1
    x = torch.randn(1, 16, 8, 8)
    assert block(x, (0, 1, 2, 3, 3, 3)).shape == x.shape
    probs = torch.full((6, 4), 0.25)
    assert torch.isfinite(block.forward_weighted(x, probs)).all()


def test_mixconv_block_equals_manual_conv_chain(randomize_bn):
    layer = LayerSpec(4, 6, 2, 9)
    block = randomize_bn(MixConvBlock(layer, (3, 5))).eval()
    x = torch.randn(1, 4, 9, 9)
    h = F.relu6(block.expand(x))
    g0 = block.dw[0].bn(F.conv2d(h[:, :4], block.dw[0].conv.weight, None, 2, 1, 1, 4))
    g1 = block.dw[1].bn(F.conv2d(h[:, 4:], block.dw[1].conv.weight, None, 2, 2, 1, 4))
    want = block.project(F.relu6(torch.cat([g0, g1], 1)))
    assert block(x).shape == (1, 6, 5, 5)
    assert torch.allclose(block(x), want, atol=1e-6)
