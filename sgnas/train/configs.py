"""The settings of supernet, generator and shared-generator training (torch-free, so the CLI reads
its option defaults from these dataclasses without importing the trainers)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..config import load_dataclass
from ..errors import SgnasError
from ..space import SearchSpace

#: ``path``: the sampled sub-network only, gated (cheap, CPU); ``weighted``: the supernet's
#: weighted forward of the straight-through one-hot (every candidate gets a gradient; ~3x the cost).
RELAXATIONS = ("path", "weighted")


@dataclass
class GeneratorTrainConfig:
    """Hyper-parameters of generator training; ``interval`` in cost units (``None``: p1..p99 of
    forced-sampling architectures)."""

    epochs: int = 20
    lr: float = 2e-3
    weight_decay: float = 0.0
    tau0: float = 2.0
    tau_decay: float = 0.9
    tau_min: float = 0.3
    cost_weight: float = 20.0
    overshoot_weight: float = 2.0
    cost_samples: int = 16
    relaxation: str = "path"
    signal_samples: int = 4
    signal_weight: float = 1.0
    baseline_momentum: float = 0.9
    batches_per_epoch: int | None = None
    interval: tuple[float, float] | None = None
    eval_targets: int = 5
    eval_batches: int = 2
    eps: float = 0.01
    prior_search_steps: int = 400
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.interval is not None:
            lo, hi = (float(x) for x in self.interval)
            if not lo < hi:
                raise SgnasError(f"target interval must be increasing, got {lo:g} {hi:g}")
            self.interval = (lo, hi)
        if self.relaxation not in RELAXATIONS:
            raise SgnasError(f"relaxation must be one of {', '.join(RELAXATIONS)}")
        if self.overshoot_weight <= 0 or self.cost_weight < 0:
            raise SgnasError("overshoot weight must be > 0 and the cost weight >= 0")
        if not 1 <= self.signal_samples <= self.cost_samples:
            raise SgnasError(f"signal samples must be in 1..cost samples ({self.cost_samples}), "
                             f"got {self.signal_samples}")
        if self.signal_weight < 0 or not 0.0 <= self.baseline_momentum < 1.0:
            raise SgnasError("signal weight must be >= 0 and the baseline momentum in [0, 1)")

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorTrainConfig":
        """Strict: an unknown key is an error naming it and the known ones."""
        return load_dataclass(cls, d, where="generator training config")

    def tau(self, epoch: int) -> float:
        """Gumbel-softmax temperature of ``epoch`` (0-based)."""
        return max(self.tau_min, self.tau0 * self.tau_decay**epoch)


@dataclass
class SharedTrainConfig:
    """Hyper-parameters of shared-generator training."""

    steps: int = 400
    lr: float = 2e-3
    tau0: float = 2.0
    tau_min: float = 0.3
    cost_weight: float = 20.0
    ce_weight: float = 1.0
    overshoot_weight: float = 2.0
    cost_samples: int = 16
    num_refs: int = 50
    device_input: bool = True
    seed: int = 0

    def tau(self, step: int) -> float:
        """Temperature: geometric from ``tau0`` to ``tau_min`` over the run."""
        frac = step / max(self.steps - 1, 1)
        return float(self.tau0 * (self.tau_min / self.tau0) ** frac)


@dataclass
class SupernetTrainConfig:
    """Settings of SPOS supernet training.

    ``lr`` and ``weight_decay`` default by image size: for small images (<= 64 px, CIFAR)
    0.1 x total batch / 128 and 5e-4, for large ones (ImageNet) 0.045 x total batch / 256 (the
    paper: 0.045 at batch 256) and 4e-5. ``max_steps_per_epoch`` caps an epoch for budgeted runs.
    """

    space: str = "cifar10"
    epochs: int = 50
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    nesterov: bool = True
    label_smoothing: float = 0.1
    grad_clip: float = 0.0  # max global gradient norm per step; 0 disables clipping
    paths_per_step: int = 4
    forced_sampling: bool = True
    warmup_epochs: float = 0.0
    seed: int = 0
    max_steps_per_epoch: int | None = None
    amp: bool = False
    channels_last: bool = False
    device: str = "auto"
    log_every: int = 50
    save_every_steps: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise SgnasError(f"epochs must be at least 1, got {self.epochs}")
        if self.paths_per_step < 1:
            raise SgnasError(f"paths per step must be at least 1, got {self.paths_per_step}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise SgnasError(f"max steps per epoch must be at least 1, got {self.max_steps_per_epoch}")
        if self.lr is not None and not self.lr > 0:
            raise SgnasError(f"learning rate must be positive, got {self.lr}")
        if self.warmup_epochs < 0:
            raise SgnasError(f"warm-up epochs must be 0 or more, got {self.warmup_epochs}")

    def resolved(self, space: SearchSpace, total_batch: int) -> "SupernetTrainConfig":
        """A copy with ``lr`` and ``weight_decay`` filled in for ``space`` and the total batch."""
        small = space.input_size <= 64
        lr = self.lr
        if lr is None:
            lr = 0.1 * total_batch / 128 if small else 0.045 * total_batch / 256
        wd = self.weight_decay
        if wd is None:
            wd = 5e-4 if small else 4e-5
        return replace(self, lr=float(lr), weight_decay=float(wd))


__all__ = ["GeneratorTrainConfig", "RELAXATIONS", "SharedTrainConfig", "SupernetTrainConfig"]
