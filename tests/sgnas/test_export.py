"""ONNX export: single file, verified against torch, atomic, fp16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgnas import export as export_mod
from sgnas.blocks import build_layer_block
from sgnas.errors import SgnasError
from sgnas.export import export_onnx
from sgnas.network import build_network
from sgnas.space import get_space

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _network(se=True, activation="hswish"):
    space = get_space("tiny")
    arch = space.sample(np.random.default_rng(0))
    return space, build_network(space, arch, se=se, activation=activation,
                                generator=torch.Generator().manual_seed(0))


def _ort(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _only_file(tmp_path, name):
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no .onnx.data, no temp files


def test_torchscript_export_matches_torch(tmp_path):
    space, net = _network()
    net.train()
    path = tmp_path / "net.onnx"
    res = export_onnx(net, (2, 3, 16, 16), path, dynamo=False)
    _only_file(tmp_path, "net.onnx")
    assert net.training  # the caller's module is not switched to eval
    assert res.verified and res.exporter == "torchscript" and res.max_abs_diff is not None
    assert res.size_bytes == path.stat().st_size
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ["input"]
    assert model.opset_import[0].version == 18
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        want = net.eval()(torch.from_numpy(x)).numpy()
    assert np.allclose(_ort(path, x), want, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_dynamo_export_matches_torch(tmp_path):
    space, net = _network()
    path = tmp_path / "net.onnx"
    res = export_onnx(net, (1, 3, 16, 16), path)
    _only_file(tmp_path, "net.onnx")
    assert res.exporter == "dynamo" and res.verified
    assert res.max_abs_diff <= 1e-6 + 1e-4 * res.ref_max_abs
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1


def test_layer_block_export_and_fp16(tmp_path):
    space = get_space("tiny")
    block = build_layer_block(space.layers[1], (3, 5, 7), generator=torch.Generator().manual_seed(0))
    res = export_onnx(block, (1, 16, 8, 8), tmp_path / "b16.onnx", dynamo=False, half=True)
    assert res.verified and res.half
    assert next(block.parameters()).dtype == torch.float32  # the original is untouched
    model = onnx.load(str(tmp_path / "b16.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16


def test_failed_verification_keeps_existing_file(tmp_path, monkeypatch):
    _, net = _network(se=False, activation="relu6")
    path = tmp_path / "net.onnx"
    path.write_bytes(b"old")
    monkeypatch.setattr(export_mod, "run_onnxruntime", lambda data, x: np.full((1, 10), 1e3, "f4"))
    with pytest.raises(SgnasError, match="does not match torch"):
        export_onnx(net, (1, 3, 16, 16), path, dynamo=False)
    assert path.read_bytes() == b"old"
    _only_file(tmp_path, "net.onnx")


def test_missing_onnxruntime_skips_verification(tmp_path, monkeypatch):
    _, net = _network(se=False, activation="relu6")
    monkeypatch.setattr(export_mod, "run_onnxruntime", lambda data, x: None)
    res = export_onnx(net, (1, 3, 16, 16), tmp_path / "n.onnx", dynamo=False)
    assert not res.verified and res.max_abs_diff is None
    assert (tmp_path / "n.onnx").stat().st_size > 0


@pytest.mark.parametrize("shape", [(1, 3, 16), (0, 3, 16, 16), ("a", 3, 16, 16)])
def test_bad_input_shape(tmp_path, shape):
    _, net = _network(se=False, activation="relu6")
    with pytest.raises(SgnasError, match="shape"):
        export_onnx(net, shape, tmp_path / "n.onnx", dynamo=False)
    assert not (tmp_path / "n.onnx").exists()
