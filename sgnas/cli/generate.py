"""``sgnas generate`` (also ``sgnas-generate``): architectures for constraints from a trained generator.

By default the generator's distribution is decoded exactly (:mod:`sgnas.decode`): the most probable
architecture whose first constraint lies in ``[target (1 - eps), target]`` and that meets every other
constraint (upper bounds). Constraints: ``--latency-ms`` with ``--lut`` (one target per LUT, in
order; with one LUT, several targets are a sweep), ``--flops-m``, ``--params-m``. The first given
of latency, FLOPs, params drives the generator; ``--decode argmax`` keeps the per-decision argmax
(one constraint only).

The generator is ``--generator PATH`` or the newest checkpoint in the generator folders
(``./generators``, the project's ``generators/`` and each ``--generators-dir``) trained for the
first constraint's cost model, else one trained for the same cost on another LUT of the space.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import positive_number, refuse_overwrite, warn_lut

NAME = "generate"
HELP = "generate architectures for latency, FLOPs or parameter targets with a trained generator"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency-ms", type=positive_number, nargs="+", metavar="MS",
                        help="latency targets in ms, one per --lut (one LUT: several = a sweep)")
    parser.add_argument("--lut", action="append", default=[], metavar="LUT",
                        help="latency LUT of a target device (repeatable): a path, or a LUT name "
                             "(cpu-cifar10) in $SGNAS_HOME/lut or among the shipped LUTs")
    parser.add_argument("--flops-m", type=positive_number, nargs="+", metavar="M",
                        help="FLOPs target in millions of multiply-adds")
    parser.add_argument("--params-m", type=positive_number, nargs="+", metavar="M",
                        help="parameter target in millions")
    parser.add_argument("--eps", type=float, default=None,
                        help="window below the first target: [T (1 - eps), T] (default: 0.01; for "
                             "a generator trained on an accuracy signal (NB201), no lower edge: "
                             "the most probable architecture at most T)")
    parser.add_argument("--decode", choices=("exact", "argmax"), default="exact",
                        help="exact: most probable architecture in the window (default); argmax: "
                             "the generator's per-decision argmax")
    parser.add_argument("--generator", metavar="PATH", help="generator checkpoint (default: search)")
    parser.add_argument("--generators-dir", action="append", default=[], metavar="DIR",
                        help="also search DIR for generators (repeatable)")
    parser.add_argument("--space", help="search space, when no LUT or generator names it")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", metavar="DIR",
                        help="write DIR/arch-<target><unit>.json per target, e.g. arch-3ms.json "
                             "(DIR is created; the paths written are printed)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files in --out")
    parser.add_argument("--export-onnx", action="store_true",
                        help="also export each network (fresh weights) to DIR/arch-<target>.onnx")
    parser.add_argument("--measure", action="store_true",
                        help="time each generated network on this host with the first LUT's "
                             "backend: latency now, in the LUT's reference state, and the "
                             "machine's speed factor")
    parser.add_argument("--force-host", action="store_true",
                        help="with --measure, measure even if this host's GPU differs from the LUT's")


def _space_name(args, luts, dirs, cost_name: str) -> str:
    """The space: from the LUTs, the generator, --space, or the generators found for the cost."""
    from pathlib import Path

    from ..errors import SgnasError, SpaceMismatchError
    from ..checkpoint import load_checkpoint
    from ..generator import generator_spaces

    names = {lut.space for lut in luts}
    if len(names) > 1:
        raise SpaceMismatchError(f"the LUTs are for different spaces: {', '.join(sorted(names))}")
    if args.generator:
        gen_space = load_checkpoint(args.generator).get("space")  # a generator of either kind
        if names and gen_space not in names:
            raise SpaceMismatchError(f"LUT {args.lut[0]} is for space {next(iter(names))!r}, "
                                     f"generator {args.generator} for {gen_space!r}")
        names.add(gen_space)
    if args.space:
        if names and args.space not in names:
            raise SpaceMismatchError(f"the LUT or generator is for space {next(iter(names))!r}, "
                                     f"not {args.space!r}")
        names.add(args.space)
    if not names:
        explicit = [Path(d) for d in args.generators_dir]
        found = generator_spaces(cost_name, explicit) or generator_spaces(cost_name, dirs)
        if len(found) > 1:
            raise SgnasError(f"{cost_name} generators for several spaces found "
                             f"({', '.join(found)}); name one with --space")
        if not found:
            source = "--lut LUT.json" if cost_name == "latency" else f"--cost {cost_name}"
            raise SgnasError(f"no {cost_name} generator found in {', '.join(map(str, dirs))}; "
                             f"name the space with --space or train one with: sgnas "
                             f"train-generator --supernet SUPERNET.pt {source} --data DATA_DIR")
        names.add(found[0])
    return next(iter(names))


def build_constraints(args, luts, space):
    """``(primary cost, primary targets, further constraints, all costs)`` from the target flags."""
    from ..costs import make_cost
    from ..decode import AdditiveCost, Constraint
    from ..errors import SgnasError

    lat = list(args.latency_ms or [])
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
    for flag, name in (("flops_m", "flops"), ("params_m", "params")):
        values = getattr(args, flag)
        if values:
            items.append((make_cost(name, space), list(values)))
    if not items:
        raise SgnasError("give a target: --latency-ms (with --lut), --flops-m or --params-m")
    for cost, targets in items[1:]:
        if len(targets) > 1:
            raise SgnasError(f"with several constraints each takes one target; {cost.name} got "
                             f"{len(targets)}")
    if len(items) > 1 and args.decode == "argmax":
        raise SgnasError("--decode argmax takes one constraint; use --decode exact for several")
    labels = {}
    for cost, _ in items:
        if cost.name == "latency":
            labels[id(cost)] = f"latency on {cost.lut.device_name} ({cost.lut.path})"
    extra = []
    for c, t in items[1:]:
        label = labels.get(id(c), c.name)
        if getattr(c, "tabulated", False):  # per-cell costs: decoded by enumeration
            c.label = label
            extra.append(Constraint(c, t[0]))
        else:
            extra.append(Constraint(AdditiveCost.from_cost(c, label), t[0]))
    return items[0][0], items[0][1], extra, [c for c, _ in items]


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from ..decode import window
    from ..errors import SgnasError
    from ..generator import default_generator_dirs, load_generator, resolve_generator
    from ..lut import load_lut
    from ..space import get_space

    if args.measure and not args.lut:
        raise SgnasError("--measure needs --lut (it times on the LUT's device backend)")
    if args.export_onnx and not args.out:
        raise SgnasError("--export-onnx needs --out DIR")
    if args.eps is not None:
        window(1.0, args.eps)  # validates eps
    from ..shipped import find_lut

    named = list(args.lut)
    args.lut = [str(find_lut(p) or p) for p in args.lut]
    for given, path in zip(named, args.lut):
        if given != path:
            print(f"note: --lut {given} is {path}", file=sys.stderr)
    luts = [load_lut(p) for p in args.lut]
    if args.measure and luts and luts[0].build.get("provenance") == "imported":
        raise SgnasError(f"--measure: LUT {args.lut[0]} was imported from a benchmark (device "
                         f"{luts[0].device_name!r} is not one of this machine's descriptors), so "
                         f"there is nothing to time it on here; drop --measure, or profile this "
                         f"machine (sgnas-profile --device cpu --space {luts[0].space}) and pass "
                         f"that LUT")
    for lut in luts:
        warn_lut(lut)
    dirs = default_generator_dirs() + [Path(d) for d in args.generators_dir]
    first_name = "latency" if args.latency_ms else "flops" if args.flops_m else "params"
    space = get_space(_space_name(args, luts, dirs, first_name))
    for lut, p in zip(luts, args.lut):
        if lut.space_fingerprint != space.fingerprint:
            raise SgnasError(f"LUT {p} is for space {lut.space!r} ({lut.space_fingerprint}), "
                             f"expected {space.name!r} ({space.fingerprint})")
    cost, targets, extra, costs = build_constraints(args, luts, space)
    note = ""
    bundle: Any = None
    shared = _shared_generator(args, cost, space, dirs)
    if shared is not None:
        if args.decode == "argmax":
            raise SgnasError("--decode argmax is not available with the shared generator; use "
                             "--decode exact")
        shared.features_of(cost.lut)  # a LUT without the reference cells: the error names them
        bundle, note = shared, shared.describe_device(cost.lut)
    elif args.generator:
        bundle = load_generator(args.generator)
        bundle.check_space(cost)
        if bundle.cost["name"] == "flops" and cost.name == "latency":
            from ..generator import flops_note

            note = flops_note(args.generator, cost)
        elif bundle.cost["name"] != cost.name:
            bundle.check_cost(cost)  # raises: a generator of another cost
        elif not bundle.trained_for(cost):
            note = (f"note: {args.generator} was trained on another {cost.name} model "
                    f"({bundle.cost['fingerprint']}); targets are placed by their position in "
                    f"this model's interval")
    else:
        bundle, note = resolve_generator(cost, dirs)
    if note:
        print(note, file=sys.stderr)

    out_dir = Path(args.out) if args.out else None
    suffix = {"latency": "ms", "flops": "mflops", "params": "mparams"}[cost.name]
    planned: list[dict[str, Path]] = []
    if out_dir is not None:
        for t in targets:
            files = {"json": out_dir / f"{_file_stem(t, suffix)}.json"}
            if args.export_onnx:
                files["onnx"] = out_dir / f"{_file_stem(t, suffix)}.onnx"
            planned.append(files)
        refuse_overwrite([p for files in planned for p in files.values()], args.force)

    eps = args.eps
    if eps is None:  # a generator trained on an accuracy signal decodes under the bound alone
        eps = None if getattr(bundle, "meta", {}).get("decode") == "upper" else 0.01
    results, archs = [], []
    from ..margin import cell_margin, guard_cost  # predicted LUT: decode on per-cell upper bounds
    decode_cost = guard_cost(cost)
    for t in targets:
        if args.decode == "argmax":
            arch = bundle.argmax([t], decode_cost)[0]
            decoded = None
        else:
            arch, decoded = bundle.decode(t, decode_cost, eps, extra)
        archs.append(arch)
        results.append(_describe(space, cost, costs, luts, t, arch, decoded, extra))
        if (margin := cell_margin(cost, arch, t)) is not None:
            results[-1]["margin"] = margin.to_dict()
            print(margin.describe(), file=sys.stderr)
    machine: dict = {}
    if args.measure:
        measured, machine = measure_generated(space, luts[0], archs, force=args.force_host)
        for r, m in zip(results, measured):
            r["measured_ms"] = m["measured_ms"]
            r["measured_absolute_ms"] = m["absolute_ms"]
            r["speed_factor"] = m["speed_factor"]

    if out_dir is not None:
        from ..fileio import atomic_write_json

        for r, arch, files in zip(results, archs, planned):
            atomic_write_json(files["json"], {**arch.to_dict(), "target": r["target"],
                                              "cost": cost.name, "unit": cost.unit,
                                              "predicted": r["predicted"]})
            r["files"] = [str(files["json"])]
            if "onnx" in files:
                from ..export import export_onnx

                shape = (1, 3, space.input_size, space.input_size)
                export_onnx(_network(space, arch).eval(), shape, files["onnx"])
                r["files"].append(str(files["onnx"]))

    if args.json:
        info: dict[str, Any] = {"generator": bundle.path, "signal": _signal_name(bundle)}
        if note:
            info["note"] = note.removeprefix("note: ")
        if shared is not None:
            info["shared"] = {"device": cost.lut.device_name, "new_device": not shared.knows(cost.lut),
                              "training_devices": [d["name"] for d in shared.devices],
                              "references": len(shared.references)}
        if machine:
            info["machine"] = machine
        print(json.dumps({**info, "cost": cost.describe(), "decode": args.decode,
                          "eps": eps, "results": results}, indent=1))
    else:
        print(f"generator {bundle.path} ({cost.name} {cost.fingerprint}, space {space.name}, "
              f"signal {_signal_name(bundle)}, decode {args.decode})")
        for r in results:
            print(_line(r, cost))
        if args.measure:
            print(_machine_line(machine, luts[0]))
        for r in results:
            for f in r.get("files", []):
                print(f"wrote {f}")
    return 0


def _machine_line(machine: dict, lut) -> str:
    """This machine's speed relative to the state the LUT was built in."""
    parts = []
    if "speed_factor" in machine:
        parts.append(f"this machine runs the networks {machine['speed_factor']:.2f}x the latency "
                     f"of the LUT's reference state")
    if "probe_factor" in machine:
        parts.append(f"machine-speed probe {machine['probe_factor']:.2f}x the LUT build's")
    if not parts:
        return (f"note: {lut.path} is not state-normalized: measured latency is absolute, with no "
                f"reference state to compare the machine with")
    return "machine: " + "; ".join(parts) + " (>1: slower)"


def _shared_generator(args, cost, space, dirs):
    """The shared (device-conditioned) generator that serves ``cost``, or ``None``: the one named
    by ``--generator``, else for a per-cell latency table without a generator of its own, the
    newest shared generator of the space in the generator folders."""
    from ..generator import find_generator
    from ..shared_generator import SHARED_KIND, checkpoint_kind, find_shared_generator, load_shared

    if args.generator:
        if checkpoint_kind(args.generator) != SHARED_KIND:
            return None
        shared = load_shared(args.generator)
        shared.check_space(cost)
        if cost.name != "latency" or not getattr(cost, "tabulated", False):
            from ..errors import SgnasError

            raise SgnasError(f"{args.generator} is a shared latency generator: give --latency-ms "
                             f"with a per-cell --lut")
        return shared
    if cost.name != "latency" or not getattr(cost, "tabulated", False):
        return None
    if find_generator(cost, dirs) is not None:
        return None
    path = find_shared_generator(space, dirs)
    return load_shared(path) if path is not None else None


def _file_stem(target: float, suffix: str) -> str:
    return f"arch-{target:g}{suffix}"


def _describe(space, cost, costs, luts, target: float, arch, decoded, extra) -> dict:
    predicted = {"flops_m": _count(space, arch, "flops"), "params_m": _count(space, arch, "params")}
    if luts:
        predicted["latency_ms"] = luts[0].predict_ms(arch, calibrated=True, space=space)
        predicted["latency_raw_ms"] = luts[0].predict_ms(arch, calibrated=False, space=space)
    value = cost.exact(arch)
    out = {"target": target, "unit": cost.unit, "arch": str(arch), "cost": value,
           "error_pct": (value - target) / target * 100.0, "predicted": predicted}
    if extra:
        out["constraints"] = [{"constraint": c.describe(), "value": c.cost.of(_indices(space, arch)),
                               "unit": c.cost.unit} for c in extra]
    if decoded is not None:
        out["logprob"] = decoded.logprob
        out["logprob_given_up"] = decoded.logprob_given_up
        out["argmax_cost"] = decoded.argmax_costs[0]
        if getattr(decoded, "gap", 0.0) > 0:  # the node budget ran out: not proven the best
            out["logprob_certified_gap"] = decoded.gap
    return out


def _note(line: str) -> None:
    import sys

    print(f"note: {line}", file=sys.stderr)


def _signal_name(bundle) -> str:
    """The accuracy signal a generator learned from (older checkpoints: the supernet)."""
    signal = bundle.meta.get("signal", "supernet")
    return str(signal.get("name", "supernet")) if isinstance(signal, dict) else str(signal)


def _network(space, arch):
    """The deployable network of ``arch`` (fresh weights), by the space's family."""
    from ..network import network_of

    return network_of(space, arch)


def _count(space, arch, what: str) -> float:
    """Millions of FLOPs or parameters of ``arch``'s network (the space's own cost tables)."""
    from ..costs import make_cost

    return float(make_cost(what, space).exact(arch))


def _indices(space, arch):
    from ..generator import indices_of

    return indices_of(space, arch)


def _line(r: dict, cost) -> str:
    p = r["predicted"]
    parts = [f"{p['flops_m']:.4g} MFLOPs", f"{p['params_m']:.4g} M params"]
    if "latency_ms" in p:
        lat = f"{p['latency_ms']:.3f} ms"
        if p["latency_raw_ms"] != p["latency_ms"]:
            lat += f" (raw {p['latency_raw_ms']:.3f} ms)"
        parts.insert(0, lat)
    text = (f"target {r['target']:g} {cost.unit}: {r['arch']}\n"
            f"  predicted {', '.join(parts)}; {cost.name} error {r['error_pct']:+.2f}%")
    if "logprob_given_up" in r:
        text += (f"\n  log-prob given up vs argmax {r['logprob_given_up']:.3f} (argmax "
                 f"{cost.name} {r['argmax_cost']:.4g} {cost.unit})")
    if "logprob_certified_gap" in r:
        text += (f"\n  not proven the most probable: a feasible architecture may have up to "
                 f"{r['logprob_certified_gap']:.3f} more log-prob")
    for c in r.get("constraints", []):
        text += f"\n  {c['constraint']}: {c['value']:.4g} {c['unit']}"
    if "measured_ms" in r:
        m = r["measured_ms"]
        if r.get("speed_factor") is not None:
            text += (f"\n  measured {r['measured_absolute_ms']:.3f} ms now on this machine; "
                     f"{m:.3f} ms in the LUT's reference state "
                     f"({(m - r['target']) / r['target'] * 100:+.1f}% vs target; speed factor "
                     f"{r['speed_factor']:.2f})")
        else:
            text += (f"\n  measured {m:.3f} ms ({(m - r['target']) / r['target'] * 100:+.1f}% vs "
                     f"target)")
    return text


def measure_archs(space, lut, archs, force: bool = False) -> list[float]:
    """Median latency (ms) of each network on this host, timed like the LUT's whole-network checks
    (in the LUT's reference state when it is state-normalized)."""
    return [r["measured_ms"] for r in measure_generated(space, lut, archs, force)[0]]


def measure_generated(space, lut, archs, force: bool = False) -> tuple[list[dict], dict]:
    """Time each network on this host with the LUT's device backend, as the LUT's whole-network
    checks do. Per network: ``measured_ms`` (in the LUT's reference state when it is
    state-normalized: comparable with its predictions), ``absolute_ms`` (this machine now) and
    ``speed_factor`` = absolute / LUT state. Also returns the machine's figures: the median speed
    factor and, when the LUT recorded the machine-speed probe, ``probe_factor`` = probe now / probe
    at the build (the CPU's speed, whatever the runtime)."""
    import numpy as np

    from profiler.devices import check_host
    from profiler.lock import ProfileLock
    from profiler.measure import Measurer, check_device_space, lut_device, lut_measurer_args
    from profiler.probe import PROBE_KEY, machine_factor

    from ..errors import SgnasError

    device = lut_device(lut)
    check_host(device, force=force)
    check_device_space(device, space)
    seed = int((lut.build or {}).get("seed", 0))
    rows: list[dict] = []
    machine: dict = {}
    with ProfileLock(device.name, what="sgnas-generate --measure", wait=True, warn=_note), \
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
