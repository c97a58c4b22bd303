"""``sgnas lut import``: a per-cell latency table (CSV column) as a LUT file.

::

    sgnas lut import --csv latency.csv --column gold_6226_ms --space nb201 \\
        --device gold_6226 --out lut/gold_6226-nb201.json
"""

from __future__ import annotations

import argparse
import json

NAME = "lut"
HELP = "Manage latency LUTs (import a per-cell table of a device)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lut_command", metavar="ACTION", required=True)
    p = sub.add_parser("import", help="import one column of a per-cell CSV table as a LUT")
    p.add_argument("--csv", required=True, metavar="FILE", help="CSV with one row per cell")
    p.add_argument("--column", required=True, help="the column holding the latency in ms")
    p.add_argument("--space", required=True, help="the cell space of the table (nb201)")
    p.add_argument("--device", required=True, help="device name recorded in the LUT")
    p.add_argument("--out", required=True, metavar="PATH", help="LUT file to write")
    p.add_argument("--arch-column", default="arch_str", help="column of the cell strings")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.add_argument("--json", action="store_true", help="print a one-line JSON summary")


def run(args: argparse.Namespace) -> int:
    from ..lut_import import import_and_save

    lut = import_and_save(args.csv, args.column, args.space, args.device, args.out,
                          force=args.force, arch_column=args.arch_column)
    values = [e.median_ms for e in lut.entries.values()]
    summary = {"out": args.out, "space": lut.space, "device": lut.device_name,
               "entries": len(values), "min_ms": min(values), "max_ms": max(values),
               "source": lut.build["source_name"], "column": args.column}
    print(json.dumps(summary) if args.json else
          f"{args.out}: {len(values)} cells of {lut.space} on {lut.device_name} "
          f"({min(values):.3f}-{max(values):.3f} ms) from {lut.build['source_name']}:{args.column}")
    return 0
