import json

import numpy as np
import pytest

from sgnas.errors import SgnasError, SpaceMismatchError
from sgnas.lut import SCHEMA_VERSION, Calibration, EntryStats, Lut, load_lut, save_lut
from sgnas.space import get_space

DEVICE = {"name": "cpu", "backend": "onnxruntime", "precision": "fp32", "batch_size": 1,
          "threads": 1, "input_size": None}


def full_lut(space_name="tiny", value=lambda i: 0.01 * (i + 1)) -> Lut:
    space = get_space(space_name)
    entries = {
        k: EntryStats(value(i), value(i) * 0.9, value(i) * 1.1, 50, 0.01)
        for i, k in enumerate(space.all_keys())
    }
    return Lut(space.name, space.fingerprint, dict(DEVICE), entries, input_size=space.input_size,
               complete=True)


def test_round_trip(tmp_path):
    lut = full_lut()
    lut.calibration = Calibration(1.1, 0.2, n_fit=10, metrics={"mape": 0.03})
    lut.entries[next(iter(lut.entries))].canary_factor = 1.07
    lut.drift = {"max_drift": 0.02}
    path = tmp_path / "lut.json"
    save_lut(lut, path)
    back = load_lut(path)
    assert back.entries == lut.entries
    assert back.calibration == lut.calibration
    assert back.drift == lut.drift
    assert back.fingerprint == lut.fingerprint
    assert back.schema_version == SCHEMA_VERSION
    assert back.path == str(path)
    assert json.loads(path.read_text())["fingerprint"] == lut.fingerprint


def test_layer_table_and_predictions():
    space = get_space("tiny")
    lut = full_lut()
    table = lut.layer_table(space)
    assert table.shape == (space.num_layers, len(space.configs)) == (4, 80)
    layer, config = space.layers[2], space.configs[17]
    assert table[2, 17] == lut.latency_ms(layer.key(config))
    arch = space.sample(np.random.default_rng(0))
    idx = [space.config_index[c] for c in arch.layers]
    expected = lut.fixed_ms(space) + sum(table[i, j] for i, j in enumerate(idx))
    assert lut.fixed_ms(space) == lut.latency_ms(space.stem_key) + lut.latency_ms(space.head_key)
    assert lut.predict_ms(arch) == pytest.approx(expected)
    lut.calibration = Calibration(2.0, 0.5)
    assert lut.predict_ms(arch) == pytest.approx(2.0 * expected + 0.5)
    assert lut.predict_ms(arch, calibrated=False) == pytest.approx(expected)


def test_calibration_apply_is_differentiable():
    import torch

    x = torch.tensor([3.0], requires_grad=True)
    Calibration(1.5, -0.2).apply(x).sum().backward()
    assert x.grad.item() == pytest.approx(1.5)


def test_missing_key_is_an_error_naming_resume(tmp_path):
    lut = full_lut()
    lut.path = "lut/cpu.json"
    key = get_space("tiny").layers[0].key((3, 5))
    del lut.entries[key]
    with pytest.raises(SgnasError, match=f"LUT lut/cpu.json has no entry {key}; re-run sgnas-profile --resume"):
        lut.latency_ms(key)
    with pytest.raises(SgnasError, match="no entry"):
        lut.layer_table()


def test_incomplete_lut_refused_unless_allowed(tmp_path):
    lut = full_lut()
    lut.entries.pop(get_space("tiny").head_key)
    path = tmp_path / "lut.json"
    save_lut(lut, path)
    with pytest.raises(SgnasError, match="incomplete: 1 of 322 entries missing.*--resume"):
        load_lut(path)
    assert len(load_lut(path, allow_incomplete=True).entries) == 321


@pytest.mark.parametrize("cut", [0, 10, 1000])
def test_corrupt_or_truncated(tmp_path, cut):
    path = tmp_path / "lut.json"
    save_lut(full_lut(), path)
    text = path.read_text()
    path.write_text(text[:cut] if cut else "{not json")
    with pytest.raises(SgnasError, match=f"LUT {path} is corrupt or truncated"):
        load_lut(path)


def test_missing_file_and_bad_schema(tmp_path):
    with pytest.raises(SgnasError, match="not found"):
        load_lut(tmp_path / "nope.json")
    path = tmp_path / "lut.json"
    d = full_lut().to_dict()
    d["schema_version"] = 99
    path.write_text(json.dumps(d))
    with pytest.raises(SgnasError, match="schema version 99"):
        load_lut(path)
    d["schema_version"] = SCHEMA_VERSION
    del d["entries"]
    path.write_text(json.dumps(d))
    with pytest.raises(SgnasError, match="corrupt or truncated"):
        load_lut(path)


def test_space_and_device_mismatch(tmp_path):
    path = tmp_path / "lut.json"
    save_lut(full_lut(), path)
    with pytest.raises(SpaceMismatchError, match="for space 'tiny', not 'imagenet'"):
        load_lut(path, space=get_space("imagenet"))
    with pytest.raises(SgnasError, match="measured on device 'cpu', not 'v100'"):
        load_lut(path, device="v100")
    assert load_lut(path, space="tiny", device="cpu").space == "tiny"
    d = json.loads(path.read_text())
    d["space_fingerprint"] = "0" * 16
    path.write_text(json.dumps(d))
    with pytest.raises(SpaceMismatchError, match="another definition of space 'tiny'"):
        load_lut(path)


def test_fingerprint_tracks_latency_settings_not_numbers():
    a, b = full_lut(), full_lut(value=lambda i: 1.0 + i)
    assert a.fingerprint == b.fingerprint
    b.device["threads"] = 2
    assert a.fingerprint != b.fingerprint
    c = full_lut()
    c.device["precision"] = "fp16"
    assert c.fingerprint != a.fingerprint


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "lut.json"
    save_lut(full_lut(), path)
    before = path.read_text()
    bad = full_lut()
    bad.environment = {"x": object()}  # not JSON-serializable
    with pytest.raises(TypeError):
        save_lut(bad, path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["lut.json"]
