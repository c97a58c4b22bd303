"""``sgnas export``: writes a verified file, refuses bad input with exit code 2 and one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from sgnas.cli.main import main
from sgnas.space import get_space

ort = pytest.importorskip("onnxruntime")


ARCH = "tiny:33-357-55-77"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_export_writes_file_and_refuses_overwrite(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(json.dumps({"space": "tiny", "layers": [[3, 3], [3, 5, 7], [5, 5], [7, 7]]}))
    argv = ["export", "--arch", str(arch_file), "--out", str(out), "--exporter", "torchscript",
            "--batch", "2", "--se", "--hswish"]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [2, 3, 16, 16]
    before = out.read_bytes()

    assert main(argv) == 2
    assert "--force" in _error_line(capsys)
    assert out.read_bytes() == before
    assert main(argv[:-2] + ["--force"]) == 0  # without SE/h-swish: a different model
    assert out.read_bytes() != before


@pytest.mark.parametrize("arch", ["tiny:33-3-55-77", "nospace:33", "tiny:33-357-55", "{bad json"])
def test_bad_arch_exits_2(tmp_path, capsys, arch):
    out = tmp_path / "m.onnx"
    assert main(["export", "--arch", arch, "--out", str(out), "--exporter", "torchscript"]) == 2
    _error_line(capsys)
    assert not out.exists()


def test_export_from_supernet_checkpoint(tmp_path, capsys):
    from sgnas.supernet import UnifiedSupernet
    from sgnas.evaluation.checkpoint import SUPERNET_KIND, save_checkpoint

    space = get_space("tiny")
    supernet = UnifiedSupernet(space, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in supernet.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    ckpt = tmp_path / "supernet.pt"
    save_checkpoint(ckpt, {"space": space.name, "space_fingerprint": space.fingerprint,
                           "forced_sampling": True, "model": supernet.state_dict()}, SUPERNET_KIND)
    out = tmp_path / "m.onnx"
    assert main(["export", "--arch", ARCH, "--out", str(out), "--checkpoint", str(ckpt),
                 "--exporter", "torchscript"]) == 0
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    from sgnas.space import Architecture

    with torch.no_grad():
        want = supernet.eval()(torch.from_numpy(x), Architecture.parse(ARCH)).numpy()
    assert np.allclose(got, want, rtol=1e-4, atol=1e-5)

    other = tmp_path / "other.onnx"
    assert main(["export", "--arch", "imagenet:" + "-".join(["33"] * 19), "--out", str(other),
                 "--checkpoint", str(ckpt), "--exporter", "torchscript"]) == 2
    assert "space" in _error_line(capsys)
    assert not other.exists()
