"""Device-specific architectures from ground truth alone: each device's oracle cell at the same
relative latency budget, and the regret of deploying one device's cell on another.

The budget of device ``d`` is the ``quantile`` of its latency over the connected cells
(:func:`~sgnas.nb201.groundtruth.spread_targets`, e.g. p30). Deploying device A's oracle cell on
device B scores it under B's budget: accuracy lost against B's oracle (regret) and whether B's
budget is exceeded (and by how much, as a ratio of B's budget).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import SgnasError
from .constraint import CellCost, Constraint, oracle
from .groundtruth import CIFAR10_TEST, GroundTruth, spread_targets
from .space import OPS

#: A GPU at batch 1, one at batch 256, a Xeon, the Raspberry Pi 4, a phone and Eyeriss.
STUDY_DEVICES: tuple[str, ...] = ("1080ti_1", "titan_rtx_256", "gold_6226", "raspi4", "pixel3",
                                  "eyeriss")


def device_study(gt: GroundTruth, devices: Sequence[str] = STUDY_DEVICES, quantile: float = 0.3,
                 column: str = CIFAR10_TEST) -> dict[str, Any]:
    """Oracle cell per device at the ``quantile`` budget and the cross-deployment matrices.

    Returns ``{"budget": {dev: ms}, "oracle": {dev: {arch, accuracy, latency_ms, ops}},
    "regret": {a: {b: points}}, "violates": {a: {b: bool}}, "latency_ratio": {a: {b: x}}}`` where
    row ``a`` is the device whose oracle cell is deployed and column ``b`` the target device.
    """
    if len(devices) < 2:
        raise SgnasError("a device study needs at least two devices")
    acc = gt.acc(column)
    cons: dict[str, Constraint] = {}
    for d in devices:
        table = gt.cost_table(d)
        cons[d] = Constraint(CellCost(table, d, "ms"), spread_targets(table, [quantile])[0])
    picks = {d: oracle(acc, c) for d, c in cons.items()}
    out: dict[str, Any] = {"quantile": quantile, "column": column, "devices": list(devices),
                           "budget": {d: c.max_value for d, c in cons.items()}, "oracle": {},
                           "regret": {}, "violates": {}, "latency_ratio": {}}
    for a, (cell, value) in picks.items():
        out["oracle"][a] = {"arch": str(cell), "accuracy": value,
                            "latency_ms": cons[a].cost.exact(cell),
                            "ops": {op: int(sum(o == i for o in cell.ops))
                                    for i, op in enumerate(OPS)}}
        out["regret"][a] = {b: picks[b][1] - float(acc[cell.ops]) for b in devices}
        out["violates"][a] = {b: not cons[b].holds(cell) for b in devices}
        out["latency_ratio"][a] = {b: cons[b].cost.exact(cell) / cons[b].max_value for b in devices}
    distinct = {v["arch"] for v in out["oracle"].values()}
    off = [(a, b) for a in devices for b in devices if a != b]
    out["distinct_oracle_cells"] = len(distinct)
    feasible = [out["regret"][a][b] for a, b in off if not out["violates"][a][b]]
    out["offdiagonal_pairs"] = len(off)
    out["offdiagonal_violations"] = len(off) - len(feasible)
    # regret of the deployments that do meet the target's budget (violating ones have no regret:
    # they are not admissible there)
    out["mean_feasible_regret"] = float(np.mean(feasible)) if feasible else None
    out["max_feasible_regret"] = float(np.max(feasible)) if feasible else None
    return out


__all__ = ["STUDY_DEVICES", "device_study"]
