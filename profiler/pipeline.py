"""Profiling a device: :func:`profile_device` builds, calibrates, validates and saves a LUT.

One sequence for both kinds of space (:meth:`Space.profiling_plan`): a layer space's entries
(:func:`profiler.build.build_lut`) or a cell space's per-cell table (:func:`profiler.cells.build_cell_lut`),
then whole networks spread over the LUT's range fit its calibration and report its fidelity on
the held-out ones (:func:`profiler.fidelity.validate_lut` / :func:`profiler.cells.validate_cell_lut`),
then the LUT is saved. ``request.lut`` validates and calibrates an existing LUT instead;
``request.cells`` measures just the listed cells of a cell space into a partial LUT. Everything
runs under the device's profile lock (:class:`profiler.lock.ProfileLock`).

The library prints nothing: notes and warnings go to ``request.notify`` (one line each), progress
bars to stderr only with ``request.progress``; the result carries its JSON record and its summary.
Bad input is an :class:`~sgnas.errors.SgnasError` raised before anything is measured or written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from sgnas.errors import SgnasError
from sgnas.lut import Lut

if TYPE_CHECKING:  # pragma: no cover
    from sgnas.space_protocol import Space

    from .devices import DeviceDescriptor
    from .fidelity import FidelityReport

log = logging.getLogger(__name__)

#: Whole networks a LUT is calibrated on when the request does not say, for both kinds of space:
#: half fit the calibration, half are held out, so the held-out figures rest on 20 networks,
#: about 7 per third of the range (30 left 5 per third, too few for a per-third MAPE).
DEFAULT_NETWORKS = 40


class ProfileInterrupted(KeyboardInterrupt):
    """A profile stopped by the user; the message says what was saved and how to continue."""


@dataclass
class ProfileRequest:
    """What :func:`profile_device` measures, and where it writes."""

    #: Device descriptor, or its name / YAML path (:func:`profiler.devices.load_device`).
    device: "str | DeviceDescriptor"
    #: Search space, or its registry name.
    space: "str | Space" = "imagenet"
    #: LUT file to write; None: :func:`default_out` (``-cells.json`` for a partial cell LUT).
    out: Path | None = None
    #: Validate and calibrate this LUT instead of building one (a shipped LUT: into ``out`` or
    #: the per-user folder).
    lut: Path | None = None
    #: Whole networks of the validation (None: :data:`DEFAULT_NETWORKS`; 0: build unvalidated).
    #: Given for a cell space whose ``out`` exists (without ``force``): that LUT is validated again.
    networks: int | None = None
    #: Cell spaces: measure just these cells as whole networks into a partial per-cell LUT (cells,
    #: or the text form of :func:`resolve_cells`: ``reference``, a number N, a file).
    cells: "str | Sequence[Any] | None" = None
    resume: bool = False
    #: Overwrite an existing ``out`` and skip the host's GPU model check.
    force: bool = False
    #: Share of the validated networks the calibration is fitted on.
    fit_fraction: float = 0.5
    #: Seed of the random weights and of the validation networks.
    seed: int = 0
    #: Re-measure the canary entry to track drift (LUTs of the older, unnormalized protocol).
    canary: bool = True
    #: Predicted-vs-measured plot (None: ``<lut>.fidelity.png`` when matplotlib is installed).
    plot: Path | None = None
    #: Measure only the first ``limit`` entries (tests, quick looks; the LUT stays incomplete).
    limit: int | None = None
    #: Wait for another process profiling the device instead of refusing.
    wait: bool = False
    #: Progress bars on stderr.
    progress: bool = False
    #: Receives notes and warnings, one line each (default: the module's logger).
    notify: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.out = Path(self.out) if self.out is not None else None
        self.lut = Path(self.lut) if self.lut is not None else None
        self.plot = Path(self.plot) if self.plot is not None else None


@dataclass
class ProfileResult:
    """What :func:`profile_device` did: the LUT written, its validation, a record and a summary."""

    #: The LUT file written.
    path: Path
    lut: Lut
    #: Whether entries were measured (False: an existing LUT validated).
    built: bool
    report: "FidelityReport | None" = None
    #: The JSON record ``sgnas-profile --json`` prints.
    record: dict = field(default_factory=dict)
    #: The lines ``sgnas-profile`` prints.
    lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.record)

    def summary(self) -> str:
        return "\n".join(self.lines)


def default_out(device_name: str, space_name: str) -> Path:
    """``<per-user folder>/lut/<device>.json`` for the ImageNet space, ``.../<device>-<space>.json``
    otherwise (:func:`sgnas.shipped.user_dir`: ``$SGNAS_HOME/lut``, default ``~/.cache/sgnas/lut``)."""
    from sgnas.shipped import user_dir

    stem = device_name if space_name == "imagenet" else f"{device_name}-{space_name}"
    return user_dir("lut") / f"{stem}.json"


def resolve_cells(value: str, space: Any) -> list:
    """The cells of a text form: ``reference`` (the reference cells of the shipped shared
    generator, whose latencies are a new device's embedding), a number N (N cells spread over the
    FLOPs range), or a file of arch strings (one per line, or a JSON list)."""
    from .cells import default_cells, read_cell_list

    if value.strip() == "reference":
        from sgnas.generator import default_generator_dirs
        from sgnas.shared_generator import find_shared_generator, load_shared

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


def profile_device(request: ProfileRequest) -> ProfileResult:
    """Build (or, with ``request.lut``, validate) the LUT of ``request.device`` over
    ``request.space`` under the device's profile lock; see the module docstring.

    Raises :class:`SgnasError` on bad input (before measuring), :class:`ProfileLockedError` when
    another process profiles the device (without ``wait``), :class:`ProfileInterrupted` when
    stopped after something was saved."""
    from sgnas.space import get_space

    from .calibration_set import check_split_size
    from .devices import check_host, load_device
    from .lock import ProfileLock

    r = request
    space = get_space(r.space) if isinstance(r.space, str) else r.space
    per_cell = space.profiling_plan().per_architecture
    n = DEFAULT_NETWORKS if r.networks is None else r.networks
    if n or r.lut is not None:  # a bad count is refused before anything is measured
        check_split_size(n, r.fit_fraction)
    device = load_device(r.device) if isinstance(r.device, str) else r.device
    check_host(device, force=r.force)
    out = r.out or default_out(device.name, space.name)
    _check_outputs(r, out)
    what = f"sgnas-profile {'--validate' if r.lut else 'building'} {out}"
    with ProfileLock(device.name, what=what, wait=r.wait,
                     warn=lambda msg: _say(r, f"warning: {msg}")):
        if r.cells is not None:
            return _partial_cells(r, device, space, out)
        if per_cell:
            return _cells(r, device, space, out, n)
        if r.lut is not None:
            return _validate(r, device, space, out, n)
        return _build(r, device, space, out, n)


def _say(r: ProfileRequest, line: str) -> None:
    if r.notify is not None:
        r.notify(line)
    else:
        log.info("%s", line)


def _check_outputs(r: ProfileRequest, out: Path) -> None:
    """Refuse before anything is measured: a shipped ``out``, ``resume`` of a missing file."""
    from sgnas.shipped import is_shipped

    if is_shipped(out):
        raise SgnasError(f"{out} is a file shipped with sgnas and is never overwritten; measure into "
                         f"another --out (default folder: {default_out('-', '-').parent})")
    if r.resume and r.lut is None and not out.exists():
        raise SgnasError(f"--resume: {out} does not exist, there is no build to continue; drop "
                         f"--resume to start one")


def _target(r: ProfileRequest, lut_path: Path, out: Path) -> Path:
    """Where a validation writes the calibrated LUT: ``r.out`` when given, else the LUT itself,
    except a shipped LUT, whose calibrated copy goes to ``out`` (the per-user folder); an existing
    file other than the LUT is refused without ``force``."""
    from sgnas.shipped import is_shipped

    target = r.out if r.out is not None else (out if is_shipped(lut_path) else lut_path)
    if target.resolve() != lut_path.resolve() and target.exists() and not r.force:
        raise SgnasError(f"{target} exists; pass --force to overwrite it with the calibrated copy "
                         f"of {lut_path}")
    return target


def _load_for_validation(r: ProfileRequest, device, space, lut_path: Path,
                         out: Path) -> tuple[Lut, Path]:
    """The LUT to validate and where its calibrated form is written (notes: its warnings, a copy)."""
    from sgnas.lut import load_lut, lut_warnings

    target = _target(r, lut_path, out)
    lut = load_lut(lut_path, space=space, device=device)
    for line in lut_warnings(lut, calibration=False):
        _say(r, f"warning: {line}")
    if target != lut_path:
        _say(r, f"note: the calibrated LUT is written to {target} ({lut_path} is left as it is)")
    return lut, target


def _plot_path(r: ProfileRequest, lut_path: Path) -> Path | None:
    """The validation's plot: ``r.plot``, else beside the LUT when matplotlib is installed."""
    if r.plot is not None:
        return r.plot
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    return lut_path.with_suffix(".fidelity.png")


def _bar(r: ProfileRequest, total: int, desc: str, unit: str):
    """A progress bar and the ``(name, done, total)`` callback that advances it."""
    from sgnas.progress import Progress

    bar = Progress(total, desc, unit=unit, enabled=r.progress)
    seen = [0]

    def step(name: str, done: int, total: int) -> None:
        bar.update(max(done - seen[0], 0))
        seen[0] = done
    return bar, step


# ------------------------------------------------------------------ layer spaces
def _calibrate(r: ProfileRequest, device, space, lut: Lut, path: Path, n: int):
    import numpy as np

    from sgnas.lut import save_lut

    from .fidelity import validate_lut

    report = validate_lut(lut, device, space, n=n, rng=np.random.default_rng(r.seed),
                          fit_fraction=r.fit_fraction, plot_path=_plot_path(r, path), seed=r.seed,
                          progress=r.progress)
    lut.build["calibrated"] = True
    save_lut(lut, path)
    return report


def _build(r: ProfileRequest, device, space, out: Path, n: int) -> ProfileResult:
    from sgnas.lut import save_lut

    from .build import BuildConfig, build_lut

    cfg = BuildConfig(device=device, space=space, out=out, resume=r.resume, force=r.force,
                      canary=r.canary, limit=r.limit, seed=r.seed)
    try:
        lut = build_lut(cfg, progress=r.progress, notify=lambda line: _say(r, line))
    except KeyboardInterrupt:
        raise ProfileInterrupted(f"partial LUT saved to {out}; continue with --resume") from None
    noisy = sum(1 for e in lut.entries.values() if e.noisy)
    drift = (lut.reference.get("drift") or {}).get("range") if lut.normalized \
        else lut.drift.get("max_drift")
    record = {"lut": str(out), "device": device.name, "space": space.name,
              "entries": len(lut.entries), "complete": lut.complete, "noisy_entries": noisy,
              "seconds": round(float(lut.build.get("seconds", 0.0)), 2),
              "normalized": lut.normalized, "reference_state_ms": lut.reference.get("state_ms"),
              "max_drift": drift, "fingerprint": lut.fingerprint, "calibrated": False}
    report = None
    if n and lut.complete:
        try:
            report = _calibrate(r, device, space, lut, out, n)
        except KeyboardInterrupt:
            raise ProfileInterrupted(f"the entries are saved in {out} (uncalibrated); calibrate "
                                     f"with --validate N --lut {out}") from None
        record.update(calibrated=True, fidelity=_fidelity_summary(report),
                      seconds_calibration=round(report.seconds, 2))
    elif n:
        _say(r, f"note: {out} is incomplete; calibrate it when complete (--resume)")
    else:
        lut.build["calibrated"] = False
        save_lut(lut, out)
    state = (f"state-normalized (reference {lut.reference.get('state_ms', 0):.4f} ms, "
             f"moved {drift:.1%} over the build)" if lut.normalized and drift is not None
             else (f"canary drift up to {drift:.1%}" if drift is not None else ""))
    lines = [f"wrote {out}: {len(lut.entries)} entries{'' if lut.complete else ' (incomplete)'} "
             f"in {record['seconds']:.0f} s, {noisy} noisy" + (f", {state}" if state else "")]
    if report is not None:
        lines.append(report.summary())
    elif lut.complete:
        lines.append(f"warning: {out} is uncalibrated; calibrate it with sgnas-profile --device "
                     f"{device.name} --space {space.name} --validate {DEFAULT_NETWORKS} --lut {out}")
    return ProfileResult(out, lut, True, report, record, lines)


def _fidelity_summary(report) -> dict:
    c = report.calibrated_heldout
    return {"heldout_n": c["n"], "mape": c["mape"], "within_5pct": c["within_5pct"],
            "within_10pct": c["within_10pct"], "max_abs_error": c["max_abs_error"],
            "spearman": c["spearman"], "thirds": report.heldout_thirds,
            "slope": report.calibration["slope"], "intercept": report.calibration["intercept"]}


def _validate(r: ProfileRequest, device, space, out: Path, n: int) -> ProfileResult:
    assert r.lut is not None
    lut, path = _load_for_validation(r, device, space, r.lut, out)
    report = _calibrate(r, device, space, lut, path, n)
    record = {**report.to_dict(), "lut": str(path)}
    return ProfileResult(path, lut, False, report, record,
                         [report.summary(), f"calibration written to {path}"])


# ------------------------------------------------------------------- cell spaces
def _cells(r: ProfileRequest, device, space, out: Path, n: int) -> ProfileResult:
    """A cell space: build the per-cell table (unless validating an existing LUT), validate."""
    from sgnas.lut import save_lut

    from .cell_graphs import piece_specs
    from .cells import build_cell_lut, validate_cell_lut
    from .fidelity import plot_fidelity

    # ``networks`` given for an existing LUT (neither forced nor resumed): validate it again
    again = bool(r.networks) and out.exists() and not (r.force or r.resume)
    build = r.lut is None and not again
    record: dict = {}
    lines: list[str] = []
    if build:
        bar, step = _bar(r, len(piece_specs(space)), f"profiling {device.name}", "piece")
        try:
            lut = build_cell_lut(device, space, out, force=r.force, seed=r.seed, resume=r.resume,
                                 on_piece=step)
        except KeyboardInterrupt:
            raise ProfileInterrupted(f"the pieces measured so far are saved in {out}; continue "
                                     f"with --resume") from None
        finally:
            bar.close()
        path = out
        record.update(lut=str(out), entries=len(lut.entries), complete=lut.complete,
                      build_seconds=lut.build["seconds"],
                      terms_ms=lut.build["decomposition"]["terms_ms"])
    else:
        lut, path = _load_for_validation(r, device, space, r.lut or out, out)
    report = None
    if n:
        bar, step = _bar(r, n, f"validating {device.name}", "net")
        try:
            report = validate_cell_lut(lut, device, space, n, fit_fraction=r.fit_fraction,
                                       seed=r.seed, on_network=step)
        finally:
            bar.close()
        save_lut(lut, path)
        plot = _plot_path(r, path)
        if plot is not None:
            report.plot_path = str(plot_fidelity(report, plot))
        record["validation"] = report.to_dict()
        lines.append(report.summary())
    record.setdefault("lut", str(path))
    lines.append(f"wrote {path}" + (f": {record['entries']} cells in {record['build_seconds']:.0f} s"
                                    if build else ""))
    return ProfileResult(path, lut, build, report, record, lines)


def _partial_cells(r: ProfileRequest, device, space, out: Path) -> ProfileResult:
    """Quick mode: the listed cells measured as whole networks into a partial per-cell LUT."""
    from .cells import measure_cells

    cells = resolve_cells(r.cells, space) if isinstance(r.cells, str) else list(r.cells or [])
    if r.out is None:
        out = out.with_name(out.stem + "-cells.json")
    bar, step = _bar(r, len(cells), f"measuring {device.name}", "net")
    try:
        lut = measure_cells(device, space, cells, out, force=r.force, seed=r.seed, on_network=step)
    finally:
        bar.close()
    record = {"lut": str(out), "device": device.name, "space": space.name,
              "entries": len(lut.entries), "complete": lut.complete,
              "partial": lut.build["partial"], "seconds": lut.build["seconds"],
              "noisy_entries": sum(1 for e in lut.entries.values() if e.noisy)}
    line = (f"wrote {out}: {len(lut.entries)} measured cells (partial per-cell LUT) in "
            f"{record['seconds']:.0f} s")
    return ProfileResult(out, lut, True, None, record, [line])
