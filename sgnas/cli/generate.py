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
The work is :func:`sgnas.search.generation.generate`; this module parses, calls it and prints.
"""

from __future__ import annotations

import argparse

from .common import positive_number

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


def request_of(args: argparse.Namespace):
    """The :class:`~sgnas.search.generation.GenerationRequest` of the parsed flags."""
    from ..search.generation import GenerationRequest

    return GenerationRequest(
        latency_ms=tuple(args.latency_ms or ()), luts=tuple(args.lut),
        flops_m=tuple(args.flops_m or ()), params_m=tuple(args.params_m or ()), space=args.space,
        eps=args.eps, decode=args.decode, generator=args.generator,
        generator_dirs=tuple(args.generators_dir), out=args.out, force=args.force,
        export_onnx=args.export_onnx, measure=args.measure, force_host=args.force_host)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from ..search.generation import generate

    res = generate(request_of(args), note=lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(res.to_dict(), indent=1))
        return 0
    cost = res.cost
    print(f"generator {res.generator.path} ({cost.name} {cost.fingerprint}, space "
          f"{res.space.name}, signal {res.generator.signal}, decode {res.decode})")
    for r in res.results:
        print(_line(r, cost))
    if args.measure:
        print(_machine_line(res.machine, res.luts[0]))
    for f in res.files:
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
