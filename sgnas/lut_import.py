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
    sp = get_space(space)
    if not hasattr(sp, "cell_key"):
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
