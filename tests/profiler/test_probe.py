"""The numpy machine-speed probe."""

import numpy as np
import pytest

from profiler.probe import PROBE_KEY, ProbeResult, ProbeTimer, machine_factor, measure_probe, run_probe
from sgnas.errors import SgnasError


def test_probe_times_a_bounded_chain():
    t = ProbeTimer(size=32, chain=4)
    lat = t.time_iterations(5)
    assert lat.shape == (5,) and np.all(lat > 0)
    t.time_iterations(200)  # a long chain stays finite (orthogonal matrix)
    with pytest.raises(ValueError):
        t.time_iterations(0)
    with pytest.raises(SgnasError, match="size and chain"):
        ProbeTimer(size=0)


def test_run_probe_and_measure_probe():
    r = run_probe(size=32, chain=2, rounds=3, round_ms=2.0, warmup_ms=1.0)
    assert r.ms > 0 and r.rounds == 3 and r.iters >= 3 and r.spread >= 0
    assert ProbeResult.from_dict(r.to_dict()) == r
    assert measure_probe(size=16, chain=1, rounds=1, round_ms=1.0) > 0
    assert PROBE_KEY == "probe"


def test_machine_factor_and_bad_baselines():
    base = ProbeResult(ms=1.0, spread=0.0, rounds=5, iters=10, size=160, chain=8)
    now = ProbeResult(ms=1.2, spread=0.0, rounds=5, iters=10, size=160, chain=8)
    assert machine_factor(now, base.to_dict()) == pytest.approx(1.2)
    with pytest.raises(SgnasError, match="settings differ"):
        machine_factor(ProbeResult(1.0, 0.0, 5, 10, 64, 8), base)
    with pytest.raises(SgnasError, match="malformed"):
        machine_factor(now, {"ms": 1.0})
