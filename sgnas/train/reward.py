"""The generator's accuracy term when the signal is not the supernet's cross-entropy.

The supernet CE is differentiable in the generator's logits through a straight-through sample
(:mod:`sgnas.train.generator`). The other signals of :mod:`sgnas.signals` are not, and take one of
two routes:

* **exact expectation** (``flops``, ``params``): these are additive over decisions, so the cost
  table of the same name (:mod:`sgnas.costs`) gives their expected value under the generator's
  per-decision distribution exactly and differentiably, as it gives the expected cost. The term is
  ``-E_alpha[signal] / (max - min)`` averaged over the step's targets: no sampling, no variance.
* **score function** (every other signal: zero-cost proxies, ``table:FILE``): a proxy is computed
  on a network built for one architecture, so it has no gradient in the logits, and it is not a
  sum over layers, so no table gives its expectation. REINFORCE with a baseline estimates the
  gradient of ``E_alpha[score]`` without bias from the architectures the generator samples and
  needs one score per sample: ``n`` architectures are drawn from the first ``n`` targets'
  distributions (exact categorical draws, Gumbel-max), each scored (scores are cached per
  architecture: samples repeat), and the term is ``-mean_i A_i log P_alpha(arch_i) / D`` (``D``
  decisions, so the step does not grow with depth) with the advantage ``A = (r - b) / s``
  standardized by an exponential moving mean ``b`` and standard deviation ``s`` of past rewards
  (:class:`RewardBaseline`: taken before the current rewards are seen, so it does not bias the
  estimate; standardizing makes the step size independent of the signal's scale). ``|A|`` is
  clipped at :data:`ADVANTAGE_CLIP` (outliers only); an architecture the signal scores ``-inf``
  (degenerate) gets the lowest advantage. Defaults (4 samples a step, weight 1) keep the cost
  tracking of a signal-free run on the ``tiny`` space while the signal rises.

An ``ensemble`` ranks the architectures scored together, so one sample has no rank of its own; here
each member ranks a sample against a fixed reference pool of random architectures instead
(:class:`PoolRankSignal`: the sample's mid-rank fraction in the pool, scored once per run), and the
reward is the mean over members: the same rank average, against a fixed set rather than the
samples of the moment. A ``table:FILE`` must score every architecture the generator may sample (a
whole space: NB201).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import SgnasError

#: The default signal: the supernet's cross-entropy on a straight-through sample.
SUPERNET = "supernet"
#: Signals additive over decisions: their expectation is exact through the cost table of that name.
EXACT = ("flops", "params")
#: Largest ``|advantage|`` of one sample.
ADVANTAGE_CLIP = 5.0
#: Rewards that set the baseline before advantages are used (the first steps only learn cost).
WARMUP = 4
#: Random architectures an ensemble's members rank each sample against.
REFERENCE_POOL = 64


def signal_name(signal: Any) -> str:
    """The name a signal (a name, a :class:`~sgnas.signals.Signal` or ``None``) is recorded
    under."""
    if signal is None:
        return SUPERNET
    if isinstance(signal, str):
        return signal.strip()
    return str(getattr(signal, "name", type(signal).__name__))


def check_signal(signal: Any) -> str:
    """The signal's name; an unknown name is an :class:`~sgnas.errors.SgnasError` listing the
    known ones."""
    from ..signals.base import SIGNALS, split_name

    name = signal_name(signal)
    if isinstance(signal, str) or signal is None:
        SIGNALS.get(split_name(name)[0])
    return name


class PoolRankSignal:
    """An ensemble's rank average per architecture: each member's score of an architecture as its
    mid-rank fraction among ``pool_size`` random architectures of the space (drawn from ``seed``,
    scored once), averaged over the members; ``-inf`` where a member says ``-inf``."""

    def __init__(self, ensemble: Any, space: Any, pool_size: int = REFERENCE_POOL,
                 seed: int = 0) -> None:
        self.ensemble, self.name = ensemble, ensemble.name
        self.pool_size, self.seed = int(pool_size), int(seed)
        rng = np.random.default_rng(seed)
        pool = [space.sample(rng) for _ in range(self.pool_size)]
        with torch.enable_grad():
            self.reference = [np.sort(np.asarray(s.score(pool), dtype=np.float64))
                              for s in ensemble.signals]

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        fractions, dead = [], np.zeros(len(archs), dtype=bool)
        for member, ref in zip(self.ensemble.signals, self.reference):
            v = np.asarray(member.score(archs), dtype=np.float64)
            below = np.searchsorted(ref, v, "left") + np.searchsorted(ref, v, "right")
            fractions.append(below / (2.0 * len(ref)))
            dead |= np.isneginf(v)
        return np.where(dead, -np.inf, np.mean(fractions, axis=0))

    def describe(self) -> dict[str, Any]:
        return {**self.ensemble.describe(), "reference_pool": self.pool_size,
                "pool_seed": self.seed}


def gumbel_max(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One exact draw per row of the last dim of ``logits`` (Gumbel-max, noise from ``generator``
    as :func:`sgnas.train.generator.st_gumbel` draws it): candidate indices."""
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float32)
    u = u.clamp_(torch.finfo(torch.float32).tiny, 1.0 - 1e-7).to(logits.device, logits.dtype)
    return (logits - torch.log(-torch.log(u))).argmax(dim=-1)


class RewardBaseline:
    """Exponential moving mean and variance of rewards (``momentum`` per reward), seeded by the
    plain mean and variance of the first :data:`WARMUP` rewards."""

    def __init__(self, momentum: float = 0.9) -> None:
        self.momentum = float(momentum)
        self.mean, self.var, self.count = 0.0, 0.0, 0

    def advantages(self, rewards: Sequence[float]) -> np.ndarray:
        """``(r - mean) / std`` with the current statistics (zeros while warming up), clipped to
        ``±ADVANTAGE_CLIP``; a non-finite reward gets ``-ADVANTAGE_CLIP``."""
        r = np.asarray(rewards, dtype=np.float64)
        finite = np.isfinite(r)
        if self.count < WARMUP:
            adv = np.zeros_like(r)
        else:
            std = max(math.sqrt(self.var), 1e-8 * (1.0 + abs(self.mean)))
            adv = np.clip((np.where(finite, r, self.mean) - self.mean) / std,
                          -ADVANTAGE_CLIP, ADVANTAGE_CLIP)
        return np.where(finite, adv, -ADVANTAGE_CLIP)

    def update(self, rewards: Sequence[float]) -> None:
        """Fold the finite ``rewards`` into the statistics."""
        for v in np.asarray(rewards, dtype=np.float64):
            if not np.isfinite(v):
                continue
            delta = float(v) - self.mean
            if self.count < WARMUP:  # running mean / variance of the first rewards
                self.mean += delta / (self.count + 1)
                self.var += (delta * (float(v) - self.mean) - self.var) / (self.count + 1)
            else:
                a = 1.0 - self.momentum
                self.mean += a * delta
                self.var = self.momentum * (self.var + a * delta * delta)
            self.count += 1

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var = float(state["mean"]), float(state["var"])
        self.count = int(state["count"])


class ExpectedSignal:
    """``flops`` / ``params``: the exact expectation under the logits (see the module docstring)."""

    def __init__(self, name: str, space: Any) -> None:
        from ..costs import make_cost

        self.name = name
        self.table = make_cost(name, space)
        lo, hi = self.table.range()
        self.scale = max(hi - lo, 1e-12)

    def loss(self, logits: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        expected = self.table.expected_probs(torch.softmax(logits, dim=-1))
        return -expected.mean() / self.scale, {"reward": float(expected.detach().mean())}

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        return np.array([self.table.exact(a) for a in archs], dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "estimator": "exact"}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ScoreFunctionSignal:
    """Any per-architecture signal through REINFORCE with a baseline (see the module docstring)."""

    def __init__(self, signal: Any, space: Any, samples: int = 4, momentum: float = 0.9) -> None:
        self.signal, self.space = signal, space
        self.name = signal_name(signal)
        self.samples = int(samples)
        self.baseline = RewardBaseline(momentum)
        self.cache: dict[str, float] = {}

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        """The signal's scores of ``archs``, each architecture scored once per run."""
        keys = [str(a) for a in archs]
        todo = {k: a for k, a in zip(keys, archs) if k not in self.cache}
        if todo:
            with torch.enable_grad():  # proxies differentiate their own network
                values = np.asarray(self.signal.score(list(todo.values())), dtype=np.float64)
            if np.isnan(values).any():
                raise SgnasError(f"signal {self.name!r} scored an architecture NaN")
            self.cache.update(zip(todo, values.tolist()))
        return np.array([self.cache[k] for k in keys], dtype=np.float64)

    def loss(self, logits: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        from ..generator import arch_from_indices

        rows = logits[: self.samples]
        picked = gumbel_max(rows.detach(), generator)  # (n, D) exact draws
        archs = [arch_from_indices(self.space, idx.tolist()) for idx in picked.cpu()]
        rewards = self.score(archs)
        adv = self.baseline.advantages(rewards)
        self.baseline.update(rewards)
        logp = torch.log_softmax(rows, dim=-1).gather(-1, picked[..., None]).squeeze(-1).sum(-1)
        loss = -(torch.as_tensor(adv, dtype=logp.dtype, device=logp.device) * logp).mean()
        loss = loss / rows.shape[-2]  # per decision: the step size does not grow with depth
        finite = rewards[np.isfinite(rewards)]
        return loss, {"reward": float(finite.mean()) if len(finite) else float("-inf"),
                      "advantage": float(np.abs(adv).mean()),
                      "baseline_mean": self.baseline.mean,
                      "baseline_std": math.sqrt(self.baseline.var)}

    def describe(self) -> dict[str, Any]:
        settings = self.signal.describe() if hasattr(self.signal, "describe") else {}
        return {"name": self.name, "estimator": "reinforce", "samples": self.samples,
                "settings": settings}

    def state_dict(self) -> dict:
        return {"baseline": self.baseline.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if "baseline" in state:
            self.baseline.load_state_dict(state["baseline"])


def make_objective(signal: Any, space: Any, *, samples: int = 4, momentum: float = 0.9,
                   data: Any = None, options: dict | None = None, seed: int = 0):
    """The accuracy term of ``signal`` (a name, a :class:`~sgnas.signals.Signal`, or ``None``):
    ``None`` for the supernet CE, else an :class:`ExpectedSignal` or a
    :class:`ScoreFunctionSignal`. A name is made with ``options`` (those its factory takes), the
    space, and ``data`` (a zero-cost proxy's minibatch) unless ``options`` give one; an ensemble's
    reference pool is drawn from ``seed``."""
    from ..signals.base import SIGNALS, get_signal, split_name
    from ..signals.ensemble import _accepted

    name = check_signal(signal)
    base, arg = split_name(name)
    if base == SUPERNET and (signal is None or isinstance(signal, str)):
        return None
    if base in EXACT and arg is None:
        return ExpectedSignal(base, space)
    if isinstance(signal, str):
        opts = {"space": space, **(options or {})}
        if data is not None:
            opts.setdefault("data", data)
        signal = get_signal(name, **_accepted(SIGNALS.get(base), opts))
    if hasattr(signal, "members") and hasattr(signal, "signals"):  # an ensemble: rank vs a pool
        signal = PoolRankSignal(signal, space, seed=seed)
    return ScoreFunctionSignal(signal, space, samples, momentum)


__all__ = ["ADVANTAGE_CLIP", "EXACT", "REFERENCE_POOL", "SUPERNET", "WARMUP", "ExpectedSignal",
           "PoolRankSignal", "RewardBaseline",
           "ScoreFunctionSignal", "check_signal", "gumbel_max", "make_objective", "signal_name"]
