"""Importing a per-cell latency table (e.g. a NAS-Bench-201 device column) as a LUT.

The CSV has one row per cell with the cell's standard string (``arch_str``) and one column per
device. Every cell of the space must appear exactly once and every value must be a finite number;
otherwise :class:`~sgnas.errors.SgnasError` names the row, and nothing is written. The LUT records
its provenance: ``build = {"provenance": "imported", "granularity": "cell", "source": ...,
"source_sha256": ..., "column": ...}``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .errors import SgnasError
from .lut import EntryStats, Lut, save_lut
from .space import get_space


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_cell_lut(csv_path: str | os.PathLike, column: str, space: str, device: str,
                    arch_column: str = "arch_str") -> Lut:
    """A complete per-cell :class:`~sgnas.lut.Lut` of ``device`` from ``column`` of ``csv_path``."""
    sp: Any = get_space(space)  # a cell space (checked below)
    if not sp.profiling_plan().per_architecture:
        raise SgnasError(f"space {space!r} is not a cell space; per-cell tables can be imported "
                         f"for nb201 only")
    from .nb201.bench import read_cell_table

    path = Path(csv_path)
    table = read_cell_table(path, [column], arch_column=arch_column, space=sp.name)
    table.check_complete()
    entries = {}
    for cell, v in zip(table.cells, table.columns[column]):
        if v < 0:
            raise SgnasError(f"{path}: cell {cell} has a negative latency {v} in column {column!r}")
        entries[sp.cell_key(cell)] = EntryStats(median_ms=float(v), p10_ms=float(v),
                                                p90_ms=float(v), n=1, spread=0.0)
    return Lut(
        space=sp.name,
        space_fingerprint=sp.fingerprint,
        device={"name": device, "backend": "imported", "input_size": sp.input_size},
        entries={k: entries[k] for k in sp.all_keys()},
        input_size=sp.input_size,
        build={"provenance": "imported", "granularity": "cell", "source": str(path.resolve()),
               "source_name": path.name, "source_sha256": _sha256(path), "column": column,
               "rows": len(table)},
        complete=True,
    )


def import_and_save(csv_path, column, space, device, out, force: bool = False,
                    arch_column: str = "arch_str") -> Lut:
    """:func:`import_cell_lut`, then write it atomically to ``out`` (refused if it exists unless
    ``force``; nothing is written when the table is refused)."""
    if os.path.exists(out) and not force:
        raise SgnasError(f"{out} exists; pass --force to overwrite")
    lut = import_cell_lut(csv_path, column, space, device, arch_column)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_lut(lut, out)
    return lut


# ----------------------------------------------------------------- predicted tables
def _header(path: Path) -> list[str]:
    import csv

    if not path.is_file():
        raise SgnasError(f"table not found: {path}")
    with open(path, newline="") as fh:
        return [h.strip() for h in (next(csv.reader(fh), None) or [])]


def read_partial(csv_path: str | os.PathLike, column: str, space: str = "nb201",
                 arch_column: str = "arch_str", bench: str | os.PathLike | None = None):
    """``(cells, latencies_ms)`` of a CSV holding some cells of a cell space: a cell column
    (``arch_column``) or, without one, the official NB201 ``index`` column (mapped through the
    benchmark's ``nb201.csv`` in ``bench``), and the latency ``column``. A repeated cell, an
    unknown cell, a missing column or a non-finite or non-positive latency is an error naming
    the row."""
    from .nb201.bench import BenchmarkIndex, read_cell_table

    path = Path(csv_path)
    header = _header(path)
    if arch_column not in header and "index" in header and column in header:
        import csv

        from .fileio import finite_float

        bidx = BenchmarkIndex.load(bench)
        cells, values = [], []
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            for line, row in enumerate(reader, start=2):
                try:
                    cells.append(bidx.cell(int(row["index"])))
                except ValueError:
                    raise SgnasError(f"{path} line {line}: index {row['index']!r} is not a whole "
                                     f"number") from None
                except SgnasError as exc:
                    raise SgnasError(f"{path} line {line}: {exc}") from None
                values.append(finite_float(row[column], f"{path} line {line}", column=column))
    else:
        table = read_cell_table(path, [column], arch_column=arch_column, space=space)
        cells, values = list(table.cells), [float(v) for v in table.columns[column]]
    seen: dict[str, int] = {}
    for line_no, (cell, v) in enumerate(zip(cells, values), start=2):
        key = str(cell)
        if key in seen:
            raise SgnasError(f"{path}: cell {key} appears twice (lines {seen[key]} and {line_no})")
        seen[key] = line_no
        if not v > 0:
            raise SgnasError(f"{path} line {line_no}: cell {key} has latency {v} in column "
                             f"{column!r}; want a positive number of ms")
    return cells, values


def predict_cell_lut(cells, values_ms, space: str, device: str, build: dict,
                     basis_path: str | os.PathLike | None = None,
                     min_cells: int | None = None, measured_stats: dict | None = None) -> Lut:
    """A complete, *predicted* per-cell LUT of ``device`` from the measured ``cells`` (see
    :mod:`sgnas.lut_predict`): measured cells keep their value (``measured_stats``: their
    entries, when they come from a partial LUT), the others are predicted with an uncertainty,
    and ``prediction`` stores the method, the measured cells and the cross-validated error."""
    from .lut_predict import MIN_CELLS, load_basis, predict_table

    sp: Any = get_space(space)  # a cell space (checked below)
    if not sp.profiling_plan().per_architecture:
        raise SgnasError(f"space {space!r} is not a cell space; tables can be predicted for nb201 "
                         f"only")
    min_cells = MIN_CELLS if min_cells is None else int(min_cells)
    where = build.get("source_name", "the measured cells")
    if len(cells) < min_cells:
        raise SgnasError(f"{where}: {len(cells)} measured cells, a predicted table needs at least "
                         f"{min_cells}")
    basis = load_basis(basis_path)
    keys = sp.all_keys()
    if basis.components.shape[0] != len(keys):
        raise SgnasError(f"latency basis has {basis.components.shape[0]} cells, space {space!r} "
                         f"{len(keys)}")
    position = {k: i for i, k in enumerate(keys)}
    measured = [sp.cell_key(c) for c in cells]
    pred = predict_table(basis, [position[k] for k in measured], values_ms, min_cells=min_cells)
    entries = {}
    for k, v, u in zip(keys, pred.latency_ms, pred.uncertainty_ms):
        # p10/p90: the predictive distribution's (normal, 1.2816 standard errors)
        entries[k] = EntryStats(median_ms=float(v), p10_ms=float(max(v - 1.2816 * u, 0.0)),
                                p90_ms=float(v + 1.2816 * u), n=0, spread=float(u / v),
                                uncertainty_ms=float(u))
    for k, v in zip(measured, values_ms):
        e = (measured_stats or {}).get(k) or EntryStats(median_ms=float(v), p10_ms=float(v),
                                                        p90_ms=float(v), n=1, spread=0.0)
        e.uncertainty_ms = 0.0
        entries[k] = e
    prediction = {**pred.summary(), "measured_cells": measured,
                  "basis": {"devices": basis.devices, "source": basis.source,
                            "rank": basis.rank}}
    return Lut(space=sp.name, space_fingerprint=sp.fingerprint,
               device={"name": device, "backend": "predicted", "input_size": sp.input_size},
               entries=entries, input_size=sp.input_size,
               build={**build, "provenance": "predicted", "granularity": "cell"},
               complete=True, prediction=prediction)


def predict_and_save(out, device: str, space: str = "nb201", csv_path=None, column=None,
                     partial_lut=None, force: bool = False, arch_column: str = "arch_str",
                     basis_path=None, min_cells: int | None = None, bench=None) -> Lut:
    """A predicted LUT from a partial CSV (``csv_path`` + ``column``) or a partial per-cell LUT
    (``partial_lut``, as ``sgnas-profile --space nb201 --cells ...`` writes), written atomically
    to ``out`` (refused if it exists unless ``force``; nothing is written on an error)."""
    if os.path.exists(out) and not force:
        raise SgnasError(f"{out} exists; pass --force to overwrite")
    if (csv_path is None) == (partial_lut is None):
        raise SgnasError("give the measured cells as a CSV (--csv with --column) or a partial "
                         "LUT (--partial), one of them")
    stats = None
    if csv_path is not None:
        if not column:
            raise SgnasError("--csv needs --column (the latency column in ms)")
        path = Path(csv_path)
        cells, values = read_partial(path, column, space, arch_column, bench)
        build = {"source": str(path.resolve()), "source_name": path.name,
                 "source_sha256": _sha256(path), "column": column, "rows": len(cells)}
    else:
        from .lut import load_lut

        part = load_lut(partial_lut, space=space, allow_incomplete=True)
        if part.predicted:
            raise SgnasError(f"{partial_lut} is itself predicted; give the measured cells")
        sp: Any = get_space(space)
        cells = [sp.parse(k) for k in part.entries]
        values = [e.median_ms for e in part.entries.values()]
        for k, v in zip(part.entries, values):
            if not v > 0:
                raise SgnasError(f"{partial_lut}: cell {k} has latency {v}; want a positive "
                                 f"number of ms")
        stats = dict(part.entries)
        path = Path(partial_lut)
        build = {"source": str(path.resolve()), "source_name": path.name,
                 "source_sha256": _sha256(path), "measured_on": dict(part.device)}
    lut = predict_cell_lut(cells, values, space, device, build, basis_path, min_cells, stats)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_lut(lut, out)
    return lut
