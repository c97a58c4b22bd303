"""Building blocks: the unified block of the supernet, its deployed MixConv counterpart, stem and head.

Channel layout shared by both blocks, so that weights copy one to one:

* ``UnifiedBlock`` (supernet layer): 1x1 conv C_in -> max_expansion*C_in, one BN over all those
  channels, ReLU6; the channels are split into ``max_expansion`` groups of C_in; sub-block i holds a
  depthwise conv *and its own BN* for every kernel (one ``ConvBN`` per (sub-block, kernel)); the
  active groups are concatenated, projected by a 1x1 conv to C_out and normalized by the *shadow BN*
  of the layer's expansion rate e (one BN per e in min..max expansion); residual when the layer
  keeps shape. A skipped sub-block outputs zeros, so the single-path forward computes only the
  active groups and slices the input channels of the projection.
* ``MixConvBlock`` (deployed block of one configuration): 1x1 expand C_in -> e*C_in + BN + act, one
  depthwise ``ConvBN`` per group with the sorted kernels of the configuration, act, optional
  squeeze-and-excitation, 1x1 project + BN, residual.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ArchitectureError, SgnasError
from .space import CHOICES, SKIP_INDEX, LayerSpec, SearchSpace

ACTIVATIONS: tuple[str, ...] = ("relu6", "hswish")
#: Squeeze-and-excitation reduction: the e*C_in mid channels are squeezed to e*C_in // 4.
SE_REDUCTION = 4


def make_activation(name: str) -> nn.Module:
    """``relu6`` -> ``nn.ReLU6``, ``hswish`` -> ``nn.Hardswish``."""
    if name == "relu6":
        return nn.ReLU6()
    if name == "hswish":
        return nn.Hardswish()
    raise SgnasError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")


class ConvBN(nn.Module):
    """Bias-free conv (padding ``kernel // 2``) followed by BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global pool, 1x1 conv to ``channels // 4`` + ReLU, 1x1 conv back,
    hard-sigmoid gate."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        mid = max(1, channels // reduction)
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class Stem(nn.Module):
    """Fixed part before the searchable layers: 3x3 conv (stride ``space.stem_stride``) + BN + act to
    ``stem_channels``, then an inverted residual block of expansion 1 (dw 3x3 + BN + act, 1x1 to
    ``first_block_channels`` + BN, no residual)."""

    def __init__(self, space: SearchSpace, activation: str = "relu6"):
        super().__init__()
        c = space.stem_channels
        self.conv = ConvBN(3, c, 3, space.stem_stride)
        self.dw = ConvBN(c, c, 3, 1, groups=c)
        self.pw = ConvBN(c, space.first_block_channels, 1)
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(x))
        x = self.act(self.dw(x))
        return self.pw(x)


def head_in_channels(space: SearchSpace) -> int:
    """Channels entering the head: the last searchable layer's output."""
    return space.layers[-1].c_out if space.layers else space.first_block_channels


class Head(nn.Module):
    """Fixed part after the searchable layers: 1x1 conv to ``head_channels`` + BN + act, global
    average pool, dropout, linear classifier."""

    def __init__(self, space: SearchSpace, activation: str = "relu6", dropout: float = 0.0):
        super().__init__()
        self.conv = ConvBN(head_in_channels(space), space.head_channels, 1)
        self.act = make_activation(activation)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(space.head_channels, space.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act(self.conv(x))).flatten(1)
        return self.classifier(self.dropout(x))


def check_config(config: Sequence[int]) -> tuple[int, ...]:
    """Sorted kernel tuple of a layer configuration; raise :class:`ArchitectureError` if malformed."""
    try:
        config = tuple(sorted(int(k) for k in config))
    except (TypeError, ValueError):
        raise ArchitectureError(f"configuration {config!r} is not a list of kernel sizes") from None
    if not config:
        raise ArchitectureError("a configuration needs at least one kernel")
    if any(k < 1 or k % 2 == 0 for k in config):
        raise ArchitectureError(f"configuration {config}: kernel sizes must be odd and positive")
    return config


class MixConvBlock(nn.Module):
    """Deployed block of one layer configuration (sorted kernels ``config``, expansion ``len(config)``).

    With equal kernels it is a plain MBConv (inverted bottleneck). ``se`` adds squeeze-and-excitation
    on the mid channels; ``activation`` is ``relu6`` or ``hswish``.
    """

    def __init__(
        self,
        layer: LayerSpec,
        config: Sequence[int],
        se: bool = False,
        activation: str = "relu6",
    ):
        super().__init__()
        self.layer = layer
        self.config = check_config(config)
        c, mid = layer.c_in, layer.c_in * len(self.config)
        self.expand = ConvBN(c, mid, 1)
        self.dw = nn.ModuleList(ConvBN(c, c, k, layer.stride, groups=c) for k in self.config)
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.project = ConvBN(mid, layer.c_out, 1)
        self.act = make_activation(activation)
        self.residual = layer.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.expand(x))
        groups = torch.split(h, self.layer.c_in, dim=1)
        y = torch.cat([dw(g) for dw, g in zip(self.dw, groups)], dim=1)
        y = self.project(self.se(self.act(y)))
        return y + x if self.residual else y


def build_layer_block(
    layer: LayerSpec,
    config: Sequence[int],
    se: bool = False,
    activation: str = "relu6",
    generator: torch.Generator | None = None,
) -> MixConvBlock:
    """Standalone deployed block of one LUT entry (``layer.key(config)``), initialized, in eval mode."""
    block = MixConvBlock(layer, config, se=se, activation=activation)
    init_weights(block, generator)
    return block.eval()


def build_stem(
    space: SearchSpace, activation: str = "relu6", generator: torch.Generator | None = None
) -> Stem:
    """Standalone stem of the LUT entry ``space.stem_key``, initialized, in eval mode."""
    stem = Stem(space, activation)
    init_weights(stem, generator)
    return stem.eval()


def build_head(
    space: SearchSpace, activation: str = "relu6", generator: torch.Generator | None = None
) -> Head:
    """Standalone head of the LUT entry ``space.head_key``, initialized, in eval mode."""
    head = Head(space, activation)
    init_weights(head, generator)
    return head.eval()


def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """MobileNet-style initialization: Kaiming-normal (fan-out) convs, unit/zero BN, small linear.

    Random draws come from ``generator`` (torch's default generator when ``None``).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01, generator=generator)
            nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------ unified block
def batch_norm_parts(
    x: torch.Tensor, parts: Sequence[tuple[nn.BatchNorm2d, int, int]], training: bool
) -> torch.Tensor:
    """Batch norm of ``x`` whose channels are the concatenation of ``bn`` channel ranges
    ``[start, stop)`` taken from one or more BN modules (same momentum and eps).

    In training mode the running statistics of exactly those channels are updated, as if each range
    had gone through its own module.
    """
    first = parts[0][0]
    weight = torch.cat([bn.weight[a:b] for bn, a, b in parts])
    bias = torch.cat([bn.bias[a:b] for bn, a, b in parts])
    mean = torch.cat([bn.running_mean[a:b] for bn, a, b in parts])
    var = torch.cat([bn.running_var[a:b] for bn, a, b in parts])
    momentum = 0.0 if first.momentum is None else first.momentum
    if training:
        seen: set[int] = set()
        for bn, _, _ in parts:
            if id(bn) not in seen:
                seen.add(id(bn))
                bn.num_batches_tracked.add_(1)
        if first.momentum is None:
            momentum = 1.0 / float(first.num_batches_tracked)
    out = F.batch_norm(x, mean, var, weight, bias, training, momentum, first.eps)
    if training:
        with torch.no_grad():
            offset = 0
            for bn, a, b in parts:
                bn.running_mean[a:b].copy_(mean[offset : offset + b - a])
                bn.running_var[a:b].copy_(var[offset : offset + b - a])
                offset += b - a
    return out


def expansion_distribution(q: torch.Tensor) -> torch.Tensor:
    """Exact distribution of the number of non-skip sub-blocks.

    ``q`` holds the independent non-skip probabilities of the sub-blocks, shape ``(m,)``; returns
    ``P(e)`` for ``e = 0..m``, shape ``(m + 1,)``, differentiable in ``q``.
    """
    dist = [torch.ones((), dtype=q.dtype, device=q.device)]
    for qi in q.unbind(0):
        nxt = [dist[0] * (1 - qi)]
        for j in range(1, len(dist)):
            nxt.append(dist[j] * (1 - qi) + dist[j - 1] * qi)
        nxt.append(dist[-1] * qi)
        dist = nxt
    return torch.stack(dist)


class UnifiedBlock(nn.Module):
    """Supernet layer holding every configuration of one :class:`LayerSpec` (see module docstring).

    ``forward(x, choices)`` runs one path: ``choices`` has ``max_expansion`` indices into
    :data:`~sgnas.space.CHOICES` (k3, k5, k7, skip). ``forward_weighted(x, probs)`` mixes all paths
    with per-sub-block probabilities ``probs`` of shape ``(max_expansion, 4)``.
    """

    def __init__(
        self,
        layer: LayerSpec,
        max_expansion: int = 6,
        kernels: Sequence[int] = (3, 5, 7),
        shadow_bn: bool = True,
        min_expansion: int = 2,
    ):
        super().__init__()
        kernels = tuple(kernels)
        unknown = [k for k in kernels if k not in CHOICES[:SKIP_INDEX]]
        if unknown:
            raise SgnasError(
                f"kernel {unknown[0]} is not one of the choices {CHOICES[:SKIP_INDEX]}"
            )
        if not 1 <= min_expansion <= max_expansion:
            raise SgnasError(f"expansion range {min_expansion}..{max_expansion} is empty")
        self.layer = layer
        self.kernels = kernels
        self.max_expansion = max_expansion
        self.min_expansion = min_expansion
        self.shadow_bn = shadow_bn
        c, m = layer.c_in, max_expansion
        self.expand = ConvBN(c, m * c, 1)
        self.dw = nn.ModuleList(
            nn.ModuleList(ConvBN(c, c, k, layer.stride, groups=c) for k in kernels)
            for _ in range(m)
        )
        self.project = nn.Conv2d(m * c, layer.c_out, 1, bias=False)
        n_bn = max_expansion - min_expansion + 1 if shadow_bn else 1
        self.project_bn = nn.ModuleList(nn.BatchNorm2d(layer.c_out) for _ in range(n_bn))
        self.act = nn.ReLU6()
        # column of each kernel in a probability row / kernel position of each choice index
        self._kernel_pos = {CHOICES.index(k): p for p, k in enumerate(kernels)}

    # ---------------------------------------------------------------- path helpers
    def active(self, choices: Sequence[int]) -> list[tuple[int, int]]:
        """``(sub_block, kernel_position)`` of the non-skip sub-blocks; checks the expansion rate."""
        if len(choices) != self.max_expansion:
            raise ArchitectureError(
                f"{len(choices)} sub-block choices, the block has {self.max_expansion}"
            )
        out = []
        for i, c in enumerate(choices):
            c = int(c)
            if c == SKIP_INDEX:
                continue
            if c not in self._kernel_pos:
                raise ArchitectureError(
                    f"sub-block {i}: choice index {c} is not one of this block's"
                )
            out.append((i, self._kernel_pos[c]))
        if not self.min_expansion <= len(out) <= self.max_expansion:
            raise ArchitectureError(
                f"{len(out)} active sub-blocks, must be {self.min_expansion} to "
                f"{self.max_expansion}"
            )
        return out

    def _channels(self, subs: Sequence[int], device: torch.device) -> torch.Tensor | slice:
        c = self.layer.c_in
        if list(subs) == list(range(len(subs))):
            return slice(0, len(subs) * c)
        return torch.cat([torch.arange(i * c, (i + 1) * c, device=device) for i in subs])

    def _bn_index(self, e: int) -> int:
        return e - self.min_expansion if self.shadow_bn else 0

    # ---------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, choices: Sequence[int]) -> torch.Tensor:
        active = self.active(choices)
        c = self.layer.c_in
        subs = [i for i, _ in active]
        ch = self._channels(subs, x.device)
        h = F.conv2d(x, self.expand.conv.weight[ch])
        h = batch_norm_parts(h, [(self.expand.bn, i * c, (i + 1) * c) for i in subs], self.training)
        h = self.act(h)
        y = torch.cat(
            [self.dw[i][p](h[:, j * c : (j + 1) * c]) for j, (i, p) in enumerate(active)], dim=1
        )
        y = F.conv2d(self.act(y), self.project.weight[:, ch])
        y = self.project_bn[self._bn_index(len(active))](y)
        return y + x if self.layer.residual else y

    def forward_weighted(self, x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Sub-block i outputs ``sum_k probs[i, k] * act(BN_ik(dw_ik(x_i)))`` (skip adds nothing);
        the shadow BNs are mixed with the exact distribution of e, renormalized over the allowed e."""
        c, m = self.layer.c_in, self.max_expansion
        if tuple(probs.shape) != (m, len(CHOICES)):
            raise SgnasError(
                f"probs has shape {tuple(probs.shape)}, expected ({m}, {len(CHOICES)})"
            )
        probs = probs.to(dtype=x.dtype)
        h = self.act(self.expand(x))
        mixed = None
        for col, p in self._kernel_pos.items():
            convs = [self.dw[i][p] for i in range(m)]
            weight = torch.cat([cb.conv.weight for cb in convs])
            k = self.kernels[p]
            z = F.conv2d(h, weight, None, self.layer.stride, k // 2, 1, m * c)
            z = self.act(batch_norm_parts(z, [(cb.bn, 0, c) for cb in convs], self.training))
            term = z * probs[:, col].repeat_interleave(c).view(1, m * c, 1, 1)
            mixed = term if mixed is None else mixed + term
        y = self.project(mixed)
        if self.shadow_bn:
            q = probs[:, [col for col in self._kernel_pos]].sum(dim=1)
            pe = expansion_distribution(q)[self.min_expansion : m + 1]
            pe = pe / pe.sum().clamp_min(torch.finfo(pe.dtype).tiny)
            y = sum(pe[j] * bn(y) for j, bn in enumerate(self.project_bn))
        else:
            y = self.project_bn[0](y)
        return y + x if self.layer.residual else y

    # ----------------------------------------------------------------------- export
    @torch.no_grad()
    def copy_to(self, block: MixConvBlock, choices: Sequence[int]) -> None:
        """Copy the weights of the path ``choices`` into the deployed ``block`` of its configuration.

        The deployed groups are ordered by kernel size (ties by sub-block index); the expand rows and
        the projection's input columns are permuted to match, which leaves the function unchanged.
        """
        active = self.active(choices)
        config = tuple(sorted(self.kernels[p] for _, p in active))
        if block.config != config or block.layer != self.layer:
            raise ArchitectureError(
                f"deployed block {block.layer.key(block.config)} does not match path "
                f"{self.layer.key(config)}"
            )
        order = sorted(active, key=lambda ip: (self.kernels[ip[1]], ip[0]))
        c = self.layer.c_in
        ch = torch.cat([torch.arange(i * c, (i + 1) * c) for i, _ in order])
        block.expand.conv.weight.copy_(self.expand.conv.weight[ch])
        src, dst = self.expand.bn, block.expand.bn
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).copy_(getattr(src, name)[ch])
        dst.num_batches_tracked.copy_(src.num_batches_tracked)
        for j, (i, p) in enumerate(order):
            block.dw[j].load_state_dict(self.dw[i][p].state_dict())
        block.project.conv.weight.copy_(self.project.weight[:, ch])
        block.project.bn.load_state_dict(self.project_bn[self._bn_index(len(active))].state_dict())
