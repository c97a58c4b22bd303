"""State-normalized timing: a model timed in alternation with a fixed reference of the same runtime.

Machines switch between speed states within seconds (frequency, co-tenants, memory bandwidth); an
absolute latency measured in one state does not hold in the next. Two models timed in alternating
short chunks (entry, reference, entry, reference, ...) see the same state, so the ratio of their
latencies survives the state change. :func:`interleave` returns those per-pair ratios and their
statistics; the state-normalized latency of the entry is the median ratio times the reference's
latency in a chosen *reference state* (for a LUT: the median of the reference over the whole build,
:class:`ReferenceState`).

Anything with ``time_iterations(n) -> ndarray of n latencies in ms`` can be timed (every backend's
:class:`~profiler.backends.base.Runner`, :class:`profiler.probe.ProbeTimer`). Both runners must be
active at once; keep the reference from disturbing the entry: 1-thread CPU sessions do not spin,
multi-thread ONNX Runtime sessions must run with spinning off (:func:`quiet`), GPU engines stay live.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence, TypeVar

import numpy as np

from sgnas.errors import SgnasError
from sgnas.space import Architecture, SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from sgnas.lut import Lut

#: Upper bound on iterations of one chunk, so a timer reporting ~0 ms can't spin.
MAX_CHUNK_ITERS = 100_000
#: Chunk statistics: the median resists one-off interruptions; the mean scales linearly with the
#: share of a CPU the process gets when more threads are runnable than cores (time slicing).
STATISTICS = {"median": np.median, "mean": np.mean, "min": np.min,
              "p25": lambda x: np.percentile(x, 25)}
#: Configuration of the reference block and network: 4 sub-blocks (middle of 2..6), mean kernel 5.
REFERENCE_CONFIG: tuple[int, ...] = (3, 5, 5, 7)


class Timer(Protocol):
    """What :func:`interleave` times: ``n`` per-iteration latencies in milliseconds."""

    def time_iterations(self, n: int) -> np.ndarray: ...


@dataclass(frozen=True)
class InterleaveConfig:
    """How an entry is timed against the reference.

    Each chunk lasts about ``chunk_ms`` and at least ``min_chunk_iters`` iterations (sized from the
    warm-up). ``pairs`` entry/reference chunk pairs are timed; while the median ratio's error
    (spread IQR/median over the root of the pair count) is above ``max_spread / sqrt(pairs)``,
    ``pairs`` more are added, up to ``max_pairs``. ``statistic`` sums up a chunk
    (:data:`STATISTICS`). With ``alternate`` every other round times the two in the opposite order
    (entry, reference / reference, entry / ...), so an effect of running first or second cancels
    out of the median ratio (paired comparisons of two versions of one model).
    """

    chunk_ms: float = 30.0
    min_chunk_iters: int = 3
    pairs: int = 10
    max_pairs: int = 30
    warmup_ms: float = 50.0
    max_spread: float = 0.03
    statistic: str = "median"
    alternate: bool = False

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise SgnasError(f"interleave.statistic must be one of {', '.join(STATISTICS)}, "
                             f"not {self.statistic!r}")
        checks = {
            "chunk_ms": self.chunk_ms > 0,
            "min_chunk_iters": self.min_chunk_iters >= 1,
            "pairs": self.pairs >= 1,
            "max_pairs": self.max_pairs >= self.pairs,
            "warmup_ms": self.warmup_ms >= 0,
            "max_spread": self.max_spread > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise SgnasError(f"interleave.{name} = {getattr(self, name)!r} is out of range")


@dataclass
class Interleaved:
    """Result of timing an entry against a reference (times in ms, ratios entry / reference).

    ``entry_ms[i]`` and ``reference_ms[i]`` are the medians of the i-th chunk pair, ``ratios[i]``
    their quotient and ``at_s[i]`` the seconds since the start when the pair began.
    """

    ratios: list[float]
    entry_ms: list[float]
    reference_ms: list[float]
    at_s: list[float]
    entry_iters: int
    reference_iters: int
    ratio: float
    ratio_spread: float
    ratio_p10: float
    ratio_p90: float
    noisy: bool

    @property
    def n(self) -> int:
        """Number of ratios: chunk pairs (with ``alternate``, pairs of rounds in both orders)."""
        return len(self.ratios)

    @property
    def reference_median_ms(self) -> float:
        """The reference's absolute latency while the entry was timed (median of its chunks)."""
        return float(np.median(self.reference_ms))

    @property
    def entry_median_ms(self) -> float:
        """The entry's absolute latency (median of its chunks), not normalized."""
        return float(np.median(self.entry_ms))

    def normalized_ms(self, reference_state_ms: float) -> float:
        """The entry's latency in the reference state: median ratio x the reference's latency there."""
        return self.ratio * float(reference_state_ms)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["n"] = self.n
        return d


def ratio_stats(ratios: Sequence[float]) -> tuple[float, float, float, float]:
    """Median, robust spread (IQR / median), p10 and p90 of ``ratios``."""
    r = np.asarray(ratios, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no ratios")
    p10, p25, p50, p75, p90 = np.percentile(r, [10, 25, 50, 75, 90])
    spread = float((p75 - p25) / p50) if p50 > 0 else math.inf
    return float(p50), spread, float(p10), float(p90)


def round_ratios(ratios: np.ndarray, alternate: bool) -> np.ndarray:
    """The ratios a median is taken over: one per round, or with ``alternate`` the geometric mean
    of each two consecutive rounds (one in each order), so an effect of running first or second
    (measured: 2-5% on this 2-vCPU VM) cancels inside every ratio instead of widening their
    spread."""
    if not alternate or len(ratios) < 2:
        return ratios
    k = len(ratios) // 2 * 2
    return np.sqrt(ratios[0:k:2] * ratios[1:k:2])


def chunk_iters(per_iter_ms: float, chunk_ms: float, min_iters: int) -> int:
    """Iterations that make a chunk of about ``chunk_ms`` (at least ``min_iters``)."""
    if not math.isfinite(per_iter_ms) or per_iter_ms <= 0:
        return min_iters
    return int(min(max(math.ceil(chunk_ms / per_iter_ms), min_iters), MAX_CHUNK_ITERS))


def warm_up(timer: Timer, warmup_ms: float, min_iters: int = 3) -> float:
    """Run ``timer`` for about ``warmup_ms`` (at least ``min_iters`` iterations); median per-iteration ms."""
    lat = np.asarray(timer.time_iterations(min_iters), dtype=np.float64)
    spent = float(lat.sum())
    while spent < warmup_ms:
        n = chunk_iters(float(np.median(lat)), warmup_ms - spent, 1)
        lat = np.asarray(timer.time_iterations(n), dtype=np.float64)
        spent += float(lat.sum())
        if float(lat.sum()) <= 0:
            break
    return float(np.median(lat))


def time_chunks(timers: Sequence[Timer], iters: Sequence[int], pairs: int,
                clock_start: float | None = None, statistic: str = "median",
                alternate: bool = False, first_round: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Time ``timers`` in turn, ``iters[j]`` iterations each, ``pairs`` times over (with
    ``alternate``, rounds ``first_round + 1, + 3, ...`` in reverse order).

    Returns ``(values, at_s)``: ``values[i, j]`` is the ``statistic`` (median or mean) of timer
    ``j``'s latencies in round ``i``; ``at_s[i]`` the seconds since ``clock_start`` (default: now)
    when round ``i`` began.
    """
    values, at = time_chunks_stats(timers, iters, pairs, clock_start, (statistic,), alternate,
                                   first_round)
    return values[statistic], at


def time_chunks_stats(timers: Sequence[Timer], iters: Sequence[int], pairs: int,
                      clock_start: float | None = None, statistics: Sequence[str] = ("median",),
                      alternate: bool = False, first_round: int = 0
                      ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`time_chunks` with several chunk statistics of the same samples at once."""
    start = time.perf_counter() if clock_start is None else clock_start
    out = {s: np.empty((pairs, len(timers)), dtype=np.float64) for s in statistics}
    at = np.empty(pairs, dtype=np.float64)
    for i in range(pairs):
        at[i] = time.perf_counter() - start
        order = list(range(len(timers)))
        if alternate and (first_round + i) % 2:
            order.reverse()
        for j in order:
            timer, n = timers[j], iters[j]
            lat = timer.time_iterations(int(n))
            for s in statistics:
                out[s][i, j] = float(STATISTICS[s](lat))
    return out, at


def median_settled(spread: float, pairs: int, cfg: InterleaveConfig) -> bool:
    """Whether the median of ``pairs`` ratios of ``spread`` (IQR/median) is known well enough:
    its relative error ``spread / sqrt(pairs)`` is within ``cfg.max_spread / sqrt(cfg.pairs)``.
    At ``cfg.pairs`` pairs this is ``spread <= cfg.max_spread``; more pairs allow a larger spread."""
    return spread / math.sqrt(pairs) <= cfg.max_spread / math.sqrt(cfg.pairs)


def interleave(entry: Timer, reference: Timer, cfg: InterleaveConfig | None = None) -> Interleaved:
    """Time active ``entry`` and ``reference`` in alternating chunks; ratios entry / reference.

    Both are warmed up first; chunk lengths come from the warm-up estimates. More pairs are added
    until the median ratio is as well known as ``cfg.pairs`` pairs of spread ``cfg.max_spread``
    would make it (:func:`median_settled`), up to ``cfg.max_pairs``; ``noisy`` is set when it
    does not settle.
    """
    cfg = cfg or InterleaveConfig()
    est_e = warm_up(entry, cfg.warmup_ms / 2)
    est_r = warm_up(reference, cfg.warmup_ms / 2)
    if est_e <= 0 or est_r <= 0:
        raise SgnasError(f"a timer reported non-positive latency (entry {est_e}, reference {est_r} ms)")
    iters = (chunk_iters(est_e, cfg.chunk_ms, cfg.min_chunk_iters),
             chunk_iters(est_r, cfg.chunk_ms, cfg.min_chunk_iters))
    start = time.perf_counter()
    medians, at = time_chunks((entry, reference), iters, cfg.pairs, start, cfg.statistic,
                              cfg.alternate)
    while True:
        ratios = round_ratios(medians[:, 0] / medians[:, 1], cfg.alternate)
        ratio, spread, p10, p90 = ratio_stats(ratios)
        if median_settled(spread, len(ratios), cfg) or len(medians) >= cfg.max_pairs:
            break
        more = min(cfg.pairs, cfg.max_pairs - len(medians))
        m2, a2 = time_chunks((entry, reference), iters, more, start, cfg.statistic,
                             cfg.alternate, len(medians))
        medians, at = np.vstack([medians, m2]), np.concatenate([at, a2])
    return Interleaved(
        ratios=ratios.tolist(), entry_ms=medians[:, 0].tolist(), reference_ms=medians[:, 1].tolist(),
        at_s=at.tolist(), entry_iters=iters[0], reference_iters=iters[1], ratio=ratio,
        ratio_spread=spread, ratio_p10=p10, ratio_p90=p90,
        noisy=not median_settled(spread, len(ratios), cfg),
    )


def window_drift(values: np.ndarray, at_s: np.ndarray, window_s: float) -> dict:
    """Medians of ``values`` over consecutive windows of ``window_s`` seconds and how far they move.

    ``drift`` is (max - min) / min of the window medians; ``max_dev`` the largest |window median /
    overall median - 1|; ``within_0.5pct`` the share of windows within ±0.5% of the overall median.
    """
    v, t = np.asarray(values, dtype=np.float64), np.asarray(at_s, dtype=np.float64)
    edges = np.arange(0.0, float(t.max()) + window_s, window_s)
    meds = [float(np.median(v[(t >= lo) & (t < lo + window_s)])) for lo in edges
            if np.any((t >= lo) & (t < lo + window_s))]
    overall = float(np.median(v))
    dev = [abs(m / overall - 1.0) for m in meds]
    return {
        "windows": len(meds),
        "window_medians": meds,
        "drift": (max(meds) - min(meds)) / min(meds),
        "max_dev": max(dev),
        "within_0.5pct": float(np.mean(np.asarray(dev) <= 0.005)),
    }


# ----------------------------------------------------------------- the reference per space
def reference_key(space: SearchSpace) -> str:
    """The LUT key of the reference block: the middle layer with :data:`REFERENCE_CONFIG`."""
    layer = space.layers[len(space.layers) // 2]
    return layer.key(_reference_config(space))


def reference_architecture(space: SearchSpace) -> Architecture:
    """A mid-range whole network: every layer with :data:`REFERENCE_CONFIG`."""
    return space.validate(Architecture(space.name, (_reference_config(space),) * space.num_layers))


def _reference_config(space: SearchSpace) -> tuple[int, ...]:
    if REFERENCE_CONFIG in space.config_index:
        return REFERENCE_CONFIG
    return space.configs[len(space.configs) // 2]


# ----------------------------------------------------------------- the machine-state record
@dataclass
class ReferenceState:
    """The machine-state record of a build: the reference's absolute latency over time.

    ``samples`` holds ``[seconds since started (epoch s), entries done, reference median ms]`` per measured
    entry; :attr:`state_ms` (median of all samples) is the build's reference state, in which every
    entry is stored (``ratio x state_ms``). Stored as ``lut.reference``.
    """

    model: str
    kind: str = "block"  # "block" (a LUT key) or "network"
    samples: list[list[float]] = field(default_factory=list)
    protocol: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def add(self, result: Interleaved, done: int) -> None:
        """Record the reference's latency seen while measuring entry number ``done``."""
        self.samples.append([round(time.time() - self.started, 3), int(done),
                             result.reference_median_ms])

    @property
    def state_ms(self) -> float:
        """The build's reference state: median reference latency over the whole record."""
        if not self.samples:
            raise SgnasError("the reference state has no samples yet")
        return float(np.median([s[2] for s in self.samples]))

    def drift(self) -> dict:
        """How far the reference moved over the build: (max - min) / state and max |x / state - 1|."""
        ms = np.array([s[2] for s in self.samples], dtype=np.float64)
        if ms.size == 0:
            return {}
        state = self.state_ms
        return {"range": float((ms.max() - ms.min()) / state),
                "max_dev": float(np.max(np.abs(ms / state - 1.0)))}

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "kind": self.kind,
            "state_ms": self.state_ms if self.samples else None,
            "drift": self.drift(),
            "protocol": dict(self.protocol),
            "started": self.started,
            "samples": [list(s) for s in self.samples],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ReferenceState":
        return cls(model=str(d["model"]), kind=str(d.get("kind", "block")),
                   samples=[[float(x) for x in s] for s in d.get("samples", [])],
                   protocol=dict(d.get("protocol") or {}),
                   started=float(d.get("started") or time.time()))


R = TypeVar("R")


def quiet(runner: R) -> R:
    """Ask ``runner`` (before activation) not to spin idle worker threads while another model runs.

    Honoured by the ONNX Runtime backend (``session.intra_op.allow_spinning = 0``); other runners
    ignore it. Returns ``runner``.
    """
    runner.allow_spinning = False  # type: ignore[attr-defined]
    return runner


def record_reference(lut: "Lut", state: ReferenceState) -> None:
    """Store ``state`` as ``lut.reference`` and re-state every ratio entry in its reference state."""
    lut.reference = state.to_dict()
    lut.rescale_to_reference(state.state_ms)
