"""A runtime-independent machine-speed probe: a chain of square numpy matmuls on one thread.

The probe does not touch any inference runtime, so a change in its latency is a change of the
machine (frequency, co-tenants), never of a model or runtime. ``sgnas check`` records it next to the
model's latency (baseline key :data:`PROBE_KEY`) to tell a slower machine from a slower model.

One probe iteration should last about as long as one inference of the models it is compared with
(default: 40 matmuls, ~3 ms on the machines here, like a CIFAR-10 network). On a CPU shared by more
runnable threads than cores, an iteration longer than the scheduler's time slice is interrupted and
a shorter one mostly is not, so a short probe's median misses that kind of slowdown: measured here
under load (``scripts/bench_interleave.py``), a 0.65 ms probe moved 6.5% while the networks moved
461%; a 3 ms probe moved 118% with a network that moved 109% (docs/RESULTS.md).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from sgnas.errors import SgnasError

#: Baseline key under which the probe's figures are stored.
PROBE_KEY = "probe"


class ProbeTimer:
    """``time_iterations(n)``: ``n`` timings of a chain of ``chain`` ``size x size`` float32 matmuls.

    The matrix is orthogonal (values stay bounded however long the chain). BLAS runs on one thread
    while timing (``threadpoolctl``), so the probe sees one core like a 1-thread runtime.
    """

    def __init__(self, size: int = 160, chain: int = 40, seed: int = 0) -> None:
        if size < 1 or chain < 1:
            raise SgnasError(f"probe size and chain must be >= 1, got {size} and {chain}")
        self.size, self.chain = int(size), int(chain)
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.standard_normal((size, size)))
        self._w = np.ascontiguousarray(q.astype(np.float32))
        self._x = np.ascontiguousarray(rng.standard_normal((size, size)).astype(np.float32))
        self._out = np.empty_like(self._x)
        self._tmp = np.empty_like(self._x)

    def time_iterations(self, n: int) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        clock = time.perf_counter_ns
        out = np.empty(int(n), dtype=np.int64)
        w, x, a, b = self._w, self._x, self._out, self._tmp
        with threadpool_limits(limits=1):
            for i in range(int(n)):
                t0 = clock()
                np.matmul(x, w, out=a)
                for _ in range(self.chain - 1):
                    np.matmul(a, w, out=b)
                    a, b = b, a
                out[i] = clock() - t0
        if not np.all(np.isfinite(a)):
            raise SgnasError("the machine-speed probe produced non-finite values")
        return out / 1e6


@dataclass
class ProbeResult:
    """The probe's figures: median of round medians (ms per chain), spread over rounds, settings."""

    ms: float
    spread: float
    rounds: int
    iters: int
    size: int
    chain: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProbeResult":
        try:
            return cls(ms=float(d["ms"]), spread=float(d.get("spread", 0.0)),
                       rounds=int(d.get("rounds", 0)), iters=int(d.get("iters", 0)),
                       size=int(d["size"]), chain=int(d["chain"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SgnasError(f"baseline {PROBE_KEY!r} record is malformed ({exc})") from exc


def run_probe(size: int = 160, chain: int = 40, rounds: int = 5, round_ms: float = 20.0,
              warmup_ms: float = 20.0, seed: int = 0) -> ProbeResult:
    """Warm up, then ``rounds`` rounds of about ``round_ms`` each; the median of their medians."""
    from .interleave import chunk_iters, warm_up

    if rounds < 1:
        raise SgnasError(f"probe rounds must be >= 1, got {rounds}")
    timer = ProbeTimer(size, chain, seed)
    estimate = warm_up(timer, warmup_ms)
    iters = chunk_iters(estimate, round_ms, 3)
    medians = [float(np.median(timer.time_iterations(iters))) for _ in range(rounds)]
    p25, p50, p75 = np.percentile(medians, [25, 50, 75])
    return ProbeResult(ms=float(p50), spread=float((p75 - p25) / p50), rounds=rounds, iters=iters,
                       size=size, chain=chain)


def measure_probe(size: int = 160, chain: int = 40, rounds: int = 5, round_ms: float = 20.0,
                  seed: int = 0) -> float:
    """The probe's latency in ms (one chain of ``chain`` matmuls), median of ``rounds`` rounds."""
    return run_probe(size, chain, rounds, round_ms, seed=seed).ms


def machine_factor(now: ProbeResult | dict, baseline: ProbeResult | dict) -> float:
    """How much slower the machine is now than when ``baseline`` was recorded (now / baseline).

    The two probes must have the same settings; otherwise :class:`SgnasError`.
    """
    now = now if isinstance(now, ProbeResult) else ProbeResult.from_dict(now)
    base = baseline if isinstance(baseline, ProbeResult) else ProbeResult.from_dict(baseline)
    if (now.size, now.chain) != (base.size, base.chain):
        raise SgnasError(f"probe settings differ from the baseline's ({now.size}x{now.chain} vs "
                         f"{base.size}x{base.chain}); re-record the baseline")
    if base.ms <= 0:
        raise SgnasError(f"baseline {PROBE_KEY!r} has a non-positive latency {base.ms}")
    return now.ms / base.ms
