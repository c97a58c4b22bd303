"""Image splits decoded once into uint8 tensors, cached on disk, and augmented as tensors.

Decoding tens of thousands of small JPEGs every epoch costs more CPU than training a small network
on them. :func:`decoded_split` decodes an ImageFolder split (or takes CIFAR-10's pickled arrays)
into one ``(N, 3, H, W)`` uint8 tensor, stored in a cache folder under a name derived from the
split's path, file count and total size, and :class:`DecodedImages` serves it through tensor
transforms: :class:`TensorCifarTrain` (zero-padded random crop and horizontal flip, random draws
from the global torch RNG) and :class:`TensorNormalize`. All images of a split must have one size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import SgnasError
from ..fileio import atomic_torch_save


class DecodedImages(Dataset):
    """``(transform(image), label)`` pairs over a uint8 ``(N, 3, H, W)`` tensor."""

    def __init__(self, images: torch.Tensor, targets: Sequence[int], classes: Sequence[str],
                 transform: Callable | None = None):
        self.images = images
        self.targets = [int(t) for t in targets]
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int):
        img = self.images[i]
        return (self.transform(img) if self.transform is not None else img), self.targets[i]


class TensorNormalize:
    """uint8 CHW -> float in [0, 1] -> per-channel standardization."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return (img.float().div_(255.0) - self.mean) / self.std


class TensorCifarTrain(TensorNormalize):
    """Random ``size`` crop of the image zero-padded by ``pad``, random horizontal flip, normalize."""

    def __init__(self, size: int, pad: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__(mean, std)
        self.size, self.pad = size, pad

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        p, s = self.pad, self.size
        padded = torch.nn.functional.pad(img, (p, p, p, p))
        h, w = padded.shape[1:]
        top = int(torch.randint(0, h - s + 1, (1,)))
        left = int(torch.randint(0, w - s + 1, (1,)))
        out = padded[:, top:top + s, left:left + s]
        if float(torch.rand(1)) < 0.5:
            out = out.flip(2)
        return super().__call__(out)


def tensor_transforms(style: str, image_size: int, mean, std):
    """``(train, eval)`` tensor transforms; only the CIFAR style (padded crop + flip) exists."""
    if style != "cifar":
        raise SgnasError(f"decoded-image caching supports the cifar augmentation style only, "
                         f"not {style!r}")
    return (TensorCifarTrain(image_size, max(1, image_size // 8), mean, std),
            TensorNormalize(mean, std))


def _folder_key(dataset) -> str:
    h = hashlib.sha256(os.path.abspath(dataset.root).encode())
    total = 0
    for path, _ in dataset.samples:
        total += os.path.getsize(path)
    h.update(f"{len(dataset.samples)}:{total}".encode())
    return h.hexdigest()[:16]


def _decode_folder(dataset) -> torch.Tensor:
    from PIL import Image

    arrays = []
    shape = None
    for path, _ in dataset.samples:
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"))
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise SgnasError(f"{path} is {a.shape[1]}x{a.shape[0]} px, other images of the split "
                             f"are {shape[1]}x{shape[0]}; decoded caching needs one size")
        arrays.append(a)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def decoded_split(dataset, cache_dir: str | os.PathLike) -> DecodedImages:
    """``dataset`` (a torchvision ImageFolder or CIFAR10) as :class:`DecodedImages`, decoded once
    and cached in ``cache_dir`` (ImageFolder only; CIFAR-10 arrays are used as they are)."""
    if hasattr(dataset, "data") and isinstance(getattr(dataset, "data"), np.ndarray):
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        return DecodedImages(images, dataset.targets, dataset.classes)
    cache = Path(cache_dir)
    name = f"{Path(dataset.root).name}-{_folder_key(dataset)}.pt"
    path = cache / name
    if path.is_file():
        data = torch.load(path, weights_only=True)
        images = data["images"]
    else:
        images = _decode_folder(dataset)
        cache.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(path, {"images": images, "root": str(dataset.root)})
    return DecodedImages(images, dataset.targets, dataset.classes)
