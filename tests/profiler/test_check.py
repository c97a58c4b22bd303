import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from profiler.baseline import file_sha256, load_baseline, onnx_input_shape, write_baseline
from profiler.check import (
    CheckConfig,
    Target,
    check_lut,
    check_onnx,
    compare,
    lut_targets,
    network_targets,
    parse_tolerance,
    stratified_sample,
    update_baseline,
)
from profiler.check_config import median_error
from profiler.check_report import IMPROVED, MISMATCH, NOISY, OK, REGRESSED
from profiler.devices import load_device
from profiler.junit import JUnitCase, junit_xml
from profiler.protocol import Measurement
from sgnas.errors import SgnasError
from sgnas.lut import Calibration, EntryStats, Lut
from sgnas.space import get_space
from tests.profiler.onnx_models import conv_onnx, fast_device

SPACE = get_space("tiny")


def meas(ms, spread=0.01):
    return Measurement(median_ms=ms, p10_ms=ms * 0.98, p90_ms=ms * 1.02, n=50, spread=spread,
                       round_medians=[ms] * 5, noisy=False)


class Fake:
    """measure_fn: the target's baseline times a factor per (name, call index)."""

    def __init__(self, factors=None, default=1.0, spread=0.01):
        self.factors = factors or {}
        self.default = default
        self.spread = spread
        self.calls = Counter()

    def __call__(self, target):
        i = self.calls[target.name]
        self.calls[target.name] += 1
        f = self.factors.get(target.name, self.default)
        if isinstance(f, (list, tuple)):
            f = f[min(i, len(f) - 1)]
        return meas(target.baseline_ms * f, self.spread)


@pytest.fixture(scope="module")
def device():
    return load_device("cpu")


def make_lut(device, spread=0.01, calibration=None, space=SPACE):
    keys = space.all_keys()
    ms = np.random.default_rng(0).uniform(0.01, 1.0, len(keys))
    entries = {k: EntryStats(float(v), float(v) * 0.95, float(v) * 1.05, 100, spread)
               for k, v in zip(keys, ms)}
    return Lut(space=space.name, space_fingerprint=space.fingerprint, device=device.to_dict(),
               entries=entries, complete=True, input_size=space.input_size, calibration=calibration)


CFG = CheckConfig(sample=10, networks=2, canary=False)


# ------------------------------------------------------------------ tolerance
@pytest.mark.parametrize("text,value", [("10%", 0.10), ("10", 0.10), (" 2.5 % ", 0.025), ("0", 0.0),
                                        ("0.5%", 0.005), ("999%", 9.99)])
def test_parse_tolerance_accepts_percentages(text, value):
    assert parse_tolerance(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "-5%", "-1", "1000%", "5000", "nan", "inf%", "0.1", "%", ""])
def test_parse_tolerance_rejects_bad_values(text):
    with pytest.raises(SgnasError):
        parse_tolerance(text)


def test_item_tolerance_is_floor_or_k_times_spread_capped():
    cfg = CheckConfig(tolerance=0.10, spread_k=2.0, max_tolerance=0.5)
    assert cfg.item_tolerance(0.01, 0.02) == pytest.approx(0.10)
    assert cfg.item_tolerance(0.08, 0.02) == pytest.approx(0.16)
    assert cfg.item_tolerance(0.02, 0.09) == pytest.approx(0.18)
    assert cfg.item_tolerance(0.9, 0.02) == pytest.approx(0.5)
    assert cfg.item_tolerance(0.01, float("inf")) == pytest.approx(0.5)
    assert CheckConfig(tolerance=0.8).item_tolerance(0.9, 0.9) == pytest.approx(0.8)


def test_median_error_is_spread_over_root_pairs():
    assert median_error(0.06, 36) == pytest.approx(0.01)
    assert median_error(0.06, 0) == pytest.approx(0.06)  # no pair count: the spread itself
    assert median_error(0.06, 1) == pytest.approx(0.06)
    assert median_error(None) == float("inf")


def test_state_normalized_slowdown_is_judged_by_the_medians_error():
    """A 10% slower model measured over 24 pairs whose per-pair ratios spread 6%: the median is
    known to ~1.2%, so the 5% floor holds and the slowdown fails; without a pair count the same
    spread widens the tolerance to 12% and the slowdown would pass."""
    def normalized(ms, pairs):
        return lambda target: Measurement(median_ms=ms, p10_ms=ms, p90_ms=ms, n=pairs, spread=0.06,
                                          round_medians=[ms], noisy=False, ratio=ms, pairs=pairs)
    cfg = CheckConfig(remeasure=0)
    target = Target("m.onnx", "model", 1.0, 0.06, baseline_pairs=24)
    slow = compare(target, cfg, normalized(1.10, 24))
    assert slow.status == REGRESSED and slow.tolerance == pytest.approx(0.05)
    assert slow.spread_now == pytest.approx(0.06)  # the report keeps the spread itself
    assert compare(target, cfg, normalized(1.03, 24)).status == OK
    unpaired = compare(Target("m.onnx", "model", 1.0, 0.06), cfg, normalized(1.10, 0))
    assert unpaired.status == OK and unpaired.tolerance == pytest.approx(0.12)


# ------------------------------------------------------------------- scenarios
def test_unchanged_lut_passes(device):
    lut = make_lut(device)
    report = check_lut(lut, device, CFG, measure_fn=Fake())
    assert report.exit_code == 0 and report.passed
    assert {r.status for r in report.results} == {OK}
    assert report.global_result.status == OK and report.global_result.ratio == pytest.approx(1.0)
    assert len([r for r in report.results if r.kind == "entry"]) == 10
    assert len([r for r in report.results if r.kind == "network"]) == 2


def test_slow_entry_confirmed_on_remeasure_fails(device):
    lut = make_lut(device)
    fake = Fake({SPACE.stem_key: 1.4})
    report = check_lut(lut, device, CFG, measure_fn=fake)
    assert report.exit_code == 1
    [bad] = report.failures
    assert bad.name == SPACE.stem_key and bad.status == REGRESSED
    assert bad.ratio == pytest.approx(1.4)
    assert fake.calls[SPACE.stem_key] == 1 + CFG.remeasure
    assert len(bad.measurements_ms) == 1 + CFG.remeasure
    assert report.global_result.status == OK


def test_slow_once_then_normal_is_noisy_not_a_failure(device):
    lut = make_lut(device)
    fake = Fake({SPACE.head_key: [1.4, 1.0, 1.0]})
    report = check_lut(lut, device, CFG, measure_fn=fake)
    assert report.exit_code == 0
    head = next(r for r in report.results if r.name == SPACE.head_key)
    assert head.status == NOISY
    assert head.ratio == pytest.approx(1.0)
    assert fake.calls[SPACE.head_key] == 2  # "min" stops at the first re-measurement within tolerance
    assert report.noise["noisy"] == 1 and report.noise["remeasured"] == 1
    assert "noisy" in report.table()


def test_median_reduction_takes_every_remeasurement(device):
    lut = make_lut(device)
    cfg = CheckConfig(sample=4, networks=0, canary=False, reduce="median", remeasure=3)
    fake = Fake({SPACE.stem_key: [1.4, 1.0, 1.5, 1.6]})
    report = check_lut(lut, device, cfg, measure_fn=fake)
    stem = next(r for r in report.results if r.name == SPACE.stem_key)
    assert fake.calls[SPACE.stem_key] == 4
    assert stem.ratio == pytest.approx(1.5) and stem.status == REGRESSED


def test_global_shift_fails_even_if_every_entry_is_within_its_tolerance(device):
    lut = make_lut(device, spread=0.08)  # per-entry tolerance 2 x 8% = 16%
    report = check_lut(lut, device, CFG, measure_fn=Fake(default=1.15, spread=0.08))
    entries = [r for r in report.results if r.kind == "entry"]
    assert all(r.status == OK for r in entries)
    assert report.global_result.status == REGRESSED
    assert report.global_result.ratio == pytest.approx(1.15)
    assert report.exit_code == 1
    assert [r.name for r in report.failures] == ["global-shift"]


def test_improvement_is_a_note_not_a_failure(device):
    lut = make_lut(device)
    report = check_lut(lut, device, CFG, measure_fn=Fake({SPACE.stem_key: 0.5}))
    stem = next(r for r in report.results if r.name == SPACE.stem_key)
    assert stem.status == IMPROVED and report.exit_code == 0
    assert any("faster" in n for n in report.notes)


def test_compare_rejects_non_positive_baseline():
    with pytest.raises(SgnasError):
        compare(Target("x", "entry", 0.0), CheckConfig(), Fake())


# ------------------------------------------------------------------- networks
def test_networks_are_predicted_by_the_lut_and_reproducible(device):
    lut = make_lut(device)
    a = network_targets(lut, SPACE, CheckConfig(networks=3), np.random.default_rng(5))
    b = network_targets(lut, SPACE, CheckConfig(networks=3), np.random.default_rng(5))
    assert [t.arch for t in a] == [t.arch for t in b]
    assert len({t.arch for t in a}) == 3
    for t in a:
        assert t.baseline_ms == pytest.approx(lut.predict_ms(t.arch))


def test_network_of_unvalidated_lut_is_reported_not_failed(device):
    lut = make_lut(device)
    report = check_lut(lut, device, CFG, measure_fn=Fake({"network-0": 1.6}))
    net = next(r for r in report.results if r.name == "network-0")
    assert net.status == MISMATCH and report.exit_code == 0
    assert any("not failed" in n for n in report.notes)


def test_network_of_calibrated_lut_fails_beyond_its_recorded_error(device):
    cal = Calibration(slope=0.9, intercept=0.01, metrics={"heldout_calibrated_mape": 0.03})
    lut = make_lut(device, calibration=cal)
    [t] = network_targets(lut, SPACE, CheckConfig(networks=1), np.random.default_rng(0))
    assert t.baseline_ms == pytest.approx(0.9 * lut.raw_ms(t.arch) + 0.01)
    report = check_lut(lut, device, CFG, measure_fn=Fake({"network-1": 1.6}))
    net = next(r for r in report.results if r.name == "network-1")
    assert net.status == REGRESSED and report.exit_code == 1


# ------------------------------------------------------------------- sampling
def test_stratified_sample_covers_stem_head_shapes_and_latency_range(device):
    lut = make_lut(device)
    keys = [t.name for t in lut_targets(lut, SPACE, CheckConfig(sample=10), np.random.default_rng(0))]
    assert keys[:2] == [SPACE.stem_key, SPACE.head_key]
    assert len(keys) == len(set(keys)) == 10
    shapes = {layer.shape_key for layer in SPACE.layers}
    picked_shapes = {k.rsplit("_k", 1)[0] for k in keys[2:]}
    assert picked_shapes == shapes
    # two picks per shape: one from the faster half of the shape's entries, one from the slower half
    for shape in shapes:
        entries = sorted(lut.entries[k].median_ms for k in lut.entries if k.startswith(shape + "_k"))
        mid = entries[len(entries) // 2]
        picks = sorted(lut.entries[k].median_ms for k in keys if k.startswith(shape + "_k"))
        assert len(picks) == 2 and picks[0] < mid <= picks[1]


def test_stratified_sample_small_budget_full_and_seed(device):
    lut = make_lut(device)
    rng = np.random.default_rng
    small = lut_targets(lut, SPACE, CheckConfig(sample=3), rng(0))
    assert [t.name for t in small][:2] == [SPACE.stem_key, SPACE.head_key] and len(small) == 3
    full = lut_targets(lut, SPACE, CheckConfig(sample=None), rng(0))
    assert {t.name for t in full} == set(SPACE.all_keys())
    a = [t.name for t in lut_targets(lut, SPACE, CheckConfig(sample=12), rng(1))]
    b = [t.name for t in lut_targets(lut, SPACE, CheckConfig(sample=12), rng(1))]
    assert a == b


def test_stratified_sample_passes_surplus_of_small_shapes_on():
    by_shape = {"a": [("a1", 1.0)], "b": [(f"b{i}", float(i)) for i in range(10)]}
    keys = stratified_sample(by_shape, ["stem"], 7, np.random.default_rng(0))
    assert keys[0] == "stem" and "a1" in keys and len(keys) == len(set(keys)) == 7


# ------------------------------------------------------------------ refusals
def test_lut_of_another_device_is_refused(device):
    lut = make_lut(device)
    other = load_device("cpu-2t")
    with pytest.raises(SgnasError, match="recorded on device 'cpu'.*'cpu-2t'"):
        check_lut(lut, other, CFG, measure_fn=Fake())
    report = check_lut(lut, other, CheckConfig(sample=4, networks=0, canary=False,
                                               allow_device_change=True), measure_fn=Fake())
    assert report.passed


def test_lut_recorded_with_other_device_settings_is_refused(device):
    lut = make_lut(device)
    lut.device["threads"] = 4
    with pytest.raises(SgnasError, match="threads 4 -> 1"):
        check_lut(lut, device, CFG, measure_fn=Fake())


def test_lut_of_another_space_definition_is_refused(device):
    lut = make_lut(device)
    lut.space_fingerprint = "0" * 16
    with pytest.raises(SgnasError, match="another definition of space"):
        check_lut(lut, device, CFG, measure_fn=Fake())


# ------------------------------------------------------------------- reports
def test_junit_is_well_formed_and_counts_failures(device):
    lut = make_lut(device)
    report = check_lut(lut, device, CFG, measure_fn=Fake({SPACE.stem_key: 1.4, SPACE.head_key: 2.0}))
    root = ET.fromstring(report.to_junit())
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(report.results) + 1  # + global-shift
    assert int(suite.get("failures")) == int(root.get("failures")) == 2
    failed = sorted(c.get("name") for c in cases if c.find("failure") is not None)
    assert failed == sorted([SPACE.stem_key, SPACE.head_key])
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["device.name"] == "cpu" and props["device.backend"] == "onnxruntime"
    assert "global-shift" in [c.get("name") for c in cases]


def test_json_report_round_trips(device, tmp_path):
    lut = make_lut(device)
    report = check_lut(lut, device, CFG, measure_fn=Fake({SPACE.stem_key: 1.4}))
    report.write_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is False and data["exit_code"] == 1
    assert data["counts"][REGRESSED] == 1
    assert data["global"]["name"] == "global-shift"
    assert {r["name"] for r in data["results"]} >= {SPACE.stem_key, SPACE.head_key, "network-0"}
    assert data["config"]["tolerance"] == pytest.approx(CFG.tolerance)


def test_table_lists_key_baseline_now_ratio_tolerance_status(device):
    report = check_lut(make_lut(device), device, CFG, measure_fn=Fake({SPACE.stem_key: 1.4}))
    table = report.table()
    header = table.splitlines()[0].split()
    assert header == ["key", "baseline", "ms", "now", "ms", "ratio", "tol", "status"]
    assert SPACE.stem_key in table and "regressed" in table and table.rstrip().splitlines()[-1].startswith("FAIL")


def test_junit_escapes_and_strips_invalid_characters():
    xml = junit_xml("s", [JUnitCase("a<b>\x01", "c", failure="x & y", details="\x00bad")], {"k": {"v": 1}})
    root = ET.fromstring(xml)
    case = root.find("testsuite/testcase")
    assert case.get("name") == "a<b>?" and case.find("failure").get("message") == "x & y"
    assert root.find("testsuite/properties/property").get("name") == "k.v"


# --------------------------------------------------------------------- ONNX
def test_onnx_input_shape_fills_dynamic_dims(tmp_path):
    p = conv_onnx(tmp_path / "m.onnx")
    assert onnx_input_shape(p, batch_size=4) == (4, 3, 8, 8)
    q = conv_onnx(tmp_path / "d.onnx", size="H")
    assert onnx_input_shape(q, 1, input_size=32) == (1, 3, 32, 32)
    with pytest.raises(SgnasError, match="dynamic"):
        onnx_input_shape(q, 1)
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(SgnasError, match="not a valid ONNX"):
        onnx_input_shape(tmp_path / "bad.onnx")


def test_onnx_baseline_update_then_check(device, tmp_path):
    model = conv_onnx(tmp_path / "m.onnx")
    base = tmp_path / "latency.json"
    fixed = lambda t: meas(2.0, 0.01)  # noqa: E731
    b = update_baseline(model, device, base, CheckConfig(), measure_fn=fixed)
    data = json.loads(base.read_text())
    assert data["schema_version"] == 1 and data["model"]["sha256"] == file_sha256(model)
    assert data["model"]["input_shape"] == [1, 3, 8, 8] and data["device"]["name"] == "cpu"
    assert data["measurement"]["median_ms"] == 2.0 and "created" in data and b.median_ms == 2.0

    ok = check_onnx(model, device, base, CheckConfig(), measure_fn=fixed)
    assert ok.exit_code == 0 and ok.results[0].status == OK and ok.global_result is None
    slow = check_onnx(model, device, base, CheckConfig(), measure_fn=lambda t: meas(3.0, 0.01))
    assert slow.exit_code == 1 and slow.results[0].status == REGRESSED
    assert slow.results[0].measurements_ms == [3.0] * 4


def test_onnx_baseline_refusals(device, tmp_path):
    model = conv_onnx(tmp_path / "m.onnx")
    other = conv_onnx(tmp_path / "o.onnx", channels=8)
    base = tmp_path / "latency.json"
    write_baseline(base, model, device, meas(2.0), (1, 3, 8, 8))
    fixed = lambda t: meas(2.0)  # noqa: E731
    with pytest.raises(SgnasError, match="another model"):
        check_onnx(other, device, base, CheckConfig(), measure_fn=fixed)
    changed = check_onnx(other, device, base, CheckConfig(allow_model_change=True), measure_fn=fixed)
    assert changed.passed and "model changed" in changed.results[0].note
    with pytest.raises(SgnasError, match="recorded on device 'cpu'"):
        check_onnx(model, load_device("cpu-2t"), base, CheckConfig(), measure_fn=fixed)
    with pytest.raises(SgnasError, match="--update"):
        check_onnx(model, device, tmp_path / "missing.json", CheckConfig(), measure_fn=fixed)
    (tmp_path / "corrupt.json").write_text('{"schema_version": 1, "kind": "sgnas-latency-baseline"')
    with pytest.raises(SgnasError, match="corrupt"):
        load_baseline(tmp_path / "corrupt.json")
    (tmp_path / "nofield.json").write_text('{"schema_version": 1, "kind": "sgnas-latency-baseline"}')
    with pytest.raises(SgnasError, match="corrupt"):
        load_baseline(tmp_path / "nofield.json")
    with pytest.raises(SgnasError, match="input"):
        check_onnx(model, device, base, CheckConfig(input_shape=(2, 3, 8, 8)), measure_fn=fixed)


def test_update_refuses_to_replace_baseline_of_another_device(device, tmp_path):
    model = conv_onnx(tmp_path / "m.onnx")
    base = tmp_path / "latency.json"
    write_baseline(base, model, load_device("cpu-2t"), meas(2.0), (1, 3, 8, 8))
    before = base.read_bytes()
    with pytest.raises(SgnasError, match="cpu-2t"):
        update_baseline(model, device, base, CheckConfig(), measure_fn=lambda t: meas(1.0))
    assert base.read_bytes() == before


def test_real_onnxruntime_update_then_unchanged_check(tmp_path):
    pytest.importorskip("onnxruntime")
    dev = load_device(str(fast_device(tmp_path)))
    model = conv_onnx(tmp_path / "m.onnx")
    base = tmp_path / "latency.json"
    b = update_baseline(model, dev, base, CheckConfig())
    assert b.median_ms > 0 and b.measurement["n"] >= 15
    assert load_baseline(base).model_sha256 == file_sha256(model)
    # a generous floor: this checks the mechanics on a shared machine, not its noise
    report = check_onnx(model, dev, base, CheckConfig(tolerance=3.0, max_neighbour=999.0,
                                                      state_limit=9.0))
    assert report.exit_code == 0 and report.results[0].now_ms > 0
    assert report.environment  # provenance of a real run



def test_device_measurer_keeps_only_the_last_graph(device):
    from profiler.check_measure import DeviceMeasurer

    with DeviceMeasurer(device, SPACE) as m:
        a = m.spec(Target(SPACE.stem_key, "entry", 1.0))
        assert m.spec(Target(SPACE.stem_key, "entry", 1.0)) is a  # re-measurements reuse the graph
        b = m.spec(Target(SPACE.head_key, "entry", 1.0))
        assert not a.onnx_path.exists() and b.onnx_path.exists()
        assert b.input_shape == (1, 24, 4, 4)
        arch = SPACE.sample(np.random.default_rng(0))
        net = m.spec(Target("network-0", "network", 1.0, arch=arch))
        assert net.input_shape == (1, 3, 16, 16) and not b.onnx_path.exists()
    assert not net.onnx_path.exists()


def test_public_names_stay_importable_from_check():
    import profiler.baseline
    import profiler.check
    import profiler.check_measure
    import profiler.check_report

    homes = {
        profiler.baseline: ["Baseline", "load_baseline", "write_baseline", "file_sha256",
                            "onnx_input_shape", "device_dict", "check_same_device",
                            "LATENCY_FIELDS", "BASELINE_SCHEMA"],
        profiler.check_report: ["ItemResult", "CheckReport", "OK", "IMPROVED", "NOISY", "REGRESSED",
                                "MISMATCH", "REPORT_SCHEMA"],
        profiler.check_measure: ["DeviceMeasurer", "preflight"],
    }
    for module, names in homes.items():
        for name in names:
            assert getattr(profiler.check, name) is getattr(module, name), name
            assert name in profiler.check.__all__
    for name in profiler.check.__all__:
        assert hasattr(profiler.check, name), name
