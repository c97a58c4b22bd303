"""``sgnas cost``: FLOPs, parameters and (with a LUT) predicted latency of an architecture.

::

    sgnas cost --arch arch.json
    sgnas cost --arch imagenet:357-33-... --lut lut/cpu.json --json
"""

from __future__ import annotations

import argparse
import json

NAME = "cost"
HELP = "FLOPs, parameters and LUT-predicted latency of an architecture"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", required=True, metavar="PATH|STRING",
                        help="architecture: a JSON file, JSON text, the string form space:357-33-... "
                             "or an NB201 cell |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    parser.add_argument("--lut", metavar="PATH|NAME",
                        help="latency LUT of a device: a path, or a LUT name (cpu-cifar10) in "
                             "$SGNAS_HOME/lut or among the shipped LUTs")
    parser.add_argument("--se", action="store_true",
                        help="count FLOPs and params with squeeze-and-excitation (no latency: LUTs "
                             "measure blocks without SE)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")


def cost_report(arch_source: str, lut_path: str | None = None, se: bool = False) -> dict:
    """FLOPs (multiply-adds), params and, with ``lut_path``, raw and calibrated latency in ms."""
    from ..errors import SgnasError
    from ..lut import load_lut
    from ..network import count_macs, num_params
    from ..space import get_space
    from .common import load_arch, read_arch_text

    if lut_path is not None:  # a path, or a LUT name (per-user folder, then shipped)
        from ..shipped import find_lut

        lut_path = str(find_lut(lut_path) or lut_path)
    text = read_arch_text(arch_source).strip()
    if text.startswith("|") or text.startswith("nb201:"):
        from ..nb201.cost import cell_report

        if se:
            raise SgnasError("--se does not apply to NB201 cells")
        return cell_report(text, lut_path)
    arch = load_arch(arch_source)
    space = get_space(arch.space)
    out = {
        "arch": str(arch),
        "space": space.name,
        "se": se,
        "flops": count_macs(space, arch, se=se),
        "params": num_params(space, arch, se=se),
    }
    if lut_path is not None:
        if se:
            raise SgnasError("--se: LUTs measure blocks without squeeze-and-excitation; "
                             "drop --se for a latency prediction")
        lut = load_lut(lut_path, space=space)
        from .common import warn_lut

        warn_lut(lut)
        out.update(
            lut=str(lut_path),
            device=lut.device_name,
            lut_fingerprint=lut.fingerprint,
            latency_ms_raw=lut.predict_ms(arch, calibrated=False),
            latency_ms_calibrated=(lut.predict_ms(arch) if lut.calibration is not None else None),
        )
    return out


def run(args: argparse.Namespace) -> int:
    report = cost_report(args.arch, args.lut, args.se)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"architecture  {report['arch']}")
    print(f"FLOPs         {report['flops'] / 1e6:.1f} M multiply-adds{' (with SE)' if args.se else ''}")
    print(f"params        {report['params'] / 1e6:.3f} M")
    if "latency_ms_raw" in report:
        kind = "cell entry" if report["space"] == "nb201" else "LUT sum"
        print(f"latency       {report['latency_ms_raw']:.3f} ms {kind} "
              f"({report['lut']}, device {report['device']})")
        cal = report["latency_ms_calibrated"]
        if cal is not None:
            print(f"              {cal:.3f} ms calibrated")
        elif report["space"] != "nb201":
            print("              (no calibration: run sgnas-profile --validate N --lut ...)")
    return 0
