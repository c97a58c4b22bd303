"""Paired ONNX checks: the baseline keeps its model, and a check times the model against it."""

import json

import numpy as np
import pytest

from profiler.baseline import baseline_model, file_sha256, load_baseline, model_copy_folder
from profiler.check import CheckConfig, check_onnx, judge, update_baseline
from profiler.check_config import Target
from profiler.check_report import INCONCLUSIVE, OK, REGRESSED
from profiler.devices import load_device
from profiler.interleave import InterleaveConfig, interleave
from profiler.protocol import Measurement
from sgnas.errors import SgnasError
from tests.profiler.onnx_models import conv_onnx, fast_device

pytest.importorskip("onnx")


def meas(ms, spread=0.01):
    return Measurement(median_ms=ms, p10_ms=ms, p90_ms=ms, n=50, spread=spread,
                       round_medians=[ms] * 5, noisy=False, pairs=8)


class Gauge:
    """Reports the same neighbour load (cores) around every measurement."""

    def __init__(self, load):
        self.load = load

    def start(self):
        return None

    def stop(self, token):
        return self.load


@pytest.fixture
def device():
    return load_device("cpu")


def test_update_keeps_a_copy_of_the_model_and_replaces_it_with_the_next(device, tmp_path):
    model = conv_onnx(tmp_path / "m.onnx")
    base = tmp_path / "ci" / "latency.json"
    base.parent.mkdir()
    b = update_baseline(model, device, base, CheckConfig(baseline_runs=1),
                        measure_fn=lambda t: meas(2.0))
    assert json.loads(base.read_text())["model"]["copy"] == "latency.model/m.onnx"
    copy = baseline_model(load_baseline(base))
    assert copy == model_copy_folder(base) / "m.onnx" and copy.read_bytes() == model.read_bytes()
    assert b.model_copy == "latency.model/m.onnx"

    heavier = conv_onnx(tmp_path / "m.onnx", channels=16)  # the model changed: record it again
    update_baseline(heavier, device, base, CheckConfig(baseline_runs=1),
                    measure_fn=lambda t: meas(3.0))
    assert baseline_model(load_baseline(base)).read_bytes() == heavier.read_bytes()
    assert sorted(p.name for p in base.parent.iterdir()) == ["latency.json", "latency.model"]

    update_baseline(heavier, device, base, CheckConfig(baseline_runs=1, model_copy=False),
                    measure_fn=lambda t: meas(3.0))
    assert not model_copy_folder(base).exists() and baseline_model(load_baseline(base)) is None


def test_a_folder_in_the_copys_place_is_never_replaced(device, tmp_path):
    model = conv_onnx(tmp_path / "m.onnx")
    base = tmp_path / "latency.json"
    mine = tmp_path / "latency.model"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(SgnasError, match="not overwritten"):
        update_baseline(model, device, base, CheckConfig(), measure_fn=lambda t: meas(2.0))
    assert not base.exists() and (mine / "notes.txt").read_text() == "mine"
    # a baseline that keeps no copy neither refuses nor touches the folder
    update_baseline(model, device, base, CheckConfig(baseline_runs=1, model_copy=False),
                    measure_fn=lambda t: meas(2.0))
    assert base.exists() and (mine / "notes.txt").read_text() == "mine"


def test_a_copy_that_is_not_the_recorded_model_is_refused(device, tmp_path):
    model = conv_onnx(tmp_path / "m.onnx")
    base = tmp_path / "latency.json"
    update_baseline(model, device, base, CheckConfig(baseline_runs=1), measure_fn=lambda t: meas(2.0))
    conv_onnx(model_copy_folder(base) / "m.onnx", channels=8)  # someone edited the copy
    with pytest.raises(SgnasError, match="sha256 differs"):
        check_onnx(model, device, base, CheckConfig(), measure_fn=lambda t: meas(2.0))


def test_the_check_is_paired_with_the_copy_and_falls_back_when_it_is_missing(device, tmp_path):
    model = conv_onnx(tmp_path / "m.onnx")
    base = tmp_path / "latency.json"
    update_baseline(model, device, base, CheckConfig(baseline_runs=1),
                    measure_fn=lambda t: meas(2.0, spread=0.3))
    seen = []

    def fn(target):
        seen.append(target)
        return meas(target.baseline_ms * 1.02)

    paired = check_onnx(model, device, base, CheckConfig(), measure_fn=fn)
    assert [t.paired for t in seen] == [True] and paired.exit_code == 0
    # the baseline's own spread does not widen a paired comparison: only the ratio measured now
    assert seen[0].baseline_spread == 0.0 and paired.results[0].tolerance == pytest.approx(0.05)
    assert any("baseline's own model" in n for n in paired.notes)
    assert "runtime" not in [r.name for r in paired.results]

    for p in model_copy_folder(base).iterdir():
        p.unlink()
    seen.clear()
    recorded = check_onnx(model, device, base, CheckConfig(), measure_fn=fn)
    assert [t.paired for t in seen] == [False] and seen[0].baseline_spread == 0.3
    assert any("copy of its model" in n and "missing" in n for n in recorded.notes)


@pytest.mark.parametrize("factor, paired_status", [(1.0, OK), (1.2, REGRESSED)])
def test_contended_measurements_count_for_a_paired_target_only(factor, paired_status):
    cfg = CheckConfig(remeasure_gap_s=0.0)

    def fn(target):
        return meas(target.baseline_ms * factor)

    busy = Gauge(1.0)  # another process uses a whole core during every measurement
    [paired] = judge([Target("m.onnx", "model", 2.0, paired=True)], cfg, fn, busy)
    [alone] = judge([Target("m.onnx", "model", 2.0)], cfg, fn, busy)
    assert paired.status == paired_status and alone.status == INCONCLUSIVE
    assert paired.neighbour[0] == 1.0  # the load is still reported


@pytest.mark.parametrize("readings, paired_status, unpaired_status", [
    # measured: a planted +11% slowdown read 1.157, 1.093, 1.0515 (inside its noise-widened
    # tolerance) -- one low reading cleared it under the unpaired rule (min); the median of all
    # its readings does not
    ([1.157, 1.093, 1.045, 1.10], REGRESSED, "noisy"),
    ([1.06, 0.99, 1.00, 1.01], "noisy", "noisy"),     # one high reading of an unchanged model
    ([1.03, 1.00, 0.99, 1.00], OK, OK),               # beyond half the tolerance: re-measured
    ([1.02, 1.2, 1.2, 1.2], OK, OK),                  # clearly inside: one reading decides
])
def test_a_paired_suspect_is_judged_on_the_median_of_all_its_readings(readings, paired_status,
                                                                      unpaired_status):
    cfg = CheckConfig(remeasure_gap_s=0.0)  # 5% floor, 3 re-measurements, 2 confirmations

    def results(paired):
        it = iter(readings)
        [r] = judge([Target("m.onnx", "model", 1.0, paired=paired)], cfg,
                    lambda t: meas(next(it), spread=0.0), Gauge(0.0))
        return r

    paired, unpaired = results(True), results(False)
    assert (paired.status, unpaired.status) == (paired_status, unpaired_status)
    if readings[0] > 1.025:  # re-measured every time, and the median reported
        assert paired.measurements_ms == readings
        assert paired.now_ms == pytest.approx(float(np.median(readings)))
    else:
        assert paired.measurements_ms == readings[:1]


class StepTimer:
    """A timer that logs its calls in ``log``."""

    def __init__(self, name, log, ms=1.0):
        self.name, self.log, self.ms = name, log, ms

    def time_iterations(self, n):
        self.log.append(self.name)
        return np.full(n, self.ms)


@pytest.mark.parametrize("alternate", [False, True])
def test_interleave_alternates_the_order_of_the_two_when_asked(alternate):
    log = []
    cfg = InterleaveConfig(chunk_ms=1.0, min_chunk_iters=1, pairs=4, max_pairs=4, warmup_ms=0.0,
                           alternate=alternate)
    result = interleave(StepTimer("new", log), StepTimer("old", log, ms=2.0), cfg)
    rounds = log[-8:]
    pairs = [tuple(rounds[i:i + 2]) for i in range(0, 8, 2)]
    want = ([("new", "old"), ("old", "new")] * 2 if alternate else [("new", "old")] * 4)
    assert pairs == want and result.ratio == pytest.approx(0.5)
    assert result.n == (2 if alternate else 4)  # alternated: one ratio per two rounds


def test_alternated_rounds_cancel_an_order_effect():
    """The first of two timers in a round runs 4% faster: alternated rounds pair the two orders."""
    log = []

    class Ordered(StepTimer):
        def time_iterations(self, n):
            first = len(log) % 2 == 0
            self.log.append(self.name)
            return np.full(n, self.ms * (0.96 if first else 1.0))

    cfg = InterleaveConfig(chunk_ms=1.0, min_chunk_iters=1, pairs=4, max_pairs=4, warmup_ms=0.0,
                           alternate=True)
    log.clear()
    result = interleave(Ordered("new", log), Ordered("old", log), cfg)
    assert result.ratio == pytest.approx(1.0) and result.ratio_spread == pytest.approx(0.0)
    fixed = interleave(Ordered("new", log), Ordered("old", log),
                       InterleaveConfig(chunk_ms=1.0, min_chunk_iters=1, pairs=4, max_pairs=4,
                                        warmup_ms=0.0))
    assert fixed.ratio == pytest.approx(0.96)  # without alternation the order biases the ratio


def test_measuring_holds_the_device_lock(tmp_path, monkeypatch):
    from profiler import check
    from profiler.lock import ProfileLock, ProfileLockedError

    monkeypatch.setenv("SGNAS_LOCK_DIR", str(tmp_path))
    notes = []
    with check.device_lock(load_device("cpu"), None, "sgnas check", notes.append):
        with pytest.raises(ProfileLockedError, match="sgnas check"):
            ProfileLock("cpu", directory=tmp_path, wait=False).acquire()
    with check.device_lock(load_device("cpu"), lambda t: None, "sgnas check"):  # injected: no lock
        ProfileLock("cpu", directory=tmp_path, wait=False).acquire().release()


@pytest.mark.slow
def test_real_paired_check_passes_the_model_and_fails_a_heavier_one(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from profiler import check

    held = []

    class Recording(check.ProfileLock):
        def acquire(self):
            held.append(self.what)
            return super().acquire()

    monkeypatch.setattr(check, "ProfileLock", Recording)
    dev = load_device(str(fast_device(tmp_path)))
    model = conv_onnx(tmp_path / "m.onnx", channels=8, size=32)
    heavy = conv_onnx(tmp_path / "heavy.onnx", channels=128, size=32)  # 16x the multiply-adds
    base = tmp_path / "latency.json"
    cfg = CheckConfig(baseline_runs=1, remeasure_gap_s=0.0)
    update_baseline(model, dev, base, cfg)
    same = check_onnx(model, dev, base, cfg)
    assert same.results[0].status != REGRESSED and "paired_with" in same.noise
    slow = check_onnx(heavy, dev, base, CheckConfig(allow_model_change=True, remeasure_gap_s=0.0))
    assert slow.results[0].status == REGRESSED and slow.results[0].ratio > 2.0
    assert file_sha256(model_copy_folder(base) / "m.onnx") == file_sha256(model)
    assert held == ["sgnas check --update", "sgnas check", "sgnas check"]
