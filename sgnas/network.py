"""Standalone networks of an architecture, and their FLOPs and parameter counts.

Counting conventions (the authors'):

* **FLOPs** are multiply-adds of convolutions and of the linear classifier, computed analytically
  from shapes. The two 1x1 convs of squeeze-and-excitation count (on a 1x1 map); BN, activations,
  pooling, the SE gate multiply and residual additions do not, nor do biases.
* **Params** are all trainable parameters: conv and linear weights, biases (SE convs, classifier)
  and BN affine weights and biases (running statistics are buffers, not parameters).

Both decompose as ``fixed(space) + sum_l table[l, config_index]``, which is what the cost model uses.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .blocks import (
    SE_REDUCTION,
    Head,
    MixConvBlock,
    Stem,
    check_config,
    head_in_channels,
    init_weights,
    make_activation,
)
from .registry import Registry
from .space import Architecture, LayerSpec, SearchSpace


class SubNetwork(nn.Module):
    """A deployable network: :class:`Stem`, one :class:`MixConvBlock` per layer, :class:`Head`."""

    def __init__(
        self,
        space: SearchSpace,
        arch: Architecture,
        se: bool = False,
        activation: str = "relu6",
        dropout: float = 0.0,
    ):
        super().__init__()
        space.validate(arch)
        make_activation(activation)
        self.space = space
        self.arch = arch
        self.se = se
        self.activation = activation
        self.stem = Stem(space, activation)
        self.blocks = nn.ModuleList(
            MixConvBlock(layer, config, se=se, activation=activation)
            for layer, config in zip(space.layers, arch.layers)
        )
        self.head = Head(space, activation, dropout)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def network_of(space: Any, arch: Any, **kwargs: Any) -> nn.Module:
    """Standalone network of ``arch`` built by the factory registered for its space's family
    (``kwargs`` go to it; the unified family's is :func:`build_network`)."""
    return NETWORKS.get(space.family)(space, space.validate(arch), **kwargs)


def build_network(
    space: SearchSpace,
    arch: Architecture,
    se: bool = False,
    activation: str = "relu6",
    dropout: float = 0.0,
    generator: torch.Generator | None = None,
) -> SubNetwork:
    """Standalone network of ``arch`` with freshly initialized weights (from ``generator``), in
    train mode."""
    net = SubNetwork(space, arch, se=se, activation=activation, dropout=dropout)
    init_weights(net, generator)
    return net


# ------------------------------------------------------------------------- analytic counts
def _conv(c_in: int, c_out: int, k: int, out_size: int, groups: int = 1) -> tuple[int, int]:
    """(multiply-adds, weight count) of a bias-free conv."""
    weights = c_out * (c_in // groups) * k * k
    return weights * out_size * out_size, weights


def se_mid_channels(channels: int) -> int:
    return max(1, channels // SE_REDUCTION)


def block_flops(layer: LayerSpec, config: Sequence[int], se: bool = False) -> int:
    """Multiply-adds of the deployed block of ``layer`` with ``config``."""
    config = check_config(config)
    c, mid, s_in, s_out = layer.c_in, layer.c_in * len(config), layer.in_size, layer.out_size
    total = _conv(c, mid, 1, s_in)[0]
    total += sum(_conv(c, c, k, s_out, groups=c)[0] for k in config)
    total += _conv(mid, layer.c_out, 1, s_out)[0]
    if se:
        total += 2 * mid * se_mid_channels(mid)
    return total


def block_params(layer: LayerSpec, config: Sequence[int], se: bool = False) -> int:
    """Trainable parameters of the deployed block of ``layer`` with ``config``."""
    config = check_config(config)
    c, mid = layer.c_in, layer.c_in * len(config)
    total = _conv(c, mid, 1, 1)[1] + 2 * mid
    total += sum(_conv(c, c, k, 1, groups=c)[1] + 2 * c for k in config)
    total += _conv(mid, layer.c_out, 1, 1)[1] + 2 * layer.c_out
    if se:
        r = se_mid_channels(mid)
        total += (mid * r + r) + (r * mid + mid)
    return total


def stem_flops(space: SearchSpace) -> int:
    c, s = space.stem_channels, space.stem_size
    return (
        _conv(3, c, 3, s)[0]
        + _conv(c, c, 3, s, groups=c)[0]
        + _conv(c, space.first_block_channels, 1, s)[0]
    )


def stem_params(space: SearchSpace) -> int:
    c, f = space.stem_channels, space.first_block_channels
    return (
        _conv(3, c, 3, 1)[1] + 2 * c
        + _conv(c, c, 3, 1, groups=c)[1] + 2 * c
        + _conv(c, f, 1, 1)[1] + 2 * f
    )


def head_flops(space: SearchSpace) -> int:
    h = space.head_channels
    return _conv(head_in_channels(space), h, 1, space.final_size)[0] + h * space.num_classes


def head_params(space: SearchSpace) -> int:
    h = space.head_channels
    return (
        _conv(head_in_channels(space), h, 1, 1)[1] + 2 * h
        + h * space.num_classes + space.num_classes
    )


def fixed_flops(space: SearchSpace) -> int:
    """Multiply-adds of the stem and the head (the parts every architecture shares)."""
    return stem_flops(space) + head_flops(space)


def fixed_params(space: SearchSpace) -> int:
    """Parameters of the stem and the head."""
    return stem_params(space) + head_params(space)


def layer_flops_table(space: SearchSpace, se: bool = False) -> np.ndarray:
    """Multiply-adds per layer and configuration, shape ``(L, len(space.configs))``, int64."""
    return np.array(
        [[block_flops(layer, c, se) for c in space.configs] for layer in space.layers],
        dtype=np.int64,
    ).reshape(space.num_layers, len(space.configs))


def layer_params_table(space: SearchSpace, se: bool = False) -> np.ndarray:
    """Parameters per layer and configuration, shape ``(L, len(space.configs))``, int64."""
    return np.array(
        [[block_params(layer, c, se) for c in space.configs] for layer in space.layers],
        dtype=np.int64,
    ).reshape(space.num_layers, len(space.configs))


def count_macs(space: SearchSpace, arch: Architecture, se: bool = False) -> int:
    """Multiply-adds of the network of ``arch`` (convs + linear; SE convs included when ``se``)."""
    space.validate(arch)
    return fixed_flops(space) + sum(
        block_flops(layer, config, se) for layer, config in zip(space.layers, arch.layers)
    )


def num_params(
    space: SearchSpace, arch: Architecture, se: bool = False, activation: str = "relu6"
) -> int:
    """Trainable parameters of the network of ``arch``, BN affine included.

    ``activation`` is checked but changes nothing: ReLU6 and h-swish have no parameters.
    """
    space.validate(arch)
    make_activation(activation)
    return fixed_params(space) + sum(
        block_params(layer, config, se) for layer, config in zip(space.layers, arch.layers)
    )


def count_flops(space: SearchSpace, arch: Architecture, se: bool = False) -> float:
    """FLOPs of the network of ``arch`` in millions of multiply-adds (the unit of every space's
    ``count_flops`` and of the ``flops`` cost); :func:`count_macs` is the exact integer."""
    return count_macs(space, arch, se) / 1e6


def count_params(
    space: SearchSpace, arch: Architecture, se: bool = False, activation: str = "relu6"
) -> float:
    """Parameters of the network of ``arch`` in millions (the unit of every space's
    ``count_params`` and of the ``params`` cost); :func:`num_params` is the exact integer."""
    return num_params(space, arch, se, activation) / 1e6


#: Standalone-network factories ``(space, arch, **kwargs) -> nn.Module`` by space family
#: (:attr:`sgnas.space_protocol.Space.family`), registered beside the space (:mod:`sgnas.spaces`).
NETWORKS: Registry[Callable[..., nn.Module]] = Registry("network", discover="sgnas.spaces")
NETWORKS.register("unified", build_network)
