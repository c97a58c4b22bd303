"""The TensorRT/CUDA support matrix per GPU architecture."""

from pathlib import Path

import pytest

from profiler.backends.support import (MATRIX, arch_for, cc_of_model, check_precision,
                                       check_tensorrt, markdown_table, trt_extra)
from profiler.devices import known_devices, load_device
from sgnas.errors import SgnasError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cc, trt, cuda, ok", [
    ((7, 0), "10.0.1", 12, True),
    ((7, 0), "10.4.0.26", 12, True),
    ((7, 0), "10.5.0", 12, False),      # Volta removed in 10.5
    ((7, 0), "11.0.0", 13, False),
    ((7, 0), "10.4.0", 13, False),      # CUDA 13 dropped Volta
    ((7, 5), "10.9.0", 12, True),
    ((7, 5), "11.1.0", 13, True),
    ((8, 0), "10.13.2", 13, True),
    ((9, 0), "11.0.0", 12, False),      # TensorRT 11 wheels are CUDA 13 only
    ((10, 0), "10.7.0", 12, False),     # Blackwell from 10.8
    ((10, 0), "10.8.0", 12, True),
    ((6, 1), "10.0.0", 12, False),      # Pascal: not in TensorRT 10
])
def test_matrix(cc, trt, cuda, ok):
    if ok:
        check_tensorrt(cc, trt, "fp16", "device x", trt_cuda=cuda)
    else:
        with pytest.raises(SgnasError) as exc:
            check_tensorrt(cc, trt, "fp16", "device x", trt_cuda=cuda)
        msg = str(exc.value)
        assert "\n" not in msg and msg.startswith("device x: ")
        assert "pip install" in msg or "torch" in msg


def test_binding_and_wheel_cuda_must_agree():
    with pytest.raises(SgnasError, match=r"CUDA 12 but the CUDA binding loads CUDA 13: "
                                         r"pip install 'cuda-python>=12,<13'"):
        check_tensorrt((8, 0), "10.9.0", "fp16", "device a", trt_cuda=12, binding_cuda=13)
    check_tensorrt((8, 0), "10.9.0", "fp16", "device a", trt_cuda=12, binding_cuda=12)


def test_tf32_needs_ampere():
    with pytest.raises(SgnasError, match="no TF32"):
        check_tensorrt((7, 5), "10.9.0", "tf32", "device t", trt_cuda=12)
    with pytest.raises(SgnasError, match="no TF32"):
        check_precision((7, 0), "tf32", "device v")
    check_precision((8, 0), "tf32", "device a")
    check_precision((7, 0), "fp32", "device v")


def test_rows_do_not_overlap_and_cover_the_shipped_gpus():
    for a, b in zip(MATRIX, MATRIX[1:]):
        assert a.cc_max < b.cc_min
    for name in known_devices():
        d = load_device(name)
        if d.kind == "gpu":
            cc = cc_of_model(d.gpu_model)
            assert cc is not None and arch_for(cc) is not None, name


def test_v100_descriptor_states_the_requirement():
    text = (load_device("v100").description, (ROOT / "devices" / "v100.yaml").read_text())
    assert "10.0-10.4" in text[0] and "CUDA 12" in text[0]
    assert "v100-torch" in text[1] and load_device("v100-torch").backend == "torch"


def test_readme_states_the_matrix():
    assert markdown_table() in (ROOT / "README.md").read_text()


def test_extra_per_gpu():
    assert trt_extra("V100") == "trt-volta"
    assert trt_extra("H100") == "trt" and trt_extra(None) == "trt"
