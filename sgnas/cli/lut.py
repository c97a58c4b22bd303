"""``sgnas lut import``: a per-cell latency table (CSV column) as a LUT file.

::

    sgnas lut import --csv latency.csv --column gold_6226_ms --space nb201 \\
        --device gold_6226 --out lut/gold_6226-nb201.json

A new device measured on a few cells only (k >= 10): ``--predict`` writes a complete table
marked *predicted* (measured cells kept, the rest predicted with an uncertainty, the
cross-validated error stored), from a partial CSV or from the partial LUT that
``sgnas-profile --space nb201 --cells reference`` writes::

    sgnas lut import --csv partial.csv --column ms --space nb201 --predict \\
        --device phone --out lut/phone-nb201.json
    sgnas lut import --partial lut/phone-nb201-cells.json --space nb201 --predict \\
        --device phone --out lut/phone-nb201.json

Which cells to measure (half spread over FLOPs, half chosen for the predictor)::

    sgnas lut design --cells 20 --out cells.txt
    sgnas-profile --device phone --space nb201 --cells cells.txt
"""

from __future__ import annotations

import argparse
import json

NAME = "lut"
HELP = "Manage latency LUTs (import a per-cell table of a device)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lut_command", metavar="ACTION", required=True)
    p = sub.add_parser("import", help="import one column of a per-cell CSV table as a LUT")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", metavar="FILE", help="CSV with one row per cell")
    src.add_argument("--partial", metavar="LUT",
                     help="with --predict: a partial per-cell LUT (sgnas-profile --cells ...)")
    p.add_argument("--column", help="the column holding the latency in ms (with --csv)")
    p.add_argument("--space", required=True, help="the cell space of the table (nb201)")
    p.add_argument("--device", required=True, help="device name recorded in the LUT")
    p.add_argument("--out", required=True, metavar="PATH", help="LUT file to write")
    p.add_argument("--arch-column", default="arch_str", help="column of the cell strings")
    p.add_argument("--predict", action="store_true",
                   help="the table holds some cells only: predict the others (marked predicted)")
    p.add_argument("--min-cells", type=int, default=None,
                   help="with --predict: fewest measured cells accepted (default 10)")
    p.add_argument("--basis", metavar="NPZ",
                   help="with --predict: latency basis (default: the shipped one)")
    p.add_argument("--bench", metavar="DIR",
                   help="folder with nb201.csv, to map an index column (no arch_str) to cells")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    d = sub.add_parser("design", help="cells for a new device to measure before --predict "
                                      "(nb201; for sgnas-profile --space nb201 --cells FILE)")
    d.add_argument("--cells", type=int, required=True, metavar="K", help="how many (>= 10)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--basis", metavar="NPZ", help="latency basis (default: the shipped one)")
    d.add_argument("--out", required=True, metavar="FILE", help="arch strings, one per line")
    d.add_argument("--force", action="store_true", help="overwrite --out")


def run(args: argparse.Namespace) -> int:
    from ..errors import SgnasError
    from ..lut_import import import_and_save, predict_and_save
    from ..shipped import is_shipped

    if is_shipped(args.out):
        raise SgnasError(f"{args.out} is a file shipped with sgnas and is never overwritten; "
                         f"write the table to another --out")

    if args.lut_command == "design":
        import os

        from ..fileio import atomic_write_bytes
        from ..lut_predict import MIN_CELLS, suggest_cells

        if os.path.exists(args.out) and not args.force:
            raise SgnasError(f"{args.out} exists; pass --force to overwrite")
        if args.cells < MIN_CELLS:
            raise SgnasError(f"--cells {args.cells}: a predicted table needs at least {MIN_CELLS}")
        cells = suggest_cells(args.cells, args.seed, args.basis)
        atomic_write_bytes(args.out, "".join(f"{c}\n" for c in cells).encode())
        print(f"wrote {args.out}: {len(cells)} cells to measure (sgnas-profile --space nb201 "
              f"--cells {args.out}), then sgnas lut import --partial ... --predict")
        return 0
    if args.predict:
        lut = predict_and_save(args.out, args.device, args.space, csv_path=args.csv,
                               column=args.column, partial_lut=args.partial, force=args.force,
                               arch_column=args.arch_column, basis_path=args.basis,
                               min_cells=args.min_cells, bench=args.bench)
        cv = lut.prediction["cv"]
        summary = {"out": args.out, "space": lut.space, "device": lut.device_name,
                   "entries": len(lut.entries), "predicted": True,
                   "measured": lut.prediction["measured"], "rank": lut.prediction["rank"],
                   "cv_rmse_rel": cv["rmse_rel"], "cv_mape": cv["mape"],
                   "source": lut.build["source_name"]}
        print(json.dumps(summary) if args.json else
              f"{args.out}: {len(lut.entries)} cells of {lut.space} on {lut.device_name}, "
              f"predicted from {summary['measured']} measured cells of "
              f"{lut.build['source_name']} (cross-validated error {100 * cv['rmse_rel']:.1f}% "
              f"rms, {cv['mape']:.1f}% mean)")
        return 0
    if args.partial or not args.column:
        raise SgnasError("--partial needs --predict; --csv needs --column")
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
