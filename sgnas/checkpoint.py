"""Checkpoint files: a tagged dict of tensors and plain values, readable with ``weights_only=True``.

Every checkpoint carries ``kind`` (e.g. ``"sgnas-supernet"``), ``format_version`` and, for models of
a search space, ``space`` and ``space_fingerprint``; loading a checkpoint made for another definition
of the space raises :class:`~sgnas.errors.SpaceMismatchError`. Files are written atomically.
"""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from .errors import SgnasError, SpaceMismatchError, first_line
from .fileio import atomic_torch_save
from .space import SearchSpace, get_space

FORMAT_VERSION = 1
#: Keys of a supernet checkpoint that hold training state rather than metadata.
STATE_KEYS = ("model", "optimizer", "scheduler", "rng")


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` unless ``obj`` is made of tensors, dicts (ordered or not), lists, tuples,
    str, int, float, bool and None only (what ``torch.load(weights_only=True)`` reads back)."""
    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, torch.Tensor):
        return
    if type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            if type(k) not in (str, int):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            check_plain(v, f"{where}.{k}")
        return
    if type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"{where}: {type(obj).__name__} cannot be stored in a weights-only checkpoint")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any], kind: str) -> Path:
    """Write ``payload`` tagged with ``kind`` atomically to ``path``; returns the path."""
    data = {"kind": kind, "format_version": FORMAT_VERSION, **payload}
    check_plain(data)
    atomic_torch_save(path, data)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike, kind: str | None = None, map_location: Any = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and check its ``kind``.

    A missing, truncated or foreign file, or one of another kind, raises :class:`SgnasError`.
    """
    return _read(Path(path), kind, map_location=map_location, mmap=False)


def read_header(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """The checkpoint's plain values (kind, space, cost, meta...) without its tensors: the file is
    memory-mapped, so tensor data is never read, and tensors are left out of the answer. Errors as
    :func:`load_checkpoint`."""
    return _plain(_read(Path(path), kind, map_location="cpu", mmap=True))


def _plain(obj: Any) -> Any:
    """``obj`` with its tensors left out."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items() if not isinstance(v, torch.Tensor)}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj if not isinstance(v, torch.Tensor)]
    return obj


def _read(path: Path, kind: str | None, map_location: Any, mmap: bool) -> dict[str, Any]:
    if not path.is_file():
        raise SgnasError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines()
                       if "Unsupported global" in line), "")
        if detail:
            detail = detail.split(" was not")[0].replace("WeightsUnpickler error: ", "")
            raise SgnasError(f"{path} holds objects other than tensors and plain values, refused "
                             f"by a weights-only load ({detail})") from exc
        raise SgnasError(f"cannot read checkpoint {path}: truncated or not a checkpoint") from exc
    except Exception as exc:  # any failure to decode means the file is damaged or foreign
        raise SgnasError(
            f"cannot read checkpoint {path}: truncated or not a checkpoint ({first_line(exc, 120)})"
        ) from exc
    if not isinstance(data, dict) or "kind" not in data:
        raise SgnasError(f"{path} is not an sgnas checkpoint (no 'kind' tag)")
    if kind is not None and data["kind"] != kind:
        raise SgnasError(f"{path} is a {data['kind']!r} checkpoint, expected {kind!r}")
    return data


def check_space(data: dict[str, Any], path: str | os.PathLike) -> SearchSpace:
    """The current definition of the checkpoint's space; raise if its fingerprint changed."""
    name = data.get("space")
    if not isinstance(name, str):
        raise SgnasError(f"checkpoint {path} does not name its search space")
    space = get_space(name)
    recorded = data.get("space_fingerprint")
    if recorded != space.fingerprint:
        raise SpaceMismatchError(
            f"checkpoint {path} was trained for space {name!r} with fingerprint {recorded}, "
            f"the current definition has {space.fingerprint}"
        )
    return space


def checkpoint_meta(data: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's metadata: everything except model, optimizer and RNG state."""
    return {k: v for k, v in data.items() if k not in STATE_KEYS}
