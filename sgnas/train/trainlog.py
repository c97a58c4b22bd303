"""Training logs: a JSON-lines file of events and ETA formatting (progress bars: :mod:`sgnas.progress`) (rank 0 only)."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..progress import Progress, note  # noqa: F401 (re-exported)


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class JsonlLog:
    """Appends one JSON object per event to ``path``; each line has ``event``, ``time`` and
    ``elapsed_s``. Disabled (writes nothing) when ``enabled`` is false."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True, append: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self._t0 = time.perf_counter()
        self._fh = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a" if append else "w", buffering=1)

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"event": event, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "elapsed_s": round(time.perf_counter() - self._t0, 3)}
        record.update({k: _plain(v) for k, v in fields.items()})
        if self._fh is not None:
            self._fh.write(json.dumps(record) + "\n")
        return record

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "JsonlLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a JSON-lines log (a torn last line is skipped)."""
    out = []
    with open(path) as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def format_eta(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
