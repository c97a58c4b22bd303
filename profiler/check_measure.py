"""Measuring the targets of a latency check on a device (the default ``measure_fn``).

:class:`DeviceMeasurer` measures each target through :mod:`profiler.measure`, keeping a canary entry to report drift; :func:`preflight` fails early
on a host that cannot run the device; :func:`provenance` records the host and runtime of a run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sgnas.config import load_dataclass
from sgnas.errors import SgnasError
from sgnas.lut import Lut
from sgnas.space import SearchSpace

from .backends.base import ModelSpec, get_backend, make_runner
from .build import canary_key
from .check_config import Target
from .devices import DeviceDescriptor, check_host
from .interleave import InterleaveConfig
from .measure import Measurer, Reference
from .protocol import CanaryMonitor, Measurement, ProtocolConfig


@dataclass
class ProbeMeasurement:
    """What the ``runtime`` target measures: reference / probe ratio, its spread, pairs timed."""

    median_ms: float
    spread: float
    pairs: int = 0


class DeviceMeasurer(Measurer):
    """The default ``measure_fn``: measures check targets with :class:`~profiler.measure.Measurer`.

    LUT entries and networks are built as ONNX graphs in a temporary folder (only the last one is
    kept, so re-measuring a suspect reuses it); ``"model"`` targets run their own file. Every call
    opens a fresh runner (one live session at a time). With ``canary_key`` a fixed LUT entry is
    re-measured periodically and at :meth:`finish`, and :meth:`drift` reports its relative change.
    Use it as a context manager.

    With ``reference`` (state-normalized baselines and LUTs) every target is timed against that
    live reference and stated in ``state_ms`` (the baseline's reference state); no canary is kept.
    """

    def __init__(self, device: DeviceDescriptor, space: SearchSpace | None = None,
                 protocol: ProtocolConfig | dict | None = None,
                 cache_dir: str | os.PathLike | None = None, canary_key: str | None = None,
                 seed: int = 0, reference: Reference | None = None,
                 state_ms: float | None = None, network_reference: Reference | None = None,
                 network_state_ms: float | None = None,
                 network_interleave: InterleaveConfig | None = None) -> None:
        if isinstance(protocol, dict):
            protocol = load_dataclass(ProtocolConfig, protocol, where="protocol")
        super().__init__(device, space, protocol=protocol, seed=seed, cache_dir=cache_dir,
                         prefix="sgnas-check-", reference=reference, state_ms=state_ms,
                         network_reference=network_reference, network_state_ms=network_state_ms,
                         network_interleave=network_interleave)
        self.canary: CanaryMonitor | None = None
        #: The last probe record (:meth:`Measurer.probe`) of the ``runtime`` target.
        self.last_probe: dict | None = None
        #: Matmuls per probe iteration: the recorded probe's (set by the check), else automatic.
        self.probe_chain: int | None = None
        if canary_key is not None and reference is None:
            spec = self.entry_spec(canary_key, keep=True)
            self.canary = CanaryMonitor.of_runner(
                make_runner(device, spec, cache_dir=self.cache_dir), self.protocol, key=canary_key)

    def spec(self, target: Target) -> ModelSpec:
        """The :class:`~profiler.backends.base.ModelSpec` that ``target`` runs."""
        if target.kind == "entry":
            return self.entry_spec(target.name)
        if target.kind == "network":
            if target.arch is None:
                raise SgnasError(f"{target.name}: a network target needs an architecture")
            return self.network_spec(target.arch, target.name)
        if target.path is None or target.input_shape is None:
            raise SgnasError(f"{target.name}: a model target needs a path and an input shape")
        return self.file_spec(target.path, target.input_shape, target.name)

    def __call__(self, target: Target) -> Any:
        if target.kind == "runtime":
            return self._probe()
        m = self.measure(self.spec(target), "entry" if target.kind == "entry" else "model")
        if self.canary is not None:
            self.canary.step()
        return m

    def _probe(self) -> ProbeMeasurement:
        """The ``runtime`` target: the probe against the reference (:meth:`Measurer.probe`)."""
        self.last_probe = self.probe(chain=self.probe_chain)
        return ProbeMeasurement(self.last_probe["reference_ratio"], self.last_probe["spread"],
                                int(self.last_probe.get("pairs") or 0))

    def finish(self) -> None:
        """Measure the canary once more, so :meth:`drift` spans the whole check."""
        if self.canary is not None and self.canary.medians:
            self.canary.measure_now()

    def drift(self) -> float | None:
        """Relative change of the canary from the first to the last measurement of this check."""
        if self.canary is None or len(self.canary.medians) < 2:
            return None
        return float(self.canary.drift())

    def canary_ms(self) -> float | None:
        """The canary's first median in this check."""
        return float(self.canary.medians[0]) if self.canary is not None and self.canary.medians else None


def reference_now_ms(measurer: Measurer) -> float | None:
    """The reference's absolute latency over this measurer's timings (median), if it has one."""
    if measurer.state is None or not measurer.state.samples:
        return None
    return float(measurer.state.state_ms)


def preflight(device: DeviceDescriptor, force: bool = False) -> None:
    """Fail early when ``device`` cannot be measured here (wrong host, missing runtime)."""
    check_host(device, force=force)
    get_backend(device)


def lut_canary(lut: Lut, space: SearchSpace) -> tuple[str, float | None]:
    """The canary key the LUT build used (or the build's default) and its first recorded median."""
    drift = lut.drift or {}
    key = drift.get("canary_key") or canary_key(space)
    medians = drift.get("canary_medians_ms") or []
    return str(key), (float(medians[0]) if medians and drift.get("canary_key") else None)


def provenance(device: DeviceDescriptor) -> dict:
    """The host and runtime of ``device`` as recorded with a measured check (never raises)."""
    try:
        from .environment import collect_environment
    except ImportError:
        return {}
    try:
        return dict(collect_environment(device))
    except Exception as exc:  # provenance must never break a check
        return {"error": f"{type(exc).__name__}: {exc}"}


class NeighbourGauge:
    """How busy the rest of the machine is while something is measured: CPU time used by other
    processes and stolen by the hypervisor, per second of wall time, in cores (``/proc/stat``
    minus this process's own CPU time).

    ``token = gauge.start()`` … ``gauge.stop(token)`` → cores, or ``None`` where ``/proc/stat`` is
    not readable (then contention is unknown and every measurement counts as quiet).
    """

    FIELDS_BUSY = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (not idle, iowait)

    def __init__(self, stat_path: str = "/proc/stat") -> None:
        self.stat_path = stat_path
        try:
            self.hz = float(os.sysconf("SC_CLK_TCK"))
        except (AttributeError, ValueError, OSError):
            self.hz = 100.0

    def _busy_s(self) -> float | None:
        try:
            with open(self.stat_path) as f:
                fields = f.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu":
            return None
        values = [int(x) for x in fields[1:]]
        return sum(values[i] for i in self.FIELDS_BUSY if i < len(values)) / self.hz

    def start(self) -> tuple | None:
        busy = self._busy_s()
        if busy is None:
            return None
        t = os.times()
        return busy, t.user + t.system + t.children_user + t.children_system, t.elapsed

    def stop(self, token: tuple | None) -> float | None:
        if token is None:
            return None
        now = self.start()
        if now is None:
            return None
        wall = now[2] - token[2]
        if wall <= 0.05:  # shorter than a few clock ticks: nothing to tell
            return None
        others = (now[0] - token[0]) - (now[1] - token[1])
        return max(0.0, others / wall)


class NoGauge:
    """A gauge that measures nothing (contention unknown): for injected measurements."""

    def start(self) -> None:
        return None

    def stop(self, token: Any) -> None:
        return None
