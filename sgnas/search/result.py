"""The outcome of a search: best architecture, its accuracy and cost, and the search's trace."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import SgnasError
from ..space import Architecture


@dataclass
class SearchResult:
    """Best architecture found under ``cost <= target`` plus the record of the search.

    ``history`` holds one dict per generation (evolution: ``generation``, ``best_accuracy``,
    ``mean_accuracy``, ``best_so_far``, ``evaluations``) or per candidate (random search).
    ``candidates`` lists every evaluated architecture as ``{"arch", "accuracy", "cost"}`` with the
    architecture in its string form. The whole object round-trips through JSON.
    """

    strategy: str
    best: Architecture
    best_accuracy: float
    best_cost: float
    target: float
    cost_name: str
    cost_unit: str
    evaluations: int
    wall_time_s: float
    rejected: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["best"] = self.best.to_dict()
        d["best_str"] = str(self.best)
        return d

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchResult":
        d = dict(d)
        d.pop("best_str", None)
        try:
            d["best"] = Architecture.from_dict(d["best"])
            return cls(**d)
        except (KeyError, TypeError) as exc:
            raise SgnasError(f"not a search result ({exc})") from exc

    @classmethod
    def from_json(cls, text: str) -> "SearchResult":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise SgnasError(f"search result is not valid JSON ({exc.msg})") from exc

    def save(self, path: str | os.PathLike) -> None:
        """Write the result as JSON, atomically."""
        from ..fileio import atomic_write_json

        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SearchResult":
        try:
            with open(path) as fh:
                return cls.from_json(fh.read())
        except OSError as exc:
            raise SgnasError(f"cannot read search result {path}: {exc.strerror}") from exc

    def summary(self) -> str:
        """Human-readable lines: architecture, cost, accuracy, evaluations, wall time."""
        return "\n".join(
            [
                f"strategy:     {self.strategy}",
                f"architecture: {self.best}",
                f"{self.cost_name + ':':<13} {self.best_cost:.4g} {self.cost_unit} "
                f"(target {self.target:.4g} {self.cost_unit})",
                f"accuracy:     {_accuracy(self.best_accuracy)} (inherited)",
                f"evaluations:  {self.evaluations}",
                f"wall time:    {self.wall_time_s:.1f} s",
            ]
        )


def _accuracy(value: float) -> str:
    """A fraction as a percentage; other scores as they are."""
    return f"{100 * value:.2f}%" if 0.0 <= value <= 1.0 else f"{value:.4g}"
