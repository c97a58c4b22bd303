"""``sgnas profile`` / ``sgnas-profile``: measure a device's calibrated latency LUT, or validate one.

Build (entries, then whole networks over the whole range: calibration fitted on part, fidelity
reported on the rest, both stored in the LUT)::

    sgnas-profile --device cpu                       # -> $SGNAS_HOME/lut/cpu.json (ImageNet space)
    sgnas-profile --device cpu --resume              # continue an interrupted build
    sgnas-profile --device cpu --space cifar10       # -> $SGNAS_HOME/lut/cpu-cifar10.json
    sgnas-profile --device cpu --space cifar10 --out my.json
    sgnas-profile --device cpu --validate 100        # 100 calibration networks (default 40)
    sgnas-profile --device cpu --no-validate         # entries only: an uncalibrated LUT

A cell space (``--space nb201``) gets a per-cell LUT (:mod:`profiler.cells`); ``--validate N`` of
an existing one validates it again; ``--cells FILE|N|reference`` measures just those cells into a
partial per-cell LUT (``$SGNAS_HOME/lut/<device>-nb201-cells.json``).

``$SGNAS_HOME`` defaults to ``~/.cache/sgnas``; output folders are created. Files the package ships
(``lut/*.json``) are never written: measuring writes to ``--out`` or the per-user folder.

Validate and calibrate an existing LUT (writes the calibration into it, or for a shipped LUT into
``--out`` / the per-user folder, and a plot next to it)::

    sgnas-profile --device cpu --validate 100 --lut my.json --json

The work is :func:`profiler.pipeline.profile_device`; this module parses and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from profiler.pipeline import DEFAULT_NETWORKS, ProfileRequest

NAME = "profile"
HELP = "measure a device's latency lookup table (LUT) over a search space, or validate one"
_DEFAULTS = ProfileRequest(device="")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", required=True, metavar="NAME|PATH",
                        help="device descriptor: a name from devices/ or a YAML file")
    parser.add_argument("--space", default=_DEFAULTS.space, metavar="NAME",
                        help=f"search space: imagenet, cifar10, nb201 (per-cell LUT) or tiny "
                             f"(default: {_DEFAULTS.space})")
    parser.add_argument("--out", metavar="PATH",
                        help="LUT file to write, its folder created (default: $SGNAS_HOME/lut/"
                             "<device>.json for imagenet, $SGNAS_HOME/lut/<device>-<space>.json "
                             "otherwise; $SGNAS_HOME defaults to ~/.cache/sgnas); never a file "
                             "the package ships")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted build from the partial --out file (which "
                            "must exist)")
    group.add_argument("--force", action="store_true",
                       help="overwrite an existing --out file and skip the host's GPU model check")
    parser.add_argument("--validate", type=int, metavar="N",
                        help=f"whole networks measured after the entries to calibrate the LUT "
                             f"(half fit, half held out; default {DEFAULT_NETWORKS}; 0: none); "
                             f"with --lut, or for an existing cell-space --out, validate that LUT "
                             f"instead of building")
    parser.add_argument("--no-validate", action="store_true",
                        help="measure the entries only: the LUT is uncalibrated (cost and generate "
                             "warn)")
    parser.add_argument("--lut", metavar="PATH",
                        help="validate and calibrate this LUT instead of building one (written in "
                             "place; a shipped LUT is written to --out or the per-user folder)")
    parser.add_argument("--plot", metavar="PATH",
                        help="predicted-vs-measured plot of --validate (default: <lut>.fidelity.png)")
    parser.add_argument("--fit-fraction", type=float, default=_DEFAULTS.fit_fraction,
                        help=f"share of validated networks the calibration is fitted on (default "
                             f"{_DEFAULTS.fit_fraction})")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed,
                        help="seed of the random weights and of the validation networks")
    parser.add_argument("--no-canary", action="store_true",
                        help="do not re-measure the canary entry to track drift")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log a warning for every entry whose timing varies much")
    parser.add_argument("--wait", action="store_true",
                        help="if the device is being profiled by another process, wait for it "
                             "instead of refusing")
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cells", metavar="FILE|N|reference",  # cell spaces: quick partial LUT
                        help="nb201 only: measure just these cells as whole networks (a file of "
                             "arch strings, one per line or a JSON list; N spread cells; or "
                             "'reference': the shared generator's reference cells, a new "
                             "device's embedding) into a partial per-cell LUT")


def run(args: argparse.Namespace) -> int:
    import logging

    from profiler.pipeline import ProfileInterrupted, profile_device

    from ..errors import SgnasError
    from .common import lut_arg

    if not args.verbose:  # noisy entries are counted in the summary instead
        logging.getLogger("profiler.protocol").setLevel(logging.ERROR)
    if args.no_validate and (args.validate is not None or args.lut):
        raise SgnasError("--no-validate cannot be combined with --validate or --lut")
    request = ProfileRequest(
        device=args.device, space=args.space, out=Path(args.out) if args.out else None,
        lut=lut_arg(args.lut) if args.lut else None,
        networks=0 if args.no_validate else args.validate, cells=args.cells,
        resume=args.resume, force=args.force, fit_fraction=args.fit_fraction, seed=args.seed,
        canary=not args.no_canary, plot=Path(args.plot) if args.plot else None, limit=args.limit,
        wait=args.wait, progress=sys.stderr.isatty(),
        notify=lambda line: print(line, file=sys.stderr))
    try:
        result = profile_device(request)
    except ProfileInterrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return 130
    print(json.dumps(result.to_dict()) if args.json else result.summary())
    return 0
