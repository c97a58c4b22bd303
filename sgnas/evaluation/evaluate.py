"""Inherited accuracy of sub-networks of a trained supernet: BN recalibration, then top-1.

A supernet's BN running statistics are a mixture over all sampled paths and do not fit any single
sub-network, so (as in SPOS) each sub-network is scored after *recalibration*: every BN's running
statistics are reset and re-estimated as a cumulative average over a few training batches forwarded
in train mode along the sub-network's path, without gradients. Recalibration overwrites the running
statistics of the model in place (weights are untouched); the statistics left behind are those of
the last architecture recalibrated.

Accuracies are fractions in ``[0, 1]``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..progress import Progress
from ..space import Architecture, SearchSpace
from . import distributed


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _inputs(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """All BatchNorm modules of ``model`` (shadow BNs included)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def _seeded_torch_rng(seed: int | None) -> Iterator[None]:
    """Seed the global CPU torch RNG inside the block and restore it afterwards."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    arch: Architecture | np.ndarray | torch.Tensor,
    loader: Iterable,
    batches: int = 20,
    seed: int | None = 0,
) -> int:
    """Re-estimate every BN's running statistics for ``arch`` from ``batches`` batches of ``loader``.

    All BN modules are reset and switched to a cumulative average (``momentum=None``) for the pass,
    then their momenta and the model's train/eval mode are restored. ``loader`` yields ``(x, y)``
    or ``x``; it is not rebuilt, so repeated calls are cheap. With ``seed`` set, augmentation draws
    made from the global torch RNG (and loader worker seeds drawn from it) are seeded, which makes
    the result reproducible; the caller's RNG state is restored. Returns the number of batches used.
    """
    bns = batch_norms(model)
    momenta = [bn.momentum for bn in bns]
    was_training = model.training
    device = _device(model)
    used = 0
    try:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        with _seeded_torch_rng(seed):
            for batch in loader:
                if used >= batches:
                    break
                model(_inputs(batch).to(device, non_blocking=True), arch)
                used += 1
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)
    return used


@torch.no_grad()
def evaluate_arch(
    model: nn.Module,
    arch: Architecture | np.ndarray | torch.Tensor,
    loader: Iterable,
    max_batches: int | None = None,
) -> float:
    """Top-1 accuracy (fraction) of ``model`` along ``arch`` on ``loader``, BN in eval mode."""
    was_training = model.training
    device = _device(model)
    correct = total = 0
    model.eval()
    try:
        for i, (x, y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            logits = model(x.to(device, non_blocking=True), arch)
            correct += int((logits.argmax(1).cpu() == y).sum())
            total += int(y.numel())
    finally:
        model.train(was_training)
    return correct / total if total else float("nan")


def inherited_accuracy(
    model: nn.Module,
    arch: Architecture | np.ndarray | torch.Tensor,
    calib_loader: Iterable,
    eval_loader: Iterable,
    calib_batches: int = 20,
    eval_batches: int | None = None,
    seed: int | None = 0,
) -> float:
    """Top-1 (fraction) of sub-network ``arch`` with the supernet's weights, after BN recalibration.

    Leaves the model's BN running statistics recalibrated for ``arch``.
    """
    recalibrate_bn(model, arch, calib_loader, batches=calib_batches, seed=seed)
    return evaluate_arch(model, arch, eval_loader, max_batches=eval_batches)


def sample_eval(
    model: nn.Module,
    space: SearchSpace,
    n: int,
    rng: np.random.Generator,
    calib_loader: Iterable,
    eval_loader: Iterable,
    calib_batches: int = 20,
    eval_batches: int | None = None,
    seed: int | None = 0,
    archs: Sequence[Architecture] | None = None,
    progress: bool = False,
) -> list[tuple[Architecture, float]]:
    """Inherited accuracy of ``n`` architectures sampled uniformly with ``rng`` (or of ``archs``)."""
    if archs is None:
        archs = [space.sample(rng) for _ in range(n)]
    results: list[tuple[Architecture, float]] = []
    bar = Progress(len(archs), "evaluate", unit="arch", enabled=progress)
    try:
        for arch in archs:
            space.validate(arch)
            top1 = inherited_accuracy(model, arch, calib_loader, eval_loader, calib_batches,
                                      eval_batches, seed)
            results.append((arch, top1))
            bar.update(1, top1=f"{100 * top1:.2f}%")
    finally:
        bar.close()
    return results


def summarize(accuracies: Sequence[float]) -> dict[str, float]:
    """Mean, standard deviation (ddof=1 when n > 1), min and max of ``accuracies``."""
    a = np.asarray(accuracies, dtype=np.float64)
    if a.size == 0:
        return {"n": 0, "mean": float("nan"), "std": float("nan"), "min": float("nan"),
                "max": float("nan")}
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "min": float(a.min()),
        "max": float(a.max()),
    }


@torch.no_grad()
def evaluate_network(
    model: nn.Module, dataset, batch_size: int, device: torch.device, workers: int = 0,
    max_batches: int | None = None,
) -> dict[str, float]:
    """Top-1 and top-5 (fractions) of ``model`` on ``dataset``; sharded and summed across processes
    when distributed. With ``max_batches`` the images are a fixed random subset of that many batches
    (the same every call), so that a class-ordered test split is not cut to its first classes."""
    from torch.utils.data import DataLoader, Subset

    info = distributed.current()
    if max_batches is not None and max_batches * batch_size < len(dataset):
        pick = np.random.default_rng(0).permutation(len(dataset))[: max_batches * batch_size]
        dataset = Subset(dataset, np.sort(pick).tolist())
        max_batches = None
    if info.distributed:
        dataset = Subset(dataset, list(range(info.rank, len(dataset), info.world_size)))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    counts = torch.zeros(3, dtype=torch.float64, device=device)
    try:
        for i, (x, y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            k = min(5, logits.shape[1])
            top = logits.topk(k, dim=1).indices
            hit = top == y[:, None]
            counts += torch.stack([hit[:, 0].sum(), hit.any(1).sum(), torch.tensor(y.numel(),
                                   device=device)]).to(counts)
    finally:
        model.train(was_training)
    if info.distributed:
        import torch.distributed as dist

        dist.all_reduce(counts)
    correct1, correct5, total = counts.tolist()
    if total == 0:
        return {"top1": float("nan"), "top5": float("nan")}
    return {"top1": correct1 / total, "top5": correct5 / total}
