"""``sgnas-profile --space nb201``: a per-cell LUT of a cell space (see :mod:`profiler.cells`).

Build, then validate on whole networks and store the calibration::

    sgnas-profile --device cpu --space nb201                  # -> $SGNAS_HOME/lut/cpu-nb201.json
    sgnas-profile --device cpu --space nb201 --validate 30    # validate an existing LUT again

The validation writes a predicted-vs-measured plot next to the LUT (``--plot PATH`` to choose).

Quick mode: measure just the listed cells as whole networks, into a partial per-cell LUT::

    sgnas-profile --device cpu --space nb201 --cells refs.txt   # -> $SGNAS_HOME/lut/cpu-nb201-cells.json
    sgnas-profile --device cpu --space nb201 --cells 20
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Whole networks a fresh build is validated on when ``--validate`` is not given.
DEFAULT_VALIDATE = 30


def _say(enabled: bool):
    def cb(name: str, done: int, total: int) -> None:
        if enabled:
            print(f"\r{done}/{total} {name[:60]:<60}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
    return cb


def cell_list(value: str, space) -> list:
    """The cells of ``--cells``: ``reference`` (the reference cells of the shipped shared generator,
    whose latencies are a new device's embedding), a number N (N cells spread over the FLOPs range),
    or a file of arch strings (one per line, or a JSON list)."""
    from profiler.cells import default_cells, read_cell_list

    from ..errors import SgnasError

    if value.strip() == "reference":
        from ..generator import default_generator_dirs
        from ..shared_generator import find_shared_generator, load_shared

        found = find_shared_generator(space, default_generator_dirs())
        if found is None:
            raise SgnasError(f"--cells reference: no shared generator of space {space.name} found")
        return list(load_shared(found).references)
    if value.strip().isdigit():
        return default_cells(space, int(value))
    path = Path(value)
    if not path.is_file():
        raise SgnasError(f"--cells {value}: neither a number nor a file")
    return read_cell_list(path.read_text(), space, where=str(path))


def _plot(report, path: Path, explicit: bool) -> None:
    """The predicted-vs-measured plot of the validation (skipped without matplotlib unless asked
    for with ``--plot``, which then names the extra to install)."""
    from profiler.fidelity import plot_fidelity

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if not explicit:
            return
    report.plot_path = str(plot_fidelity(report, path))


def run_cells(args: argparse.Namespace, device, space, out: Path, progress: bool) -> int:
    """The ``sgnas-profile`` command for a cell space (``args`` as parsed by ``profile``)."""
    from profiler.cells import build_cell_lut, measure_cells, validate_cell_lut

    from ..lut import load_lut, save_lut

    cells_arg = getattr(args, "cells", None)
    if cells_arg is not None:
        cells = cell_list(cells_arg, space)
        if not args.out:
            out = out.with_name(out.stem + "-cells.json")
        lut = measure_cells(device, space, cells, out, force=args.force, seed=args.seed,
                            on_network=_say(progress))
        result = {"lut": str(out), "device": device.name, "space": space.name,
                  "entries": len(lut.entries), "complete": lut.complete,
                  "partial": lut.build["partial"], "seconds": lut.build["seconds"],
                  "noisy_entries": sum(1 for e in lut.entries.values() if e.noisy)}
        print(json.dumps(result) if args.json else
              f"wrote {out}: {len(lut.entries)} measured cells (partial per-cell LUT) in "
              f"{result['seconds']:.0f} s")
        return 0

    from profiler.calibration_set import check_split_size

    from .common import calibrated_copy_path, lut_arg

    lut_path = lut_arg(args.lut) if args.lut else out
    build = not (args.validate is not None and lut_path.exists() and not args.force)
    n = args.validate if args.validate is not None else DEFAULT_VALIDATE
    validate = n > 0 and not getattr(args, "no_validate", False)
    if validate:  # refuse a bad --validate before anything is measured or written
        check_split_size(n, args.fit_fraction)
    result: dict = {}
    if build:
        lut = build_cell_lut(device, space, out, force=args.force, seed=args.seed,
                             resume=getattr(args, "resume", False), on_piece=_say(progress))
        lut_path = out
        result.update(lut=str(out), entries=len(lut.entries), complete=lut.complete,
                      build_seconds=lut.build["seconds"],
                      terms_ms=lut.build["decomposition"]["terms_ms"])
    else:
        target = calibrated_copy_path(args, lut_path, out) if validate else lut_path
        lut = load_lut(lut_path, space=space, device=device)
        if target != lut_path:
            print(f"note: the calibrated LUT is written to {target} ({lut_path} is left as it is)",
                  file=sys.stderr)
        lut_path = target
    if validate:
        report = validate_cell_lut(lut, device, space, n, fit_fraction=args.fit_fraction,
                                   seed=args.seed, on_network=_say(progress))
        save_lut(lut, lut_path)
        _plot(report, Path(args.plot) if args.plot else lut_path.with_suffix(".fidelity.png"),
              explicit=bool(args.plot))
        result["validation"] = report.to_dict()
        if not args.json:
            print(report.summary())
    result.setdefault("lut", str(lut_path))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"wrote {lut_path}" + (f": {result['entries']} cells in "
                                     f"{result['build_seconds']:.0f} s" if build else ""))
    return 0
