"""Training logs: a JSON-lines file of events and a tqdm progress bar with an ETA (rank 0 only)."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any


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


class Progress:
    """A tqdm bar over one epoch's steps (no-op when disabled or tqdm is missing)."""

    def __init__(self, total: int, desc: str, enabled: bool = True, initial: int = 0):
        self._bar = None
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is in the tools extra
            return
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                         file=sys.stderr, leave=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


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
