"""Pieces shared by the training loops (supernet, from scratch): seeds, parameter groups, steps per
epoch, DDP wrapping and CPU copies of state for checkpoints."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SgnasError
from ..evaluation.data import batches_per_epoch
from ..evaluation.distributed import DistInfo
from ..evaluation.seeds import mix_seed

__all__ = ["mix_seed", "param_groups", "steps_per_epoch", "to_cpu", "wrap_ddp"]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimizer groups: conv/linear weights with ``weight_decay``, BN parameters and biases
    without."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def steps_per_epoch(train_set: Any, batch_size: int, dist: DistInfo,
                    max_steps: int | None = None) -> int:
    """Full batches of ``batch_size`` per process in one epoch of ``train_set``, capped at
    ``max_steps``; :class:`SgnasError` when not even one fits."""
    steps = batches_per_epoch(train_set, batch_size)
    if max_steps is not None:
        steps = min(steps, max_steps)
    if steps < 1:
        raise SgnasError(
            f"the training split ({len(train_set)} images) gives no full batch of "
            f"{batch_size} per process on {dist.world_size} process(es)"
        )
    return steps


def wrap_ddp(model: nn.Module, device: torch.device, dist: DistInfo,
             find_unused_parameters: bool = False) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` when running distributed, else ``model`` itself."""
    if not dist.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def to_cpu(obj: Any) -> Any:
    """A copy of ``obj`` (tensors, nested in dicts and lists) with every tensor on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    return obj
