"""The ``table`` signal: per-architecture scores imported from a CSV (``arch_str,score``).

Like ``sgnas lut import`` for latency: a supernet trained elsewhere, a benchmark column, or the
scores a slow signal computed once can drive every search. ``column`` names the score column
(default ``score``; a file with one column besides ``index`` and ``arch_str`` uses that one).
Errors are one line naming the file and row: a missing file or column, an unparsable architecture,
one of another space, a duplicate, a NaN or infinite score; an NB201 table must hold every cell
(``partial=True`` relaxes that), and scoring an architecture the table does not hold names it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ArchitectureError, SgnasError
from ..fileio import finite_float
from .base import SIGNALS, Signal, arch_key, as_archs, resolve_space

_SKIP_COLUMNS = ("index", "arch_str")


def _pick_column(path: Path, column: str | None, arch_column: str) -> str:
    with open(path, newline="") as fh:
        header = [h.strip() for h in (next(csv.reader(fh), None) or [])]
    if not header:
        raise SgnasError(f"{path} is empty (want a header row with {arch_column!r})")
    if column is not None:
        return column
    if "score" in header:
        return "score"
    rest = [h for h in header if h not in (*_SKIP_COLUMNS, arch_column)]
    if len(rest) == 1:
        return rest[0]
    raise SgnasError(f"{path}: which column holds the scores? pass column= (--column); columns: "
                     f"{', '.join(header[:20])}")


def read_scores(path: str | os.PathLike, space: Any, column: str | None = None,
                arch_column: str = "arch_str", partial: bool = False) -> dict[str, float]:
    """``{arch string: score}`` of a score table of ``space`` (validated as the module says)."""
    from ..nb201.space import NB201Space

    path = Path(path)
    if not path.is_file():
        raise SgnasError(f"score table not found: {path}")
    column = _pick_column(path, column, arch_column)
    if isinstance(space, NB201Space):
        from ..nb201.bench import read_cell_table

        table = read_cell_table(path, [column], arch_column=arch_column, space=space.name)
        if not partial:
            table.check_complete()
        out: dict[str, float] = {}
        for row, (cell, v) in enumerate(zip(table.cells, table.columns[column])):
            key = str(cell)
            if key in out:
                raise SgnasError(f"{path}: cell {key} appears twice (second at line {row + 2})")
            out[key] = float(v)
        return out
    return _read_unified(path, space, column, arch_column)


def _read_unified(path: Path, space: Any, column: str, arch_column: str) -> dict[str, float]:
    from ..space import Architecture

    out: dict[str, float] = {}
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        for name in (arch_column, column):
            if name not in header:
                raise SgnasError(f"{path} has no column {name!r}; columns: {', '.join(header[:20])}")
        a_col, v_col = header.index(arch_column), header.index(column)
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise SgnasError(f"{path} line {line}: {len(row)} fields, the header has {len(header)}")
            text = row[a_col].strip()
            try:
                arch = Architecture.parse(text)
            except ArchitectureError as exc:
                raise SgnasError(f"{path} line {line}: {text!r} is not an architecture: {exc}") from None
            if arch.space != space.name:
                raise SgnasError(f"{path} line {line}: a table of space {arch.space!r}, not "
                                 f"{space.name!r}")
            try:
                space.validate(arch)
            except ArchitectureError as exc:
                raise SgnasError(f"{path} line {line}: {text}: {exc}") from None
            v = finite_float(row[v_col], f"{path} line {line} ({text})", what="score")
            key = str(arch)
            if key in out:
                raise SgnasError(f"{path} line {line}: {key} appears twice")
            out[key] = v
    if not out:
        raise SgnasError(f"{path} has no data rows")
    return out


class TableSignal(Signal):
    """Scores looked up in a CSV table (see the module docstring)."""

    name = "table"

    def __init__(self, path: str | os.PathLike, *, column: str | None = None,
                 arch_column: str = "arch_str", space: Any = "nb201", partial: bool = False):
        from ..space import get_space

        self.path = Path(path)
        self.space = get_space(space) if isinstance(space, str) else space
        self.column = column
        self.scores = read_scores(self.path, self.space, column, arch_column, partial)

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        space = resolve_space(self.space, archs)
        out = np.empty(len(archs))
        for i, a in enumerate(as_archs(space, archs)):
            k = arch_key(a)
            if k not in self.scores:
                raise SgnasError(f"{self.path} has no score for {k}")
            out[i] = self.scores[k]
        return out

    def describe(self) -> dict[str, Any]:
        return {"signal": "table", "path": str(self.path), "column": self.column}


def write_scores(path: str | os.PathLike, archs: Sequence[Any], scores: np.ndarray,
                 force: bool = False) -> None:
    """Write ``arch_str,score`` rows atomically (refused if ``path`` exists, unless ``force``);
    ``-inf`` (dead) becomes a finite floor below every other score (see
    :func:`sgnas.signals.nb201.finite_dead`), so the file imports back as a ``table``."""
    import io

    from ..fileio import atomic_write_bytes
    from .nb201 import finite_dead

    if os.path.exists(path) and not force:
        raise SgnasError(f"{path} exists; pass --force to overwrite")
    values = finite_dead(np.asarray(scores, dtype=np.float64))
    if not np.all(np.isfinite(values)):
        raise SgnasError("scores contain NaN or infinite values; nothing written")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["arch_str", "score"])
    for a, v in zip(archs, values):
        w.writerow([arch_key(a), repr(float(v))])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue().encode())


def _make(path: str | os.PathLike | None = None, *, column: str | None = None,
          arch_column: str = "arch_str", space: Any = "nb201", partial: bool = False
          ) -> TableSignal:
    if path is None:
        raise SgnasError("signal 'table' needs a CSV: table:FILE (or path=FILE)")
    return TableSignal(path, column=column, arch_column=arch_column,
                       space="nb201" if space is None else space, partial=partial)


SIGNALS.register("table", _make)

__all__ = ["TableSignal", "read_scores", "write_scores"]
