"""Supernet checkpoints: loading a trained supernet and writing its slim, distributable copy.

The generic checkpoint I/O (tagged weights-only dicts, space checks) lives in
:mod:`sgnas.checkpoint`; its names are importable from here too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import (  # noqa: F401 (re-exported)
    FORMAT_VERSION,
    STATE_KEYS,
    check_plain,
    check_space,
    checkpoint_meta,
    load_checkpoint,
    save_checkpoint,
)
from ..errors import SgnasError, first_line
from ..supernet import new_supernet

SUPERNET_KIND = "sgnas-supernet"


def load_supernet(path: str | os.PathLike, map_location: Any = "cpu"):
    """Load a supernet checkpoint as ``(supernet of its space in eval mode, metadata dict)``."""
    data = load_checkpoint(path, SUPERNET_KIND, map_location=map_location)
    space = check_space(data, path)
    forced = bool(data.get("forced_sampling", True))
    model = new_supernet(space, forced_sampling=forced)
    try:
        model.load_state_dict(data["model"])
    except (KeyError, RuntimeError) as exc:
        raise SgnasError(f"checkpoint {path} does not fit the supernet of {space.name!r}: "
                         f"{first_line(exc, 160)}") from exc
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
