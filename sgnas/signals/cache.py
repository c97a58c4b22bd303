"""Per-architecture score caches on disk: one CSV ``arch_str,score`` per signal and settings.

The file name carries the signal's name and a hash of its key (space name and fingerprint, the
data, batch size, seed and any other setting that changes a score); a JSON file beside it records
the key in clear. Rows are appended in whole lines with one write each (``O_APPEND``), flushed
and synced, so an interrupted run leaves every finished row and at most one partial last line,
which reading ignores; a later run scores only the architectures not in the file (resumable).
Scores are written with ``repr`` (exact round trip); ``-inf`` marks a degenerate architecture.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import SgnasError
from ..fileio import atomic_write_bytes, atomic_write_json

HEADER = "arch_str,score\n"
DEFAULT_DIR = os.path.join(".sgnas_cache", "signals")
ENV_DIR = "SGNAS_SIGNAL_CACHE"


def default_dir() -> str:
    """``$SGNAS_SIGNAL_CACHE`` if set, else ``.sgnas_cache/signals`` (relative to the working
    directory)."""
    return os.environ.get(ENV_DIR) or DEFAULT_DIR


def key_hash(key: Mapping[str, Any]) -> str:
    """Short stable hash of a JSON-able key."""
    blob = json.dumps(key, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def format_score(v: float) -> str:
    if math.isnan(v):
        raise SgnasError("a NaN score cannot be cached")
    return "-inf" if v == -math.inf else ("inf" if v == math.inf else repr(float(v)))


class ScoreCache:
    """The cache file of one signal and key (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike, name: str, key: Mapping[str, Any]):
        self.key = dict(key)
        self.dir = Path(directory)
        self.path = self.dir / f"{name}-{key_hash(self.key)}.csv"
        self.meta_path = self.path.with_suffix(".json")

    def load(self) -> dict[str, float]:
        """Cached scores by architecture string (a partial last line is ignored)."""
        if not self.path.is_file():
            return {}
        text = self.path.read_text()
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        out: dict[str, float] = {}
        for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if line == 1:
                if [c.strip() for c in row] != ["arch_str", "score"]:
                    raise SgnasError(f"{self.path}: not a score cache (header {row!r})")
                continue
            if len(row) != 2:
                raise SgnasError(f"{self.path} line {line}: want arch_str,score, got {row!r}")
            try:
                v = float(row[1])
            except ValueError:
                raise SgnasError(f"{self.path} line {line}: score {row[1]!r} is not a number") from None
            if math.isnan(v):
                raise SgnasError(f"{self.path} line {line}: score is NaN")
            out[row[0]] = v
        return out

    def append(self, rows: Iterable[tuple[str, float]]) -> int:
        """Append ``(arch_str, score)`` rows (one write); returns how many."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        n = 0
        for arch, v in rows:
            writer.writerow([arch, format_score(float(v))])
            n += 1
        if not n:
            return 0
        if not self.path.is_file():
            self.prepare()
        data = buf.getvalue().encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return n

    def prepare(self) -> None:
        """Create the file (header and key) or drop a partial last line an interrupted run left;
        call it before appending from several processes at once (one process, first)."""
        if self.path.is_file():
            text = self.path.read_bytes()
            if text and not text.endswith(b"\n"):  # drop an interrupted partial line
                atomic_write_bytes(self.path, text[: text.rfind(b"\n") + 1])
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.meta_path, self.key)
        atomic_write_bytes(self.path, HEADER.encode())


__all__ = ["DEFAULT_DIR", "ENV_DIR", "HEADER", "ScoreCache", "default_dir", "format_score",
           "key_hash"]
