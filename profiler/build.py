"""Building a LUT: enumerate the space's keys, build each entry's graph, measure it, checkpoint.

For every distinct LUT key (:meth:`SearchSpace.all_keys`; layers of identical shape share keys, so
each is measured once) the builder measures the entry through :class:`profiler.measure.Measurer` (its ONNX graph in a
temporary file, one runner of the device's backend, the device's protocol, the runner closed before
the next entry, so only one session lives at a time). The graph of the
first entry of each shape (and of stem and head) is checked against its torch module.

Checkpointing: the partial LUT (``complete: false``) is written atomically to the output path after
every entry and when interrupted, so a killed build loses at most the entry in flight, and
``resume=True`` continues where it stopped.

State normalization (default, ``normalize=True``): every entry is timed interleaved with a fixed
reference block of the same runtime, kept live over the build (:class:`profiler.measure.Measurer`
with a :class:`~profiler.measure.Reference`), and stored as its ratio to the reference times the
reference's latency in the build's reference state (the median of the reference over the whole
build). ``lut.reference`` holds the machine-state record: the reference's latency per entry, its
drift, and the runtime-independent probe (:mod:`profiler.probe`) measured at the start, every
``protocol.canary_every`` entries and at the end, and the whole-network reference (the space's
mid-range network) with its ratio to the reference block: whole networks are timed against it later
(validation, checks, ``sgnas-generate --measure``), because on a loaded CPU an inference of
milliseconds is cut by the scheduler and one of a block mostly is not. A resumed build keeps the
entries that have a ratio; entries of the older protocol are measured again.

Drift (``normalize=False``, the older protocol): a fixed canary entry is measured at the start, every ``protocol.canary_every`` entries and at
the end. The canary medians are recorded in ``lut.drift``. With ``normalize_drift`` (default) an
entry measured while the canary is off its baseline by more than ``drift_tolerance`` is divided by
the canary factor (current / baseline) and the factor is stored in the entry; within the tolerance,
which covers the canary's own measurement noise, entries are stored as measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from sgnas.errors import SgnasError
from sgnas.lut import EntryStats, Lut, load_lut, save_lut, utc_now
from sgnas.progress import Progress
from sgnas.space import SearchSpace

from .measure import Measurer, check_device_space  # noqa: F401 (check_device_space re-exported)
from .protocol import CanaryMonitor

if TYPE_CHECKING:  # pragma: no cover
    from .devices import DeviceDescriptor
    from .protocol import Measurement

log = logging.getLogger(__name__)

#: ``on_entry(key, stats, done, total)`` is called after each entry is recorded and checkpointed.
EntryCallback = Callable[[str, EntryStats, int, int], None]


@dataclass
class BuildConfig:
    """What to build: ``device`` measured over ``space``, written to ``out``."""

    device: "DeviceDescriptor"
    space: SearchSpace
    out: Path
    resume: bool = False
    force: bool = False
    canary: bool = True
    normalize_drift: bool = True
    drift_tolerance: float = 0.03
    #: Measure only the first ``limit`` keys (tests, quick looks); the LUT stays incomplete.
    limit: int | None = None
    #: Measure only these keys (e.g. a sample to re-measure); the LUT stays incomplete.
    keys: Sequence[str] | None = None
    tmp_dir: Path | None = None
    cache_dir: Path | None = None
    seed: int = 0
    verify: bool = True
    checkpoint_every: int = 1
    #: Time every entry against a live reference (state-normalized); False: the older protocol.
    normalize: bool = True
    #: Measure the runtime-independent machine probe along (normalized builds).
    probe: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.limit is not None and self.limit < 1:
            raise SgnasError(f"--limit must be >= 1, got {self.limit}")


def canary_key(space: SearchSpace) -> str:
    """The fixed entry re-measured to track drift: a mid-network layer with a mixed configuration."""
    layer = space.layers[len(space.layers) // 2]
    config = tuple(sorted(space.kernels))
    return layer.key(config if config in space.config_index else space.configs[0])


def entry_stats(m: "Measurement", factor: float | None = None) -> EntryStats:
    """LUT entry of a measurement, divided by ``factor`` when drift is normalized; a
    state-normalized measurement keeps its ratio, ratio spread and pair count."""
    f = factor or 1.0
    return EntryStats(
        median_ms=m.median_ms / f,
        p10_ms=m.p10_ms / f,
        p90_ms=m.p90_ms / f,
        n=m.n,
        spread=m.spread,
        noisy=m.noisy,
        canary_factor=factor,
        ratio=m.ratio,
        ratio_spread=m.spread if m.ratio is not None else None,
        ratio_n=m.pairs if m.ratio is not None else None,
    )


def new_lut(device: "DeviceDescriptor", space: SearchSpace, environment: dict) -> Lut:
    """An empty LUT with the provenance of ``device`` and ``space``."""
    return Lut(
        space=space.name,
        space_fingerprint=space.fingerprint,
        device=device.to_dict(),
        environment=environment,
        input_size=space.input_size,
    )


def _start(cfg: BuildConfig) -> Lut:
    from .environment import collect_environment

    if cfg.out.exists() and not (cfg.resume or cfg.force):
        raise SgnasError(f"{cfg.out} exists; use --resume to continue or --force to overwrite")
    fresh = new_lut(cfg.device, cfg.space, collect_environment(cfg.device))
    if not (cfg.resume and cfg.out.exists()):
        return fresh
    lut = load_lut(cfg.out, space=cfg.space, device=cfg.device, allow_incomplete=True)
    if lut.fingerprint != fresh.fingerprint:
        raise SgnasError(
            f"{cfg.out} was measured with other settings of device {cfg.device.name} (backend, "
            f"precision, batch or threads differ); use --force to start over"
        )
    return lut


class _Probe:
    """The machine probe timed against the reference along a normalized build.

    ``samples``: ``[seconds, entries done, probe ms, reference / probe ratio]``.
    """

    def __init__(self, cfg: BuildConfig, lut: Lut) -> None:
        old = (lut.reference or {}).get("probe") or {}
        self.enabled = cfg.probe
        self.every = cfg.device.protocol.canary_every
        self.samples: list[list[float]] = [list(x) for x in old.get("samples", [])]
        self.settings: dict = {k: old[k] for k in ("size", "chain") if k in old}
        self.started = time.time()
        self.last_at: int | None = None

    def measure(self, measurer: Measurer, done: int) -> None:
        r = measurer.probe(chain=self.settings.get("chain"))  # the first sample sizes the chain
        self.samples.append([round(time.time() - self.started, 3), int(done), r["ms"],
                             r["reference_ratio"]])
        self.settings = {"size": r["size"], "chain": r["chain"]}
        self.last_at = done

    def maybe(self, measurer: Measurer, done: int) -> None:
        if self.enabled and (self.last_at is None
                             or (self.every > 0 and done - self.last_at >= self.every)):
            self.measure(measurer, done)

    def to_dict(self) -> dict:
        """The build's probe record: median probe ms and reference / probe ratio, the samples."""
        if not self.samples:
            return {}
        import numpy as np

        return {**self.settings, "ms": float(np.median([s[2] for s in self.samples])),
                "reference_ratio": float(np.median([s[3] for s in self.samples])),
                "samples": self.samples}


class _NetworkReference:
    """The whole-network reference of a normalized build (networks are timed against a network,
    as long per inference as they are) and its ratio to the reference block, measured
    ``repeats`` times at the end of the entries: ``lut.reference["network"]``."""

    repeats = 3

    def __init__(self, cfg: BuildConfig, lut: Lut) -> None:
        self.cfg = cfg
        self.record: dict = dict((lut.reference or {}).get("network") or {})

    def measure(self, measurer: Measurer) -> None:
        import numpy as np

        from .measure import Reference

        ref = Reference.network(self.cfg.space)
        spec = ref.spec(measurer.builder)
        try:
            ratios = [float(measurer.measure(spec, "network", record=False).ratio or 0.0)
                      for _ in range(self.repeats)]
        finally:
            from .measure import discard

            discard(spec)
        self.record = {"model": ref.name, "ratio": float(np.median(ratios)), "ratios": ratios}


def keys_to_measure(cfg: BuildConfig, lut: Lut) -> list[str]:
    """Keys of the space (restricted to ``cfg.keys``, then the first ``cfg.limit``) not in ``lut`` yet."""
    keys = cfg.space.all_keys()
    if cfg.keys is not None:
        wanted = set(cfg.keys)
        unknown = wanted - set(keys)
        if unknown:
            raise SgnasError(f"space {cfg.space.name!r} has no LUT key {sorted(unknown)[0]}")
        keys = [k for k in keys if k in wanted]
    if cfg.limit is not None:
        keys = keys[: cfg.limit]
    return [k for k in keys if k not in lut.entries]


def _drop_other_protocol(cfg: BuildConfig, lut: Lut) -> int:
    """Entries of the other protocol (with / without a ratio) cannot be mixed: drop them."""
    other = [k for k, e in lut.entries.items() if (e.ratio is None) == cfg.normalize]
    for k in other:
        del lut.entries[k]
    if other and not cfg.normalize:
        lut.reference = {}
    return len(other)


def build_lut(
    cfg: BuildConfig, progress: bool = True, on_entry: EntryCallback | None = None,
    notify: Callable[[str], None] | None = None,
) -> Lut:
    """Measure every missing entry of ``cfg.space`` on ``cfg.device`` and write the LUT to ``cfg.out``.

    Raises :class:`SgnasError` if ``cfg.out`` exists and neither ``resume`` nor ``force`` is set, or
    when the reference or the probe fails to build or run (before anything is written). On
    ``KeyboardInterrupt`` (or any error) the entries measured so far are saved before re-raising
    (an existing file is left alone when nothing new was measured). ``notify(line)`` receives
    one-line messages (what a resume kept and what remains, entries of another protocol dropped).
    """
    from .measure import Reference
    from .interleave import ReferenceState

    check_device_space(cfg.device, cfg.space)
    lut = _start(cfg)
    say = notify or (lambda line: log.info("%s", line))
    resumed = cfg.resume and bool(lut.entries)
    dropped = _drop_other_protocol(cfg, lut) if resumed else 0
    lut.build.setdefault("seed", cfg.seed)
    lut.build.setdefault("verified_graphs", cfg.verify)
    lut.build["protocol"] = "normalized" if cfg.normalize else "absolute"
    todo = keys_to_measure(cfg, lut)
    total = len(todo)
    if cfg.resume:
        say(f"resuming {cfg.out}: kept {len(lut.entries)} measured entries, {total} remain"
            + (f" ({dropped} entries of the older, unnormalized protocol are measured again)"
               if dropped and cfg.normalize else
               f" ({dropped} normalized entries are measured again)" if dropped else ""))
    reference = state = None
    if cfg.normalize:
        old = lut.reference if lut.entries else {}
        reference = (Reference.from_name(old["model"]) if old.get("model")
                     else Reference.block(cfg.space))
        state = (ReferenceState.from_dict(old) if old.get("samples")
                 else ReferenceState(model=reference.name, protocol=interleave_protocol()))
    with contextlib.ExitStack() as stack:
        if cfg.tmp_dir is not None:
            tmp = Path(cfg.tmp_dir)
            tmp.mkdir(parents=True, exist_ok=True)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sgnas-lut-")))
        measurer = stack.enter_context(Measurer(cfg.device, cfg.space, seed=cfg.seed,
                                                verify=cfg.verify, cache_dir=cfg.cache_dir,
                                                folder=tmp, reference=reference, state=state))
        measurer.count = len(lut.entries)
        ckey = str(lut.drift.get("canary_key") or canary_key(cfg.space))
        canary = CanaryMonitor.from_record(
            lut.drift, lambda: measurer.entry(ckey).median_ms, key=ckey,
            every=cfg.device.protocol.canary_every, tolerance=cfg.drift_tolerance,
            normalize=cfg.normalize_drift)
        canary_on = cfg.canary and not cfg.normalize  # normalized: the reference tracks the state
        probe = _Probe(cfg, lut)
        network = _NetworkReference(cfg, lut)
        if cfg.normalize:
            if total:
                measurer.open_reference()  # fails before anything is written
                probe.maybe(measurer, 0)
        bar = Progress(total, f"profiling {cfg.device.name}", unit="entry", enabled=progress)
        stack.callback(bar.close)
        started = time.perf_counter()
        before = len(lut.entries)
        unsaved = 0
        try:
            for done, key in enumerate(todo):
                if canary_on:
                    canary.step()
                if cfg.normalize and done:
                    probe.maybe(measurer, done)
                m = measurer.entry(key)
                lut.entries[key] = entry_stats(m, canary.correction() if canary_on else None)
                lut.environment["runner"] = measurer.runner_info
                unsaved += 1
                if unsaved >= cfg.checkpoint_every:
                    _checkpoint(lut, cfg, canary, measurer, probe, network)
                    unsaved = 0
                bar.update(1)
                if canary.medians:
                    bar.set_postfix(drift=f"{canary.drift():+.1%}", refresh=False)
                elif measurer.state is not None and measurer.state.samples:
                    bar.set_postfix(ref=f"{measurer.state.samples[-1][2]:.4f}ms", refresh=False)
                if on_entry is not None:
                    on_entry(key, lut.entries[key], done + 1, total)
            if canary_on and total:
                canary.measure_now()
            if cfg.normalize and (total or not network.record):
                network.measure(measurer)
            if cfg.normalize and total and probe.enabled:
                probe.measure(measurer, total)
        except BaseException:
            if len(lut.entries) > before:  # never replace a file with nothing new
                _record_run(lut, started, measured=len(lut.entries) - before)
                _checkpoint(lut, cfg, canary, measurer, probe, network)
            raise
        _record_run(lut, started, measured=total)
        _checkpoint(lut, cfg, canary, measurer, probe, network)
    return lut


def interleave_protocol() -> dict:
    from .measure import ENTRY_INTERLEAVE, NETWORK_INTERLEAVE

    return {"entry": dataclasses.asdict(ENTRY_INTERLEAVE),
            "network": dataclasses.asdict(NETWORK_INTERLEAVE)}


def _record_run(lut: Lut, started: float, measured: int) -> None:
    seconds = time.perf_counter() - started
    lut.build["seconds"] = float(lut.build.get("seconds", 0.0)) + seconds
    lut.build.setdefault("runs", []).append(
        {"measured": measured, "seconds": round(seconds, 3), "finished": utc_now()}
    )


def _checkpoint(lut: Lut, cfg: BuildConfig, canary: CanaryMonitor, measurer: Measurer,
                probe: _Probe, network: "_NetworkReference") -> None:
    if canary.medians:
        lut.drift.update(canary.to_dict())
    if measurer.state is not None and measurer.state.samples:
        from .interleave import record_reference

        record_reference(lut, measurer.state)
        if probe.samples:
            lut.reference["probe"] = probe.to_dict()
        if network.record:
            lut.reference["network"] = dict(network.record)
    lut.complete = all(k in lut.entries for k in _all_keys(cfg.space))
    save_lut(lut, cfg.out)


@functools.lru_cache(maxsize=8)
def _all_keys(space: SearchSpace) -> tuple[str, ...]:
    return tuple(space.all_keys())


def with_protocol(device: "DeviceDescriptor", **changes) -> "DeviceDescriptor":
    """A copy of ``device`` with some protocol fields changed (e.g. a quick protocol for tests)."""
    return dataclasses.replace(device, protocol=dataclasses.replace(device.protocol, **changes))
