import json

import numpy as np
import pytest

from sgnas.cli.main import main
from sgnas.lut import Calibration, EntryStats, Lut, save_lut
from sgnas.network import count_macs, num_params
from sgnas.space import get_space

SPACE = get_space("tiny")


@pytest.fixture
def arch_file(tmp_path):
    arch = SPACE.sample(np.random.default_rng(0))
    path = tmp_path / "arch.json"
    path.write_text(arch.to_json())
    return arch, path


@pytest.fixture
def lut_file(tmp_path):
    entries = {k: EntryStats(0.5, 0.5, 0.5, 5, 0.0) for k in SPACE.all_keys()}
    lut = Lut(SPACE.name, SPACE.fingerprint, {"name": "cpu"}, entries, complete=True)
    path = tmp_path / "lut.json"
    save_lut(lut, path)
    return lut, path


def test_cost_json_with_lut(capsys, arch_file, lut_file):
    arch, path = arch_file
    lut, lut_path = lut_file
    assert main(["cost", "--arch", str(path), "--lut", str(lut_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["flops"] == count_macs(SPACE, arch) and out["params"] == num_params(SPACE, arch)
    assert out["latency_ms_raw"] == pytest.approx(0.5 * (SPACE.num_layers + 2))
    assert out["latency_ms_calibrated"] is None and out["device"] == "cpu"

    lut.calibration = Calibration(2.0, 1.0)
    save_lut(lut, lut_path)
    assert main(["cost", "--arch", str(arch), "--lut", str(lut_path)]) == 0
    text = capsys.readouterr().out
    assert "3.000 ms LUT sum" in text and "7.000 ms calibrated" in text and "FLOPs" in text


def test_cost_without_lut_and_with_se(capsys, arch_file):
    arch, path = arch_file
    assert main(["cost", "--arch", str(path), "--se", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["flops"] == count_macs(SPACE, arch, se=True) > count_macs(SPACE, arch)
    assert "latency_ms_raw" not in out


@pytest.mark.parametrize(
    "arch_arg, lut_text, message",
    [
        ("tiny:33-33", None, "has 2 layers"),
        ("missing.json", None, "architecture file not found"),
        (None, "{truncated", "corrupt or truncated"),
    ],
)
def test_cost_bad_input_exit_2(capsys, tmp_path, arch_file, arch_arg, lut_text, message):
    args = ["cost", "--arch", arch_arg or str(arch_file[1])]
    if lut_text is not None:
        (tmp_path / "bad.json").write_text(lut_text)
        args += ["--lut", str(tmp_path / "bad.json")]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_cost_se_with_lut_refused(capsys, arch_file, lut_file):
    assert main(["cost", "--arch", str(arch_file[1]), "--lut", str(lut_file[1]), "--se"]) == 2
    assert "without squeeze-and-excitation" in capsys.readouterr().err
