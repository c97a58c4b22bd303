"""State-normalized timing: interleaved chunks, ratios, the reference and its record in the LUT."""

import json

import numpy as np
import pytest

from profiler.interleave import (InterleaveConfig, ReferenceState, chunk_iters, interleave,
                                 median_settled, quiet, record_reference, reference_architecture,
                                 reference_key, time_chunks, window_drift)
from profiler.build import entry_stats
from profiler.measure import normalized_measurement
from sgnas.errors import SgnasError
from sgnas.lut import EntryStats, Lut, load_lut, save_lut
from sgnas.space import get_space


class Machine:
    """A shared machine whose speed factor changes with the number of chunks run on it."""

    def __init__(self, factors):
        self.factors = list(factors)
        self.calls = 0

    def factor(self):
        f = self.factors[min(self.calls // 2, len(self.factors) - 1)]
        return f


class FakeTimer:
    def __init__(self, base_ms, machine, jitter=0.0, seed=0):
        self.base_ms, self.machine = base_ms, machine
        self.rng = np.random.default_rng(seed)
        self.jitter = jitter
        self.sizes = []

    def time_iterations(self, n):
        self.sizes.append(n)
        f = self.machine.factor()
        self.machine.calls += 1
        return self.base_ms * f * (1 + self.jitter * self.rng.standard_normal(n))


def test_ratio_survives_machine_state_changes():
    # The machine alternates between a fast and a 30% slower state chunk pair by chunk pair.
    machine = Machine([1.0, 1.3] * 50)
    entry, ref = FakeTimer(2.0, machine), FakeTimer(0.5, machine)
    r = interleave(entry, ref, InterleaveConfig(pairs=8, max_pairs=8, warmup_ms=0.0))
    assert r.n == 8
    assert r.ratio == pytest.approx(4.0)
    assert r.ratio_spread == pytest.approx(0.0, abs=1e-12)
    assert max(r.reference_ms) / min(r.reference_ms) == pytest.approx(1.3)
    assert r.normalized_ms(0.5) == pytest.approx(2.0)
    assert not r.noisy


def test_chunks_sized_from_warmup_and_min_iters():
    machine = Machine([1.0])
    entry, ref = FakeTimer(3.0, machine), FakeTimer(0.1, machine)
    r = interleave(entry, ref, InterleaveConfig(chunk_ms=30.0, min_chunk_iters=4, pairs=3,
                                                max_pairs=3, warmup_ms=0.0))
    assert r.entry_iters == 10 and r.reference_iters == 300
    assert entry.sizes[-3:] == [10, 10, 10] and ref.sizes[-3:] == [300] * 3
    assert chunk_iters(100.0, 30.0, 4) == 4
    assert chunk_iters(0.0, 30.0, 4) == 4


def test_noisy_ratio_adds_pairs_up_to_the_cap():
    machine = Machine([1.0])
    entry, ref = FakeTimer(1.0, machine, jitter=0.3, seed=1), FakeTimer(1.0, machine, 0.3, seed=2)
    cfg = InterleaveConfig(pairs=4, max_pairs=10, warmup_ms=0.0, min_chunk_iters=1, chunk_ms=1.0,
                           max_spread=1e-6)
    r = interleave(entry, ref, cfg)
    assert r.n == 10 and r.noisy
    assert len(r.at_s) == 10 and r.at_s == sorted(r.at_s)


def test_more_pairs_settle_a_larger_spread():
    """The stop rule bounds the median's error spread / sqrt(n) by max_spread / sqrt(pairs)."""
    cfg = InterleaveConfig(pairs=6, max_pairs=12, max_spread=0.03)
    assert median_settled(0.03, 6, cfg) and not median_settled(0.031, 6, cfg)
    assert median_settled(0.042, 12, cfg) and not median_settled(0.043, 12, cfg)


class SpreadTimer:
    """Chunk medians that alternate between two levels: per-pair ratios of a fixed spread."""

    def __init__(self, levels):
        self.levels, self.calls = levels, 0

    def time_iterations(self, n):
        self.calls += 1
        return np.full(n, self.levels[self.calls % len(self.levels)])


def test_an_entry_of_moderate_spread_stops_once_its_median_is_known():
    # ratios 1.00, 1.04, 1.00, 1.04, ...: IQR/median 4% -- above 3% at 6 pairs, settled at 12
    cfg = InterleaveConfig(pairs=6, max_pairs=18, max_spread=0.03, warmup_ms=0.0,
                           min_chunk_iters=1, chunk_ms=1.0)
    r = interleave(SpreadTimer([1.0, 1.04]), SpreadTimer([1.0]), cfg)
    assert r.n == 12 and 0.03 < r.ratio_spread <= 0.042 and not r.noisy


def test_time_chunks_alternates_in_order():
    order = []

    class T:
        def __init__(self, name):
            self.name = name

        def time_iterations(self, n):
            order.append(self.name)
            return np.full(n, 1.0)

    med, at = time_chunks([T("a"), T("b"), T("c")], [1, 2, 3], 2)
    assert order == ["a", "b", "c", "a", "b", "c"]
    assert med.shape == (2, 3) and at.shape == (2,)


def test_chunk_statistics_median_and_mean():
    from profiler.interleave import time_chunks_stats

    class Interrupted:  # one of four iterations is interrupted (4x as long)
        def time_iterations(self, n):
            return np.array([1.0, 1.0, 1.0, 4.0][:n])

    vals, _ = time_chunks_stats([Interrupted()], [4], 1, statistics=("median", "mean"))
    assert vals["median"][0, 0] == 1.0 and vals["mean"][0, 0] == pytest.approx(1.75)
    machine = Machine([1.0])
    r = interleave(FakeTimer(2.0, machine), FakeTimer(1.0, machine),
                   InterleaveConfig(pairs=2, max_pairs=2, warmup_ms=0.0, statistic="mean"))
    assert r.ratio == pytest.approx(2.0)


def test_bad_config_and_zero_latency():
    with pytest.raises(SgnasError, match="max_pairs"):
        InterleaveConfig(pairs=5, max_pairs=2)
    with pytest.raises(SgnasError, match="statistic"):
        InterleaveConfig(statistic="p90")

    class Zero:
        def time_iterations(self, n):
            return np.zeros(n)

    with pytest.raises(SgnasError, match="non-positive"):
        interleave(Zero(), Zero(), InterleaveConfig(warmup_ms=0.0))


def test_window_drift():
    at = np.arange(20, dtype=float)
    values = np.where(at < 10, 1.0, 1.2)
    d = window_drift(values, at, 5.0)
    assert d["windows"] == 4
    assert d["drift"] == pytest.approx(0.2)


def test_reference_per_space_is_fixed_and_mid_range():
    for name in ("tiny", "cifar10", "imagenet"):
        space = get_space(name)
        key = reference_key(space)
        assert key in space.all_keys() and key.endswith("_k3557")
        arch = reference_architecture(space)
        assert all(c == (3, 5, 5, 7) for c in arch.layers)
    assert reference_key(get_space("cifar10")) == reference_key(get_space("cifar10"))


def test_quiet_turns_spinning_off_in_onnxruntime_sessions():
    from profiler.backends.onnxruntime import OnnxRuntimeRunner
    from profiler.devices import load_device

    runner = OnnxRuntimeRunner(load_device("cpu-2t"), None)
    assert runner.allow_spinning
    quiet(runner)
    so = runner.session_options(None)
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def _lut(space):
    entries = {k: EntryStats(0.1 * (i + 1), 0.09, 0.11, 50, 0.01)
               for i, k in enumerate(space.all_keys())}
    return Lut(space.name, space.fingerprint, {"name": "cpu", "backend": "onnxruntime"}, entries,
               input_size=space.input_size, complete=True)


def test_reference_record_in_the_lut_round_trips(tmp_path):
    space = get_space("tiny")
    lut = _lut(space)
    state = ReferenceState(model=reference_key(space), protocol={"chunk_ms": 30.0})
    machine = Machine([1.0, 1.1, 0.9])
    for done, key in enumerate(space.all_keys()[:3]):
        r = interleave(FakeTimer(2.0, machine), FakeTimer(1.0, machine),
                       InterleaveConfig(pairs=3, max_pairs=3, warmup_ms=0.0))
        state.add(r, done)
        lut.entries[key] = entry_stats(normalized_measurement(r, r.reference_median_ms))
    record_reference(lut, state)
    assert lut.normalized
    key = space.all_keys()[0]
    assert lut.entries[key].median_ms == pytest.approx(2.0 * state.state_ms)
    assert lut.entries[key].ratio == pytest.approx(2.0) and lut.entries[key].ratio_n == 3
    path = tmp_path / "lut.json"
    save_lut(lut, path)
    back = load_lut(path)
    assert back.normalized and back.reference["model"] == reference_key(space)
    assert len(back.reference["samples"]) == 3
    assert back.entries[key] == lut.entries[key]
    again = ReferenceState.from_dict(back.reference)  # a resumed build continues the same record
    assert again.state_ms == pytest.approx(state.state_ms) and again.started == state.started


def test_lut_of_the_old_protocol_loads_marked_unnormalized(tmp_path):
    space = get_space("tiny")
    lut = _lut(space)
    path = tmp_path / "old.json"
    save_lut(lut, path)
    data = json.loads(path.read_text())
    assert "reference" not in data and "ratio" not in next(iter(data["entries"].values()))
    back = load_lut(path)
    assert not back.normalized
    assert all(e.ratio is None for e in back.entries.values())
    with pytest.raises(SgnasError, match="positive"):
        back.rescale_to_reference(0.0)


class FakeRunner(FakeTimer):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.is_active = False
        self.allow_spinning = True

    def activate(self):
        self.is_active = True

    def deactivate(self):
        self.is_active = False


def test_a_build_is_stated_in_one_reference_state():
    """What the Measurer does per entry (interleave against the live reference, add the
    reference's latency to the state, state the entry in it), then the final re-statement."""
    space = get_space("tiny")
    lut = _lut(space)
    machine = Machine([1.0] * 10 + [1.5] * 100)  # the machine turns 50% slower mid-build
    keys = space.all_keys()[:4]
    ref_runner = quiet(FakeRunner(1.0, machine))
    cfg = InterleaveConfig(pairs=2, max_pairs=2, warmup_ms=0.0)
    state = ReferenceState(model="reference")
    ref_runner.activate()
    for done, key in enumerate(keys):
        result = interleave(FakeTimer(0.5 * (done + 1), machine), ref_runner, cfg)
        state.add(result, done)
        lut.entries[key] = entry_stats(normalized_measurement(result, state.state_ms))
    assert not ref_runner.allow_spinning
    record_reference(lut, state)
    final = lut.reference["state_ms"]
    assert lut.reference["drift"]["range"] > 0.3  # the record saw the state change
    for done, key in enumerate(keys):  # ...the entries did not
        assert lut.entries[key].median_ms == pytest.approx(0.5 * (done + 1) * final)