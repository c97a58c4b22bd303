"""State-normalized measuring through the one measuring path: entries, networks, builds, checks."""

import json

import numpy as np
import pytest

from profiler import measure
from profiler.build import BuildConfig, build_lut, new_lut, with_protocol
from profiler.check import CheckConfig
from profiler.check_report import IMPROVED, OK, REGRESSED
from profiler.devices import load_device
from profiler.interleave import reference_key
from profiler.measure import Measurer, Reference, lut_reference, measure_lut_networks
from sgnas.errors import SgnasError
from sgnas.lut import EntryStats, load_lut, lut_warnings, save_lut
from sgnas.space import get_space

SPACE = get_space("tiny")
QUICK = dict(warmup_ms=0.0, warmup_min_iters=1, rounds=1, min_iters_per_round=2, min_round_ms=0.0,
             remeasure=0, canary_every=100)
FAST = measure.ENTRY_INTERLEAVE  # tests/conftest.py makes it quick


@pytest.fixture
def device():
    return with_protocol(load_device("cpu"), **QUICK)


@pytest.fixture
def fast():
    assert measure.ENTRY_INTERLEAVE.pairs == 3
    return measure.ENTRY_INTERLEAVE


def test_reference_names_round_trip():
    block = Reference.block(SPACE)
    assert block.model == reference_key(SPACE)
    assert Reference.from_name(block.name) == block
    net = Reference.network(get_space("cifar10"))
    assert Reference.from_name(net.name) == net
    with pytest.raises(SgnasError, match="space:kind:model"):
        Reference.from_name("nonsense")
    with pytest.raises(SgnasError, match="block, network or file"):
        Reference("tiny", "probe", "x")


def test_measurer_states_entries_and_networks_in_the_reference_state(device, fast):
    key = SPACE.all_keys()[3]
    with Measurer(device, SPACE, reference=Reference.block(SPACE)) as m:
        e = m.entry(key)
        assert e.ratio is not None and e.ratio > 0 and e.pairs == fast.pairs
        assert e.median_ms == pytest.approx(e.ratio * m.state.state_ms)
        assert e.reference_ms == pytest.approx(m.state.samples[-1][2])
        net = m.network(SPACE.sample(np.random.default_rng(0)))
        assert net.ratio > e.ratio  # a whole network costs more than one block
        assert len(m.state.samples) == 2 and m.count == 2
    with Measurer(device, SPACE, reference=Reference.block(SPACE), state_ms=2.0) as m:
        e = m.entry(key)
        assert e.median_ms == pytest.approx(2.0 * e.ratio)  # a fixed state: the LUT's


def test_networks_are_timed_against_their_own_reference(device, fast):
    with Measurer(device, SPACE, reference=Reference.block(SPACE),
                  network_reference=Reference.network(SPACE), network_state_ms=3.0) as m:
        net = m.network(SPACE.sample(np.random.default_rng(0)))
        assert net.median_ms == pytest.approx(3.0 * net.ratio)
        assert len(m.network_state.samples) == 1 and not m.state.samples
        assert 0.2 < net.ratio < 5  # a network against a network, not against a block
    with pytest.raises(SgnasError, match="needs its reference state"):
        Measurer(device, SPACE, reference=Reference.block(SPACE),
                 network_reference=Reference.network(SPACE))


def test_reference_that_fails_is_one_line_error(device, fast):
    bad = Reference(SPACE.name, "block", "ub_no_such_key")
    with Measurer(device, SPACE, reference=bad) as m:
        with pytest.raises(SgnasError, match="reference model tiny:block:ub_no_such_key failed to "
                                             "build or run on device cpu") as err:
            m.entry(SPACE.all_keys()[0])
    assert "\n" not in str(err.value)


def test_build_with_failing_reference_writes_nothing(tmp_path, device, fast, monkeypatch):
    monkeypatch.setattr(measure, "reference_key", lambda space: "ub_no_such_key")
    out = tmp_path / "lut.json"
    with pytest.raises(SgnasError, match="failed to build or run"):
        build_lut(BuildConfig(device, SPACE, out, limit=3), progress=False)
    assert not out.exists()


def test_normalized_build_records_reference_probe_and_resumes(tmp_path, device, fast):
    out = tmp_path / "lut.json"
    lut = build_lut(BuildConfig(device, SPACE, out, limit=3), progress=False)
    assert lut.normalized and lut.build["protocol"] == "normalized"
    state = lut.reference["state_ms"]
    for e in lut.entries.values():
        assert e.ratio_n == fast.pairs and e.ratio_spread is not None
        assert e.median_ms == pytest.approx(e.ratio * state)
    assert lut.reference["model"] == Reference.block(SPACE).name
    assert [s[1] for s in lut.reference["samples"]] == [0, 1, 2]
    probe = lut.reference["probe"]
    assert probe["ms"] > 0 and probe["reference_ratio"] > 0 and len(probe["samples"]) == 2
    assert lut.drift == {}  # no canary: the reference is the machine-state record
    net = lut.reference["network"]  # networks get a whole-network reference, its ratio recorded
    assert net["model"] == Reference.network(SPACE).name and net["ratio"] > 1
    assert len(net["ratios"]) == 3
    ref, net_ms = measure.lut_network_reference(lut)
    assert ref == Reference.network(SPACE) and net_ms == pytest.approx(net["ratio"] * state)

    lines = []
    lut = build_lut(BuildConfig(device, SPACE, out, limit=5, resume=True), progress=False,
                    notify=lines.append)
    assert lines == [f"resuming {out}: kept 3 measured entries, 2 remain"]
    assert len(lut.entries) == 5 and [s[1] for s in lut.reference["samples"]] == [0, 1, 2, 3, 4]
    back = load_lut(out, allow_incomplete=True)
    for e in back.entries.values():
        assert e.median_ms == pytest.approx(e.ratio * back.reference["state_ms"])


def test_resume_of_an_old_protocol_lut_measures_its_entries_again(tmp_path, device, fast):
    out = tmp_path / "lut.json"
    build_lut(BuildConfig(device, SPACE, out, limit=2, normalize=False), progress=False)
    old = load_lut(out, allow_incomplete=True)
    assert not old.normalized and any("unnormalized" in w for w in lut_warnings(old))
    lines = []
    lut = build_lut(BuildConfig(device, SPACE, out, limit=3, resume=True), progress=False,
                    notify=lines.append)
    assert lines == [f"resuming {out}: kept 0 measured entries, 3 remain (2 entries of the older, "
                     "unnormalized protocol are measured again)"]
    assert lut.normalized and all(e.ratio is not None for e in lut.entries.values())


def test_lut_networks_are_stated_in_the_lut_state(device, fast, monkeypatch):
    lut = new_lut(device, SPACE, {})
    assert lut_reference(lut) == (None, None)
    state_ms = 1000.0  # far from any absolute time of a tiny network: a ratio x state shows
    lut.reference = {"model": Reference.block(SPACE).name, "state_ms": state_ms}
    arch = SPACE.sample(np.random.default_rng(3))
    (m,) = measure.measure_networks(device, SPACE, [arch], lut=lut)
    assert m.ratio is not None and m.reference_ms is not None and m.reference_ms > 0
    assert m.median_ms == pytest.approx(m.ratio * state_ms)  # stated in the LUT state
    assert m.median_ms > 50 * m.reference_ms  # not an absolute time (a tiny network: < 1 ms)

    calls = []
    monkeypatch.setattr(measure, "measure_networks", lambda *a, **k: calls.append(k) or [m])
    assert measure_lut_networks(SPACE, lut, [arch]) == [m.median_ms]
    assert calls[0]["lut"] is lut


def test_probe_alongside_reference(device, fast):
    with Measurer(device, SPACE, reference=Reference.block(SPACE)) as m:
        r = m.probe()
        fixed = m.probe(chain=3)
    # as many matmuls as make one probe iteration about one reference inference (a tiny block: 1)
    assert r["ms"] > 0 and r["reference_ratio"] > 0 and r["size"] == 160 and r["chain"] == 1
    assert fixed["chain"] == 3 and fixed["ms"] > r["ms"]


def _probe(ms, ratio):
    return {"ms": ms, "size": 160, "chain": 40, "reference_ratio": ratio, "spread": 0.01}


class _Measured:
    def __init__(self, probe_record, ref_ms):
        self.last_probe, self.ref_ms = probe_record, ref_ms
        self.state = None

    def __call__(self, target):
        from profiler.check_measure import ProbeMeasurement

        return ProbeMeasurement(self.last_probe["reference_ratio"], 0.01)


def test_runtime_test_tells_machine_from_runtime():
    from profiler.check import compare, machine_noise, runtime_target

    cfg = CheckConfig()
    base = _probe(3.0, 1.0)
    target = runtime_target(base, cfg)
    assert target.kind == "runtime" and target.tolerance_floor == cfg.runtime_tolerance
    # the machine got 30% slower: probe and reference moved alike -> ok, reported as noise
    slow_machine = _Measured(_probe(3.9, 1.0), 1.3)
    assert compare(target, cfg, slow_machine).status == OK
    assert machine_noise(slow_machine, base, None)["machine_factor"] == pytest.approx(1.3)
    # the runtime got 30% slower: the reference moved against the probe
    item = compare(target, cfg, _Measured(_probe(3.0, 1.3), 1.3))
    assert item.status == REGRESSED and item.failed
    assert compare(target, cfg, _Measured(_probe(3.0, 0.7), 0.7)).status == IMPROVED
    assert runtime_target({}, cfg) is None
    assert runtime_target(base, CheckConfig(probe=False)) is None
    with pytest.raises(SgnasError, match="probe settings differ"):
        machine_noise(_Measured({**_probe(3.0, 1.0), "chain": 8}, 1.0), base, None)


def test_uncalibrated_normalized_lut_warns_once(tmp_path, device):
    lut = new_lut(device, SPACE, {})
    lut.entries = {k: EntryStats(0.01, 0.01, 0.01, 5, 0.0, ratio=1.0, ratio_spread=0.0, ratio_n=3)
                   for k in SPACE.all_keys()}
    lut.reference = {"model": Reference.block(SPACE).name, "state_ms": 0.01}
    lut.complete = True
    save_lut(lut, tmp_path / "lut.json")
    warnings = lut_warnings(load_lut(tmp_path / "lut.json"))
    assert len(warnings) == 1 and "uncalibrated" in warnings[0] and "--validate" in warnings[0]


@pytest.mark.slow
def test_onnx_baseline_keeps_reference_and_probe_and_catches_a_slowdown(tmp_path):
    from profiler import graphs
    from profiler.check import check_onnx, update_baseline
    from sgnas.space import Architecture

    space = get_space("cifar10")
    arch = Architecture(space.name, ((3, 3),) * space.num_layers)
    path = graphs.save_model(graphs.network_graph(space, arch, 1)[1], tmp_path / "m.onnx")
    base = tmp_path / "base.json"
    b = update_baseline(path, "cpu", base)
    assert b.reference["model"] == Reference.network(space).name and b.reference["state_ms"] > 0
    assert b.probe["reference_ratio"] > 0 and b.measurement["ratio"] > 0
    d = json.loads(base.read_text())
    assert d["probe"]["chain"] >= 1 and d["probe"]["size"] == 160
    d["measurement"]["median_ms"] /= 10.0  # the model now runs 10x its recorded latency
    (tmp_path / "slow.json").write_text(json.dumps(d))
    # the neighbour gauge and the state limit are off: this tests the mechanics on a shared machine;
    # model_copy=False compares with the recorded figure (not with the copy of the model)
    report = check_onnx(path, "cpu", tmp_path / "slow.json",
                        CheckConfig(remeasure=1, max_neighbour=999.0, state_limit=9.0,
                                    model_copy=False))
    names = [r.name for r in report.results]
    assert names == ["m.onnx", "runtime"] and report.results[0].status == REGRESSED
    assert report.exit_code == 1 and "machine_factor" in report.noise


def test_nested_pins_see_the_process_cpus():
    """A live pinned reference must not hide the process's CPUs from the next runner."""
    from profiler.backends.base import ThreadPin
    from profiler.devices import PIN_STACK, available_cpus

    before = available_cpus()
    pin = ThreadPin(before[:1])
    if not pin.pin():
        pytest.skip("no thread pinning here")
    try:
        assert available_cpus() == before and len(PIN_STACK) == 1
    finally:
        pin.restore()
    assert available_cpus() == before and not PIN_STACK


def test_probe_that_fails_is_one_line_error_and_nothing_is_overwritten(tmp_path, device,
                                                                        monkeypatch):
    from profiler import probe

    out = tmp_path / "lut.json"
    build_lut(BuildConfig(device, SPACE, out, limit=2), progress=False)
    before = out.read_bytes()

    def broken(self, n):
        raise RuntimeError("BLAS exploded\nsecond line")

    monkeypatch.setattr(probe.ProbeTimer, "time_iterations", broken)
    with pytest.raises(SgnasError, match="machine-speed probe failed to run: BLAS exploded$"):
        build_lut(BuildConfig(device, SPACE, out, limit=4, resume=True), progress=False)
    assert out.read_bytes() == before
