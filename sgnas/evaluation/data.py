"""Image data for supernet training and evaluation: ImageFolder trees or CIFAR-10, via torchvision.

An ImageFolder root holds ``train/<class>/*.jpg`` and ``test/<class>/*.jpg`` (or ``val/``); a CIFAR-10
root holds torchvision's ``cifar-10-batches-py`` pickles. The training split is divided, from a seed,
into a training part (the supernet learns on it) and a held-out part (the generator and the search
baselines score architectures on it); the ``test`` split is kept for final numbers.

Augmentation follows the usual recipes: for small images (<= 64 px, CIFAR style) a padded random crop
and a horizontal flip; for large images (ImageNet style) ``RandomResizedCrop`` and a flip, evaluated
at ``Resize(size / 0.875)`` + ``CenterCrop(size)``. BN recalibration uses the training transforms (as
in SPOS); evaluation and the held-out split use the evaluation transforms.

With ``device_augment`` (decoded uint8 cache, CIFAR style) the training split yields uint8 images and
:class:`DeviceCifarAugment` pads, crops, flips and normalizes whole batches on the training device,
its draws made on the CPU from ``(seed, epoch, rank, batch)`` so they do not depend on the device,
the loader workers or a resume.

torchvision is imported inside the functions that need it.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..errors import SgnasError, require
from ..space import SearchSpace
from .distributed import current
from .seeds import mix_seed

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FORMATS = ("auto", "imagefolder", "cifar10")
STYLES = ("auto", "cifar", "imagenet")
TEST_SPLITS = ("test", "val")


@dataclass
class DataConfig:
    """Where the images are and how they are split, augmented and batched.

    ``held_out`` below 1 is a fraction of the training split, 1 or more a number of images;
    with ``balanced`` each class contributes to the held-out part in proportion to its size.
    ``cache_dir`` decodes the images once into uint8 tensors kept there and augments tensors
    (CIFAR style only; see :mod:`sgnas.evaluation.decoded`); ``device_augment`` then leaves the
    training images uint8 and augments each batch on the training device
    (:class:`DeviceCifarAugment`). ``batch_size`` is per process (per GPU under ``torchrun``). ``image_size`` defaults to the
    space's input size; ``style`` ``"auto"`` picks CIFAR augmentation for images of 64 px or less.
    """

    root: str
    format: str = "auto"
    image_size: int | None = None
    batch_size: int = 128
    eval_batch_size: int | None = None
    workers: int = 2
    held_out: float = 0.1
    seed: int = 0
    style: str = "auto"
    download: bool = False
    balanced: bool = False
    cache_dir: str | None = None
    device_augment: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise SgnasError(f"unknown data format {self.format!r}; known: {', '.join(FORMATS)}")
        if self.style not in STYLES:
            raise SgnasError(f"unknown augmentation style {self.style!r}; known: {', '.join(STYLES)}")
        if self.batch_size < 1:
            raise SgnasError(f"batch size must be at least 1, got {self.batch_size}")
        if self.workers < 0:
            raise SgnasError(f"workers must be 0 or more, got {self.workers}")
        if self.held_out < 0:
            raise SgnasError(f"held-out size must be 0 or more, got {self.held_out}")
        if self.device_augment and not self.cache_dir:
            raise SgnasError("augmenting on the device needs the decoded-image cache (--cache-dir)")

    @property
    def eval_batch(self) -> int:
        return self.eval_batch_size or self.batch_size


def supernet_data_config(meta: dict[str, Any], root: str, *, format: str = "auto",
                         batch_size: int = 128, workers: int = 2, download: bool = False,
                         held_out: float | None = None, seed: int | None = None,
                         cache_dir: str | None = None) -> DataConfig:
    """The :class:`DataConfig` of the split a supernet was trained with (``meta`` as returned by
    :func:`~sgnas.evaluation.checkpoint.load_supernet`): its image size, augmentation style, held-out
    size, class balance and split seed; ``held_out`` and ``seed`` override two of them."""
    trained = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    return DataConfig(
        root=root, format=format, image_size=trained.get("image_size"),
        style=trained.get("style", "auto"), batch_size=batch_size, workers=workers,
        held_out=trained.get("held_out", 0.1) if held_out is None else held_out,
        seed=trained.get("seed", 0) if seed is None else seed, download=download,
        balanced=bool(trained.get("balanced", False)), cache_dir=cache_dir,
    )


@dataclass
class Datasets:
    """The three splits, each available with training or evaluation transforms.

    ``train`` (training transforms) is what the supernet learns on and what BN recalibration uses;
    ``held_out`` and ``test`` carry evaluation transforms; ``held_out_augmented`` is the held-out
    part with training transforms.
    """

    train: Subset
    held_out: Subset
    held_out_augmented: Subset
    test: Dataset
    classes: list[str]
    image_size: int
    style: str
    device_augment: "DeviceCifarAugment | None" = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# ------------------------------------------------------------------------------ transforms
def resolve_style(cfg: DataConfig, image_size: int) -> str:
    """The augmentation style: ``cifar`` for images of 64 px or less unless configured."""
    if cfg.style != "auto":
        return cfg.style
    return "cifar" if image_size <= 64 else "imagenet"


def build_transforms(style: str, image_size: int):
    """``(train_transform, eval_transform)`` for ``style`` (``cifar`` or ``imagenet``)."""
    T = require("torchvision.transforms", "data")

    if style == "cifar":
        norm = T.Normalize(CIFAR_MEAN, CIFAR_STD)
        pad = max(1, image_size // 8)
        train = T.Compose([
            T.RandomCrop(image_size, padding=pad, pad_if_needed=True),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            norm,
        ])
        evaluation = T.Compose([T.CenterCrop(image_size), T.ToTensor(), norm])
    elif style == "imagenet":
        norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        train = T.Compose([
            T.RandomResizedCrop(image_size),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            norm,
        ])
        evaluation = T.Compose([
            T.Resize(int(round(image_size / 0.875))),
            T.CenterCrop(image_size),
            T.ToTensor(),
            norm,
        ])
    else:
        raise SgnasError(f"unknown augmentation style {style!r}; known: cifar, imagenet")
    return train, evaluation


# ------------------------------------------------------------------------------ datasets
def detect_format(root: str | os.PathLike) -> str:
    """``cifar10`` when ``root`` holds torchvision's CIFAR-10 pickles, else ``imagefolder``."""
    return "cifar10" if (Path(root) / "cifar-10-batches-py").is_dir() else "imagefolder"


def _class_folders(split: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(split) if e.is_dir() and not e.name.startswith("."))


def check_image_folder(root: str | os.PathLike) -> tuple[Path, Path]:
    """Check an ImageFolder root and return its ``(train, test)`` split folders.

    Raises :class:`SgnasError` naming the path for a missing root or split, a split without class
    folders, or class folders that differ between the splits. Empty class folders are reported when
    the datasets are built.
    """
    root = Path(root)
    if not root.is_dir():
        raise SgnasError(f"data folder not found: {root}")
    train = root / "train"
    if not train.is_dir():
        raise SgnasError(f"data folder {root} has no train/ split (want train/<class>/<image>)")
    test = next((root / s for s in TEST_SPLITS if (root / s).is_dir()), None)
    if test is None:
        raise SgnasError(f"data folder {root} has no test/ or val/ split (want test/<class>/<image>)")
    train_classes = _class_folders(train)
    if not train_classes:
        raise SgnasError(f"{train} has no class folders (want {train}/<class>/<image>)")
    test_classes = _class_folders(test)
    if not test_classes:
        raise SgnasError(f"{test} has no class folders (want {test}/<class>/<image>)")
    if test_classes != train_classes:
        diff = sorted(set(train_classes) ^ set(test_classes))
        raise SgnasError(
            f"{test} and {train} have different class folders ({', '.join(diff[:5])})"
        )
    return train, test


def _image_folder(split: Path):
    ImageFolder = require("torchvision.datasets", "data").ImageFolder
    IMG_EXTENSIONS = require("torchvision.datasets.folder", "data").IMG_EXTENSIONS

    try:
        return ImageFolder(str(split))
    except FileNotFoundError:
        empty = [
            c for c in _class_folders(split)
            if not any(f.lower().endswith(IMG_EXTENSIONS)
                       for _, _, files in os.walk(split / c) for f in files)
        ]
        raise SgnasError(
            f"{split} has class folders without images: {', '.join(empty[:5]) or '?'} "
            f"(want {', '.join(IMG_EXTENSIONS[:2])}, ... files)"
        ) from None


def _load_base(cfg: DataConfig) -> tuple[Dataset, Dataset, list[str]]:
    fmt = detect_format(cfg.root) if cfg.format == "auto" else cfg.format
    if fmt == "cifar10":
        CIFAR10 = require("torchvision.datasets", "data").CIFAR10

        if not Path(cfg.root).is_dir() and not cfg.download:
            raise SgnasError(f"data folder not found: {cfg.root}")
        try:
            train = CIFAR10(cfg.root, train=True, download=cfg.download)
            test = CIFAR10(cfg.root, train=False, download=cfg.download)
        except RuntimeError as exc:
            raise SgnasError(
                f"CIFAR-10 not found or corrupt under {cfg.root} (want "
                f"{Path(cfg.root) / 'cifar-10-batches-py'}; pass --download to fetch it)"
            ) from exc
        return train, test, list(train.classes)
    train_dir, test_dir = check_image_folder(cfg.root)
    train = _image_folder(train_dir)
    test = _image_folder(test_dir)
    return train, test, list(train.classes)


def _with_transform(dataset: Dataset, transform) -> Dataset:
    view = copy.copy(dataset)
    view.transform = transform
    return view


def split_indices(n: int, held_out: float, seed: int,
                  labels: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic disjoint ``(train, held_out)`` index arrays (each sorted) over ``range(n)``.

    ``held_out`` below 1 is a fraction of ``n``, otherwise a count; at least one image stays in the
    training part. With ``labels`` the split is class-balanced: each class gives its share of the
    held-out count (largest remainders), drawn at random within the class.
    """
    count = int(round(held_out * n)) if held_out < 1 else int(held_out)
    if held_out >= 1 and held_out != int(held_out):
        raise SgnasError(f"held-out count must be a whole number, got {held_out}")
    if count >= n:
        raise SgnasError(f"held-out size {count} leaves no training images (the split has {n})")
    rng = np.random.default_rng(seed)
    if labels is None:
        perm = rng.permutation(n)
        return np.sort(perm[count:]), np.sort(perm[:count])
    y = np.asarray(labels)
    classes = np.unique(y)
    sizes = np.array([(y == c).sum() for c in classes])
    share = count * sizes / n
    take = np.floor(share).astype(int)
    for i in np.argsort(-(share - take), kind="stable")[: count - int(take.sum())]:
        take[i] += 1
    held = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)]
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    return np.setdiff1d(np.arange(n), held_idx), held_idx


def build_datasets(cfg: DataConfig, space: SearchSpace | None = None) -> Datasets:
    """Load and check the data, split the training set and attach the transforms.

    With ``space``, the image size defaults to ``space.input_size`` and a dataset with more classes
    than the space's classifier has outputs is refused.
    """
    image_size = cfg.image_size or (space.input_size if space is not None else None)
    if image_size is None:
        raise SgnasError("an image size is needed (give DataConfig.image_size or a search space)")
    base_train, base_test, classes = _load_base(cfg)
    if space is not None and len(classes) > space.num_classes:
        raise SgnasError(
            f"{cfg.root} has {len(classes)} classes, space {space.name!r} classifies "
            f"{space.num_classes}"
        )
    style = resolve_style(cfg, image_size)
    if cfg.cache_dir:
        from .decoded import decoded_split, tensor_transforms

        base_train = decoded_split(base_train, cfg.cache_dir)
        base_test = decoded_split(base_test, cfg.cache_dir)
        train_tf, eval_tf = tensor_transforms(style, image_size, CIFAR_MEAN, CIFAR_STD)
    else:
        train_tf, eval_tf = build_transforms(style, image_size)
    labels = list(base_train.targets) if cfg.balanced else None
    train_idx, held_idx = split_indices(len(base_train), cfg.held_out, cfg.seed, labels)
    aug = _with_transform(base_train, train_tf)
    plain = _with_transform(base_train, eval_tf)
    device_aug = None
    if cfg.device_augment:
        if style != "cifar":
            raise SgnasError(f"augmenting on the device supports the cifar style only, not {style!r}")
        device_aug = DeviceCifarAugment(image_size, max(1, image_size // 8), CIFAR_MEAN, CIFAR_STD)
    return Datasets(
        train=Subset(_with_transform(base_train, None) if device_aug else aug, train_idx.tolist()),
        held_out=Subset(plain, held_idx.tolist()),
        held_out_augmented=Subset(aug, held_idx.tolist()),
        test=_with_transform(base_test, eval_tf),
        classes=classes,
        image_size=image_size,
        style=style,
        device_augment=device_aug,
    )


# ------------------------------------------------------------------------- batched augmentation
class DeviceCifarAugment:
    """CIFAR augmentation of a uint8 batch ``(N, 3, H, W)`` on its own device: zero padding by
    ``pad``, a random ``size`` crop and a random horizontal flip per image, then normalization to
    float (the distribution of :class:`~sgnas.train.decoded.TensorCifarTrain`, one call per batch).
    """

    def __init__(self, size: int, pad: int, mean: Sequence[float], std: Sequence[float]):
        self.size, self.pad = size, pad
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def draws(self, n: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
        """``(n, 3)`` int64 ``(top, left, flip)`` per image, drawn on the CPU from ``generator``."""
        p, s = self.pad, self.size
        top = torch.randint(0, height + 2 * p - s + 1, (n,), generator=generator)
        left = torch.randint(0, width + 2 * p - s + 1, (n,), generator=generator)
        flip = (torch.rand(n, generator=generator) < 0.5).long()
        return torch.stack([top, left, flip], dim=1)

    def apply(self, images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """The augmented float batch for given ``draws`` (see :meth:`draws`)."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise SgnasError(f"device augmentation wants a uint8 (N, 3, H, W) batch, got "
                             f"{images.dtype} {tuple(images.shape)}")
        p, s, dev = self.pad, self.size, images.device
        padded = torch.nn.functional.pad(images, (p, p, p, p))
        draws = draws.to(dev, non_blocking=True)
        ar = torch.arange(s, device=dev)
        rows = draws[:, 0, None] + ar  # (N, s)
        cols = torch.where(draws[:, 2, None].bool(), draws[:, 1, None] + (s - 1 - ar),
                           draws[:, 1, None] + ar)
        n = torch.arange(images.shape[0], device=dev)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]]  # (N, s, s, 3)
        out = out.permute(0, 3, 1, 2).float().div_(255.0)
        if self.mean.device != dev:
            self.mean, self.std = self.mean.to(dev), self.std.to(dev)
        return (out - self.mean) / self.std

    def __call__(self, images: torch.Tensor, seed: int) -> torch.Tensor:
        """Augment ``images`` with draws from ``seed`` (same seed, same result on any device)."""
        gen = torch.Generator().manual_seed(int(seed) % (2 ** 63))
        return self.apply(images, self.draws(images.shape[0], images.shape[2], images.shape[3], gen))


def loader_images_per_s(dataset: Dataset, batch_size: int, batches: int, *, workers: int = 0,
                        warmup: int = 2, seed: int = 0) -> float:
    """Images per second the training loader alone delivers (after ``warmup`` batches; the
    worker start-up is not counted)."""
    import time

    loader = train_loader(dataset, batch_size, seed=seed, workers=workers)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            x, _ = next(it)
        except StopIteration:
            break
        n += x.shape[0]
    return n / max(time.perf_counter() - t0, 1e-9)


# ------------------------------------------------------------------------------ loaders
class SkipSampler(Sampler[int]):
    """Yields the indices of ``base`` from position ``skip`` on (to resume inside an epoch)."""

    def __init__(self, base: Sampler[int], skip: int = 0) -> None:
        self.base = base
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        it = iter(self.base)
        for _ in range(self.skip):
            next(it, None)
        return it

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)  # type: ignore[arg-type]


def train_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    seed: int,
    epoch: int = 0,
    start_batch: int = 0,
    workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Shuffled training loader of one epoch, sharded across processes when distributed.

    The order comes from a :class:`~torch.utils.data.DistributedSampler` seeded with ``seed`` and
    ``epoch`` (one replica when not distributed); incomplete batches are dropped; the first
    ``start_batch`` batches are skipped. Worker seeds come from ``(seed, epoch, rank, start_batch)``.
    """
    from torch.utils.data import DistributedSampler

    info = current()
    rank, world = info.rank, info.world_size
    base = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                              drop_last=True)
    base.set_epoch(epoch)
    sampler = SkipSampler(base, start_batch * batch_size)
    gen = torch.Generator().manual_seed(mix_seed(seed, epoch, rank, start_batch))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                      num_workers=workers, pin_memory=pin_memory, generator=gen,
                      persistent_workers=False)


def batches_per_epoch(dataset: Dataset, batch_size: int) -> int:
    """Full batches each process gets per epoch (as :func:`train_loader` yields them)."""
    world = current().world_size
    return (len(dataset) // world) // batch_size  # type: ignore[arg-type]


def eval_loader(dataset: Dataset, batch_size: int, *, workers: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """Ordered loader over all of ``dataset`` (no sharding), workers kept alive between passes."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=pin_memory, persistent_workers=workers > 0)


def calibration_loader(dataset: Dataset, batch_size: int, batches: int, *, seed: int,
                       workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """Loader over a fixed random subset of ``batches * batch_size`` images of ``dataset``.

    Used for BN recalibration: the images are the same on every pass; with training transforms the
    augmentation draws come from the global torch RNG (or worker seeds drawn from it), which
    :func:`sgnas.evaluation.evaluate.recalibrate_bn` seeds, so each pass is reproducible.
    """
    n = len(dataset)  # type: ignore[arg-type]
    count = min(n, batches * batch_size)
    idx = np.sort(np.random.default_rng(seed).permutation(n)[:count])
    return DataLoader(Subset(dataset, idx.tolist()), batch_size=batch_size, shuffle=False,
                      num_workers=workers, pin_memory=pin_memory, persistent_workers=False)


def describe(datasets: Datasets) -> dict[str, Any]:
    """Sizes and settings of ``datasets`` as a JSON-able dict (for logs and checkpoints)."""
    return {
        "train": len(datasets.train),
        "held_out": len(datasets.held_out),
        "test": len(datasets.test),  # type: ignore[arg-type]
        "classes": list(datasets.classes),
        "image_size": datasets.image_size,
        "style": datasets.style,
        "augment_on": "device" if datasets.device_augment is not None else "loader",
    }

