import json
from pathlib import Path

import numpy as np
import pytest

from sgnas.cli.main import main, profile_main
from profiler.pipeline import default_out
from sgnas.lut import EntryStats, Lut, load_lut, save_lut
from sgnas.space import get_space


def test_default_out_is_the_per_user_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SGNAS_HOME", str(tmp_path / "home"))
    assert default_out("cpu", "imagenet") == tmp_path / "home" / "lut" / "cpu.json"
    assert default_out("v100", "tiny") == tmp_path / "home" / "lut" / "v100-tiny.json"
    monkeypatch.delenv("SGNAS_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_out("cpu", "cifar10") == tmp_path / "xdg" / "sgnas" / "lut" / "cpu-cifar10.json"


def test_unknown_device_lists_known(capsys):
    assert profile_main(["--device", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown device 'nope'") and "cpu" in err and "v100" in err
    assert len(err.strip().splitlines()) == 1


def test_gpu_device_on_cpu_host(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a GPU")
    out = tmp_path / "v100.json"
    assert main(["profile", "--device", "v100", "--space", "tiny", "--out", str(out)]) == 2
    assert "needs an NVIDIA GPU" in capsys.readouterr().err
    assert not out.exists()


def test_build_limit_json_and_refuse_existing(capsys, tmp_path, quick):
    out = tmp_path / "lut.json"
    args = ["--device", str(quick), "--space", "tiny", "--out", str(out), "--limit", "3", "--json"]
    assert profile_main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["entries"] == 3 and result["complete"] is False and result["device"] == "quick"
    before = out.read_bytes()
    assert profile_main(args) == 2
    assert "exists; use --resume to continue or --force to overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert profile_main(args[:-3] + ["--limit", "5", "--resume", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 5
    assert load_lut(out, allow_incomplete=True).entries.keys() >= set(get_space("tiny").all_keys()[:5])


def synthetic_lut(path: Path, device_name: str) -> Lut:
    from profiler.build import new_lut
    from profiler.devices import load_device

    space = get_space("tiny")
    lut = new_lut(load_device(device_name), space, {})
    lut.entries = {k: EntryStats(0.01, 0.01, 0.01, 5, 0.0) for k in space.all_keys()}
    lut.complete = True
    save_lut(lut, path)
    return lut


def test_validate_writes_calibration_and_plot(capsys, tmp_path, quick):
    lut_path = tmp_path / "quick-tiny.json"
    synthetic_lut(lut_path, str(quick))
    args = ["--device", str(quick), "--space", "tiny", "--validate", "4", "--lut", str(lut_path),
            "--json"]
    assert profile_main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 4 and report["lut"] == str(lut_path)
    assert Path(report["plot_path"]) == tmp_path / "quick-tiny.fidelity.png"
    assert (tmp_path / "quick-tiny.fidelity.png").exists()
    cal = load_lut(lut_path).calibration
    assert cal is not None and cal.slope == pytest.approx(report["calibration"]["slope"])


def test_validate_missing_or_other_device_lut(capsys, tmp_path, quick):
    missing = tmp_path / "none.json"
    assert profile_main(["--device", str(quick), "--space", "tiny", "--validate", "4",
                         "--lut", str(missing)]) == 2
    assert "LUT file not found" in capsys.readouterr().err
    other = tmp_path / "cpu-tiny.json"
    synthetic_lut(other, "cpu")
    assert profile_main(["--device", str(quick), "--space", "tiny", "--validate", "4",
                         "--lut", str(other)]) == 2
    assert "measured on device 'cpu', not 'quick'" in capsys.readouterr().err
    assert load_lut(other).calibration is None


def test_validate_count_too_small_is_refused_before_measuring(capsys, tmp_path, quick):
    out = tmp_path / "lut.json"
    assert profile_main(["--device", str(quick), "--space", "tiny", "--out", str(out),
                         "--validate", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --validate 3 is too small for a held-out split: it needs at least 4 "
                   "networks (2 to fit, 2 to test)"]
    assert not out.exists()
    assert profile_main(["--device", str(quick), "--space", "tiny", "--out", str(out),
                         "--validate", "8", "--no-validate"]) == 2
    assert "--no-validate cannot be combined" in capsys.readouterr().err
    assert not out.exists()


def test_resume_says_what_it_kept(capsys, tmp_path, quick):
    out = tmp_path / "lut.json"
    base = ["--device", str(quick), "--space", "tiny", "--out", str(out), "--json"]
    assert profile_main(base + ["--limit", "2"]) == 0
    capsys.readouterr()
    assert profile_main(base + ["--limit", "5", "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"resuming {out}: kept 2 measured entries, 3 remain" in err


@pytest.mark.slow
def test_default_profile_is_calibrated_and_no_validate_warns(capsys, tmp_path, quick):
    from sgnas.cli.main import main as sgnas_main

    out = tmp_path / "lut.json"
    assert profile_main(["--device", str(quick), "--space", "tiny", "--out", str(out),
                         "--validate", "6", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["calibrated"] and result["complete"] and result["normalized"]
    assert set(result["fidelity"]["thirds"]) == {"bottom", "middle", "top"}
    lut = load_lut(out)
    metrics = lut.calibration.metrics
    assert metrics["selection"] == "spread" and metrics["normalized"] is True
    assert len(metrics["networks"]) == 6 and sum(n[3] for n in metrics["networks"]) == 3
    arch = "tiny:" + "-".join(["3557"] * 4)
    assert sgnas_main(["cost", "--arch", arch, "--lut", str(out), "--json"]) == 0
    assert capsys.readouterr().err == ""
    # entries only: the LUT says it is uncalibrated, and cost warns in one line
    assert profile_main(["--device", str(quick), "--space", "tiny", "--out", str(out), "--force",
                         "--no-validate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["calibrated"] is False
    lut = load_lut(out)
    assert lut.calibration is None and lut.build["calibrated"] is False
    assert sgnas_main(["cost", "--arch", arch, "--lut", str(out), "--json"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "uncalibrated" in err[0]
