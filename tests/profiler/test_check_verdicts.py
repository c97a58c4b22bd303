"""Telling the machine from the model: another host, a busy neighbour, a machine far from its
baseline's speed give ``inconclusive`` (exit 3), never a regression."""

import json
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest

from profiler import check as check_mod
from profiler.baseline import host_changes, write_baseline
from profiler.check import (CheckConfig, Target, abstain_far_state, check_lut, check_onnx, compare,
                            global_shift, judge, update_baseline)
from profiler.check_measure import NeighbourGauge
from profiler.check_report import INCONCLUSIVE, NOISY, OK, REGRESSED, ItemResult
from profiler.devices import load_device
from profiler.protocol import Measurement
from sgnas.errors import SgnasError
from sgnas.lut import EntryStats, Lut
from sgnas.space import get_space
from tests.profiler.onnx_models import relu_onnx

SPACE = get_space("tiny")
ENV = {"machine_id": "abc", "hostname": "runner-1", "cpu_model": "AMD EPYC", "cpu_count": 2,
       "cpus_available": 2, "machine": "x86_64",
       "packages": {"numpy": "2.4.6", "onnxruntime": "1.32.0", "openvino": "2026.4.1"}}


def meas(ms, spread=0.01):
    return Measurement(median_ms=ms, p10_ms=ms, p90_ms=ms, n=50, spread=spread,
                       round_medians=[ms] * 5, noisy=False)


class Fake:
    """measure_fn: the target's baseline times a factor per (name, call index); logs the calls."""

    def __init__(self, factors=None, default=1.0, spread=0.01):
        self.factors, self.default, self.spread = factors or {}, default, spread
        self.calls = Counter()
        self.order = []

    def __call__(self, target):
        i = self.calls[target.name]
        self.calls[target.name] += 1
        self.order.append(target.name)
        f = self.factors.get(target.name, self.default)
        if isinstance(f, (list, tuple)):
            f = f[min(i, len(f) - 1)]
        return meas(target.baseline_ms * f, self.spread)


class Gauge:
    """A gauge reporting the given neighbour loads (cores) in turn, the last one repeated."""

    def __init__(self, *loads):
        self.loads = list(loads)
        self.i = 0

    def start(self):
        return self.i

    def stop(self, token):
        value = self.loads[min(self.i, len(self.loads) - 1)]
        self.i += 1
        return value


@pytest.fixture(scope="module")
def device():
    return load_device("cpu")


def make_lut(device, environment=None):
    keys = SPACE.all_keys()
    ms = np.random.default_rng(0).uniform(0.01, 1.0, len(keys))
    entries = {k: EntryStats(float(v), float(v), float(v), 100, 0.01) for k, v in zip(keys, ms)}
    return Lut(space=SPACE.name, space_fingerprint=SPACE.fingerprint, device=device.to_dict(),
               entries=entries, complete=True, input_size=SPACE.input_size,
               environment=dict(environment or {}))


CFG = CheckConfig(sample=6, networks=0, canary=False)


# ------------------------------------------------------------------ the host
def test_host_changes_names_what_differs():
    assert host_changes(ENV, ENV, "onnxruntime") == []
    assert host_changes({**ENV, "date": "other"}, ENV, "onnxruntime") == []
    other = {**ENV, "machine_id": "def", "cpu_count": 4}
    changes = host_changes(other, ENV, "onnxruntime")
    assert any("machine_id" in c for c in changes) and any("cpu_count 4 -> 2" in c for c in changes)
    newer = {**ENV, "packages": {**ENV["packages"], "onnxruntime": "1.31.0"}}
    assert host_changes(newer, ENV, "onnxruntime") == ["onnxruntime 1.31.0 -> 1.32.0"]
    # a runtime the device does not use does not matter
    ov = {**ENV, "packages": {**ENV["packages"], "openvino": "2025.1"}}
    assert host_changes(ov, ENV, "onnxruntime") == []
    assert host_changes(ov, ENV, "openvino") != []
    # a record that cannot be tied to a machine is never this host
    assert host_changes({k: v for k, v in ENV.items() if k != "machine_id"}, ENV, "onnxruntime")
    assert host_changes({}, ENV, "onnxruntime")


def test_lut_from_another_host_is_inconclusive_and_measures_nothing(device):
    fake = Fake(default=2.0)  # would regress everywhere, were it measured
    lut = make_lut(device, {**ENV, "machine_id": "elsewhere"})
    report = check_lut(lut, device, CFG, measure_fn=fake, host_env=ENV)
    assert report.exit_code == 3 and report.inconclusive and report.passed
    assert sum(fake.calls.values()) == 0 and report.results == []
    line = report.summary()
    assert line.startswith("INCONCLUSIVE") and "machine_id" in line and "sgnas-profile" in line
    assert "\n" not in report.reason()
    suite = ET.fromstring(report.to_junit()).find("testsuite")
    [case] = suite.findall("testcase")
    assert case.find("skipped") is not None and "another host" in case.find("skipped").get("message")
    assert suite.get("skipped") == "1" and suite.get("failures") == "0"
    data = json.loads(report.to_json())
    assert data["verdict"] == "INCONCLUSIVE" and data["exit_code"] == 3
    # the same LUT compared anyway, or on its own host, is measured and judged
    forced = check_lut(lut, device, CheckConfig(sample=6, networks=0, canary=False,
                                                allow_host_change=True),
                       measure_fn=Fake(), host_env=ENV)
    assert forced.exit_code == 0 and forced.results
    same = check_lut(make_lut(device, ENV), device, CFG, measure_fn=Fake(), host_env=ENV)
    assert same.exit_code == 0 and same.results


def test_baseline_from_another_host_is_inconclusive(device, tmp_path):
    model = tiny_model(tmp_path)
    base = tmp_path / "b.json"
    write_baseline(base, model, device, meas(1.0), (1, 3, 8, 8), {**ENV, "cpu_model": "Intel Xeon"})
    fake = Fake(default=3.0)
    report = check_onnx(model, device, base, CheckConfig(), measure_fn=fake, host_env=ENV)
    assert report.exit_code == 3 and sum(fake.calls.values()) == 0
    assert "--update" in report.reason() and "Intel Xeon" in report.reason()


# ------------------------------------------------------------- a busy neighbour
def test_contended_suspect_is_inconclusive_never_regressed():
    target = Target("m", "model", 1.0)
    busy = compare(target, CheckConfig(), Fake(default=1.3), Gauge(1.0))
    assert busy.status == INCONCLUSIVE and len(busy.measurements_ms) == 4
    assert busy.neighbour == [1.0] * 4 and "1.00 cores" in busy.note
    quiet = compare(target, CheckConfig(), Fake(default=1.3), Gauge(0.0))
    assert quiet.status == REGRESSED
    # confirmed in two quiet measurements while the others were contended: a regression
    mixed = compare(target, CheckConfig(), Fake(default=1.3), Gauge(1.0, 0.1, 1.0, 0.0))
    assert mixed.status == REGRESSED
    # one quiet measurement is not enough to confirm (confirm=2)
    once = compare(target, CheckConfig(), Fake(default=1.3), Gauge(0.0, 1.0))
    assert once.status == INCONCLUSIVE


def test_a_contended_remeasurement_cannot_clear_a_suspect():
    target = Target("m", "model", 1.0)
    fake = Fake({"m": [1.3, 1.0, 1.0, 1.0]})
    r = compare(target, CheckConfig(), fake, Gauge(0.0, 1.0))
    assert r.status == INCONCLUSIVE and fake.calls["m"] == 4  # kept re-measuring
    fake = Fake({"m": [1.3, 1.0]})
    r = compare(target, CheckConfig(), fake, Gauge(0.0, 0.0))
    assert r.status == NOISY and fake.calls["m"] == 2  # a quiet one clears it at once


def test_contended_measurements_neither_pass_nor_fail():
    """Beside a busy neighbour a 10% slower model has read 1.03x its baseline: a contended
    measurement is no evidence either way. Re-measured until a quiet one comes; none: inconclusive."""
    target = Target("m", "model", 1.0)
    fake = Fake(default=1.02)
    busy = compare(target, CheckConfig(), fake, Gauge(1.0))
    assert busy.status == INCONCLUSIVE and fake.calls["m"] == 4 and "none was quiet" in busy.note
    fake = Fake(default=1.02)
    later = compare(target, CheckConfig(), fake, Gauge(1.0, 0.0))
    assert later.status == OK and fake.calls["m"] == 2 and later.neighbour == [1.0, 0.0]
    fake = Fake({"m": [1.0, 1.3, 1.3]})
    late_slow = compare(target, CheckConfig(), fake, Gauge(1.0, 0.0, 0.0))
    assert late_slow.status == REGRESSED and late_slow.ratio == pytest.approx(1.3)


def test_suspects_are_remeasured_in_spaced_rounds(monkeypatch):
    sleeps = []
    monkeypatch.setattr(check_mod.time, "sleep", sleeps.append)
    fake = Fake({"a": 1.5, "b": 1.5, "c": 1.0})
    targets = [Target(n, "entry", 1.0) for n in "abc"]
    results = judge(targets, CheckConfig(remeasure=2), fake, Gauge(0.0), gap_s=0.5)
    assert fake.order == ["a", "b", "c", "a", "b", "a", "b"]
    assert sleeps == [0.5, 0.5]
    assert [r.status for r in results] == [REGRESSED, REGRESSED, OK]
    # a round whose gap finds the neighbours busy is skipped: nothing measured that would not count
    fake, sleeps[:] = Fake({"a": 1.5}), []
    loads = Gauge(0.0, 0.0, 1.0, 0.0, 0.0)  # a, b; gap 1 busy; gap 2 quiet; a again
    [a, b] = judge([Target(n, "entry", 1.0) for n in "ab"], CheckConfig(remeasure=2), fake, loads,
                   gap_s=0.5)
    assert fake.order == ["a", "b", "a"] and len(sleeps) == 2
    assert a.status == REGRESSED and b.status == OK


def test_contended_lut_check_exits_3_with_skipped_junit_cases(device):
    fake = Fake({SPACE.stem_key: 1.5})
    report = check_lut(make_lut(device), device, CFG, measure_fn=fake, gauge=Gauge(1.2))
    entries = [r.name for r in report.results]
    assert {r.status for r in report.results} == {INCONCLUSIVE}  # no measurement was quiet
    assert report.exit_code == 3 and not report.failures
    assert report.noise["neighbour_max"] == pytest.approx(1.2)
    assert "1.20 cores" in report.summary() and report.summary().startswith("INCONCLUSIVE")
    suite = ET.fromstring(report.to_junit()).find("testsuite")
    skipped = [c.get("name") for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert skipped == entries and suite.get("failures") == "0"
    assert suite.get("skipped") == str(len(entries))
    # a quiet regression elsewhere still fails the check (1 wins over 3)
    fake = Fake({SPACE.stem_key: 1.5, SPACE.head_key: 1.5})
    loads = Gauge(*([0.0] + [1.2] * 5 + [0.0] * 20))  # stem contended only after its first run
    report = check_lut(make_lut(device), device, CFG, measure_fn=fake, gauge=loads)
    assert report.exit_code == 1


def test_global_shift_measured_under_contention_is_inconclusive():
    def entry(ratio, load):
        return ItemResult("e", "entry", 1.0, ratio, ratio, 0.05, OK, neighbour=[load])
    cfg = CheckConfig()
    assert global_shift([entry(1.2, 1.0)] * 4, cfg).status == INCONCLUSIVE
    assert global_shift([entry(1.2, 0.0)] * 4, cfg).status == REGRESSED


def test_machine_far_from_the_baseline_turns_regressions_inconclusive():
    def item():
        return ItemResult("m", "model", 1.0, 1.3, 1.3, 0.05, REGRESSED)
    cfg = CheckConfig(state_limit=0.25)
    far, near = item(), item()
    abstain_far_state([far, None], {"machine_factor": 1.4}, cfg)
    abstain_far_state([near], {"machine_factor": 1.1}, cfg)
    assert far.status == INCONCLUSIVE and "1.40x" in far.note
    assert near.status == REGRESSED
    slow = item()
    abstain_far_state([slow], {"machine_factor": 1 / 1.4}, cfg)
    assert slow.status == INCONCLUSIVE


def test_neighbour_gauge_counts_other_processes_cpu_time(tmp_path, monkeypatch):
    import os
    from types import SimpleNamespace

    stat = tmp_path / "stat"
    times = iter([SimpleNamespace(user=1.0, system=0.0, children_user=0.0, children_system=0.0,
                                  elapsed=100.0),
                  SimpleNamespace(user=2.0, system=0.0, children_user=0.0, children_system=0.0,
                                  elapsed=102.0)])
    monkeypatch.setattr(os, "times", lambda: next(times))
    gauge = NeighbourGauge(str(stat))
    hz = gauge.hz
    stat.write_text(f"cpu  {int(10 * hz)} 0 0 {int(50 * hz)} 0 0 0 0 0 0\ncpu0 1 2 3\n")
    token = gauge.start()
    # 2 s of wall time: this process used 1 s, all CPUs 1 s user + 0.5 s stolen more than that
    stat.write_text(f"cpu  {int(12 * hz)} 0 0 {int(50 * hz)} 0 0 0 {int(0.5 * hz)} 0 0\n")
    assert gauge.stop(token) == pytest.approx(0.75)
    assert NeighbourGauge(str(tmp_path / "none")).start() is None
    assert NeighbourGauge().stop(None) is None


# ------------------------------------------------------------------- baselines
def tiny_model(tmp_path):
    pytest.importorskip("onnx")
    return relu_onnx(tmp_path / "m.onnx")


def test_baseline_is_the_median_of_its_runs(device, tmp_path):
    model = tiny_model(tmp_path)
    values = iter([3.0, 1.0, 2.0])
    b = update_baseline(model, device, tmp_path / "b.json", CheckConfig(baseline_runs=3),
                        measure_fn=lambda t: meas(next(values)), gauge=Gauge(0.1, 0.2, 0.3))
    assert b.median_ms == 2.0 and b.measurement["runs_ms"] == [3.0, 1.0, 2.0]
    assert b.measurement["neighbour"] == [0.1, 0.2, 0.3]


@pytest.mark.parametrize("content", ['{"kind": "sgnas-latency-baseline", "schema_ver',
                                     '{"something": "else"}', "not json at all"])
def test_update_never_overwrites_a_corrupt_or_foreign_file(device, tmp_path, content):
    model = tiny_model(tmp_path)
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(SgnasError, match="not overwritten"):
        update_baseline(model, device, path, CheckConfig(), measure_fn=lambda t: meas(1.0))
    assert path.read_text() == content


def test_update_replaces_a_baseline_of_an_older_schema(device, tmp_path):
    model = tiny_model(tmp_path)
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"kind": "sgnas-latency-baseline", "schema_version": 0}))
    b = update_baseline(model, device, path, CheckConfig(baseline_runs=1),
                        measure_fn=lambda t: meas(1.5))
    assert b.median_ms == 1.5 and json.loads(path.read_text())["schema_version"] == 1


def test_a_runtime_shift_against_the_probe_is_inconclusive_not_a_regression():
    from profiler.check import ItemResult, _runtime_note
    from profiler.check_report import INCONCLUSIVE, REGRESSED

    runtime = ItemResult(name="runtime", kind="runtime", baseline_ms=1.0, now_ms=1.2, ratio=1.2,
                         tolerance=0.15, status=REGRESSED, measurements_ms=[1.2], note="")
    model = ItemResult(name="m.onnx", kind="model", baseline_ms=1.0, now_ms=1.3, ratio=1.3,
                       tolerance=0.05, status=REGRESSED, measurements_ms=[1.3], note="")
    _runtime_note([runtime, model])
    assert runtime.status == INCONCLUSIVE and "machine's state" in runtime.note
    assert model.status == REGRESSED  # a slower model still fails
