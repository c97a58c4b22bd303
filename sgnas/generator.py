"""The architecture generator G(C, B) of SGNAS, its random priors and its checkpoint format.

Inputs: the constraint ``c`` normalized to ``[0, 1]`` over the cost range, broadcast to a map
``(B, 1, L, m)``, and a random prior, the one-hot encoding ``(B, L, m, 4)`` of a random architecture
used as 4 channels. A few 3x3 convs (stride 1) on each input are summed, a learned position embedding
is added (layers differ in cost, and the convs see positions only through padding), a small residual
trunk follows, and an output conv gives 4 channels shaped like the prior: logits ``(B, L, m, 4)``
over :data:`~sgnas.space.CHOICES` per sub-block. The prior is also added to the logits
(``prior_logit_scale``), so an untrained generator starts from its prior.

Sub-blocks ``0 .. min_expansion - 1`` may not skip (forced sampling puts skips at the highest
indices, and every layer has at least ``min_expansion`` kernels): their skip logit is ``-inf``. Other
skips need not be contiguous; an architecture is the multiset of a layer's non-skip kernels
(:meth:`~sgnas.space.SearchSpace.arch_from_choices`), so position does not matter and the deployed
network uses the canonical forced-sampling order.

Random priors (as in the authors' code): a fixed pool of ``num_priors`` random architectures, each
pulled by a random local search to a cost level evenly spaced over the range; a target uses the prior
whose level is nearest. The pool is stored in the checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .errors import SgnasError, SpaceMismatchError
from .space import CHOICES, SKIP_INDEX, Architecture, SearchSpace

GENERATOR_KIND = "sgnas-generator"
GENERATOR_VERSION = 1


@dataclass
class GeneratorConfig:
    """Shape of the generator network."""

    channels: int = 32
    constraint_convs: int = 3
    prior_convs: int = 2
    trunk_blocks: int = 3
    position_embedding: bool = True
    prior_logit_scale: float = 1.0
    num_priors: int = 8

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, 1, 1)


def _branch(c_in: int, channels: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(max(1, depth)):
        layers += [_conv(c_in if i == 0 else channels, channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels)
        self.conv2 = _conv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class ArchitectureGenerator(nn.Module):
    """G(c, B) → architecture logits ``(B, L, m, len(CHOICES))`` (forbidden skips at ``-inf``)."""

    def __init__(
        self,
        space: SearchSpace,
        cfg: GeneratorConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        cfg = cfg or GeneratorConfig()
        self.space = space
        self.cfg = cfg
        L, m, n = space.num_layers, space.max_expansion, len(CHOICES)
        ch = cfg.channels
        self.constraint_head = _branch(1, ch, cfg.constraint_convs)
        self.prior_head = _branch(n, ch, cfg.prior_convs)
        self.position = nn.Parameter(torch.zeros(1, ch, L, m)) if cfg.position_embedding else None
        self.trunk = nn.Sequential(*[_ResidualBlock(ch) for _ in range(cfg.trunk_blocks)])
        self.tail = _conv(ch, n)
        mask = torch.zeros(L, m, n, dtype=torch.bool)
        mask[:, : space.min_expansion, SKIP_INDEX] = True
        self.register_buffer("skip_mask", mask, persistent=False)
        self._init_weights(generator)

    def _init_weights(self, generator: torch.Generator | None) -> None:
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(mod.bias)
        with torch.no_grad():
            self.tail.weight.mul_(0.1)

    def forward(self, c_norm: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """``c_norm`` ``(B,)`` in [0, 1], ``prior`` one-hot ``(B, L, m, 4)`` → logits ``(B, L, m, 4)``."""
        L, m, n = self.space.num_layers, self.space.max_expansion, len(CHOICES)
        if prior.dim() != 4 or tuple(prior.shape[1:]) != (L, m, n):
            raise SgnasError(f"prior must have shape (B, {L}, {m}, {n}), got {tuple(prior.shape)}")
        prior = prior.to(self.tail.weight.dtype)
        c = torch.as_tensor(c_norm, dtype=prior.dtype, device=prior.device).reshape(-1)
        if c.numel() == 1 and prior.shape[0] > 1:
            c = c.expand(prior.shape[0])
        if c.shape[0] != prior.shape[0]:
            raise SgnasError(f"{c.shape[0]} constraints for {prior.shape[0]} priors")
        cmap = c.view(-1, 1, 1, 1).expand(-1, 1, L, m)
        x = self.constraint_head(cmap) + self.prior_head(prior.permute(0, 3, 1, 2))
        if self.position is not None:
            x = x + self.position
        x = self.tail(self.trunk(x)).permute(0, 2, 3, 1)
        logits = x + self.cfg.prior_logit_scale * prior
        return logits.masked_fill(self.skip_mask, float("-inf"))

    def generate(self, c_norm: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Same as calling the module: logits for normalized constraints and priors."""
        return self(c_norm, prior)

    def to_architecture(self, logits: torch.Tensor) -> Architecture | list[Architecture]:
        """Argmax per sub-block → :class:`Architecture` (a list for a batch ``(B, L, m, 4)``)."""
        choices = logits.detach().argmax(dim=-1).cpu().numpy()
        if choices.ndim == 2:
            return self.space.arch_from_choices(choices)
        return [self.space.arch_from_choices(c) for c in choices]


# --------------------------------------------------------------------------- priors
@dataclass
class PriorPool:
    """Random priors: ``choices`` ``(K, L, m)`` indices into CHOICES and their normalized costs."""

    choices: np.ndarray
    levels: np.ndarray

    def __len__(self) -> int:
        return len(self.levels)

    def one_hot(self) -> torch.Tensor:
        """``(K, L, m, len(CHOICES))`` float32."""
        return torch.nn.functional.one_hot(
            torch.as_tensor(self.choices, dtype=torch.int64), len(CHOICES)
        ).float()

    def nearest(self, c_norm: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """Index of the prior whose cost level is nearest to each normalized target."""
        c = torch.as_tensor(c_norm, dtype=torch.float64).reshape(-1, 1).cpu()
        levels = torch.as_tensor(self.levels, dtype=torch.float64).reshape(1, -1)
        return (c - levels).abs().argmin(dim=1)

    def select(self, c_norm, device: torch.device | str | None = None) -> torch.Tensor:
        """One-hot priors ``(B, L, m, 4)`` nearest to the targets ``c_norm``."""
        return self.one_hot()[self.nearest(c_norm)].to(device or "cpu")

    def architectures(self, space: SearchSpace) -> list[Architecture]:
        return [space.arch_from_choices(c) for c in self.choices]

    def state(self) -> dict:
        return {
            "choices": torch.as_tensor(self.choices, dtype=torch.int64),
            "levels": torch.as_tensor(self.levels, dtype=torch.float64),
        }

    @classmethod
    def from_state(cls, state: dict) -> "PriorPool":
        return cls(
            np.asarray(state["choices"].cpu().numpy(), dtype=np.int64),
            np.asarray(state["levels"].cpu().numpy(), dtype=np.float64),
        )


def make_prior_pool(
    space: SearchSpace,
    cost,
    num_priors: int,
    rng: np.random.Generator,
    steps: int = 400,
    target_range: tuple[float, float] = (0.0, 1.0),
) -> PriorPool:
    """Sample ``num_priors`` random architectures, each pulled toward a cost level evenly spaced
    over ``target_range`` (normalized) by a random local search of ``steps`` single-layer changes.
    """
    if num_priors < 1:
        raise SgnasError("num_priors must be at least 1")
    lo, hi = target_range
    levels_goal = lo + (hi - lo) * (np.arange(num_priors) + 0.5) / num_priors
    tol = 0.1 * (hi - lo) / num_priors
    choices, levels = [], []
    for goal in levels_goal:
        rows = space.sample_choices(rng, forced_sampling=True)
        err = abs(float(cost.normalize(cost.exact(space.arch_from_choices(rows)))) - goal)
        for _ in range(steps):
            if err <= tol:
                break
            layer = int(rng.integers(space.num_layers))
            row = space.layer_choices(space.sample_layer(rng))
            trial = rows.copy()
            trial[layer] = row
            t_err = abs(float(cost.normalize(cost.exact(space.arch_from_choices(trial)))) - goal)
            if t_err < err:
                rows, err = trial, t_err
        arch = space.arch_from_choices(rows)
        choices.append(space.choices(arch))
        levels.append(float(cost.normalize(cost.exact(arch))))
    return PriorPool(np.stack(choices), np.asarray(levels, dtype=np.float64))


# ----------------------------------------------------------------------- checkpoint
@dataclass
class GeneratorBundle:
    """A generator with what it needs to generate: priors, cost identity, trained target range."""

    space: SearchSpace
    generator: ArchitectureGenerator
    priors: PriorPool
    cost: dict
    target_range: tuple[float, float] = (0.0, 1.0)
    meta: dict = field(default_factory=dict)
    path: str | None = None

    def check_cost(self, cost) -> None:
        """Raise :class:`SgnasError` unless ``cost`` is the cost model the generator was trained on."""
        if cost.space.fingerprint != self.space.fingerprint:
            raise SpaceMismatchError(
                f"cost is for space {cost.space.name!r} ({cost.space.fingerprint}), the generator "
                f"{self._where()}for {self.space.name!r} ({self.space.fingerprint})"
            )
        if cost.name != self.cost["name"] or cost.fingerprint != self.cost["fingerprint"]:
            raise SgnasError(
                f"cost mismatch: the generator {self._where()}was trained on {self.cost['name']} "
                f"{self.cost['fingerprint']}, given {cost.name} {cost.fingerprint}"
            )

    def _where(self) -> str:
        return f"{self.path} " if self.path else ""

    def allowed_range(self, cost) -> tuple[float, float]:
        """Targets (in ``cost`` units) this generator covers."""
        lo, hi = self.target_range
        return float(cost.denormalize(lo)), float(cost.denormalize(hi))

    @torch.no_grad()
    def architectures(self, c_norm: Sequence[float] | torch.Tensor) -> list[Architecture]:
        """One forward pass: an architecture per normalized target."""
        device = next(self.generator.parameters()).device
        c = torch.as_tensor(c_norm, dtype=torch.float32, device=device).reshape(-1)
        self.generator.eval()
        logits = self.generator(c, self.priors.select(c.cpu(), device))
        return list(self.generator.to_architecture(logits))

    def generate(self, targets: Sequence[float], cost) -> list[Architecture]:
        """Architectures for targets in ``cost`` units; a target outside the covered range is an error."""
        self.check_cost(cost)
        lo, hi = self.allowed_range(cost)
        slack = 1e-3 * (hi - lo)  # printed range bounds are rounded
        for t in targets:
            if not (lo - slack <= t <= hi + slack):
                raise SgnasError(
                    f"target {t:g} {cost.unit} is outside the range this generator covers: "
                    f"{lo:.4g} to {hi:.4g} {cost.unit}"
                )
        c_lo, c_hi = self.target_range
        c = [min(max(float(cost.normalize(t)), c_lo), c_hi) for t in targets]
        return self.architectures(c)

    def checkpoint(self, **extra: Any) -> dict:
        """The weights_only-loadable checkpoint dict (``extra`` adds training state)."""
        return {
            "generator_version": GENERATOR_VERSION,
            "space": self.space.name,
            "space_fingerprint": self.space.fingerprint,
            "generator_config": asdict(self.generator.cfg),
            "state_dict": {k: v.detach().cpu() for k, v in self.generator.state_dict().items()},
            "priors": self.priors.state(),
            "cost": dict(self.cost),
            "target_range": [float(x) for x in self.target_range],
            "meta": dict(self.meta),
            **extra,
        }


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a generator checkpoint dict (``weights_only=True``); another kind of file is an error."""
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, GENERATOR_KIND, map_location=map_location)
    if ckpt.get("generator_version", 0) > GENERATOR_VERSION:
        raise SgnasError(
            f"{path} has generator checkpoint version {ckpt['generator_version']}; upgrade sgnas"
        )
    return ckpt


def save_generator(path: str | os.PathLike, bundle: "GeneratorBundle", **extra: Any) -> Path:
    """Write ``bundle`` (plus training state ``extra``) atomically as a weights-only checkpoint."""
    from .checkpoint import save_checkpoint

    return save_checkpoint(path, bundle.checkpoint(**extra), GENERATOR_KIND)


def bundle_from_checkpoint(ckpt: dict, path: str | None = None) -> GeneratorBundle:
    """Rebuild a :class:`GeneratorBundle` from a checkpoint dict."""
    from .checkpoint import check_space

    space = check_space(ckpt, path or "<generator>")
    gen = ArchitectureGenerator(space, GeneratorConfig.from_dict(ckpt["generator_config"]))
    try:
        gen.load_state_dict(ckpt["state_dict"])
    except (KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise SgnasError(f"generator checkpoint {path} does not fit its config: {first[:160]}") from exc
    gen.eval()
    return GeneratorBundle(
        space=space,
        generator=gen,
        priors=PriorPool.from_state(ckpt["priors"]),
        cost=dict(ckpt["cost"]),
        target_range=tuple(float(x) for x in ckpt.get("target_range", (0.0, 1.0))),
        meta=dict(ckpt.get("meta", {})),
        path=str(path) if path is not None else None,
    )


def load_generator(path: str | os.PathLike, cost=None, map_location="cpu") -> GeneratorBundle:
    """Load a generator checkpoint; with ``cost``, a different cost model is an :class:`SgnasError`
    naming both fingerprints."""
    bundle = bundle_from_checkpoint(read_checkpoint(path, map_location), str(path))
    if cost is not None:
        bundle.check_cost(cost)
    return bundle


def default_generator_dirs() -> list[Path]:
    """Folders searched for generators: ``./generators`` and the project's ``generators/``."""
    dirs = [Path.cwd() / "generators", Path(__file__).resolve().parent.parent / "generators"]
    out: list[Path] = []
    for d in dirs:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def find_generator(cost, dirs: Sequence[str | os.PathLike]) -> Path | None:
    """The newest checkpoint under ``dirs`` whose cost fingerprint matches ``cost`` (or ``None``)."""
    found: list[tuple[float, Path]] = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.pt")):
            try:
                ckpt = read_checkpoint(path)
            except SgnasError:
                continue
            c = ckpt.get("cost", {})
            if (
                c.get("name") == cost.name
                and c.get("fingerprint") == cost.fingerprint
                and ckpt.get("space_fingerprint") == cost.space.fingerprint
            ):
                found.append((path.stat().st_mtime, path))
    return max(found)[1] if found else None


def default_generator_name(space: SearchSpace, cost) -> str:
    """File name of a generator for ``cost``: ``<space>-<cost name>-<cost fingerprint>.pt``."""
    return f"{space.name}-{cost.name}-{cost.fingerprint}.pt"
