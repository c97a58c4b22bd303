"""Generation as a library call: ``generate(GenerationRequest(...)) -> GenerationResult``.

One request names the targets (latency per LUT, FLOPs, parameters), where the generator comes from
(a path, else the newest fitting checkpoint of the generator folders, found through one
:class:`~sgnas.generator_catalog.GeneratorCatalog` scan of checkpoint headers; only the chosen
generator is loaded in full) and what to do with the architectures (files, ONNX, timing on this
host under the device's profile lock). Notes for the user (``note: ...`` / ``warning: ...`` lines)
go to the ``note`` callback; bad input is an :class:`~sgnas.errors.SgnasError`.

By default the generator's distribution is decoded exactly (:mod:`sgnas.decode`): the most probable
architecture whose first constraint lies in ``[target (1 - eps), target]`` and that meets every
other constraint (upper bounds). The first given of latency, FLOPs, params drives the generator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import SgnasError, SpaceMismatchError
from ..generator_protocol import Generator

Note = Callable[[str], None]
_UNIT_SUFFIX = {"latency": "ms", "flops": "mflops", "params": "mparams"}


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. ``luts``: LUT paths or names (``cpu-cifar10``), one latency target each
    (one LUT: several targets are a sweep); ``decode``: ``"exact"`` or ``"argmax"``; ``eps``:
    ``None`` takes the generator's default; ``generator``: a checkpoint, else searched in the
    default generator folders and ``generator_dirs``; ``out``: folder for
    ``arch-<target><unit>.json`` (and ``.onnx`` with ``export_onnx``); ``measure``: time each
    network on this host with the first LUT's backend (``force_host``: even on another GPU)."""

    latency_ms: Sequence[float] = ()
    luts: Sequence[str] = ()
    flops_m: Sequence[float] = ()
    params_m: Sequence[float] = ()
    space: str | None = None
    eps: float | None = None
    decode: str = "exact"
    generator: str | None = None
    generator_dirs: Sequence[str] = ()
    out: str | None = None
    force: bool = False
    export_onnx: bool = False
    measure: bool = False
    force_host: bool = False


@dataclass
class GenerationResult:
    """The architectures generated and what was found out about them. ``results``: one dict per
    target (``target``, ``arch``, ``cost``, ``error_pct``, ``predicted``, and when asked
    ``constraints``, ``logprob``..., ``measured_ms``..., ``files``); ``machine``: this machine's
    speed figures when measured."""

    generator: Generator
    space: Any
    cost: Any
    decode: str
    eps: float | None
    archs: list
    results: list[dict]
    luts: list = field(default_factory=list)
    note: str = ""
    machine: dict = field(default_factory=dict)

    @property
    def files(self) -> list[str]:
        return [f for r in self.results for f in r.get("files", [])]

    def to_dict(self) -> dict:
        """The JSON report of ``sgnas generate --json``."""
        info: dict[str, Any] = {"generator": self.generator.path, "signal": self.generator.signal}
        if self.note:
            info["note"] = self.note.removeprefix("note: ")
        info.update(self.generator.describe(self.cost))
        if self.machine:
            info["machine"] = self.machine
        return {**info, "cost": self.cost.describe(), "decode": self.decode, "eps": self.eps,
                "results": self.results}


def generate(request: GenerationRequest, note: Note | None = None) -> GenerationResult:
    """Decode the generator's distribution for each target of ``request``; ``note`` receives the
    lines to show the user (LUT names resolved, LUT warnings, how the generator serves the cost,
    margins of predicted LUTs, a wait for the device lock)."""
    from ..decode import window
    from ..generator import default_generator_dirs
    from ..margin import cell_margin, guard_cost  # predicted LUT: decode on per-cell upper bounds
    from ..space import get_space

    say: Note = note or (lambda line: None)
    req = request
    if req.decode not in ("exact", "argmax"):
        raise SgnasError(f"decode {req.decode!r}: expected 'exact' or 'argmax'")
    if req.measure and not req.luts:
        raise SgnasError("--measure needs --lut (it times on the LUT's device backend)")
    if req.export_onnx and not req.out:
        raise SgnasError("--export-onnx needs --out DIR")
    if req.eps is not None:
        window(1.0, req.eps)  # validates eps
    lut_paths, luts = _load_luts(req, say)
    folders = _Folders(default_generator_dirs() + [Path(d) for d in req.generator_dirs])
    first_name = "latency" if req.latency_ms else "flops" if req.flops_m else "params"
    space = get_space(_space_name(req, luts, folders, first_name))
    for lut, p in zip(luts, lut_paths):
        if lut.space_fingerprint != space.fingerprint:
            raise SgnasError(f"LUT {p} is for space {lut.space!r} ({lut.space_fingerprint}), "
                             f"expected {space.name!r} ({space.fingerprint})")
    cost, targets, extra, costs = build_constraints(req, luts, space)
    bundle = _choose_generator(req, cost, folders)
    match = bundle.match_note(cost)
    if req.decode == "argmax" and not bundle.has_argmax:
        bundle.argmax([], cost)  # raises: names the decode to use
    if match:
        say(match)
    planned = _plan_files(req, cost, targets)

    eps = req.eps if req.eps is not None else bundle.default_eps
    decode_cost = guard_cost(cost)
    results, archs = [], []
    for t in targets:
        if req.decode == "argmax":
            arch, decoded = bundle.argmax([t], decode_cost)[0], None
        else:
            arch, decoded = bundle.decode(t, decode_cost, eps, extra)
        archs.append(arch)
        results.append(_describe(space, cost, costs, luts, t, arch, decoded, extra))
        if (margin := cell_margin(cost, arch, t)) is not None:
            results[-1]["margin"] = margin.to_dict()
            say(margin.describe())
    machine: dict = {}
    if req.measure:
        measured, machine = measure_generated(space, luts[0], archs, force=req.force_host,
                                              note=say)
        for r, m in zip(results, measured):
            r["measured_ms"] = m["measured_ms"]
            r["measured_absolute_ms"] = m["absolute_ms"]
            r["speed_factor"] = m["speed_factor"]
    _write_files(space, cost, archs, results, planned)
    return GenerationResult(bundle, space, cost, req.decode, eps, archs, results, luts, match,
                            machine)


def _load_luts(req: GenerationRequest, say: Note) -> tuple[list[str], list]:
    """The LUTs (paths, loaded), names resolved; an imported LUT cannot be measured here."""
    from ..lut import load_lut, lut_warnings
    from ..shipped import find_lut

    paths = [str(find_lut(p) or p) for p in req.luts]
    for given, path in zip(req.luts, paths):
        if given != path:
            say(f"note: --lut {given} is {path}")
    luts = [load_lut(p) for p in paths]
    if req.measure and luts and luts[0].build.get("provenance") == "imported":
        raise SgnasError(f"--measure: LUT {paths[0]} was imported from a benchmark (device "
                         f"{luts[0].device_name!r} is not one of this machine's descriptors), so "
                         f"there is nothing to time it on here; drop --measure, or profile this "
                         f"machine (sgnas-profile --device cpu --space {luts[0].space}) and pass "
                         f"that LUT")
    for lut in luts:
        for line in lut_warnings(lut):
            say(f"warning: {line}")
    return paths, luts


def _space_name(req: GenerationRequest, luts, folders: _Folders, cost_name: str) -> str:
    """The space: from the LUTs, the generator's header, ``space``, or the generators found for
    the cost (those of ``generator_dirs`` first)."""
    from ..generator_catalog import read_entry

    names = {lut.space for lut in luts}
    if len(names) > 1:
        raise SpaceMismatchError(f"the LUTs are for different spaces: {', '.join(sorted(names))}")
    if req.generator:
        gen_space = read_entry(req.generator).space
        if names and gen_space not in names:
            raise SpaceMismatchError(f"LUT {req.luts[0]} is for space {next(iter(names))!r}, "
                                     f"generator {req.generator} for {gen_space!r}")
        names.add(gen_space)
    if req.space:
        if names and req.space not in names:
            raise SpaceMismatchError(f"the LUT or generator is for space {next(iter(names))!r}, "
                                     f"not {req.space!r}")
        names.add(req.space)
    if names:
        return next(iter(names))
    catalog = folders.catalog
    found = catalog.spaces(cost_name, [Path(d) for d in req.generator_dirs]) \
        or catalog.spaces(cost_name)
    if len(found) > 1:
        raise SgnasError(f"{cost_name} generators for several spaces found "
                         f"({', '.join(found)}); name one with --space")
    if not found:
        source = "--lut LUT.json" if cost_name == "latency" else f"--cost {cost_name}"
        raise SgnasError(f"no {cost_name} generator found in "
                         f"{', '.join(map(str, folders.dirs))}; "
                         f"name the space with --space or train one with: sgnas "
                         f"train-generator --supernet SUPERNET.pt {source} --data DATA_DIR")
    return found[0]


class _Folders:
    """The generator folders of one command, scanned at most once (headers only)."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @functools.cached_property
    def catalog(self):
        from ..generator_catalog import GeneratorCatalog

        return GeneratorCatalog(self.dirs)


def _choose_generator(req: GenerationRequest, cost, folders: _Folders) -> Generator:
    """``req.generator`` loaded, else the catalog's choice for ``cost``; the only full load."""
    from .. import shared_generator  # noqa: F401  (registers the shared kind's loader)
    from ..generator_catalog import load_generator_file

    return load_generator_file(req.generator or folders.catalog.choose(cost))


def build_constraints(req: GenerationRequest, luts, space):
    """``(primary cost, primary targets, further constraints, all costs)`` from the targets."""
    from ..costs import make_cost
    from ..decode import AdditiveCost, Constraint

    lat = list(req.latency_ms or [])
    if lat and not luts:
        raise SgnasError("--latency-ms needs the device's LUT: --lut lut/<device>.json")
    if len(luts) > 1 and len(lat) != len(luts):
        raise SgnasError(f"{len(luts)} --lut files need {len(luts)} --latency-ms targets (one per "
                         f"LUT, in order), got {len(lat)}")
    items = []  # (cost, targets)
    if lat:
        if len(luts) == 1:
            items.append((make_cost("latency", space, lut=luts[0]), lat))
        else:
            items += [(make_cost("latency", space, lut=l), [t]) for l, t in zip(luts, lat)]
    for values, name in ((req.flops_m, "flops"), (req.params_m, "params")):
        if values:
            items.append((make_cost(name, space), list(values)))
    if not items:
        raise SgnasError("give a target: --latency-ms (with --lut), --flops-m or --params-m")
    for cost, targets in items[1:]:
        if len(targets) > 1:
            raise SgnasError(f"with several constraints each takes one target; {cost.name} got "
                             f"{len(targets)}")
    if len(items) > 1 and req.decode == "argmax":
        raise SgnasError("--decode argmax takes one constraint; use --decode exact for several")
    extra = []
    for c, t in items[1:]:
        label = (f"latency on {c.lut.device_name} ({c.lut.path})" if c.name == "latency"
                 else c.name)
        if getattr(c, "tabulated", False):  # per-cell costs: decoded by enumeration
            c.label = label
            extra.append(Constraint(c, t[0]))
        else:
            extra.append(Constraint(AdditiveCost.from_cost(c, label), t[0]))
    return items[0][0], items[0][1], extra, [c for c, _ in items]


def file_stem(target: float, cost_name: str) -> str:
    """``arch-<target><unit>``, e.g. ``arch-3ms``."""
    return f"arch-{target:g}{_UNIT_SUFFIX[cost_name]}"


def _plan_files(req: GenerationRequest, cost, targets) -> list[dict[str, Path]]:
    """The files each target will be written to; existing ones refused unless ``force``."""
    from ..fileio import refuse_overwrite

    if req.out is None:
        return []
    out = Path(req.out)
    planned = []
    for t in targets:
        files = {"json": out / f"{file_stem(t, cost.name)}.json"}
        if req.export_onnx:
            files["onnx"] = out / f"{file_stem(t, cost.name)}.onnx"
        planned.append(files)
    refuse_overwrite([p for files in planned for p in files.values()], req.force)
    return planned


def _write_files(space, cost, archs, results, planned) -> None:
    from ..fileio import atomic_write_json

    for r, arch, files in zip(results, archs, planned):
        atomic_write_json(files["json"], {**arch.to_dict(), "target": r["target"],
                                          "cost": cost.name, "unit": cost.unit,
                                          "predicted": r["predicted"]})
        r["files"] = [str(files["json"])]
        if "onnx" in files:
            from ..export import export_onnx
            from ..network import network_of

            shape = (1, 3, space.input_size, space.input_size)
            export_onnx(network_of(space, arch).eval(), shape, files["onnx"])
            r["files"].append(str(files["onnx"]))


def _describe(space, cost, costs, luts, target: float, arch, decoded, extra) -> dict:
    from ..costs import make_cost
    from ..generator import indices_of

    predicted = {what + "_m": float(make_cost(what, space).exact(arch))
                 for what in ("flops", "params")}
    if luts:
        predicted["latency_ms"] = luts[0].predict_ms(arch, calibrated=True, space=space)
        predicted["latency_raw_ms"] = luts[0].predict_ms(arch, calibrated=False, space=space)
    value = cost.exact(arch)
    out = {"target": target, "unit": cost.unit, "arch": str(arch), "cost": value,
           "error_pct": (value - target) / target * 100.0, "predicted": predicted}
    if extra:
        out["constraints"] = [{"constraint": c.describe(),
                               "value": c.cost.of(indices_of(space, arch)), "unit": c.cost.unit}
                              for c in extra]
    if decoded is not None:
        out["logprob"] = decoded.logprob
        out["logprob_given_up"] = decoded.logprob_given_up
        out["argmax_cost"] = decoded.argmax_costs[0]
        if getattr(decoded, "gap", 0.0) > 0:  # the node budget ran out: not proven the best
            out["logprob_certified_gap"] = decoded.gap
    return out


def measure_archs(space, lut, archs, force: bool = False) -> list[float]:
    """Median latency (ms) of each network on this host, timed like the LUT's whole-network checks
    (in the LUT's reference state when it is state-normalized)."""
    return [r["measured_ms"] for r in measure_generated(space, lut, archs, force)[0]]


def measure_generated(space, lut, archs, force: bool = False,
                      note: Note | None = None) -> tuple[list[dict], dict]:
    """Time each network on this host with the LUT's device backend, as the LUT's whole-network
    checks do, holding the device's profile lock (waiting for it with a note). Per network:
    ``measured_ms`` (in the LUT's reference state when it is state-normalized: comparable with its
    predictions), ``absolute_ms`` (this machine now) and ``speed_factor`` = absolute / LUT state.
    Also returns the machine's figures: the median speed factor and, when the LUT recorded the
    machine-speed probe, ``probe_factor`` = probe now / probe at the build (the CPU's speed,
    whatever the runtime)."""
    import numpy as np

    from profiler.devices import check_host
    from profiler.lock import ProfileLock
    from profiler.measure import Measurer, check_device_space, lut_device, lut_measurer_args
    from profiler.probe import PROBE_KEY, machine_factor

    say: Note = note or (lambda line: None)
    device = lut_device(lut)
    check_host(device, force=force)
    check_device_space(device, space)
    seed = int((lut.build or {}).get("seed", 0))
    rows: list[dict] = []
    machine: dict = {}
    with ProfileLock(device.name, what="sgnas-generate --measure", wait=True,
                     warn=lambda line: say(f"note: {line}")), \
            Measurer(device, space, seed=seed, **lut_measurer_args(lut)) as m:
        for i, arch in enumerate(archs):
            meas = m.network(arch, f"net{i}")
            row = {"measured_ms": meas.median_ms, "absolute_ms": meas.median_ms,
                   "speed_factor": None}
            if m.normalized and m.last is not None:
                row["absolute_ms"] = m.last.entry_median_ms
                row["speed_factor"] = row["absolute_ms"] / meas.median_ms
            rows.append(row)
        factors = [r["speed_factor"] for r in rows if r["speed_factor"] is not None]
        if factors:
            machine["speed_factor"] = float(np.median(factors))
        base = (lut.reference or {}).get(PROBE_KEY)
        if m.normalized and base and base.get("chain"):
            try:
                machine["probe_factor"] = machine_factor(m.probe(chain=int(base["chain"])), base)
            except SgnasError as exc:
                machine["probe_note"] = str(exc)
    return rows, machine
