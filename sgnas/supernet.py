"""The unified supernet: single-path and probability-weighted forwards, export of sub-networks."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .blocks import Head, Stem, UnifiedBlock, init_weights
from .errors import ArchitectureError, SgnasError
from .network import SubNetwork, block_params, fixed_params
from .registry import Registry
from .space import CHOICES, SKIP_INDEX, Architecture, LayerSpec, SearchSpace


class UnifiedSupernet(nn.Module):
    """Weight-sharing supernet of a unified space: :class:`Stem`, one :class:`UnifiedBlock` per
    layer, :class:`Head` (ReLU6 throughout).

    ``forced_sampling`` (FS, default on) restricts single paths to those whose skips sit at the
    highest sub-block indices; ``shadow_bn`` keeps one BN after the projection per expansion rate.
    Initial weights are drawn from ``generator`` (torch's default generator when ``None``).
    """

    def __init__(
        self,
        space: SearchSpace,
        forced_sampling: bool = True,
        shadow_bn: bool = True,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.space = space
        self.forced_sampling = forced_sampling
        self.shadow_bn = shadow_bn
        self.stem = Stem(space)
        self.layers = nn.ModuleList(
            UnifiedBlock(layer, space.max_expansion, space.kernels, shadow_bn, space.min_expansion)
            for layer in space.layers
        )
        self.head = Head(space, dropout=dropout)
        init_weights(self, generator)

    # ------------------------------------------------------------------ path handling
    def resolve_choices(self, arch: Architecture | np.ndarray | torch.Tensor | Any) -> np.ndarray:
        """Per-sub-block choice indices ``(L, max_expansion)`` of an :class:`Architecture` (FS
        placement: sub-block i gets the i-th sorted kernel) or of a choice array, checked."""
        space = self.space
        if isinstance(arch, Architecture):
            return space.choices(arch)
        if isinstance(arch, torch.Tensor):
            arch = arch.detach().cpu().numpy()
        try:
            arr = np.asarray(arch)
        except (TypeError, ValueError) as exc:
            raise ArchitectureError(f"cannot read sub-block choices ({exc})") from None
        shape = (space.num_layers, space.max_expansion)
        if arr.shape != shape:
            raise ArchitectureError(f"choices have shape {arr.shape}, expected {shape}")
        if arr.dtype.kind not in "iu":
            raise ArchitectureError(f"choices must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.min() < 0 or arr.max() >= len(CHOICES):
            raise ArchitectureError(f"choice indices must be in 0..{len(CHOICES) - 1}")
        for layer, row in enumerate(arr):
            skip = row == SKIP_INDEX
            e = int((~skip).sum())
            if not space.min_expansion <= e <= space.max_expansion:
                raise ArchitectureError(
                    f"layer {layer}: {e} active sub-blocks, must be {space.min_expansion} to "
                    f"{space.max_expansion}"
                )
            if self.forced_sampling and skip[:e].any():
                raise ArchitectureError(
                    f"layer {layer}: forced sampling needs skips at the highest sub-block indices, "
                    f"got choices {row.tolist()}"
                )
        return arr

    # ------------------------------------------------------------------------ forward
    def forward(
        self, x: torch.Tensor, arch: Architecture | np.ndarray | torch.Tensor
    ) -> torch.Tensor:
        """Single-path forward of ``arch`` (an :class:`Architecture` or a choice array)."""
        choices = self.resolve_choices(arch)
        x = self.stem(x)
        for block, row in zip(self.layers, choices.tolist()):
            x = block(x, row)
        return self.head(x)

    def forward_weighted(self, x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Forward with every sub-block's output weighted by ``probs`` ``(L, max_expansion, 4)``
        (columns k3, k5, k7, skip); differentiable in ``probs``. One-hot ``probs`` give the
        single-path output."""
        shape = (self.space.num_layers, self.space.max_expansion, len(CHOICES))
        if not isinstance(probs, torch.Tensor) or tuple(probs.shape) != shape:
            got = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
            raise SgnasError(f"probs must be a tensor of shape {shape}, got {got}")
        x = self.stem(x)
        for block, p in zip(self.layers, probs.unbind(0)):
            x = block.forward_weighted(x, p)
        return self.head(x)

    # ------------------------------------------------------------------------- export
    def export_subnet(
        self,
        arch: Architecture | np.ndarray | torch.Tensor,
        se: bool = False,
        activation: str = "relu6",
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> SubNetwork:
        """Standalone :class:`~sgnas.network.SubNetwork` of ``arch`` with the supernet's weights.

        With ``se=False`` and ``activation="relu6"`` its eval-mode outputs equal the supernet's
        single-path eval outputs. SE layers (``se=True``) have no supernet counterpart and keep a
        fresh initialization (drawn from ``generator``); ``hswish`` changes the function. The result
        is in the supernet's train/eval mode and on its device.
        """
        choices = self.resolve_choices(arch)
        net = SubNetwork(
            self.space,
            self.space.arch_from_choices(choices),
            se=se,
            activation=activation,
            dropout=dropout,
        )
        init_weights(net, generator)
        param = next(self.parameters())
        net.to(device=param.device, dtype=param.dtype)
        net.stem.load_state_dict(self.stem.state_dict())
        net.head.load_state_dict(self.head.state_dict())
        for block, deployed, row in zip(self.layers, net.blocks, choices.tolist()):
            block.copy_to(deployed, row)
        return net.train(self.training)


# ---------------------------------------------------------------------- parameter counts
def unified_block_params(
    layer: LayerSpec,
    max_expansion: int = 6,
    kernels: Sequence[int] = (3, 5, 7),
    shadow_bn: bool = True,
    min_expansion: int = 2,
) -> int:
    """Trainable parameters of one :class:`~sgnas.blocks.UnifiedBlock` (analytic)."""
    c, m, o = layer.c_in, max_expansion, layer.c_out
    expand = c * m * c + 2 * m * c
    dw = m * sum(c * k * k + 2 * c for k in kernels)
    n_bn = max_expansion - min_expansion + 1 if shadow_bn else 1
    project = m * c * o + n_bn * 2 * o
    return expand + dw + project


def supernet_params(space: SearchSpace, shadow_bn: bool = True) -> int:
    """Trainable parameters of :class:`UnifiedSupernet` on ``space`` (analytic)."""
    return fixed_params(space) + sum(
        unified_block_params(layer, space.max_expansion, space.kernels, shadow_bn,
                             space.min_expansion)
        for layer in space.layers
    )


#: Candidate blocks per layer of conventional single-path supernets: (kernel, expansion, SE).
GREEDYNAS_CANDIDATES = tuple((k, e, se) for k in (3, 5, 7) for e in (3, 6) for se in (False, True))
FAIRNAS_CANDIDATES = tuple((k, e, False) for k in (3, 5, 7) for e in (3, 6))


def candidate_supernet_params(
    space: SearchSpace, candidates: Sequence[tuple[int, int, bool]]
) -> int:
    """Parameters of a single-path supernet with one independent MBConv per candidate
    ``(kernel, expansion, se)`` in every layer, on the macro of ``space`` (same stem and head)."""
    return fixed_params(space) + sum(
        block_params(layer, (k,) * e, se) for layer in space.layers for k, e, se in candidates
    )


def param_ratios(space: SearchSpace | None = None) -> dict:
    """Parameter count of the unified supernet against conventional single-path supernets.

    Counting convention: trainable parameters (conv/linear weights, biases, BN affine; no running
    statistics), analytic, with the same stem and head for all supernets. The unified supernet
    counts one expand conv, 6 x (k3, k5, k7) depthwise convs with a BN each, one projection and 5
    shadow BNs per layer. Conventional supernets hold one independent MBConv (expand, depthwise,
    project, BNs; SE = two biased 1x1 convs squeezing to 1/4) per candidate: GreedyNAS-style 13
    candidates (k in {3,5,7} x e in {3,6} x SE in {no,yes} + skip, which has no parameters) and
    FairNAS/ProxylessNAS-style 6 (k in {3,5,7} x e in {3,6}). ``*_layers`` entries count only the
    searchable layers (without stem and head). Defaults to the ImageNet space.
    """
    from .space import get_space

    space = space or get_space("imagenet")
    fixed = fixed_params(space)
    unified = supernet_params(space)
    greedy = candidate_supernet_params(space, GREEDYNAS_CANDIDATES)
    fair = candidate_supernet_params(space, FAIRNAS_CANDIDATES)
    return {
        "space": space.name,
        "fixed_params": fixed,
        "unified_params": unified,
        "greedynas13_params": greedy,
        "fairnas6_params": fair,
        "ratio_unified_greedynas13": unified / greedy,
        "ratio_unified_fairnas6": unified / fair,
        "ratio_unified_greedynas13_layers": (unified - fixed) / (greedy - fixed),
        "ratio_unified_fairnas6_layers": (unified - fixed) / (fair - fixed),
    }


#: Supernet factories ``(space, forced_sampling) -> nn.Module`` by space family
#: (:attr:`sgnas.space_protocol.Space.family`); a family registers its factory beside its space
#: (:mod:`sgnas.spaces`, imported on the first lookup of an unknown family).
SUPERNETS: Registry[Callable[[Any, bool], nn.Module]] = Registry("supernet", discover="sgnas.spaces")


def _unified_supernet(space: Any, forced_sampling: bool = True) -> nn.Module:
    return UnifiedSupernet(space, forced_sampling=forced_sampling)


SUPERNETS.register("unified", _unified_supernet)


def new_supernet(space: Any, forced_sampling: bool = True) -> nn.Module:
    """A freshly initialized supernet of ``space``: the factory registered for its family (an
    unknown family is an error, never a unified supernet built by default)."""
    return SUPERNETS.get(space.family)(space, forced_sampling)
