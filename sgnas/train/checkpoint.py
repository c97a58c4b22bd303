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

from ..errors import SgnasError, SpaceMismatchError
from ..fileio import atomic_torch_save
from ..space import SearchSpace, get_space

SUPERNET_KIND = "sgnas-supernet"
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
    path = Path(path)
    if not path.is_file():
        raise SgnasError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines()
                       if "Unsupported global" in line), "")
        if detail:
            detail = detail.split(" was not")[0].replace("WeightsUnpickler error: ", "")
            raise SgnasError(f"{path} holds objects other than tensors and plain values, refused "
                             f"by a weights-only load ({detail})") from exc
        raise SgnasError(f"cannot read checkpoint {path}: truncated or not a checkpoint") from exc
    except Exception as exc:  # any failure to decode means the file is damaged or foreign
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SgnasError(
            f"cannot read checkpoint {path}: truncated or not a checkpoint ({msg[:120]})"
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


def load_supernet(path: str | os.PathLike, map_location: Any = "cpu"):
    """Load a supernet checkpoint as ``(supernet in eval mode, metadata dict)``."""
    from ..supernet import UnifiedSupernet

    data = load_checkpoint(path, SUPERNET_KIND, map_location=map_location)
    space = check_space(data, path)
    forced = bool(data.get("forced_sampling", True))
    factory = getattr(space, "build_supernet", None)
    model = factory(forced) if factory is not None else UnifiedSupernet(space, forced_sampling=forced)
    try:
        model.load_state_dict(data["model"])
    except (KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise SgnasError(f"checkpoint {path} does not fit the supernet of {space.name!r}: "
                         f"{first[:160]}") from exc
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    return model.eval(), checkpoint_meta(data)


def slim_supernet(src: str | os.PathLike, dst: str | os.PathLike, half: bool = True) -> Path:
    """Write a distributable copy of a supernet checkpoint: weights and metadata only.

    Optimizer, scheduler and RNG states are dropped and, with ``half``, floating-point tensors are
    stored as float16 (``load_supernet`` copies them back into float32 parameters). The copy loads
    with :func:`load_supernet` but cannot resume training.
    """
    data = load_checkpoint(src, SUPERNET_KIND)
    check_space(data, src)
    model = {
        k: (v.half() if half and v.is_floating_point() else v) for k, v in data["model"].items()
    }
    meta = {k: v for k, v in checkpoint_meta(data).items() if k not in ("kind", "format_version")}
    meta["slim"] = {"source": os.path.basename(os.fspath(src)), "half": half}
    return save_checkpoint(dst, {**meta, "model": model}, SUPERNET_KIND)
