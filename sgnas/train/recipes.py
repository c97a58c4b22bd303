"""Training recipes for standalone networks: typed dataclasses, serialized as YAML or JSON.

Two built-in recipes:

* :func:`cifar_recipe` — the common CIFAR-10 recipe: SGD (momentum 0.9, Nesterov), lr 0.1 at batch
  128 with cosine decay, weight decay 5e-4, label smoothing 0.1, 200 epochs, dropout 0.2, padded
  random crop + flip, optional cutout.
* :func:`imagenet_recipe` — the paper's: "RMSProp optimizer with 0.9 momentum ... Learning rate is
  increased from 0 to 0.16 in the first 5 epochs with batch size 256, and then decays 0.03 every
  3 epochs" (SGNAS §4.1), i.e. lr x 0.97 every 3 epochs after warm-up. The paper gives no weight
  decay, epochs, dropout or EMA; the values here follow the MnasNet/EfficientNet TensorFlow recipe
  the schedule comes from (RMSProp decay 0.9 and epsilon 1e-3, weight decay 1e-5, label smoothing
  0.1, dropout 0.2, weight EMA 0.9999, 350 epochs). All of them are fields and can be overridden.

The learning rate is given at ``lr_batch`` images per step and scaled linearly with ``batch_size``
(``peak = lr * batch_size / lr_batch``); :meth:`TrainRecipe.lr_at` is the schedule.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import load_dataclass
from ..errors import SgnasError, require

OPTIMIZERS = ("sgd", "rmsprop")
SCHEDULES = ("cosine", "step")
AUGMENTS = ("auto", "cifar", "imagenet")


@dataclass(frozen=True)
class TrainRecipe:
    """Everything that defines how a standalone network is trained (data location excluded).

    ``schedule`` ``"cosine"`` decays from the peak to ``min_lr`` over the epochs after warm-up;
    ``"step"`` multiplies the peak by ``decay_rate`` every ``decay_epochs`` after warm-up. Warm-up
    is linear from 0 over ``warmup_epochs``. ``ema_decay`` 0 disables the weight EMA; ``cutout`` 0
    disables cutout (otherwise the side of the erased square, in pixels). ``augment`` ``"auto"``
    keeps the data's own choice (CIFAR style for images of 64 px or less).
    """

    name: str = "custom"
    epochs: int = 200
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    lr_batch: int = 128
    momentum: float = 0.9
    nesterov: bool = True
    rmsprop_alpha: float = 0.9
    rmsprop_eps: float = 1e-3
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    decay_rate: float = 0.97
    decay_epochs: float = 3.0
    min_lr: float = 0.0
    label_smoothing: float = 0.1
    dropout: float = 0.2
    ema_decay: float = 0.0
    augment: str = "auto"
    cutout: int = 0
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "TrainRecipe":
        """Raise :class:`SgnasError` naming the first bad field."""
        if self.epochs < 1:
            raise SgnasError(f"recipe epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1 or self.lr_batch < 1:
            raise SgnasError(f"recipe batch sizes must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise SgnasError(f"recipe lr must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise SgnasError(
                f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}"
            )
        if self.schedule not in SCHEDULES:
            raise SgnasError(f"unknown schedule {self.schedule!r}; known: {', '.join(SCHEDULES)}")
        if self.augment not in AUGMENTS:
            raise SgnasError(f"unknown augmentation {self.augment!r}; known: {', '.join(AUGMENTS)}")
        if self.schedule == "step" and not (self.decay_epochs > 0 and 0 < self.decay_rate <= 1):
            raise SgnasError("step schedule needs decay_epochs > 0 and decay_rate in (0, 1]")
        for name in ("warmup_epochs", "weight_decay", "min_lr", "cutout", "grad_clip", "momentum"):
            if getattr(self, name) < 0:
                raise SgnasError(f"recipe {name} must be 0 or more, got {getattr(self, name)}")
        for name in ("label_smoothing", "dropout", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise SgnasError(f"recipe {name} must be in [0, 1), got {getattr(self, name)}")
        return self

    # ----------------------------------------------------------------- schedule
    @property
    def peak_lr(self) -> float:
        """Learning rate at the end of warm-up: ``lr * batch_size / lr_batch``."""
        return self.lr * self.batch_size / self.lr_batch

    def lr_at(self, epoch: float) -> float:
        """Learning rate at fractional ``epoch`` (0 = start of training)."""
        peak = self.peak_lr
        if epoch < self.warmup_epochs:
            return peak * max(epoch, 0.0) / self.warmup_epochs
        t = epoch - self.warmup_epochs
        if self.schedule == "step":
            return peak * self.decay_rate ** math.floor(t / self.decay_epochs + 1e-9)
        span = self.epochs - self.warmup_epochs
        frac = min(t / span, 1.0) if span > 0 else 1.0
        return self.min_lr + (peak - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))

    # ------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainRecipe":
        """Strictly from a mapping (:func:`sgnas.config.load_dataclass`)."""
        if not isinstance(d, dict):
            raise SgnasError("a recipe must be a mapping of field names to values")
        return load_dataclass(cls, d, where="recipe", label="recipe field")

    def override(self, **changes: Any) -> "TrainRecipe":
        """A copy with the non-``None`` ``changes`` applied (unknown names are an error)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return TrainRecipe.from_dict({**self.to_dict(), **changes})

    def diff(self, other: "TrainRecipe") -> list[str]:
        """Names of the fields whose values differ from ``other``."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if a[k] != b[k]]




# --------------------------------------------------------------------------- built-ins
def cifar_recipe() -> TrainRecipe:
    """CIFAR-10 from scratch: SGD Nesterov, lr 0.1 @ 128 cosine, wd 5e-4, 200 epochs."""
    return TrainRecipe(
        name="cifar",
        epochs=200,
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        lr_batch=128,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        schedule="cosine",
        warmup_epochs=0.0,
        label_smoothing=0.1,
        dropout=0.2,
        ema_decay=0.0,
        augment="cifar",
        cutout=0,
    )


def imagenet_recipe() -> TrainRecipe:
    """The paper's ImageNet recipe: RMSProp momentum 0.9, warm-up 0 -> 0.16 @ 256 over 5 epochs,
    then x0.97 every 3 epochs; weight decay 1e-5, label smoothing 0.1, EMA 0.9999, 350 epochs."""
    return TrainRecipe(
        name="imagenet",
        epochs=350,
        batch_size=256,
        optimizer="rmsprop",
        lr=0.16,
        lr_batch=256,
        momentum=0.9,
        nesterov=False,
        rmsprop_alpha=0.9,
        rmsprop_eps=1e-3,
        weight_decay=1e-5,
        schedule="step",
        warmup_epochs=5.0,
        decay_rate=0.97,
        decay_epochs=3.0,
        label_smoothing=0.1,
        dropout=0.2,
        ema_decay=0.9999,
        augment="imagenet",
    )


RECIPES = {"cifar": cifar_recipe, "imagenet": imagenet_recipe}


def save_recipe(recipe: TrainRecipe, path: str | os.PathLike) -> None:
    """Write ``recipe`` atomically as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
    from ..fileio import atomic_write_bytes

    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        yaml = require("yaml", "tools")

        text = yaml.safe_dump(recipe.to_dict(), sort_keys=False)
    else:
        text = json.dumps(recipe.to_dict(), indent=1) + "\n"
    atomic_write_bytes(path, text.encode())


def load_recipe(source: str | os.PathLike) -> TrainRecipe:
    """A built-in recipe by name (``cifar``, ``imagenet``) or a YAML/JSON recipe file."""
    if str(source) in RECIPES:
        return RECIPES[str(source)]()
    path = Path(source)
    if not path.is_file():
        raise SgnasError(
            f"unknown recipe {str(source)!r}: not a built-in ({', '.join(RECIPES)}) nor a file"
        )
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        yaml = require("yaml", "tools")

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SgnasError(f"recipe {path} is not valid YAML ({exc.__class__.__name__})") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SgnasError(f"recipe {path} is not valid JSON ({exc.msg})") from exc
    base = data.pop("base", None) if isinstance(data, dict) else None
    if base is not None:
        if base not in RECIPES:
            raise SgnasError(f"recipe {path}: unknown base {base!r}; known: {', '.join(RECIPES)}")
        return RECIPES[base]().override(**data)
    return TrainRecipe.from_dict(data)


__all__ = [
    "RECIPES",
    "TrainRecipe",
    "cifar_recipe",
    "imagenet_recipe",
    "load_recipe",
    "save_recipe",
]
