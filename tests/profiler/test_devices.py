import warnings

import pytest
import yaml

import profiler.backends.base as base
import profiler.devices as devices
from profiler.devices import (
    DeviceDescriptor,
    check_host,
    device_from_dict,
    known_devices,
    load_device,
)
from profiler.protocol import ProtocolConfig
from sgnas.errors import SgnasError

SHIPPED = {"cpu", "cpu-2t", "cpu-openvino", "cpu-torch", "v100", "t4", "a100", "h100", "h100-torch"}


def test_shipped_devices_are_known():
    assert SHIPPED <= set(known_devices())


@pytest.mark.parametrize("name", known_devices())
def test_every_shipped_descriptor_loads_and_round_trips(name):
    d = load_device(name)
    assert d.name == name
    assert isinstance(d.protocol, ProtocolConfig)
    assert device_from_dict(d.to_dict()) == d
    if d.kind == "cpu":
        assert d.threads >= 1 and d.precision == "fp32"
    else:
        assert d.gpu_model and d.protocol.warmup_ms >= 200


def test_expected_settings_of_key_devices():
    cpu = load_device("cpu")
    assert (cpu.backend, cpu.threads, cpu.pin_threads, cpu.batch_size) == ("onnxruntime", 1, True, 1)
    assert load_device("cpu-2t").threads == 2
    v100 = load_device("v100")
    assert (v100.backend, v100.precision, v100.gpu_model) == ("tensorrt", "fp16", "V100")
    h = load_device("h100-torch")
    assert (h.backend, h.cuda_graphs, h.gpu_model) == ("torch", True, "H100")


def test_unknown_device_lists_known_ones():
    with pytest.raises(SgnasError, match=r"unknown device 'nope'.*cpu-2t.*v100"):
        load_device("nope")


def _write(tmp_path, name, **changes):
    data = load_device("cpu").to_dict()
    data["name"] = name
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key)
        else:
            data[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


_DROP = object()


def test_load_from_path(tmp_path):
    path = _write(tmp_path, "mine", threads=2)
    assert load_device(str(path)).threads == 2


def test_missing_field_names_field_and_file(tmp_path):
    path = _write(tmp_path, "broken", backend=_DROP)
    with pytest.raises(SgnasError, match=r"broken\.yaml.*missing field 'backend'"):
        load_device(str(path))


def test_wrong_type_names_field_and_file(tmp_path):
    path = _write(tmp_path, "broken", batch_size="eight")
    with pytest.raises(SgnasError, match=r"broken\.yaml.*'batch_size' must be an integer"):
        load_device(str(path))
    path = _write(tmp_path, "broken2", pin_threads="yes")
    with pytest.raises(SgnasError, match=r"'pin_threads' must be true or false"):
        load_device(str(path))


def test_wrong_protocol_field(tmp_path):
    path = _write(tmp_path, "broken", protocol={"rounds": 1.5})
    with pytest.raises(SgnasError, match=r"broken\.yaml.*'protocol\.rounds' must be an integer"):
        load_device(str(path))
    path = _write(tmp_path, "broken2", protocol={"roundz": 3})
    with pytest.raises(SgnasError, match=r"unknown field 'protocol\.roundz'"):
        load_device(str(path))


def test_partial_protocol_takes_defaults(tmp_path):
    path = _write(tmp_path, "partial", protocol={"rounds": 7})
    p = load_device(str(path)).protocol
    assert p.rounds == 7 and p.warmup_ms == ProtocolConfig().warmup_ms


def test_unknown_field_and_bad_values(tmp_path):
    with pytest.raises(SgnasError, match="unknown field 'thread'"):
        load_device(str(_write(tmp_path, "a", thread=1)))
    with pytest.raises(SgnasError, match="threads is required"):
        load_device(str(_write(tmp_path, "b", threads=None)))
    with pytest.raises(SgnasError, match="backend must be one of"):
        load_device(str(_write(tmp_path, "c", backend="tflite")))
    with pytest.raises(SgnasError, match="fp32 only"):
        load_device(str(_write(tmp_path, "d", precision="fp16")))
    with pytest.raises(SgnasError, match="does not run on kind cpu"):
        load_device(str(_write(tmp_path, "e", backend="tensorrt")))


def test_name_must_match_file(tmp_path):
    path = _write(tmp_path, "x")
    path.rename(tmp_path / "y.yaml")
    with pytest.raises(SgnasError, match="field 'name' is 'x'"):
        load_device(str(tmp_path / "y.yaml"))


def test_missing_file(tmp_path):
    with pytest.raises(SgnasError, match="not found"):
        load_device(str(tmp_path / "none.yaml"))


def test_check_host_without_gpu_refuses_gpu_device_even_with_force():
    if devices.gpu_names():
        pytest.skip("this host has a GPU")
    v100 = load_device("v100")
    with pytest.raises(SgnasError, match="needs an NVIDIA GPU"):
        check_host(v100)
    with pytest.raises(SgnasError, match="needs an NVIDIA GPU"):
        check_host(v100, force=True)


def test_check_host_model_mismatch_and_force(monkeypatch):
    monkeypatch.setattr(devices, "gpu_names", lambda: ["NVIDIA H100 80GB HBM3"])
    with pytest.raises(SgnasError, match=r"'V100'.*H100 80GB.*--force"):
        check_host(load_device("v100"))
    with pytest.warns(UserWarning, match="--force"):
        check_host(load_device("v100"), force=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_host(load_device("h100"))  # matching model: silent


def test_check_host_cpu_pinning_needs_enough_cpus(monkeypatch):
    monkeypatch.setattr(devices, "available_cpus", lambda: [0])
    check_host(load_device("cpu"))
    with pytest.raises(SgnasError, match="pins 2 threads but only 1 CPUs"):
        check_host(load_device("cpu-2t"))


def test_descriptor_is_frozen_dataclass():
    d = load_device("cpu")
    with pytest.raises(Exception):
        d.threads = 4  # type: ignore[misc]
    assert isinstance(d, DeviceDescriptor)
