"""Profiling a cell space (NAS-Bench-201): a per-cell LUT from edge terms, whole-network validation,
and a quick partial LUT of listed cells.

Measuring all 15,625 whole networks is too slow on a CPU, so :func:`build_cell_lut` measures the
pieces of :func:`profiler.cell_graphs.piece_specs` (each edge op at each stage's channels and map
size, the sum of two edge outputs, the zero op, stem, the two residual reductions, head, and the
identity as the cost of one inference call) and composes every cell's network:

    lat(cell) = call + stem + reduce1 + reduce2 + head
                + N * sum over stages s of [ sum over conv edges e of op(s, o_e)
                                             + pool(s) * #{source nodes with a pool edge}
                                             + add(s) * sum over nodes max(k_j - 1, 0)
                                             + zero(s) * [some node has k_j = 0] ]

where ``k_j`` is the number of non-``none`` edges into node ``j``; pools of one source node and the
zero op are counted once because the runtime merges identical parameter-free nodes (ONNX Runtime's
common subexpression elimination); every piece is its measured
median less the identity at its input shape (so per-call overhead is counted once). ``skip_connect``
is wiring and costs 0; ``none`` costs 0 on an edge. The result is the same per-cell LUT format as
``sgnas lut import`` writes (``build.granularity == "cell"``), with ``build.provenance ==
"profiled"`` and the terms in ``build.decomposition``.

Pieces are measured as layer-LUT entries are, through :class:`profiler.measure.Measurer` (whose
builder emits a cell space's pieces and networks): state-normalized by default, each piece timed
interleaved with the reference piece (:func:`cell_reference`) and stated in the build's reference
state (``lut.reference``), and checkpointed after each piece so a stopped build resumes.

:func:`validate_cell_lut` measures whole networks (one ONNX graph each, the first checked against
torch; a normalized LUT's against its reference, in its reference state) spread evenly over the
table's predicted range and calibrates the LUT as :func:`profiler.fidelity.calibrate_and_report`
does for every LUT. :func:`measure_cells` measures listed cells as whole networks and
writes a partial per-cell LUT (``build.partial``, ``build.measured_cells``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, cast

import numpy as np

from sgnas.errors import SgnasError
from sgnas.lut import EntryStats, Lut, load_lut, save_lut, utc_now
from sgnas.nb201.space import OPS, Cell, NB201Space, all_cells

from . import cell_graphs
from .calibration_set import check_split_size
from .fidelity import FidelityReport, calibrate_and_report, measure_series, reference_record
from .measure import (Measurer, Reference, check_device_space, lut_measurer_args,
                      lut_reference)
from .protocol import CanaryMonitor

if TYPE_CHECKING:  # pragma: no cover
    from .devices import DeviceDescriptor
    from .protocol import Measurement

log = logging.getLogger(__name__)

#: Edges leaving node 0, 1 and 2 (their ops all read the same tensor).
SOURCE_EDGES = ((0, 1, 3), (2, 4), (5,))
#: The piece re-measured during validation to track machine-state drift.
CANARY_PIECE = "s0_op_nor_conv_3x3"
Callback = Callable[[str, int, int], None]


def is_cell_space(space: Any) -> bool:
    """Whether ``space`` is keyed per cell (NAS-Bench-201) rather than per layer."""
    return space.profiling_plan().kind == "cells"


def _check_space(space: Any) -> NB201Space:
    if not isinstance(space, NB201Space):
        raise SgnasError(f"space {getattr(space, 'name', space)!r} is not a cell space (nb201)")
    return space


def _entry(m: "Measurement") -> EntryStats:
    return EntryStats(median_ms=m.median_ms, p10_ms=m.p10_ms, p90_ms=m.p90_ms, n=m.n,
                      spread=m.spread, noisy=m.noisy)


def _check_device(device: "DeviceDescriptor") -> None:
    if device.batch_size != 1:
        raise SgnasError(f"device {device.name}: cell-space profiling runs at batch 1, "
                         f"the device uses batch {device.batch_size}")
    if device.precision != "fp32":
        raise SgnasError(f"device {device.name}: cell-space profiling is fp32 only")


def cell_reference(space: NB201Space) -> Reference:
    """The reference a cell space's pieces and networks are timed against: the canary piece."""
    return Reference(space.name, "block", CANARY_PIECE)


# ------------------------------------------------------------------ composition
def compose_table(space: NB201Space, terms: dict[str, float]) -> np.ndarray:
    """Per-cell latency (ms) of every cell, in :attr:`Cell.code` order, from net piece terms
    (``terms[name]`` for every piece of :func:`~profiler.cell_graphs.piece_specs`, overhead
    already subtracted; ``terms["overhead"]`` is the per-call cost counted once)."""
    n_stages = len(cell_graphs.stages(space))
    fixed = sum(terms[k] for k in ("overhead", "stem", "reduce1", "reduce2", "head"))
    per_op = np.array([[terms[f"s{s}_op_{op}"] if op not in ("none", "skip_connect") else 0.0
                        for op in OPS] for s in range(n_stages)])
    add = np.array([terms[f"s{s}_add"] for s in range(n_stages)])
    zero = np.array([terms[f"s{s}_op_none"] for s in range(n_stages)])
    ops = np.array([c.ops for c in all_cells()])  # (15625, 6)
    pool = OPS.index("avg_pool_3x3")
    per_op[:, pool] = 0.0  # counted once per source node below
    edge = per_op[:, ops].sum(axis=2)  # (stages, cells)
    nonnone = ops != 0
    k = np.stack([nonnone[:, 0], nonnone[:, 1:3].sum(1), nonnone[:, 3:6].sum(1)], axis=1)
    adds = np.maximum(k - 1, 0).sum(1)
    # The runtime merges identical parameter-free nodes (common subexpression elimination): the
    # pools of one source node are computed once, and so is the zero op of the cell's input.
    pools = sum((ops[:, list(edges)] == pool).any(1) for edges in SOURCE_EDGES)
    zeros = (k == 0).any(1)
    pool_ms = np.array([terms[f"s{s}_op_avg_pool_3x3"] for s in range(n_stages)])
    cell = (edge + add[:, None] * adds[None, :] + zero[:, None] * zeros[None, :]
            + pool_ms[:, None] * pools[None, :])
    return fixed + space.cells_per_stage * cell.sum(axis=0)


def net_terms(space: NB201Space, raw: dict[str, float]) -> dict[str, float]:
    """Piece medians less the identity at the same input shape (clipped at 0); ``overhead`` kept."""
    specs = cell_graphs.piece_specs(space)
    ident = {specs["overhead"].input_shape: raw["overhead"]}
    for s in cell_graphs.stages(space):
        ident[specs[f"s{s.index}_op_skip_connect"].input_shape] = raw[f"s{s.index}_op_skip_connect"]
    out = {"overhead": raw["overhead"]}
    for name, p in specs.items():
        if name != "overhead":
            out[name] = max(0.0, raw[name] - ident[p.input_shape])
    return out


def new_cell_lut(device: "DeviceDescriptor", space: NB201Space, environment: dict) -> Lut:
    """An empty per-cell LUT of ``device`` (provenance "profiled")."""
    return Lut(space=space.name, space_fingerprint=space.fingerprint, device=device.to_dict(),
               environment=environment, input_size=space.input_size,
               build={"provenance": "profiled", "granularity": "cell"})


def _refuse_existing(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise SgnasError(f"{out} exists; use --force to overwrite")


def _start(device: "DeviceDescriptor", sp: NB201Space, out: Path, force: bool,
           resume: bool) -> Lut:
    from .environment import collect_environment

    if out.exists() and not (force or resume):
        raise SgnasError(f"{out} exists; use --resume to continue or --force to overwrite")
    fresh = new_cell_lut(device, sp, collect_environment(device))
    if not (resume and out.exists()):
        return fresh
    lut = load_lut(out, space=sp.name, device=device, allow_incomplete=True)
    if lut.fingerprint != fresh.fingerprint or lut.build.get("granularity") != "cell":
        raise SgnasError(f"{out} is not a per-cell LUT of these settings of device "
                         f"{device.name}; use --force to start over")
    return lut


def build_cell_lut(device: "DeviceDescriptor", space: Any, out: str | Path, *, force: bool = False,
                   resume: bool = False, normalize: bool = True, seed: int = 0,
                   verify: bool = True, on_piece: Callback | None = None) -> Lut:
    """Measure every piece on ``device``, compose the per-cell table of all cells and write it to
    ``out`` (complete, uncalibrated; see :func:`validate_cell_lut`).

    Measured as layer LUTs are (:class:`profiler.measure.Measurer`): with ``normalize`` (default)
    every piece is timed interleaved with the reference piece (:func:`cell_reference`) and
    stated in the build's reference state, recorded in ``lut.reference``; without it, absolute
    medians with the canary piece measured at the start and the end (``lut.drift``). The pieces
    measured so far are checkpointed in ``build.pieces`` after each one, so ``resume`` continues
    a stopped build (pieces of the other protocol are measured again)."""
    from .build import interleave_protocol, entry_stats
    from .interleave import ReferenceState

    sp = _check_space(space)
    _check_device(device)
    out = Path(out)
    check_device_space(device, cast(Any, sp))
    lut = _start(device, sp, out, force, resume)
    protocol = "normalized" if normalize else "absolute"
    pieces: dict[str, dict] = dict(lut.build.get("pieces") or {})
    if lut.build.get("protocol") != protocol:
        pieces = {}
    lut.build.update({"seed": lut.build.get("seed", seed), "verified_graphs": verify,
                      "protocol": protocol})
    reference = state = None
    if normalize:
        old = lut.reference if pieces else {}
        reference = (Reference.from_name(old["model"]) if old.get("model") else cell_reference(sp))
        state = (ReferenceState.from_dict(old) if old.get("samples")
                 else ReferenceState(model=reference.name, protocol=interleave_protocol()))
    names = list(cell_graphs.piece_specs(sp))
    todo = [n for n in names if n not in pieces]
    started = time.perf_counter()
    with Measurer(device, sp, seed=int(lut.build["seed"]), verify=verify,
                  prefix="sgnas-cells-", reference=reference, state=state) as meas:
        meas.count = len(pieces)
        canary = CanaryMonitor(lambda: meas.entry(CANARY_PIECE).median_ms, every=0,
                               key=CANARY_PIECE)  # the older protocol: at the start and the end
        if normalize and todo:
            meas.open_reference()  # fails before anything is written
        if not normalize:
            canary.measure_now()
        for name in todo:
            pieces[name] = entry_stats(meas.entry(name)).to_dict()
            lut.build["pieces"] = pieces
            if state is not None:
                lut.reference = state.to_dict()
            lut.environment["runner"] = meas.runner_info
            save_lut(lut, out)  # the checkpoint: complete stays False until the table is composed
            if on_piece is not None:
                on_piece(name, names.index(name) + 1, len(names))
        if not normalize:
            canary.measure_now()
    if state is not None:  # every piece in the build's final reference state
        lut.reference = state.to_dict()
        raw = {n: float(pieces[n]["ratio"]) * state.state_ms for n in names}
    else:
        raw = {n: float(pieces[n]["median_ms"]) for n in names}
        lut.drift = canary.to_dict()
    terms = net_terms(sp, raw)
    table = compose_table(sp, terms)
    lut.entries = {str(c): EntryStats(median_ms=float(v), p10_ms=float(v), p90_ms=float(v), n=1,
                                      spread=0.0)
                   for c, v in zip(all_cells(), table)}
    lut.complete = True
    seconds = time.perf_counter() - started
    lut.build["seconds"] = round(float(lut.build.get("seconds", 0.0)) + seconds, 3)
    lut.build.setdefault("runs", []).append(
        {"measured": len(todo), "seconds": round(seconds, 3), "finished": utc_now()})
    lut.build["decomposition"] = {
        "method": "edge-additive",
        "formula": "overhead + stem + reduce1 + reduce2 + head + cells_per_stage * sum_s "
                   "[sum over conv edges e of op(s, o_e) + op(s, avg_pool_3x3) * #{source "
                   "nodes with a pool edge} + add(s) * sum_j max(k_j - 1, 0) + op(s, none) * "
                   "[any j: k_j = 0]]; skip_connect = 0, none on an edge = 0; identical "
                   "parameter-free nodes are merged by the runtime (CSE)",
        "cells_per_stage": sp.cells_per_stage,
        "stages": [asdict(s) for s in cell_graphs.stages(sp)],
        "terms_ms": terms,
        "pieces": {n: pieces[n] for n in names},
    }
    lut.build.pop("pieces", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_lut(lut, out)
    return lut


# ------------------------------------------------------------------- validation
def spread_cells(table: np.ndarray, n: int) -> list[Cell]:
    """``n`` distinct cells evenly spaced over the predicted range of ``table`` (code order),
    the lightest and heaviest included."""
    flat = np.asarray(table, dtype=np.float64).reshape(-1)
    if n > flat.size:
        raise SgnasError(f"cannot pick {n} cells out of {flat.size}")
    order = np.argsort(flat, kind="stable")
    pos = np.unique(np.round(np.linspace(0, flat.size - 1, n)).astype(int))
    return [Cell.from_code(int(order[p])) for p in pos]


def validate_cell_lut(lut: Lut, device: "DeviceDescriptor", space: Any, n: int = 30, *,
                      fit_fraction: float = 0.5, seed: int = 0, canary_every: int = 5,
                      drift_tolerance: float = 0.03,
                      on_network: Callback | None = None) -> FidelityReport:
    """Measure ``n`` whole networks spread over ``lut``'s predicted range and calibrate ``lut``
    on them as every LUT is (:func:`profiler.fidelity.calibrate_and_report`: fit on
    ``fit_fraction`` of them, both ends included, held-out figures on the rest)."""
    from sgnas.nb201.cost import lut_table

    sp = _check_space(space)
    if lut.device_name != device.name:
        raise SgnasError(f"LUT was measured on device {lut.device_name!r}, not {device.name!r}")
    table = lut_table(lut, sp).reshape(-1)
    check_split_size(n, fit_fraction)
    cells = spread_cells(table, n)
    n = len(cells)
    raw = np.array([table[c.code] for c in cells])
    _check_device(device)
    base = (lut.drift.get("canary_medians_ms") or [None])[0] \
        if lut.drift.get("canary_key") == CANARY_PIECE else None
    reference, _ = lut_reference(lut)
    started = time.perf_counter()
    with Measurer(device, sp, seed=int((lut.build or {}).get("seed", seed)), verify=True,
                  prefix="sgnas-cells-", **lut_measurer_args(lut)) as meas:
        measured, factors, canary = measure_series(
            cells, lambda cell, i: meas.network(cell, str(cell)).median_ms,
            canary=None if reference is not None else (lambda: meas.entry(CANARY_PIECE).median_ms),
            canary_every=canary_every, drift_tolerance=drift_tolerance, baseline=base,
            on_item=on_network)
        record = reference_record(meas)
    return calibrate_and_report(
        lut, device.name, sp.name, [str(c) for c in cells], raw, measured,
        fit_fraction=fit_fraction, rng=np.random.default_rng(seed), factors=factors,
        drift={"canary_key": CANARY_PIECE, "baseline_ms": base, "canary_medians_ms": canary,
               "tolerance": drift_tolerance},
        record=record, started=started, normalized=reference is not None)


# ------------------------------------------------------------------- quick mode
def measure_cells(device: "DeviceDescriptor", space: Any, cells: Sequence[Cell],
                  out: str | Path, *, force: bool = False, seed: int = 0,
                  on_network: Callback | None = None) -> Lut:
    """Measure ``cells`` as whole networks and write a partial per-cell LUT (only those entries,
    ``complete`` False, ``build.partial`` True, ``build.measured_cells`` listing them) to ``out``."""
    from .environment import collect_environment

    sp = _check_space(space)
    out = Path(out)
    if not cells:
        raise SgnasError("no cells to measure: the list is empty")
    keys = [sp.cell_key(c) for c in cells]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise SgnasError(f"cell {dup[0]} is listed more than once")
    _refuse_existing(out, force)
    _check_device(device)
    check_device_space(device, cast(Any, sp))
    lut = new_cell_lut(device, sp, collect_environment(device))
    started = time.perf_counter()
    with Measurer(device, sp, seed=seed, verify=True, prefix="sgnas-cells-") as meas:
        for i, cell in enumerate(cells):
            lut.entries[str(cell)] = _entry(meas.network(cell, str(cell)))
            if on_network is not None:
                on_network(str(cell), i + 1, len(cells))
    seconds = time.perf_counter() - started
    lut.environment["runner"] = meas.runner_info
    lut.complete = len(lut.entries) == sp.num_cells
    lut.build.update({"partial": not lut.complete, "method": "whole-network",
                      "measured_cells": keys, "seed": seed, "seconds": round(seconds, 3),
                      "runs": [{"measured": len(keys), "seconds": round(seconds, 3),
                                "finished": utc_now()}]})
    out.parent.mkdir(parents=True, exist_ok=True)
    save_lut(lut, out)
    return lut


def read_cell_list(text: str, space: Any, where: str = "cell list") -> list[Cell]:
    """Cells from a JSON list of arch strings or one arch string per line (``#`` comments and
    blank lines skipped); a bad string is an error naming the line, the edge and the op."""
    import json

    sp = _check_space(space)
    body = text.strip()
    if body.startswith("["):
        try:
            items = json.loads(body)
        except json.JSONDecodeError as exc:
            raise SgnasError(f"{where}: not a JSON list ({exc.msg})") from None
        if not all(isinstance(s, str) for s in items):
            raise SgnasError(f"{where}: the JSON list must hold arch strings")
        lines = list(enumerate(items, start=1))
    else:
        lines = [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), start=1)
                 if ln.strip() and not ln.strip().startswith("#")]
    cells = []
    for i, s in lines:
        try:
            cells.append(sp.cell(s))
        except SgnasError as exc:
            raise SgnasError(f"{where}, item {i}: {exc}") from None
    if not cells:
        raise SgnasError(f"{where}: no cells listed")
    return cells


def default_cells(space: Any, n: int) -> list[Cell]:
    """``n`` cells spread over the FLOPs range (a stand-in when no reference list is given)."""
    from sgnas.nb201.cost import flops_table

    if n < 1:
        raise SgnasError(f"--cells N needs N >= 1, got {n}")
    return spread_cells(flops_table(_check_space(space)), n)


__all__ = ["CANARY_PIECE", "build_cell_lut", "cell_reference", "compose_table",
           "default_cells", "is_cell_space", "measure_cells", "net_terms",
           "new_cell_lut", "read_cell_list", "spread_cells", "validate_cell_lut"]
