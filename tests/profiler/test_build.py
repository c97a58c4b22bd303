import dataclasses
import json

import pytest

from profiler import build, measure
from profiler.build import BuildConfig, build_lut, canary_key, with_protocol
from profiler.interleave import reference_key
from profiler.protocol import Measurement
from sgnas.errors import SgnasError
from sgnas.lut import load_lut
from sgnas.space import get_space

SPACE = get_space("tiny")
@pytest.fixture
def device(quick_cpu):
    return quick_cpu


def test_partial_build_with_real_backend(tmp_path, device):
    out = tmp_path / "lut.json"
    lut = build_lut(BuildConfig(device, SPACE, out, limit=6), progress=False)
    keys = SPACE.all_keys()[:6]
    assert list(lut.entries) == keys
    assert all(e.median_ms > 0 and e.n >= 2 for e in lut.entries.values())
    assert not lut.complete
    saved = load_lut(out, allow_incomplete=True, device="cpu", space=SPACE)
    assert saved.entries == lut.entries
    assert saved.device["backend"] == "onnxruntime" and saved.environment["packages"]
    assert saved.normalized and saved.reference["model"].endswith(":block:" + reference_key(SPACE))
    assert len(saved.reference["samples"]) == 6 and saved.drift == {}
    with pytest.raises(SgnasError, match="incomplete"):
        load_lut(out)


@pytest.mark.slow
def test_full_build_is_complete(tmp_path, device):
    out = tmp_path / "lut.json"
    lut = build_lut(BuildConfig(device, SPACE, out), progress=False)
    assert lut.complete and len(lut.entries) == len(SPACE.all_keys()) == 322
    back = load_lut(out, space=SPACE, device=device)
    assert back.layer_table(SPACE).shape == (4, 80)
    assert (back.layer_table(SPACE) > 0).all()


def test_resume_after_interrupt_keeps_measured_entries(tmp_path, device):
    out = tmp_path / "lut.json"

    def stop_after_4(key, stats, done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_lut(BuildConfig(device, SPACE, out, limit=9), progress=False, on_entry=stop_after_4)
    partial = load_lut(out, allow_incomplete=True)
    assert list(partial.entries) == SPACE.all_keys()[:4]
    assert not partial.complete

    seen = []
    lut = build_lut(BuildConfig(device, SPACE, out, limit=9, resume=True), progress=False,
                    on_entry=lambda key, *a: seen.append(key))
    assert seen == SPACE.all_keys()[4:9]
    assert list(lut.entries) == SPACE.all_keys()[:9]
    for k, v in partial.entries.items():  # kept; re-stated in the final reference state
        assert lut.entries[k].ratio == v.ratio and lut.entries[k].ratio_n == v.ratio_n
        assert lut.entries[k].median_ms == pytest.approx(v.ratio * lut.reference["state_ms"])
    assert len(lut.build["runs"]) == 2


def test_existing_out_refused_and_untouched(tmp_path, device):
    out = tmp_path / "lut.json"
    out.write_text("precious")
    with pytest.raises(SgnasError, match="exists; use --resume to continue or --force to overwrite"):
        build_lut(BuildConfig(device, SPACE, out, limit=2), progress=False)
    assert out.read_text() == "precious"
    lut = build_lut(BuildConfig(device, SPACE, out, limit=2, force=True), progress=False)
    assert json.loads(out.read_text())["entries"].keys() == lut.entries.keys()


def test_resume_refuses_other_device_settings(tmp_path, device):
    out = tmp_path / "lut.json"
    build_lut(BuildConfig(device, SPACE, out, limit=2, canary=False), progress=False)
    other = dataclasses.replace(device, threads=2)
    with pytest.raises(SgnasError, match="other settings of device cpu"):
        build_lut(BuildConfig(other, SPACE, out, limit=3, resume=True), progress=False)


def test_device_input_size_must_match_space(tmp_path, device):
    with pytest.raises(SgnasError, match="profiles at input 224"):
        build_lut(BuildConfig(dataclasses.replace(device, input_size=224), SPACE, tmp_path / "l.json"))
    assert not (tmp_path / "l.json").exists()


def test_keys_subset_and_unknown_key(tmp_path, device):
    keys = [SPACE.head_key, SPACE.layers[3].key((7, 7))]
    lut = build_lut(BuildConfig(device, SPACE, tmp_path / "a.json", keys=keys, canary=False),
                    progress=False)
    assert set(lut.entries) == set(keys)
    with pytest.raises(SgnasError, match="no LUT key ub_nope"):
        build_lut(BuildConfig(device, SPACE, tmp_path / "b.json", keys=["ub_nope"]), progress=False)


def _fake_measurement(ms):
    return Measurement(ms, ms, ms, 10, 0.01, [ms], False)


def test_canary_drift_normalizes_entries(tmp_path, device, monkeypatch):
    dev = with_protocol(device, canary_every=3)
    canary = iter([1.0, 1.01, 1.25, 1.25, 1.25])

    def fake_measure(self, key):
        return _fake_measurement(next(canary) if key == canary_key(SPACE) else 2.0)

    monkeypatch.setattr(measure.Measurer, "entry", fake_measure)
    lut = build_lut(BuildConfig(dev, SPACE, tmp_path / "l.json", limit=8, normalize=False),
                    progress=False)
    values = [lut.entries[k] for k in SPACE.all_keys()[:8]]
    # entries 0-2: canary 1.0 (baseline); 3-5: 1.01 (within tolerance); 6-7: 1.25 -> divided
    assert [v.median_ms for v in values[:6]] == [2.0] * 6
    assert all(v.canary_factor is None for v in values[:6])
    assert [v.median_ms for v in values[6:]] == [pytest.approx(1.6)] * 2
    assert values[6].canary_factor == pytest.approx(1.25)
    assert lut.drift["canary_at_entries"] == [0, 3, 6, 8]
    assert lut.drift["max_drift"] == pytest.approx(0.25)


def test_canary_drift_recorded_without_normalizing(tmp_path, device, monkeypatch):
    canary = iter([1.0, 1.5])
    monkeypatch.setattr(
        measure.Measurer, "entry",
        lambda self, key: _fake_measurement(next(canary) if key == canary_key(SPACE) else 2.0),
    )
    cfg = BuildConfig(device, SPACE, tmp_path / "l.json", limit=3, normalize_drift=False,
                      normalize=False)
    lut = build_lut(cfg, progress=False)
    assert all(e.median_ms == 2.0 and e.canary_factor is None for e in lut.entries.values())
    assert lut.drift["drift"] == pytest.approx(0.5) and lut.drift["normalized"] is False


def test_failing_forced_build_leaves_existing_file(tmp_path, device, monkeypatch):
    out = tmp_path / "lut.json"
    out.write_text("precious")

    def broken(self, key):
        raise SgnasError("runtime exploded")

    monkeypatch.setattr(measure.Measurer, "entry", broken)
    with pytest.raises(SgnasError, match="exploded"):
        build_lut(BuildConfig(device, SPACE, out, limit=2, force=True), progress=False)
    assert out.read_text() == "precious"
