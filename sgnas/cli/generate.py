"""``sgnas generate`` (also ``sgnas-generate``): architectures for constraints, one forward pass.

The generator is ``--generator PATH`` or, without it, the newest checkpoint in the generator folders
(``./generators``, the project's ``generators/`` and each ``--generators-dir``) trained for the same
cost model: the same LUT fingerprint for latency, the same FLOPs/params tables otherwise.
"""

from __future__ import annotations

import argparse

from .common import positive_number, refuse_overwrite

NAME = "generate"
HELP = "generate architectures for latency, FLOPs or parameter targets with a trained generator"

#: flag dest -> (cost name, file-name suffix)
TARGET_FLAGS = {
    "latency_ms": ("latency", "ms"),
    "flops_m": ("flops", "mflops"),
    "params_m": ("params", "mparams"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    targets = parser.add_mutually_exclusive_group(required=True)
    targets.add_argument("--latency-ms", type=positive_number, nargs="+", metavar="MS",
                         help="latency targets in milliseconds (needs --lut)")
    targets.add_argument("--flops-m", type=positive_number, nargs="+", metavar="M",
                         help="FLOPs targets in millions of multiply-adds")
    targets.add_argument("--params-m", type=positive_number, nargs="+", metavar="M",
                         help="parameter targets in millions")
    parser.add_argument("--lut", metavar="LUT", help="latency LUT of the target device")
    parser.add_argument("--generator", metavar="PATH", help="generator checkpoint (default: search)")
    parser.add_argument("--generators-dir", action="append", default=[], metavar="DIR",
                        help="also search DIR for generators (repeatable)")
    parser.add_argument("--space", help="search space, when no LUT or generator names it")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", metavar="DIR", help="write DIR/arch-<target>.json per target")
    parser.add_argument("--force", action="store_true", help="overwrite existing files in --out")
    parser.add_argument("--export-onnx", action="store_true",
                        help="also export each network (fresh weights) to DIR/arch-<target>.onnx")
    parser.add_argument("--measure", action="store_true",
                        help="time each generated network on this host with the LUT's device backend")
    parser.add_argument("--force-host", action="store_true",
                        help="with --measure, measure even if this host's GPU differs from the LUT's")


def _target_flag(args) -> tuple[str, str, list[float]]:
    for dest, (cost_name, suffix) in TARGET_FLAGS.items():
        values = getattr(args, dest, None)
        if values:
            return cost_name, suffix, list(values)
    raise AssertionError("argparse requires one target flag")


def _train_command(cost_name: str, lut_path: str | None) -> str:
    source = f"--lut {lut_path}" if cost_name == "latency" else f"--cost {cost_name}"
    return f"sgnas train-generator --supernet SUPERNET.pt {source} --data DATA_DIR"


def _find(cost_name: str, lut, space_name: str | None, dirs: list) -> tuple[object, object] | None:
    """(bundle, cost) of the newest matching generator in ``dirs``, or None."""
    from ..costs import make_cost
    from ..errors import SgnasError
    from ..generator import find_generator, load_generator, read_checkpoint
    from ..space import get_space

    spaces: list[str] = []
    if lut is not None:
        spaces = [lut.space]
    elif space_name:
        spaces = [space_name]
    else:
        from pathlib import Path

        for d in dirs:
            for path in sorted(Path(d).glob("*.pt")) if Path(d).is_dir() else []:
                try:
                    ckpt = read_checkpoint(path)
                except SgnasError:
                    continue
                if ckpt.get("cost", {}).get("name") == cost_name and ckpt.get("space") not in spaces:
                    spaces.append(ckpt["space"])
    for name in spaces:
        try:
            space = get_space(name)
        except SgnasError:
            continue
        cost = make_cost(cost_name, space, lut=lut)
        path = find_generator(cost, dirs)
        if path is not None:
            return load_generator(path, cost), cost
    return None


def _file_stem(target: float, suffix: str) -> str:
    return f"arch-{target:g}{suffix}"


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..costs import make_cost
    from ..errors import SgnasError, SpaceMismatchError
    from ..generator import default_generator_dirs, load_generator

    cost_name, suffix, targets = _target_flag(args)
    if cost_name == "latency" and not args.lut:
        raise SgnasError("--latency-ms needs the device's LUT: --lut lut/<device>.json")
    if args.measure and not args.lut:
        raise SgnasError("--measure needs --lut (it times on the LUT's device backend)")
    if args.export_onnx and not args.out:
        raise SgnasError("--export-onnx needs --out DIR")

    lut = None
    if args.lut:
        from ..lut import load_lut

        lut = load_lut(args.lut)
        from .common import warn_lut

        warn_lut(lut)
        if args.space and args.space != lut.space:
            raise SpaceMismatchError(f"LUT {args.lut} is for space {lut.space!r}, not {args.space!r}")

    if args.generator:
        bundle = load_generator(args.generator)
        if lut is not None and lut.space_fingerprint != bundle.space.fingerprint:
            raise SpaceMismatchError(
                f"LUT {args.lut} is for space {lut.space!r} ({lut.space_fingerprint}), generator "
                f"{args.generator} for {bundle.space.name!r} ({bundle.space.fingerprint})"
            )
        if args.space and args.space != bundle.space.name:
            raise SpaceMismatchError(
                f"generator {args.generator} is for space {bundle.space.name!r}, not {args.space!r}"
            )
        cost = make_cost(cost_name, bundle.space, lut=lut)
        bundle.check_cost(cost)
    else:
        dirs = default_generator_dirs() + [Path(d) for d in args.generators_dir]
        found = _find(cost_name, lut, args.space, dirs)
        if found is None:
            where = ", ".join(str(d) for d in dirs)
            raise SgnasError(
                f"no {cost_name} generator{' for ' + lut.device_name if lut else ''} found in "
                f"{where}; train one with: {_train_command(cost_name, args.lut)}"
            )
        bundle, cost = found

    space = bundle.space
    archs = bundle.generate(targets, cost)

    out_dir = Path(args.out) if args.out else None
    planned: list[dict[str, Path]] = []
    if out_dir is not None:
        for t in targets:
            files = {"json": out_dir / f"{_file_stem(t, suffix)}.json"}
            if args.export_onnx:
                files["onnx"] = out_dir / f"{_file_stem(t, suffix)}.onnx"
            planned.append(files)
        refuse_overwrite([p for files in planned for p in files.values()], args.force)

    results = [_describe(space, cost, lut, t, a) for t, a in zip(targets, archs)]
    if args.measure:
        measured = measure_archs(space, lut, archs, force=args.force_host)
        for r, ms in zip(results, measured):
            r["measured_ms"] = ms

    if out_dir is not None:
        from ..fileio import atomic_write_json

        for r, arch, files in zip(results, archs, planned):
            atomic_write_json(files["json"], {**arch.to_dict(), "target": r["target"],
                                              "cost": cost.name, "unit": cost.unit,
                                              "predicted": r["predicted"]})
            r["files"] = [str(files["json"])]
            if "onnx" in files:
                from ..export import export_onnx
                from ..network import build_network

                shape = (1, 3, space.input_size, space.input_size)
                export_onnx(build_network(space, arch).eval(), shape, files["onnx"])
                r["files"].append(str(files["onnx"]))

    if args.json:
        print(json.dumps({
            "generator": bundle.path,
            "cost": cost.describe(),
            "results": results,
        }, indent=1))
    else:
        print(f"generator {bundle.path} ({cost.name} {cost.fingerprint}, space {space.name})")
        for r in results:
            print(_line(r, cost))
    return 0


def _describe(space, cost, lut, target: float, arch) -> dict:
    from ..network import count_flops, count_params

    predicted = {
        "flops_m": count_flops(space, arch) / 1e6,
        "params_m": count_params(space, arch) / 1e6,
    }
    if lut is not None:
        predicted["latency_ms"] = lut.predict_ms(arch, calibrated=True, space=space)
        predicted["latency_raw_ms"] = lut.predict_ms(arch, calibrated=False, space=space)
    return {
        "target": target,
        "unit": cost.unit,
        "arch": str(arch),
        "cost": cost.exact(arch),
        "error_pct": (cost.exact(arch) - target) / target * 100.0,
        "predicted": predicted,
    }


def _line(r: dict, cost) -> str:
    p = r["predicted"]
    parts = [f"{p['flops_m']:.4g} MFLOPs", f"{p['params_m']:.4g} M params"]
    if "latency_ms" in p:
        lat = f"{p['latency_ms']:.3f} ms"
        if p["latency_raw_ms"] != p["latency_ms"]:
            lat += f" (raw {p['latency_raw_ms']:.3f} ms)"
        parts.insert(0, lat)
    text = (f"target {r['target']:g} {cost.unit}: {r['arch']}\n"
            f"  predicted {', '.join(parts)}; {cost.name} error {r['error_pct']:+.1f}%")
    if "measured_ms" in r:
        m = r["measured_ms"]
        text += f"\n  measured {m:.3f} ms ({(m - r['target']) / r['target'] * 100:+.1f}% vs target)"
    return text


def measure_archs(space, lut, archs, force: bool = False) -> list[float]:
    """Median latency (ms) of each network on this host, timed like the LUT's whole-network checks."""
    from profiler.measure import measure_lut_networks

    return measure_lut_networks(space, lut, archs, force=force)
