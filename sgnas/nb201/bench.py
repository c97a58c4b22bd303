"""Reading NAS-Bench-201's tables: one CSV row per cell, with the benchmark index and arch string.

The tables (``nb201.csv`` with ground truth, ``latency.csv`` with per-device latency, as described in
the data folder's README) start with the columns ``index`` (the official benchmark order) and
``arch_str``. The project reads them from a path and never ships them; :data:`DEFAULT_DIR` is where
tests and scripts look by default (relative to the repository root).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ArchitectureError, SgnasError
from ..fileio import finite_float
from .space import NUM_CELLS, Cell

DEFAULT_DIR = os.path.join("..", "shared", "data", "nasbench201")
#: Environment variable naming the tables' folder, overriding :data:`DEFAULT_DIR`.
ENV_DIR = "SGNAS_NB201_DIR"
GROUND_TRUTH = "nb201.csv"
LATENCY = "latency.csv"


def default_dir() -> str:
    """``$SGNAS_NB201_DIR`` if set, else :data:`DEFAULT_DIR`."""
    return os.environ.get(ENV_DIR) or DEFAULT_DIR


def bench_file(name: str, folder: str | os.PathLike | None = None) -> Path:
    """Path of table ``name`` in ``folder`` (default :func:`default_dir`); SgnasError if absent."""
    path = Path(folder if folder is not None else default_dir()) / name
    if not path.is_file():
        raise SgnasError(f"NAS-Bench-201 table not found: {path} (point --bench at the folder "
                         f"holding {name})")
    return path


@dataclass
class CellTable:
    """Some numeric columns of a per-cell table, rows in the file's order.

    ``cells[i]`` is row i's cell, ``index[i]`` its benchmark index (the row number when the file
    has no ``index`` column), ``columns[name]`` a float64 array over the rows.
    """

    path: str
    cells: list[Cell]
    index: np.ndarray
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cells)

    def codes(self) -> np.ndarray:
        return np.array([c.code for c in self.cells], dtype=np.int64)

    def by_code(self, column: str) -> np.ndarray:
        """``column`` as a ``(5,)*6`` array indexed by the cells' op indices (needs every cell)."""
        self.check_complete()
        out = np.empty(NUM_CELLS, dtype=np.float64)
        out[self.codes()] = self.columns[column]
        return out.reshape((5,) * 6)

    def check_complete(self) -> None:
        """SgnasError unless every cell of the space appears exactly once."""
        codes = self.codes()
        seen: dict[int, int] = {}
        for row, code in enumerate(codes):
            if code in seen:
                raise SgnasError(f"{self.path}: cell {self.cells[row]} appears twice (rows "
                                 f"{seen[code] + 2} and {row + 2})")
            seen[code] = row
        if len(seen) != NUM_CELLS:
            missing = next(c for c in range(NUM_CELLS) if c not in seen)
            raise SgnasError(f"{self.path}: {NUM_CELLS - len(seen)} of {NUM_CELLS} cells missing "
                             f"(first: {Cell.from_code(missing)})")


def read_cell_table(path: str | os.PathLike, columns: Sequence[str],
                    arch_column: str = "arch_str", space: str = "nb201") -> CellTable:
    """Read ``columns`` (as floats) of a per-cell CSV table.

    Errors (:class:`SgnasError`, one line): a missing file, a missing column (the available ones
    listed), a row whose arch string is not an NB201 cell or whose value is not a finite number
    (the row named by its line number), a table whose arch strings name another space.
    """
    path = Path(path)
    if not path.is_file():
        raise SgnasError(f"table not found: {path}")
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise SgnasError(f"{path} is empty (want a header row with {arch_column!r})")
        header = [h.strip() for h in header]
        for name in (arch_column, *columns):
            if name not in header:
                raise SgnasError(f"{path} has no column {name!r}; columns: {', '.join(header[:30])}")
        a_col = header.index(arch_column)
        i_col = header.index("index") if "index" in header else None
        v_cols = [header.index(c) for c in columns]
        cells: list[Cell] = []
        index: list[int] = []
        values: list[list[float]] = [[] for _ in columns]
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise SgnasError(f"{path} line {line}: {len(row)} fields, the header has "
                                 f"{len(header)}")
            text = row[a_col].strip()
            prefix, sep, _ = text.partition(":")
            if sep and not text.startswith("|") and prefix != space:
                raise SgnasError(f"{path} line {line}: a table of space {prefix!r}, not {space!r}")
            try:
                cells.append(Cell.parse(text))
            except ArchitectureError as exc:
                raise SgnasError(f"{path} line {line}: {text!r} is not an {space} cell: {exc}") from None
            if i_col is not None:
                try:
                    index.append(int(row[i_col]))
                except ValueError:
                    raise SgnasError(f"{path} line {line}: index {row[i_col]!r} is not a whole "
                                     f"number") from None
            else:
                index.append(line - 2)
            for k, (c, name) in enumerate(zip(v_cols, columns)):
                values[k].append(finite_float(row[c], f"{path} line {line} ({text})",
                                              column=name))
    if not cells:
        raise SgnasError(f"{path} has no data rows")
    return CellTable(str(path), cells, np.array(index, dtype=np.int64),
                     {name: np.array(v, dtype=np.float64) for name, v in zip(columns, values)})


class BenchmarkIndex:
    """The official NB201 index <-> cell mapping, read from a benchmark table (``index`` column).

    The official order is the order in which the benchmark's cells were trained and stored; it is
    no simple function of the ops (cell 0 is not the first of any enumeration), so it is read from
    the table rather than computed.
    """

    def __init__(self, table: CellTable):
        table.check_complete()
        order = np.argsort(table.index)
        if not np.array_equal(table.index[order], np.arange(NUM_CELLS)):
            raise SgnasError(f"{table.path}: the index column is not a permutation of "
                             f"0..{NUM_CELLS - 1}")
        self._cells = [table.cells[i] for i in order]
        self._index = {c.code: i for i, c in enumerate(self._cells)}

    @classmethod
    def load(cls, folder: str | os.PathLike | None = None) -> "BenchmarkIndex":
        return cls(read_cell_table(bench_file(GROUND_TRUTH, folder), []))

    def cell(self, index: int) -> Cell:
        if not 0 <= int(index) < NUM_CELLS:
            raise SgnasError(f"benchmark index {index} not in 0..{NUM_CELLS - 1}")
        return self._cells[int(index)]

    def index(self, cell: Cell | str) -> int:
        cell = Cell.parse(cell) if isinstance(cell, str) else cell
        return self._index[cell.code]

    def __len__(self) -> int:
        return len(self._cells)
