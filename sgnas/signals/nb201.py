"""A signal over all NB201 cells as a ``(5,)*6`` table indexed like the cost tables.

``nb201_table(name, ...)[cell.ops]`` (equivalently ``.reshape(-1)[cell.code]``) is the score of
``cell``, so a signal plugs into everything that takes a per-cell table (exact expected scores,
exhaustive search, the benchmark). ``flops`` and ``params`` are analytic; a zero-cost proxy is read
from its score cache (it must hold every cell: fill it with ``scripts/nb201_proxies.py``,
``scripts/gpu_proxies.sh`` or ``compute=True``) or from a CSV those scripts wrote; an ensemble is
the rank average of its members' full tables; any other signal scores all 15,625 cells.

Dead cells (no input-output path) score ``-inf`` under the proxies; ``dead="floor"`` (the default)
puts them one range of the live scores below the worst live cell
(``min - (max - min)``), so the table stays finite (expected scores are sums over cells) and
still ranks them last; ``dead=None`` keeps ``-inf``; a number puts that value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SgnasError
from ..nb201.cost import TABLE_SHAPE
from ..nb201.space import NUM_CELLS, Cell, NB201Space, all_cells
from .base import get_signal, ranks, split_name
from .proxies import PROXIES


def finite_dead(values: np.ndarray, dead: Any = "floor") -> np.ndarray:
    """``values`` with ``-inf`` entries replaced as :func:`nb201_table`'s ``dead`` says."""
    v = np.asarray(values, dtype=np.float64).copy()
    bad = np.isneginf(v)
    if dead is None or not bad.any():
        return v
    if dead == "floor":
        live = v[~bad]
        if not live.size:
            raise SgnasError("every architecture scored -inf (dead)")
        v[bad] = live.min() - max(float(live.max() - live.min()), 1.0)
    else:
        v[bad] = float(dead)
    return v


def read_table_csv(path: str | os.PathLike, column: str | None = None) -> np.ndarray:
    """Scores of every cell, by :attr:`Cell.code`, from ``arch_str,score`` or a wide CSV with one
    column per signal (``column``); every cell must appear once; ``-inf`` allowed (dead)."""
    import csv
    import math

    path = Path(path)
    if not path.is_file():
        raise SgnasError(f"score table not found: {path}")
    out = np.full(NUM_CELLS, np.nan)
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in (next(reader, None) or [])]
        if "arch_str" not in header:
            raise SgnasError(f"{path} has no column 'arch_str'; columns: {', '.join(header[:20])}")
        col = column if column in header else ("score" if "score" in header else None)
        if col is None:
            raise SgnasError(f"{path} has no column {column or 'score'!r}; columns: "
                             f"{', '.join(header[:20])}")
        a, c = header.index("arch_str"), header.index(col)
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                cell = Cell.parse(row[a])
                v = float(row[c])
            except Exception as exc:  # noqa: BLE001 - reported as one line
                raise SgnasError(f"{path} line {line}: {exc}") from None
            if math.isnan(v) or v == math.inf:
                raise SgnasError(f"{path} line {line} ({row[a]}): score {row[c]!r} is not a number")
            if not np.isnan(out[cell.code]):
                raise SgnasError(f"{path} line {line}: cell {cell} appears twice")
            out[cell.code] = v
    missing = np.flatnonzero(np.isnan(out))
    if missing.size:
        raise SgnasError(f"{path}: {missing.size} of {NUM_CELLS} cells missing (first: "
                         f"{Cell.from_code(int(missing[0]))})")
    return out


def nb201_table(signal_name: str, *, csv: str | os.PathLike | None = None,
                column: str | None = None, data: Any = None, batch_size: int = 64,
                seed: int = 0, cache_dir: Any = None, compute: bool = False,
                device: str = "cpu", dead: Any = "floor", **options: Any) -> np.ndarray:
    """The ``(5,)*6`` table of ``signal_name`` over all NB201 cells (see the module docstring).

    ``csv``: read the scores from this file (``column`` defaults to the signal's name in a wide
    file, else ``score``; an ensemble reads each member's column, FLOPs and params are analytic). Proxies otherwise come from the cache of ``(data, batch_size, seed)``;
    missing cells raise unless ``compute``. Other options go to :func:`get_signal`.
    """
    space = NB201Space()
    base, arg = split_name(signal_name)
    if base == "ensemble":
        from .ensemble import DEFAULT_MEMBERS

        members = tuple(arg.split("+")) if arg else DEFAULT_MEMBERS
        tables = [nb201_table(m, csv=None if m in ("flops", "params") else csv, data=data,
                              batch_size=batch_size, seed=seed, cache_dir=cache_dir,
                              compute=compute, device=device, dead=None, **options).reshape(-1)
                  for m in members]
        mean = np.mean([ranks(t) for t in tables], axis=0)
        values = np.where(np.any([np.isneginf(t) for t in tables], axis=0), -np.inf, mean)
    elif csv is not None:
        values = read_table_csv(csv, column or base)
    elif base in ("flops", "params"):
        from ..nb201.cost import flops_table, params_table

        values = (flops_table if base == "flops" else params_table)(space).reshape(-1)
    elif base in PROXIES:
        values = _proxy_values(base, space, data, batch_size, seed, cache_dir, compute, device)
    else:
        cells = list(all_cells())
        values = get_signal(signal_name, **options).score(cells)
    return finite_dead(values, dead).reshape(TABLE_SHAPE)


def _proxy_values(name: str, space: NB201Space, data: Any, batch_size: int, seed: int,
                  cache_dir: Any, compute: bool, device: str) -> np.ndarray:
    from .zero_cost import minibatch, proxy_caches, score_proxies

    if data is None:
        raise SgnasError(f"the {name} table needs the minibatch it was computed on (data=) or "
                         f"the CSV a proxy script wrote (csv=)")
    cells = list(all_cells())
    if compute:
        return score_proxies([name], cells, data, space=space, batch_size=batch_size, seed=seed,
                             device=device, cache_dir=cache_dir)[name]
    x, y = minibatch(data, batch_size, space.num_classes, seed)
    cache = proxy_caches([name], space, x, y, seed, cache_dir)[name]
    if cache is None:
        raise SgnasError("cache_dir=False: nothing to read; pass compute=True or csv=")
    known = cache.load()
    values = np.full(NUM_CELLS, np.nan)
    for c in cells:
        v = known.get(str(c))
        if v is not None:
            values[c.code] = v
    missing = np.flatnonzero(np.isnan(values))
    if missing.size:
        raise SgnasError(f"{cache.path}: {missing.size} of {NUM_CELLS} cells missing (first: "
                         f"{Cell.from_code(int(missing[0]))}); compute them with "
                         f"scripts/nb201_proxies.py or compute=True")
    return values


__all__ = ["finite_dead", "nb201_table", "read_table_csv"]
