"""``sgnas profile`` / ``sgnas-profile``: measure a device's calibrated latency LUT, or validate one.

Build (entries, then whole networks over the whole range: calibration fitted on part, fidelity
reported on the rest, both stored in the LUT)::

    sgnas-profile --device cpu                       # -> $SGNAS_HOME/lut/cpu.json (ImageNet space)
    sgnas-profile --device cpu --resume              # continue an interrupted build
    sgnas-profile --device cpu --space cifar10       # -> $SGNAS_HOME/lut/cpu-cifar10.json
    sgnas-profile --device cpu --space cifar10 --out my.json
    sgnas-profile --device cpu --validate 100        # 100 calibration networks (default 40)
    sgnas-profile --device cpu --no-validate         # entries only: an uncalibrated LUT

``$SGNAS_HOME`` defaults to ``~/.cache/sgnas``; output folders are created. Files the package ships
(``lut/*.json``) are never written: measuring writes to ``--out`` or the per-user folder.

Validate and calibrate an existing LUT (writes the calibration into it, or for a shipped LUT into
``--out`` / the per-user folder, and a plot next to it)::

    sgnas-profile --device cpu --validate 100 --lut my.json --json
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
                        help="search space: imagenet, cifar10, nb201 (per-cell LUT) or tiny "
                             "(default: imagenet)")
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
                             f"(half fit, half held out; default {DEFAULT_NETWORKS}); with --lut, "
                             f"validate that LUT instead of building")
    parser.add_argument("--no-validate", action="store_true",
                        help="measure the entries only: the LUT is uncalibrated (cost and generate "
                             "warn)")
    parser.add_argument("--lut", metavar="PATH",
                        help="validate and calibrate this LUT instead of building one (written in "
                             "place; a shipped LUT is written to --out or the per-user folder)")
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


#: Whole networks measured to calibrate a new LUT.
DEFAULT_NETWORKS = 40


def default_out(device_name: str, space_name: str) -> Path:
    """``<per-user folder>/lut/<device>.json`` for the ImageNet space, ``.../<device>-<space>.json``
    otherwise (:func:`sgnas.shipped.user_dir`: ``$SGNAS_HOME/lut``, default ``~/.cache/sgnas/lut``)."""
    from ..shipped import user_dir

    stem = device_name if space_name == "imagenet" else f"{device_name}-{space_name}"
    return user_dir("lut") / f"{stem}.json"


def check_outputs(args, out: Path) -> None:
    """Refuse before anything is measured: ``--out`` on a shipped file, ``--resume`` of a file that
    does not exist."""
    from ..errors import SgnasError
    from ..shipped import is_shipped

    if is_shipped(out):
        raise SgnasError(f"{out} is a file shipped with sgnas and is never overwritten; measure into "
                         f"another --out (default folder: {default_out('-', '-').parent})")
    if args.resume and not args.lut and not out.exists():
        raise SgnasError(f"--resume: {out} does not exist, there is no build to continue; drop "
                         f"--resume to start one")


def run(args: argparse.Namespace) -> int:
    import logging

    from profiler.devices import check_host, load_device

    from ..space import get_space

    if not args.verbose:  # noisy entries are counted in the summary instead
        logging.getLogger("profiler.protocol").setLevel(logging.ERROR)
    from profiler.calibration_set import check_split_size

    from ..errors import SgnasError

    if args.no_validate and (args.validate is not None or args.lut):
        raise SgnasError("--no-validate cannot be combined with --validate or --lut")
    networks = DEFAULT_NETWORKS if args.validate is None else args.validate
    space = get_space(args.space)
    cells_without_validation = space.profiling_plan().per_architecture and args.validate == 0
    if not args.no_validate and not cells_without_validation:  # (--validate 0: a cell space's
        check_split_size(networks, args.fit_fraction)  # build unvalidated) before measuring
    device = load_device(args.device)
    check_host(device, force=args.force)
    out = Path(args.out) if args.out else default_out(device.name, space.name)
    check_outputs(args, out)
    progress = sys.stderr.isatty()
    with _device_lock(device.name, args, out):
        if space.profiling_plan().kind == "cells" or args.cells is not None:  # cell spaces: profiler.cells
            from .profile_cells import run_cells

            return run_cells(args, device, space, out, progress)
        if args.lut:
            from .common import lut_arg

            return _validate(args, device, space, lut_arg(args.lut), out, networks, progress)
        return _build(args, device, space, out, networks, progress)


def _device_lock(device_name: str, args, out: Path):
    """The profile lock of the device: one measurement per device at a time."""
    from profiler.lock import ProfileLock

    what = f"sgnas-profile {'--validate' if args.lut else 'building'} {out}"
    return ProfileLock(device_name, what=what, wait=args.wait,
                       warn=lambda msg: print(f"warning: {msg}", file=sys.stderr))


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _build(args, device, space, out: Path, networks: int, progress: bool) -> int:
    from profiler.build import BuildConfig, build_lut

    from ..lut import save_lut

    cfg = BuildConfig(device=device, space=space, out=out, resume=args.resume, force=args.force,
                      canary=not args.no_canary, limit=args.limit, seed=args.seed)
    try:
        lut = build_lut(cfg, progress=progress, notify=_say)
    except KeyboardInterrupt:
        print(f"interrupted: partial LUT saved to {out}; continue with --resume", file=sys.stderr)
        return 130
    noisy = sum(1 for e in lut.entries.values() if e.noisy)
    drift = (lut.reference.get("drift") or {}).get("range") if lut.normalized \
        else lut.drift.get("max_drift")
    result = {
        "lut": str(out),
        "device": device.name,
        "space": space.name,
        "entries": len(lut.entries),
        "complete": lut.complete,
        "noisy_entries": noisy,
        "seconds": round(float(lut.build.get("seconds", 0.0)), 2),
        "normalized": lut.normalized,
        "reference_state_ms": lut.reference.get("state_ms"),
        "max_drift": drift,
        "fingerprint": lut.fingerprint,
        "calibrated": False,
    }
    report = None
    if not args.no_validate and lut.complete:
        try:
            report = _calibrate(args, device, space, lut, out, networks, progress)
        except KeyboardInterrupt:
            print(f"interrupted: the entries are saved in {out} (uncalibrated); calibrate with "
                  f"--validate N --lut {out}", file=sys.stderr)
            return 130
        result.update(calibrated=True, fidelity=_fidelity_summary(report),
                      seconds_calibration=round(report.seconds, 2))
    elif not args.no_validate:
        _say(f"note: {out} is incomplete; calibrate it when complete (--resume)")
    else:
        lut.build["calibrated"] = False
        save_lut(lut, out)
    if args.json:
        print(json.dumps(result))
    else:
        what = (f"state-normalized (reference {lut.reference.get('state_ms', 0):.4f} ms, "
                f"moved {drift:.1%} over the build)" if lut.normalized and drift is not None
                else (f"canary drift up to {drift:.1%}" if drift is not None else ""))
        print(f"wrote {out}: {len(lut.entries)} entries"
              f"{'' if lut.complete else ' (incomplete)'} in {result['seconds']:.0f} s, "
              f"{noisy} noisy" + (f", {what}" if what else ""))
        if report is not None:
            print(report.summary())
        elif lut.complete:
            print(f"warning: {out} is uncalibrated; calibrate it with sgnas-profile --device "
                  f"{device.name} --space {space.name} --validate {DEFAULT_NETWORKS} --lut {out}")
    return 0


def _fidelity_summary(report) -> dict:
    c = report.calibrated_heldout
    return {"heldout_n": c["n"], "mape": c["mape"], "within_5pct": c["within_5pct"],
            "within_10pct": c["within_10pct"], "max_abs_error": c["max_abs_error"],
            "spearman": c["spearman"], "thirds": report.heldout_thirds,
            "slope": report.calibration["slope"], "intercept": report.calibration["intercept"]}


def _calibrate(args, device, space, lut, lut_path: Path, networks: int, progress: bool):
    import numpy as np

    from profiler.fidelity import validate_lut

    from ..lut import save_lut

    plot = Path(args.plot) if args.plot else lut_path.with_suffix(".fidelity.png")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plot = None if not args.plot else plot
    report = validate_lut(lut, device, space, n=networks, rng=np.random.default_rng(args.seed),
                          fit_fraction=args.fit_fraction, plot_path=plot, seed=args.seed,
                          progress=progress)
    lut.build["calibrated"] = True
    save_lut(lut, lut_path)
    return report


def _validate(args, device, space, lut_path: Path, out: Path, networks: int,
              progress: bool) -> int:
    from ..lut import load_lut, lut_warnings
    from .common import calibrated_copy_path

    target = calibrated_copy_path(args, lut_path, out)
    lut = load_lut(lut_path, space=space, device=device)
    for line in lut_warnings(lut, calibration=False):
        _say(f"warning: {line}")
    if target != lut_path:
        _say(f"note: the calibrated LUT is written to {target} ({lut_path} is left as it is)")
    lut_path = target
    report = _calibrate(args, device, space, lut, lut_path, networks, progress)
    if args.json:
        d = report.to_dict()
        d["lut"] = str(lut_path)
        print(json.dumps(d))
    else:
        print(report.summary())
        print(f"calibration written to {lut_path}")
    return 0
