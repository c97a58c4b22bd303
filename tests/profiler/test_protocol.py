import logging

import numpy as np
import pytest

from profiler.backends.base import ModelSpec, Runner
from profiler.devices import load_device
from profiler.protocol import CanaryMonitor, Measurement, ProtocolConfig, measure
from sgnas.errors import SgnasError


class ScriptedRunner(Runner):
    """Returns scripted latencies: ``script`` is a list of arrays (one per call) or a callable."""

    backend = "fake"

    def __init__(self, script):
        super().__init__(load_device("cpu"), ModelSpec(None, (1, 3, 4, 4)))
        self.script = script
        self.calls: list[int] = []
        self.activations = 0

    def activate_impl(self):
        self.activations += 1

    def deactivate_impl(self):
        pass

    def time_impl(self, n):
        self.calls.append(n)
        if callable(self.script):
            return self.script(n)
        values = np.asarray(self.script.pop(0), dtype=float)
        assert len(values) == n, f"script expected a call for {len(values)} iterations, got {n}"
        return values

    def run_impl(self):
        return np.zeros(1)


def exact_cfg(**kw):
    base = dict(warmup_ms=0, warmup_min_iters=2, rounds=3, min_iters_per_round=3, min_round_ms=0,
                max_spread=100.0, remeasure=0, canary_every=0)
    base.update(kw)
    return ProtocolConfig(**base)


def test_headline_is_median_of_round_medians_not_pooled_median():
    script = [[1, 1], [1, 1, 50], [2, 2, 50], [3, 50, 50]]
    with ScriptedRunner(script) as r:
        m = measure(r, exact_cfg())
    assert m.round_medians == [1.0, 2.0, 50.0]
    assert m.median_ms == 2.0  # the pooled median would be 3.0
    assert m.n == 9
    pooled = np.array([1, 1, 50, 2, 2, 50, 3, 50, 50], dtype=float)
    assert m.p10_ms == pytest.approx(np.percentile(pooled, 10))
    assert m.p90_ms == pytest.approx(np.percentile(pooled, 90))
    q25, q50, q75 = np.percentile(pooled, [25, 50, 75])
    assert m.spread == pytest.approx((q75 - q25) / q50)
    assert r.calls == [2, 3, 3, 3]


def test_rounds_last_at_least_min_round_ms():
    with ScriptedRunner(lambda n: np.full(n, 0.5)) as r:
        m = measure(r, exact_cfg(min_iters_per_round=4, min_round_ms=10, rounds=2))
    assert m.n == 40  # 20 iterations of 0.5 ms per round
    assert m.median_ms == 0.5
    assert m.spread == 0.0 and not m.noisy


def test_round_tops_up_when_the_estimate_was_too_optimistic():
    # warm-up says 1 ms per iteration, rounds run at 0.25 ms: the first chunk is too short
    calls = {"n": 0}

    def script(n):
        calls["n"] += 1
        return np.full(n, 1.0 if calls["n"] == 1 else 0.25)

    with ScriptedRunner(script) as r:
        m = measure(r, exact_cfg(rounds=1, min_iters_per_round=2, min_round_ms=5))
    assert m.n * 0.25 >= 5
    assert len(r.calls) > 2  # warm-up, first chunk, at least one top-up


def test_time_based_warmup_runs_until_warmup_ms():
    with ScriptedRunner(lambda n: np.full(n, 2.0)) as r:
        measure(r, exact_cfg(warmup_ms=30, warmup_min_iters=1, rounds=1))
    warm = r.calls[:-1]
    assert sum(warm) * 2.0 >= 30


def test_noisy_entry_is_remeasured_and_flagged():
    rng = np.random.default_rng(0)
    with ScriptedRunner(lambda n: rng.uniform(1.0, 3.0, size=n)) as r:
        m = measure(r, exact_cfg(max_spread=0.05, remeasure=2, min_iters_per_round=20))
    assert m.noisy
    assert m.remeasured == 2
    assert len(r.calls) == 1 + 3 * 3  # warm-up + three attempts of three rounds


def test_remeasured_when_noisy_first_time_then_clean():
    noisy = [[1, 1]] + [[1, 5, 9]] * 3
    clean = [[4, 4, 4]] * 3
    with ScriptedRunner(noisy + clean) as r:
        m = measure(r, exact_cfg(max_spread=0.05, remeasure=2))
    assert not m.noisy
    assert m.remeasured == 1
    assert m.median_ms == 4.0 and m.spread == 0.0


def test_cov_warning_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="profiler.protocol"):
        with ScriptedRunner([[1, 1], [1, 1, 2], [1, 1, 2], [1, 1, 2]]) as r:
            m = measure(r, exact_cfg())
    assert m.cov > 0.025
    assert "CoV" in caplog.text


def test_measurement_round_trip_and_missing_key():
    m = Measurement(1.0, 0.9, 1.2, 10, 0.01, [1.0, 1.1], False, cov=0.02)
    assert Measurement.from_dict(m.to_dict()) == m
    d = m.to_dict()
    del d["median_ms"]
    with pytest.raises(SgnasError, match="median_ms"):
        Measurement.from_dict(d)


def test_protocol_config_rejects_out_of_range_and_unknown():
    with pytest.raises(SgnasError, match="rounds"):
        ProtocolConfig(rounds=0)
    with pytest.raises(SgnasError, match="bogus"):
        ProtocolConfig.from_dict({"bogus": 1})
    assert ProtocolConfig.from_dict(ProtocolConfig().to_dict()) == ProtocolConfig()


def test_canary_monitor_detects_drift_and_manages_activation():
    level = {"ms": 1.0}
    runner = ScriptedRunner(lambda n: np.full(n, level["ms"]))
    mon = CanaryMonitor.of_runner(runner, exact_cfg(canary_every=2))
    measured = [mon.step() is not None for _ in range(3)]
    assert measured == [True, False, True]
    assert mon.drift() == 0.0 and mon.factor() == 1.0
    level["ms"] = 1.1
    mon.step()
    assert mon.step() is not None  # entry 4
    assert mon.at_entries == [0, 2, 4]
    assert mon.factor() == pytest.approx(1.1)
    assert mon.drift() == pytest.approx(0.1)
    assert mon.max_drift() == pytest.approx(0.1)
    assert runner.activations == 3 and not runner.is_active
    assert mon.to_dict()["canary_medians_ms"] == pytest.approx([1.0, 1.0, 1.1])


def test_canary_monitor_uses_an_active_runner_as_is():
    runner = ScriptedRunner(lambda n: np.full(n, 2.0))
    with runner:
        mon = CanaryMonitor.of_runner(runner, exact_cfg(canary_every=1))
        mon.step()
        mon.step()
        assert runner.is_active
    assert runner.activations == 1
    assert mon.medians == [2.0, 2.0]


def test_canary_correction_baseline_and_lut_record():
    """One canary for builds, validations and checks: the factor is taken against a baseline,
    applied beyond the tolerance only, and the LUT's drift record continues across a resume."""
    from profiler.check_measure import lut_canary
    from sgnas.lut import Lut
    from sgnas.space import get_space

    levels = iter([1.0, 1.02, 1.3])
    mon = CanaryMonitor(lambda: next(levels), every=1, key="ub_k", tolerance=0.05, normalize=True)
    assert [mon.step(), mon.correction()] == [1.0, None]
    assert [mon.step(), mon.correction()] == [1.02, None]  # within the tolerance
    mon.step()
    assert mon.correction() == pytest.approx(1.3)
    record = mon.to_dict()
    assert record["canary_key"] == "ub_k" and record["canary_at_entries"] == [0, 1, 2]
    assert record["max_drift"] == pytest.approx(0.3) and record["normalized"] is True
    space = get_space("tiny")
    lut = Lut(space="tiny", space_fingerprint=space.fingerprint, device={"name": "cpu"},
              drift=record)
    assert lut_canary(lut, space) == ("ub_k", 1.0)  # what the check reads back
    again = CanaryMonitor.from_record(record, lambda: 1.1, every=5, key="ub_k")
    assert again.step() == 1.1 and again.step() is None  # the resumed run measures first
    assert again.medians == [1.0, 1.02, 1.3, 1.1] and again.factor() == pytest.approx(1.1)
    assert CanaryMonitor(lambda: 2.0, baseline=1.6).step() == 2.0
    assert not CanaryMonitor(lambda: 1.0).correction()  # not normalizing: never a factor
    judged = CanaryMonitor(lambda: 2.0, baseline=1.6, normalize=True)
    judged.step()
    assert judged.correction() == pytest.approx(1.25)
