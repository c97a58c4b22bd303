"""Atomic file writes (a file is either its old content or its complete new content, never half)
and the one JSON reader whose errors name the file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import SgnasError


def refuse_overwrite(paths: Iterable[str | os.PathLike], force: bool) -> None:
    """Raise :class:`SgnasError` naming the first of ``paths`` that exists, unless ``force``."""
    if force:
        return
    for path in paths:
        if os.path.exists(path):
            raise SgnasError(f"{path} exists; pass --force to overwrite")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    atomic_write_with(path, lambda fh: fh.write(data))


def atomic_write_with(path: str | os.PathLike, write: Callable[[Any], Any]) -> None:
    """Call ``write(binary_file_handle)`` on a temporary file, fsync it, then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by ``None`` and tuples by lists (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
    """Serialize ``obj`` as JSON and write it atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=indent, sort_keys=False) + "\n").encode())


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` through a temporary file, so an interrupted save never corrupts ``path``."""
    import torch

    atomic_write_with(path, lambda fh: torch.save(obj, fh))


def read_json(path: str | os.PathLike, what: str, missing: str | None = None) -> Any:
    """The JSON content of ``path``. A missing file raises :class:`SgnasError` ``missing`` (default
    ``"<what> <path> not found"``); an unreadable, corrupt or truncated one a one-line error naming
    ``what`` and the file."""
    path = Path(path)
    if not path.exists():
        raise SgnasError(missing or f"{what} {path} not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = getattr(exc, "msg", None) or str(exc)
        raise SgnasError(f"{what} {path} is corrupt or truncated ({msg})") from exc
    except OSError as exc:
        raise SgnasError(f"cannot read {what} {path}: {exc.strerror}") from exc


def finite_float(text: str, where: str, what: str = "value", column: str | None = None) -> float:
    """A table field ``text`` as a finite number; else one line naming it: ``<where>: <what>
    '<text>' [in column '<column>'] is not a finite number`` (``where``: file and line)."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        in_column = f" in column {column!r}" if column is not None else ""
        raise SgnasError(f"{where}: {what} {text!r}{in_column} is not a finite number")
    return v
