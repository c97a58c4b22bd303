"""A cost constraint over NB201's per-cell tables: whether it holds, its oracle, a cell's regret.

:class:`CellCost` wraps a ``(5,)*6`` cost table (FLOPs, a device's latency) as the cost the search
baselines take (``exact(cell)``, ``range()``); :class:`Constraint` is such a cost with a maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SgnasError
from .cost import TABLE_SHAPE
from .space import Cell


@dataclass(frozen=True, eq=False)
class CellCost:
    """A per-cell cost table as a search cost: ``exact(cell)`` is ``table[cell.ops]``."""

    table: np.ndarray
    name: str = "latency"
    unit: str = "ms"

    def __post_init__(self) -> None:
        t = np.asarray(self.table, dtype=np.float64)
        if t.shape != TABLE_SHAPE:
            raise SgnasError(f"a cell cost table has shape {TABLE_SHAPE}, got {t.shape}")
        object.__setattr__(self, "table", t)

    def exact(self, cell: Cell) -> float:
        return float(self.table[cell.ops])

    def range(self) -> tuple[float, float]:
        return float(self.table.min()), float(self.table.max())


@dataclass(frozen=True, eq=False)
class Constraint:
    """``cost(cell) <= max_value``."""

    cost: CellCost
    max_value: float

    def holds(self, cell: Cell) -> bool:
        return self.cost.exact(cell) <= self.max_value

    def mask(self) -> np.ndarray:
        """``(5,)*6`` bool array of the cells meeting the constraint."""
        return self.cost.table <= self.max_value

    def describe(self) -> str:
        return f"{self.cost.name} <= {self.max_value:.6g} {self.cost.unit}"


def oracle(accuracy: np.ndarray, constraint: Constraint | None = None) -> tuple[Cell, float]:
    """The cell with the highest ``accuracy`` among those meeting ``constraint`` (all cells when
    None), with that accuracy. Ties go to the lowest :attr:`Cell.code`."""
    acc = np.asarray(accuracy, dtype=np.float64)
    if acc.shape != TABLE_SHAPE:
        raise SgnasError(f"an accuracy table has shape {TABLE_SHAPE}, got {acc.shape}")
    masked = acc if constraint is None else np.where(constraint.mask(), acc, -np.inf)
    code = int(np.argmax(masked))
    if not np.isfinite(masked.flat[code]):
        raise SgnasError(f"no cell meets {constraint.describe() if constraint else 'the constraint'}")
    return Cell.from_code(code), float(acc.flat[code])


def regret(accuracy: np.ndarray, constraint: Constraint | None, cell: Cell) -> float:
    """Accuracy points lost by ``cell`` against the oracle under ``constraint`` (>= 0 when the cell
    meets it; a violating cell may score above the oracle, giving a negative value)."""
    return oracle(accuracy, constraint)[1] - float(np.asarray(accuracy)[cell.ops])


__all__ = ["CellCost", "Constraint", "oracle", "regret"]
