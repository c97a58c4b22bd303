"""``sgnas profile`` / ``sgnas-profile``: measure a device's latency LUT, or validate one end to end.

Build::

    sgnas-profile --device cpu                       # -> lut/cpu.json (ImageNet space)
    sgnas-profile --device cpu --resume              # continue an interrupted build
    sgnas-profile --device cpu --space cifar10       # -> lut/cpu-cifar10.json

Validate and calibrate (writes the calibration into the LUT and a plot next to it)::

    sgnas-profile --device cpu --validate 100 --lut lut/cpu.json --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "profile"
HELP = "measure a device's latency lookup table (LUT) over a search space, or validate one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", required=True, metavar="NAME|PATH",
                        help="device descriptor: a name from devices/ or a YAML file")
    parser.add_argument("--space", default="imagenet", metavar="NAME",
                        help="search space: imagenet, cifar10 or tiny (default: imagenet)")
    parser.add_argument("--out", metavar="PATH",
                        help="LUT file to write (default: lut/<device>.json for imagenet, "
                             "lut/<device>-<space>.json otherwise)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted build from the partial --out file")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing --out file and skip the host's GPU model check")
    parser.add_argument("--validate", type=int, metavar="N",
                        help="instead of building, measure N random whole networks against the LUT, "
                             "fit a calibration and store it in the LUT")
    parser.add_argument("--lut", metavar="PATH", help="LUT to validate (default: the --out path)")
    parser.add_argument("--plot", metavar="PATH",
                        help="predicted-vs-measured plot of --validate (default: <lut>.fidelity.png)")
    parser.add_argument("--fit-fraction", type=float, default=0.5,
                        help="share of validated networks the calibration is fitted on (default 0.5)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument("--seed", type=int, default=0,
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


def default_out(device_name: str, space_name: str) -> Path:
    """``lut/<device>.json`` for the ImageNet space, ``lut/<device>-<space>.json`` otherwise."""
    stem = device_name if space_name == "imagenet" else f"{device_name}-{space_name}"
    return Path("lut") / f"{stem}.json"


def run(args: argparse.Namespace) -> int:
    import logging

    from profiler.devices import check_host, load_device

    from ..space import get_space

    if not args.verbose:  # noisy entries are counted in the summary instead
        logging.getLogger("profiler.protocol").setLevel(logging.ERROR)
    device = load_device(args.device)
    space = get_space(args.space)
    check_host(device, force=args.force)
    out = Path(args.out) if args.out else default_out(device.name, space.name)
    progress = sys.stderr.isatty()
    with _device_lock(device.name, args, out):
        if hasattr(space, "cell_key") or args.cells is not None:  # cell spaces: profiler.cells
            from .profile_cells import run_cells
            return run_cells(args, device, space, out, progress)
        if args.validate is not None:
            return _validate(args, device, space, Path(args.lut) if args.lut else out, progress)
        return _build(args, device, space, out, progress)


def _device_lock(device_name: str, args, out: Path):
    """The profile lock of the device: one measurement per device at a time."""
    from profiler.lock import ProfileLock

    what = f"sgnas-profile {'--validate' if args.validate is not None else 'building'} {out}"
    return ProfileLock(device_name, what=what, wait=args.wait,
                       warn=lambda msg: print(f"warning: {msg}", file=sys.stderr))


def _build(args, device, space, out: Path, progress: bool) -> int:
    from profiler.build import BuildConfig, build_lut

    if args.lut:
        print("note: --lut is only used with --validate; writing --out", file=sys.stderr)
    cfg = BuildConfig(device=device, space=space, out=out, resume=args.resume, force=args.force,
                      canary=not args.no_canary, limit=args.limit, seed=args.seed)
    try:
        lut = build_lut(cfg, progress=progress)
    except KeyboardInterrupt:
        print(f"interrupted: partial LUT saved to {out}; continue with --resume", file=sys.stderr)
        return 130
    noisy = sum(1 for e in lut.entries.values() if e.noisy)
    result = {
        "lut": str(out),
        "device": device.name,
        "space": space.name,
        "entries": len(lut.entries),
        "complete": lut.complete,
        "noisy_entries": noisy,
        "seconds": round(float(lut.build.get("seconds", 0.0)), 2),
        "max_drift": lut.drift.get("max_drift"),
        "fingerprint": lut.fingerprint,
    }
    if args.json:
        print(json.dumps(result))
    else:
        drift = result["max_drift"]
        print(f"wrote {out}: {len(lut.entries)} entries"
              f"{'' if lut.complete else ' (incomplete)'} in {result['seconds']:.0f} s, "
              f"{noisy} noisy" + (f", canary drift up to {drift:.1%}" if drift is not None else ""))
    return 0


def _validate(args, device, space, lut_path: Path, progress: bool) -> int:
    import numpy as np

    from profiler.fidelity import validate_lut

    from ..lut import load_lut, save_lut

    lut = load_lut(lut_path, space=space, device=device)
    plot = Path(args.plot) if args.plot else lut_path.with_suffix(".fidelity.png")
    report = validate_lut(lut, device, space, n=args.validate, rng=np.random.default_rng(args.seed),
                          fit_fraction=args.fit_fraction, plot_path=plot, seed=args.seed,
                          progress=progress)
    save_lut(lut, lut_path)
    if args.json:
        d = report.to_dict()
        d["lut"] = str(lut_path)
        print(json.dumps(d))
    else:
        print(report.summary())
        print(f"calibration written to {lut_path}")
    return 0
