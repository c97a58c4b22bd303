"""The architecture generator G(C, B) of SGNAS, its random priors, target interval and checkpoints.

The generator sees a search space as ``D`` decisions with ``K`` candidates each
(:func:`decisions`: the unified space has one decision per layer over its 80 canonical
configurations, i.e. sorted kernels in sub-blocks ``0..e-1``), so everything it emits is a
canonical architecture: what the supernet scores during training is what is deployed. Output:
per-decision candidate logits ``(B, D, K)`` (disallowed candidates at ``-inf``).

Inputs: the constraint ``c`` normalized over the target interval ``[C_L, C_H]`` and a random prior
(one candidate per decision, embedded). A per-decision embedding of both, plus a learned position
embedding, goes through a small residual trunk of 1-D convolutions over decisions with a global
context term, and a linear map to ``K`` logits; the prior's one-hot is added
(``prior_logit_scale``), so an untrained generator starts from its prior.

``[C_L, C_H]`` defaults to the 1st..99th percentile of the cost of forced-sampling architectures
(:func:`target_interval`): the training targets lie where architectures are, and the checkpoint
records the interval; targets outside it are refused with the interval in the message.

Random priors (as in the authors' code): a fixed pool of ``num_priors`` random architectures, each
pulled by a random local search to a cost level evenly spaced over the interval; a target uses the
prior whose level is nearest. The pool is stored in the checkpoint.

Decoding (:meth:`GeneratorBundle.decode`) turns the generator's distribution into the most probable
architecture inside a cost window (see :mod:`sgnas.decode`); ``argmax`` is the per-decision argmax.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from .errors import SgnasError, SpaceMismatchError
from .generator_catalog import (
    GENERATOR_KIND,
    GENERATOR_LOADERS,
    GENERATOR_VERSION,
    GeneratorCatalog,
    signal_name,
)
from .space import Architecture, SearchSpace
#: Percentiles of forced-sampling costs that bound the default target interval.
INTERVAL_PERCENTILES = (1.0, 99.0)


# ------------------------------------------------------------------------- the space's decisions
def decisions(space) -> tuple[int, int]:
    """``(D, K)``: decisions and candidates per decision (:meth:`Space.decisions`)."""
    return tuple(space.decisions())


def candidate_mask(space) -> np.ndarray:
    """``(D, K)`` bool: which candidates a decision may take (:meth:`Space.candidate_mask`)."""
    return np.asarray(space.candidate_mask(), dtype=bool)


def arch_from_indices(space, indices: Sequence[int]):
    """The architecture with candidate ``indices[d]`` at each decision."""
    return space.arch_from_indices(indices)


def indices_of(space, arch) -> np.ndarray:
    """Inverse of :func:`arch_from_indices`."""
    return np.asarray(space.indices_of(arch), dtype=np.int64)


def sample_indices(space, rng: np.random.Generator) -> np.ndarray:
    """Candidate indices of a forced-sampling random architecture (canonical form)."""
    return indices_of(space, space.sample(rng))


def target_interval(cost, samples: int = 2000, seed: int = 0,
                    percentiles: tuple[float, float] = INTERVAL_PERCENTILES) -> tuple[float, float]:
    """``(C_L, C_H)``: percentiles of ``cost`` (calibrated units) over forced-sampling architectures."""
    if getattr(cost, "tabulated", False):  # every architecture's cost is known: exact
        lo, hi = np.percentile(cost.values(), percentiles)
        return float(lo), float(hi)
    space = cost.space
    rng = np.random.default_rng(seed)
    table = cost.table
    rows = np.arange(table.shape[0])
    raw = np.array([cost.fixed + table[rows, sample_indices(space, rng)].sum()
                    for _ in range(samples)])
    vals = raw * cost.slope + cost.intercept
    lo, hi = np.percentile(vals, percentiles)
    return float(lo), float(hi)


# ------------------------------------------------------------------------------- network
@dataclass
class GeneratorConfig:
    """Shape of the generator network."""

    channels: int = 64
    trunk_blocks: int = 3
    position_embedding: bool = True
    prior_logit_scale: float = 1.0
    num_priors: int = 8
    #: Fourier features ``sin/cos(2^j pi c)``, ``j < constraint_frequencies``, of the normalized
    #: constraint beside ``c`` itself: resolution for a target → architecture map with many steps.
    constraint_frequencies: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        """Strict: an unknown key is an error naming it and the known ones."""
        from .config import load_dataclass

        return load_dataclass(cls, d, where="generator config")


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv1d(channels, channels, 3, 1, 1)
        self.context = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, D)
        h = torch.relu(self.conv1(x)) + self.context(x.mean(dim=2)).unsqueeze(2)
        return torch.relu(x + self.conv2(h))


class ArchitectureGenerator(nn.Module):
    """G(c, B) → candidate logits ``(B, D, K)`` (disallowed candidates at ``-inf``)."""

    def __init__(self, space, cfg: GeneratorConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        cfg = cfg or GeneratorConfig()
        self.space = space
        self.cfg = cfg
        D, K = decisions(space)
        ch = cfg.channels
        self.constraint = nn.Sequential(nn.Linear(1 + 2 * cfg.constraint_frequencies, ch), nn.ReLU(),
                                        nn.Linear(ch, ch))
        self.prior = nn.Embedding(K, ch)
        self.position = nn.Parameter(torch.zeros(1, ch, D)) if cfg.position_embedding else None
        self.trunk = nn.Sequential(*[_ResidualBlock(ch) for _ in range(cfg.trunk_blocks)])
        self.tail = nn.Conv1d(ch, K, 1)
        self.register_buffer("mask", torch.from_numpy(~candidate_mask(space)), persistent=False)
        self._init_weights(generator)

    def _init_weights(self, generator: torch.Generator | None) -> None:
        for mod in self.modules():
            if isinstance(mod, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.Embedding):
                nn.init.normal_(mod.weight, 0.0, 1.0, generator=generator)
        with torch.no_grad():
            self.tail.weight.mul_(0.1)

    def forward(self, c_norm: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """``c_norm`` ``(B,)`` in [0, 1], ``prior`` candidate indices ``(B, D)`` → ``(B, D, K)``."""
        D, K = decisions(self.space)
        if prior.dim() != 2 or prior.shape[1] != D:
            raise SgnasError(f"prior must have shape (B, {D}), got {tuple(prior.shape)}")
        return self.head(self.features(c_norm, prior), prior)

    def features(self, c_norm: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Per-decision input embedding ``(B, C, D)`` of the constraints and priors."""
        prior = prior.long()
        dtype = self.tail.weight.dtype
        c = torch.as_tensor(c_norm, dtype=dtype, device=prior.device).reshape(-1)
        if c.numel() == 1 and prior.shape[0] > 1:
            c = c.expand(prior.shape[0])
        if c.shape[0] != prior.shape[0]:
            raise SgnasError(f"{c.shape[0]} constraints for {prior.shape[0]} priors")
        x = self.prior(prior).permute(0, 2, 1) + self.constraint(self._encode(c)).unsqueeze(2)
        if self.position is not None:
            x = x + self.position
        return x

    def _encode(self, c: torch.Tensor) -> torch.Tensor:
        """``(B,)`` normalized constraints → ``(B, 1 + 2F)`` inputs of the constraint embedding."""
        c = c.view(-1, 1)
        if not self.cfg.constraint_frequencies:
            return c
        freq = torch.pi * 2.0 ** torch.arange(self.cfg.constraint_frequencies, dtype=c.dtype,
                                              device=c.device)
        return torch.cat([c, torch.sin(c * freq), torch.cos(c * freq)], dim=1)

    def head(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Trunk and tail: embedding ``(B, C, D)`` → masked logits ``(B, D, K)``."""
        prior = prior.long()
        D, K = decisions(self.space)
        dtype = self.tail.weight.dtype
        logits = self.tail(self.trunk(x)).permute(0, 2, 1)
        logits = logits + self.cfg.prior_logit_scale * nn.functional.one_hot(prior, K).to(dtype)
        return logits.masked_fill(self.mask, float("-inf"))

    def to_architecture(self, logits: torch.Tensor) -> Architecture | list[Architecture]:
        """Per-decision argmax → :class:`Architecture` (a list for a batch ``(B, D, K)``)."""
        idx = logits.detach().argmax(dim=-1).cpu().numpy()
        if idx.ndim == 1:
            return arch_from_indices(self.space, idx)
        return [arch_from_indices(self.space, row) for row in idx]


# --------------------------------------------------------------------------------- priors
@dataclass
class PriorPool:
    """Random priors: ``choices`` ``(P, D)`` candidate indices and their normalized cost levels."""

    choices: np.ndarray
    levels: np.ndarray

    def __len__(self) -> int:
        return len(self.levels)

    def nearest(self, c_norm) -> torch.Tensor:
        """Index of the prior whose level is nearest to each normalized target."""
        c = torch.as_tensor(c_norm, dtype=torch.float64).reshape(-1, 1).cpu()
        levels = torch.as_tensor(self.levels, dtype=torch.float64).reshape(1, -1)
        return (c - levels).abs().argmin(dim=1)

    def select(self, c_norm, device: torch.device | str | None = None) -> torch.Tensor:
        """Prior candidate indices ``(B, D)`` nearest to the targets ``c_norm``."""
        table = torch.as_tensor(self.choices, dtype=torch.int64)
        return table[self.nearest(c_norm)].to(device or "cpu")

    def architectures(self, space) -> list[Architecture]:
        return [arch_from_indices(space, c) for c in self.choices]

    def state(self) -> dict:
        return {"choices": torch.as_tensor(self.choices, dtype=torch.int64),
                "levels": torch.as_tensor(self.levels, dtype=torch.float64)}

    @classmethod
    def from_state(cls, state: dict) -> "PriorPool":
        return cls(np.asarray(state["choices"].cpu().numpy(), dtype=np.int64),
                   np.asarray(state["levels"].cpu().numpy(), dtype=np.float64))


def make_prior_pool(space, cost, num_priors: int, rng: np.random.Generator,
                    interval: tuple[float, float], steps: int = 400) -> PriorPool:
    """``num_priors`` random architectures, each pulled toward a cost level evenly spaced over
    ``interval`` (cost units) by a random local search of ``steps`` single-decision changes."""
    if num_priors < 1:
        raise SgnasError("num_priors must be at least 1")
    lo, hi = interval
    allowed = candidate_mask(space)
    value = cost.of_indices

    goals = lo + (hi - lo) * (np.arange(num_priors) + 0.5) / num_priors
    tol = 0.1 * (hi - lo) / num_priors
    choices, levels = [], []
    for goal in goals:
        ch = sample_indices(space, rng)
        err = abs(value(ch) - goal)
        for _ in range(steps):
            if err <= tol:
                break
            d = int(rng.integers(len(ch)))
            trial = ch.copy()
            trial[d] = int(rng.choice(np.flatnonzero(allowed[d])))
            t_err = abs(value(trial) - goal)
            if t_err < err:
                ch, err = trial, t_err
        choices.append(ch)
        levels.append((value(ch) - lo) / (hi - lo))
    return PriorPool(np.stack(choices), np.asarray(levels, dtype=np.float64))


def decode_tabulated(space, logp: np.ndarray, cost, bounds: tuple[float, float],
                     extra: Sequence = ()):
    """Exact decoding over every architecture of a small space whose costs are tabulated
    (:class:`~sgnas.costs.CellTableCost`): the most probable one with ``cost`` in ``bounds`` and
    every further constraint's cost (``extra``: :class:`~sgnas.decode.Constraint` s over tabulated
    costs) at most its upper bound. A cost with few distinct values (NB201's FLOPs) may have no
    architecture inside the window: the window then starts at the highest cost below its top.
    Degenerate architectures (``space.alive_mask()``: NB201 cells with no path from input to
    output) are never returned."""
    from .decode import decode_enumerated

    alive = space.alive_mask()  # never a degenerate architecture
    choices = space.all_choices()[alive]
    costs = [cost, *(c.cost for c in extra)]
    values = np.stack([c.values() for c in costs], axis=1)[alive]
    lo, hi = bounds
    first = values[:, 0]
    if not ((first >= lo) & (first <= hi)).any() and (first <= hi).any():
        lo = float(first[first <= hi].max())
    limits = [(lo, hi), *((c.lower, c.upper) for c in extra)]
    labels = [getattr(c, "label", "") or c.name for c in costs]
    return decode_enumerated(logp, choices, values, limits, labels)


# ----------------------------------------------------------------------------- the bundle
class MetaMembers:
    """The members of the :class:`~sgnas.generator_protocol.Generator` protocol read from a
    generator's ``meta`` (both kinds)."""

    meta: dict

    @property
    def signal(self) -> str:
        return signal_name(self.meta)

    @property
    def default_eps(self) -> float | None:
        """0.01; ``None`` (at most the target) for a generator trained on an accuracy signal."""
        return None if self.meta.get("decode") == "upper" else 0.01


@dataclass
class GeneratorBundle(MetaMembers):
    """A generator with what it needs to generate: priors, cost identity, target interval (a
    :class:`~sgnas.generator_protocol.Generator`)."""

    kind: ClassVar[str] = GENERATOR_KIND
    has_argmax: ClassVar[bool] = True
    space: Any
    generator: ArchitectureGenerator
    priors: PriorPool
    cost: dict
    interval: tuple[float, float]
    meta: dict = field(default_factory=dict)
    path: str | None = None

    # -------------------------------------------------------------- cost identity
    def trained_for(self, cost) -> bool:
        """Whether ``cost`` is the cost model the generator was trained on."""
        return cost.name == self.cost["name"] and cost.fingerprint == self.cost["fingerprint"]

    def check_space(self, cost) -> None:
        if cost.space.fingerprint != self.space.fingerprint:
            raise SpaceMismatchError(
                f"cost is for space {cost.space.name!r} ({cost.space.fingerprint}), the generator "
                f"{self._where()}for {self.space.name!r} ({self.space.fingerprint})")

    def check_cost(self, cost) -> None:
        """Raise unless ``cost`` is the cost model the generator was trained on."""
        self.check_space(cost)
        if not self.trained_for(cost):
            raise SgnasError(
                f"cost mismatch: the generator {self._where()}was trained on {self.cost['name']} "
                f"{self.cost['fingerprint']}, given {cost.name} {cost.fingerprint}")

    def _where(self) -> str:
        return f"{self.path} " if self.path else ""

    def match_note(self, cost) -> str:
        """How it serves ``cost``: ``""`` when trained for it, a note for a FLOPs generator serving
        a latency model or a generator of another model of the same cost; another cost is an
        error."""
        self.check_space(cost)
        if self.cost["name"] == "flops" and cost.name == "latency":
            return flops_note(self.path, cost)
        if self.cost["name"] != cost.name:
            self.check_cost(cost)  # raises: a generator of another cost
        if not self.trained_for(cost):
            return (f"note: {self.path} was trained on another {cost.name} model "
                    f"({self.cost['fingerprint']}); targets are placed by their position in this "
                    f"model's interval")
        return ""

    def describe(self, cost) -> dict:
        return {}

    def interval_for(self, cost) -> tuple[float, float]:
        """``[C_L, C_H]`` in ``cost`` units: the stored one for the very cost model trained on, else
        the same percentiles computed on ``cost`` (another LUT of the space, the same device's LUT
        measured on another machine or calibrated again, another cost)."""
        self.check_space(cost)
        if self.trained_for(cost) and self._same_numbers(cost):
            return self.interval
        return target_interval(cost)

    def _same_numbers(self, cost) -> bool:
        """Whether ``cost`` has the range and calibration of the cost trained on (a LUT's
        fingerprint names its latency model, not its measured numbers)."""
        now = cost.describe()
        for key in ("range", "calibration"):
            a, b = self.cost.get(key), now.get(key)
            if (a is None) != (b is None):
                return False
            if a is not None and not np.allclose(np.asarray(a, float), np.asarray(b, float),
                                                 rtol=1e-9, atol=0.0):
                return False
        return True

    def normalize(self, target: float, cost) -> float:
        """Position of ``target`` in :meth:`interval_for`; outside it is an error naming it."""
        lo, hi = self.interval_for(cost)
        slack = 1e-6 * (hi - lo)
        if not (lo - slack <= target <= hi + slack):
            raise SgnasError(
                f"target {target:g} {cost.unit} is outside the interval this generator covers on "
                f"this {cost.name} model: {lo:.4g} to {hi:.4g} {cost.unit}")
        return min(max((target - lo) / (hi - lo), 0.0), 1.0)

    # -------------------------------------------------------------------- outputs
    @torch.no_grad()
    def logits(self, c_norm: Sequence[float]) -> torch.Tensor:
        """Logits ``(B, D, K)`` for normalized targets (one forward pass)."""
        device = next(self.generator.parameters()).device
        c = torch.as_tensor(list(c_norm), dtype=torch.float32, device=device).reshape(-1)
        self.generator.eval()
        return self.generator(c, self.priors.select(c.cpu(), device))

    def logprobs(self, target: float, cost) -> np.ndarray:
        """Per-decision candidate log-probabilities ``(D, K)`` for ``target`` in ``cost`` units."""
        lg = self.logits([self.normalize(target, cost)])[0].double()
        return torch.log_softmax(lg, dim=-1).cpu().numpy()

    def architectures(self, c_norm: Sequence[float]) -> list[Architecture]:
        """Argmax architectures for normalized targets."""
        return list(self.generator.to_architecture(self.logits(c_norm)))

    def argmax(self, targets: Sequence[float], cost) -> list[Architecture]:
        """Per-decision argmax architectures for targets in ``cost`` units."""
        return self.architectures([self.normalize(t, cost) for t in targets])

    def decode(self, target: float, cost, eps: float | None = 0.01, extra: Sequence = ()):
        """Most probable architecture with ``cost`` in ``[target (1 - eps), target]`` (``eps``
        None: at most ``target``) that meets the further :class:`~sgnas.decode.Constraint` s
        ``extra``; returns ``(arch, Decoded)``."""
        from .decode import AdditiveCost, Constraint, check_achievable, decode, window

        lo, hi = (None, float(target)) if eps is None else window(target, eps)
        if getattr(cost, "tabulated", False):
            out = decode_tabulated(self.space, self.logprobs(target, cost), cost,
                                   (-np.inf if lo is None else lo, hi), extra)
            return arch_from_indices(self.space, out.choice), out
        constraints = [Constraint(AdditiveCost.from_cost(cost), hi, lo), *extra]
        check_achievable(constraints, candidate_mask(self.space))
        out = decode(self.logprobs(target, cost), constraints)
        return arch_from_indices(self.space, out.choice), out

    # ----------------------------------------------------------------- checkpoint
    def checkpoint(self, **extra: Any) -> dict:
        """The weights_only-loadable checkpoint dict (``extra`` adds training state)."""
        return {
            "generator_version": GENERATOR_VERSION,
            "space": self.space.name,
            "space_fingerprint": self.space.fingerprint,
            "decisions": list(decisions(self.space)),
            "generator_config": asdict(self.generator.cfg),
            "state_dict": {k: v.detach().cpu() for k, v in self.generator.state_dict().items()},
            "priors": self.priors.state(),
            "cost": dict(self.cost),
            "interval": [float(x) for x in self.interval],
            "meta": dict(self.meta),
            **extra,
        }


def load_weights(gen: nn.Module, ckpt: dict, what: str) -> None:
    """Load ``ckpt["state_dict"]`` into ``gen`` and put it in eval mode; a mismatch is one line
    naming ``what``."""
    try:
        gen.load_state_dict(ckpt["state_dict"])
    except (KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise SgnasError(f"{what} does not fit its config: {first[:160]}") from exc
    gen.eval()


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a generator checkpoint dict (``weights_only=True``); another kind, or a version this
    code cannot read, is an error saying what to do."""
    from .checkpoint import load_checkpoint

    return check_generator_version(load_checkpoint(path, GENERATOR_KIND,
                                                   map_location=map_location), path)


def check_generator_version(ckpt: dict, path: str | os.PathLike) -> dict:
    """``ckpt`` if this code reads its generator format, else an error saying what to do."""
    version = int(ckpt.get("generator_version", 0))
    if version > GENERATOR_VERSION:
        raise SgnasError(f"{path} has generator checkpoint version {version}; upgrade sgnas")
    if version < GENERATOR_VERSION:
        raise SgnasError(
            f"{path} is an old-format generator (version {version}: per-sub-block outputs, no "
            f"target interval); retrain it with sgnas train-generator (see docs/RESULTS.md)")
    return ckpt


def save_generator(path: str | os.PathLike, bundle: GeneratorBundle, **extra: Any) -> Path:
    """Write ``bundle`` (plus training state ``extra``) atomically as a weights-only checkpoint."""
    from .checkpoint import save_checkpoint

    return save_checkpoint(path, bundle.checkpoint(**extra), GENERATOR_KIND)


def bundle_from_checkpoint(ckpt: dict, path: str | None = None) -> GeneratorBundle:
    """Rebuild a :class:`GeneratorBundle` from a checkpoint dict."""
    from .checkpoint import check_space

    space = check_space(ckpt, path or "<generator>")
    gen = ArchitectureGenerator(space, GeneratorConfig.from_dict(ckpt["generator_config"]))
    load_weights(gen, ckpt, f"generator checkpoint {path}")
    return GeneratorBundle(
        space=space, generator=gen, priors=PriorPool.from_state(ckpt["priors"]),
        cost=dict(ckpt["cost"]), interval=tuple(float(x) for x in ckpt["interval"]),
        meta=dict(ckpt.get("meta", {})), path=str(path) if path is not None else None)


def load_generator(path: str | os.PathLike, cost=None, map_location="cpu") -> GeneratorBundle:
    """Load a generator checkpoint; with ``cost``, a different cost model is an error."""
    bundle = bundle_from_checkpoint(read_checkpoint(path, map_location), str(path))
    if cost is not None:
        bundle.check_cost(cost)
    return bundle


def default_generator_dirs() -> list[Path]:
    """Folders searched for generators: ``./generators`` and the shipped ``generators/``."""
    from .shipped import shipped_dir

    dirs = [Path.cwd() / "generators", shipped_dir("generators")]
    out: list[Path] = []
    for d in dirs:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def find_generator(cost, dirs: Sequence[str | os.PathLike], same_name: bool = False) -> Path | None:
    """:meth:`GeneratorCatalog.find <sgnas.generator_catalog.GeneratorCatalog.find>` over
    ``dirs``."""
    return GeneratorCatalog(dirs).find(cost, same_name)


def resolve_generator(cost, dirs: Sequence[str | os.PathLike]) -> tuple[GeneratorBundle, str]:
    """The per-cost generator that serves ``cost`` (:meth:`GeneratorCatalog.choose
    <sgnas.generator_catalog.GeneratorCatalog.choose>`, shared generators aside), loaded, with its
    :meth:`~GeneratorBundle.match_note`."""
    bundle = load_generator(GeneratorCatalog(dirs).choose(cost, shared=False))
    return bundle, bundle.match_note(cost)


def flops_note(path, cost) -> str:
    """The note of a FLOPs generator serving a latency model it was not trained on."""
    device = getattr(getattr(cost, "lut", None), "device_name", "this device")
    return (f"note: no latency generator for {device}; using the FLOPs generator {path} with "
            f"exact decoding on this LUT (targets are placed by their position in the LUT's "
            f"interval)")


def default_generator_name(space, cost) -> str:
    """File name of a generator for ``cost``: ``<space>-<cost name>-<cost fingerprint>.pt``."""
    return f"{space.name}-{cost.name}-{cost.fingerprint}.pt"


GENERATOR_LOADERS.register(GENERATOR_KIND, load_generator)
