"""Zero-cost proxies of many architectures of one space, with a seeded initialization.

NB201: one skeleton network holding every op of every edge of every cell position is initialized
once from ``seed`` (torch's default initialization, as NB201's networks) and each cell runs along
its single path, so every cell sees the same weights at the same place (the same seed for every
architecture) and no network is rebuilt. Cells are reduced to their functional classes
(:mod:`sgnas.signals.cells`): each class is scored once, through its representative (its member
with the smallest code over the whole space, so a score never depends on which cells were scored
together), and the score is shared; a dead cell scores ``-inf`` on every proxy.

Unified spaces: each architecture's network is built by :func:`sgnas.network.build_network` with
a generator seeded by ``seed``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..nb201.space import Cell, NB201Space
from .cells import representatives
from .proxies import ProxyRunner, check_names

Progress = Callable[[int, int], None]


def _seeded(seed: int, build: Callable[[], Any]) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class NB201Scorer:
    """Proxies of NB201 cells through one seeded skeleton (see the module docstring)."""

    def __init__(self, names: Sequence[str], x: torch.Tensor, y: torch.Tensor | None,
                 seed: int = 0, device: str | torch.device = "cpu",
                 space: NB201Space | None = None, channels_last: bool = True):
        from ..nb201.supernet import NB201Supernet

        self.names = check_names(names)
        self.space = space or NB201Space()
        self.device = torch.device(device)
        skel = _seeded(seed, lambda: NB201Supernet(self.space)).to(self.device)
        x = x.to(self.device)
        if channels_last:  # several times faster convolutions on CPU (oneDNN)
            skel = skel.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        self.skel = skel
        y = y.to(self.device) if y is not None else None
        self.runner = ProxyRunner(skel, x, y, self.names)
        self.memo: dict[Cell, dict[str, float]] = {}  # representative -> scores

    def score_live(self, cell: Cell) -> dict[str, float]:
        """Proxies of one connected cell, run as given (no class reduction)."""
        ops = cell.ops
        syn = self.runner.syn
        return self.runner.run(lambda h: self.skel(h, ops),
                               (lambda h: syn(h, ops)) if syn is not None else None)

    def score(self, cells: Sequence[Cell], progress: Progress | None = None) -> dict[str, np.ndarray]:
        """``{proxy: scores}`` of ``cells`` (one forward per functional class; dead: ``-inf``)."""
        reps, cls = representatives(cells)
        per_rep = {n: np.empty(len(reps)) for n in self.names}
        for i, rep in enumerate(reps):
            if rep not in self.memo:
                self.memo[rep] = self.score_live(rep)
            for n, v in self.memo[rep].items():
                per_rep[n][i] = v
            if progress is not None:
                progress(i + 1, len(reps))
        out = {}
        for n in self.names:
            vals = np.full(len(cls), -np.inf)
            vals[cls >= 0] = per_rep[n][cls[cls >= 0]]
            out[n] = vals
        return out


class NetworkScorer:
    """Proxies of architectures of a unified space, one seeded network each."""

    def __init__(self, space: Any, names: Sequence[str], x: torch.Tensor, y: torch.Tensor | None,
                 seed: int = 0, device: str | torch.device = "cpu"):
        self.space = space
        self.names = check_names(names)
        self.seed = seed
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device) if y is not None else None

    def score_one(self, arch: Any) -> dict[str, float]:
        from ..network import build_network

        gen = torch.Generator().manual_seed(self.seed)
        net = build_network(self.space, arch, generator=gen).to(self.device)
        runner = ProxyRunner(net, self.x, self.y, self.names)
        try:
            return runner.run(net, runner.syn)
        finally:
            runner.close()

    def score(self, archs: Sequence[Any], progress: Progress | None = None) -> dict[str, np.ndarray]:
        out = {n: np.empty(len(archs)) for n in self.names}
        for i, arch in enumerate(archs):
            for n, v in self.score_one(arch).items():
                out[n][i] = v
            if progress is not None:
                progress(i + 1, len(archs))
        return out


def make_scorer(space: Any, names: Sequence[str], x: torch.Tensor, y: torch.Tensor | None,
                seed: int = 0, device: str | torch.device = "cpu"):
    """The scorer of ``space`` (NB201 or a unified space)."""
    if isinstance(space, NB201Space):
        return NB201Scorer(names, x, y, seed, device, space)
    return NetworkScorer(space, names, x, y, seed, device)


def timed_score(scorer, archs: Sequence[Any]) -> tuple[dict[str, np.ndarray], float]:
    """``scorer.score(archs)`` and the seconds it took."""
    t0 = time.perf_counter()
    out = scorer.score(archs)
    return out, time.perf_counter() - t0


__all__ = ["NB201Scorer", "NetworkScorer", "make_scorer", "timed_score"]
