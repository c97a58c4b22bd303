"""Training the architecture generator of a tabulated space (NB201) against any accuracy signal.

When every cell's score is known (a signal table: zero-cost proxies, a supernet's estimates, an
imported table) and every cell's cost is known (:class:`~sgnas.costs.CellTableCost`), what the
generator should return for a target ``T`` is known exactly: the best connected cell with cost at
most ``T`` by the signal. The generator is fitted to it by maximum likelihood, on a softened form
so that near-best cells share the mass::

    q_T(cell) ∝ exp(sharpness * rank(cell))  over connected cells with cost(cell) <= T
                                             (rank: position among connected cells, 0 = worst)
    loss = - E_{cell ~ q_T} [ log P_alpha(T)(cell) ] = - sum_edges sum_ops q_T,e(op) log p_e(op)

(exact: the expectation of a sum of per-edge log-probabilities needs only ``q_T``'s per-edge
marginals). Scores enter as rank positions over connected cells, so ``sharpness`` (log-odds per
position) means the same for every signal. Decoding (most probable feasible cell, :meth:`GeneratorBundle.decode` with
``eps=None``) then returns the exhaustive-search answer wherever the generator fits ``q_T``; the
benchmark measures the gap. No data, no supernet: a few thousand steps on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import SgnasError
from ..generator import (
    ArchitectureGenerator,
    GeneratorBundle,
    GeneratorConfig,
    make_prior_pool,
    target_interval,
)
from ..progress import Progress


@dataclass
class ScoreGeneratorConfig:
    """Training settings of a generator driven by a tabulated signal."""

    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    sharpness: float = 2.0
    seed: int = 0
    generator: GeneratorConfig = field(
        default_factory=lambda: GeneratorConfig(constraint_frequencies=6))


def rank_scores(score: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """``score`` as rank positions scaled to [0, 1] over the ``alive`` cells (ties broken by cell
    order, so that the best feasible cell is one cell); other cells get 0."""
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    a = np.asarray(alive, dtype=bool).reshape(-1)
    if s.shape != a.shape:
        raise SgnasError(f"{s.size} scores for {a.size} cells")
    if not np.isfinite(s[a]).all():
        raise SgnasError("the signal has non-finite scores on connected cells")
    out = np.zeros_like(s)
    n = int(a.sum())
    pos = np.empty(n)
    pos[np.argsort(s[a], kind="stable")] = np.arange(n)
    out[a] = pos / max(n - 1, 1)
    return out


def target_marginals(ranks: torch.Tensor, feasible: torch.Tensor, sharpness: float,
                     shape: tuple[int, int], top: int = 16) -> torch.Tensor:
    """Per-decision marginals ``(B, D, K)`` of ``q_T(cell) ∝ exp(sharpness * rank)`` over each
    row's ``feasible`` cells (``(B, N)`` bool): the distribution the generator is fitted to. Only
    the ``top`` best feasible cells of a row carry mass (the rest weigh less than
    ``exp(-sharpness * top)`` each)."""
    d, k = shape
    key = torch.where(feasible, ranks.unsqueeze(0), torch.tensor(float("-inf")))
    best, idx = key.topk(min(top, key.shape[1]), dim=1)
    weight = torch.softmax(sharpness * (best - best[:, :1]), dim=1).nan_to_num(0.0)
    digits = torch.stack([(idx // k ** (d - 1 - e)) % k for e in range(d)], dim=2)  # (B, top, D)
    onehot = torch.nn.functional.one_hot(digits, k).to(weight.dtype)  # (B, top, D, K)
    return (weight[:, :, None, None] * onehot).sum(dim=1)


def _fit_step(opt: torch.optim.Optimizer, logits: torch.Tensor, ranks: torch.Tensor,
              feasible: torch.Tensor, sharpness: float) -> float:
    """One step of the maximum-likelihood fit of ``logits`` to the target marginals."""
    goal = target_marginals(ranks, feasible, sharpness, logits.shape[1:])
    loss = -(goal * torch.log_softmax(logits, dim=-1).clamp_min(-1e4)).sum(dim=(1, 2)).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def _meta(signal: str, cfg: ScoreGeneratorConfig) -> dict:
    """What a score-driven generator records: its signal, and that it decodes under the bound."""
    return {"signal": signal, "trainer": "score", "decode": "upper", "steps": cfg.steps,
            "seed": cfg.seed, "sharpness": cfg.sharpness}


def train_score_generator(space: Any, cost: Any, score: np.ndarray, signal: str,
                          cfg: ScoreGeneratorConfig | None = None,
                          progress: bool = False) -> GeneratorBundle:
    """Train a generator for ``cost`` (a tabulated cost of ``space``) that maximizes the
    ``signal`` scores ``score`` (one per cell, ``space.all_choices()`` order) under the target."""
    cfg = cfg or ScoreGeneratorConfig()
    if not getattr(cost, "tabulated", False):
        raise SgnasError(f"score-driven training needs a tabulated cost; {cost.name} of space "
                         f"{space.name} is not (train against the supernet instead)")
    alive = space.alive_mask().reshape(-1)
    # ranks in units of cells: ``sharpness`` is the log-odds per rank position
    ranks = torch.as_tensor(rank_scores(score, alive) * (alive.sum() - 1), dtype=torch.float32)
    values = torch.as_tensor(cost.values(), dtype=torch.float32)
    alive_t = torch.as_tensor(alive)
    lo, hi = target_interval(cost)
    rng = np.random.default_rng(cfg.seed)
    gen_torch = torch.Generator().manual_seed(cfg.seed)
    gen = ArchitectureGenerator(space, cfg.generator, generator=gen_torch)
    priors = make_prior_pool(space, cost, cfg.generator.num_priors, rng, (lo, hi))
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr)
    bar = Progress(cfg.steps, desc=f"generator ({signal}, {cost.name})", unit="step",
                   enabled=progress)
    gen.train()
    for step in range(cfg.steps):
        c = torch.rand(cfg.batch_size, generator=gen_torch)
        target = lo + c * (hi - lo)
        logits = gen(c, priors.select(c))
        ok = alive_t.unsqueeze(0) & (values.unsqueeze(0) <= target.unsqueeze(1))
        _fit_step(opt, logits, ranks, ok, cfg.sharpness)
        bar.update(1)
    bar.close()
    gen.eval()
    return GeneratorBundle(space=space, generator=gen, priors=priors, cost=cost.describe(),
                           interval=(lo, hi), meta=_meta(signal, cfg))




def train_score_shared_generator(space: Any, costs: list, score: np.ndarray, signal: str,
                                 cfg: ScoreGeneratorConfig | None = None,
                                 references: list | None = None,
                                 progress: bool = False):
    """One device-conditioned generator for every per-cell latency table in ``costs`` (the
    training devices), fitted as :func:`train_score_generator` is: for a (device, target) pair,
    the best connected cell by ``signal`` within that device's target. Devices enter through the
    log-latencies of the reference cells (:func:`~sgnas.shared_generator.device_features`), so a
    new device is served from its own LUT."""
    from ..shared_generator import (DeviceConditionedGenerator, SharedBundle, choose_references,
                                    device_features)

    cfg = cfg or ScoreGeneratorConfig()
    if not costs or not all(getattr(c, "tabulated", False) for c in costs):
        raise SgnasError("a shared score-driven generator needs per-cell latency tables")
    if any(c.space.fingerprint != space.fingerprint for c in costs):
        raise SgnasError("every device table must be of the generator's space")
    alive = space.alive_mask().reshape(-1)
    ranks = torch.as_tensor(rank_scores(score, alive) * (alive.sum() - 1), dtype=torch.float32)
    alive_t = torch.as_tensor(alive)
    refs = list(references) if references is not None else choose_references(space)
    ref_idx = tuple(np.stack([space.indices_of(c) for c in refs], axis=1))
    feats = torch.as_tensor(device_features(np.stack([c.table[ref_idx] for c in costs])),
                            dtype=torch.float32)
    intervals = torch.as_tensor(np.array([target_interval(c) for c in costs]),
                                dtype=torch.float32)
    tables = torch.as_tensor(np.stack([c.values() for c in costs]), dtype=torch.float32)
    rng = np.random.default_rng(cfg.seed)
    tgen = torch.Generator().manual_seed(cfg.seed)
    from ..costs import make_cost

    flops = make_cost("flops", space)
    priors = make_prior_pool(space, flops, cfg.generator.num_priors, rng, target_interval(flops))
    gen = DeviceConditionedGenerator(space, cfg.generator, len(refs), True, generator=tgen)
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr)
    bar = Progress(cfg.steps, desc=f"shared generator ({signal})", unit="step", enabled=progress)
    gen.train()
    for _ in range(cfg.steps):
        dev = torch.as_tensor(rng.integers(len(costs), size=cfg.batch_size))
        c = torch.rand(cfg.batch_size, generator=tgen)
        target = intervals[dev, 0] + c * (intervals[dev, 1] - intervals[dev, 0])
        logits = gen(c, priors.select(c), feats[dev])
        ok = alive_t.unsqueeze(0) & (tables[dev] <= target.unsqueeze(1))
        _fit_step(opt, logits, ranks, ok, cfg.sharpness)
        bar.update(1)
    bar.close()
    gen.eval()
    devices = [{"name": (c.lut.device_name if getattr(c, "lut", None) is not None
                         else str(c.fingerprint)),
                "lut_fingerprint": c.fingerprint} for c in costs]
    return SharedBundle(space, gen, priors, refs, devices, _meta(signal, cfg))


__all__ = ["ScoreGeneratorConfig", "rank_scores", "target_marginals",
           "train_score_generator", "train_score_shared_generator"]
