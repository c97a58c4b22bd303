"""``sgnas train`` end to end on the tiny space."""

from __future__ import annotations

import json

import pytest
import torch

from sgnas.cli.main import main

ARCH = "tiny:33-357-5577-777777"
FAST = ["--epochs", "1", "--batch-size", "2", "--max-steps-per-epoch", "2", "--eval-batches", "1",
        "--workers", "0", "--device", "cpu", "--no-progress"]


def test_train_then_refuse_then_resume(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(json.dumps({"space": "tiny", "layers": [[3, 3], [3, 5, 7], [5, 5, 7, 7],
                                                                 [7] * 6]}))
    code = main(["train", "--arch", str(arch_file), "--data", str(image_folder), "--out", str(out),
                 "--recipe", "cifar", "--json", *FAST])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["arch"] == ARCH and result["finished"] and result["epochs"] == 1
    before = (out / "last.pt").read_bytes()

    code = main(["train", "--arch", ARCH, "--data", str(image_folder), "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and "--resume" in err and len(err.splitlines()) == 1
    assert (out / "last.pt").read_bytes() == before

    fast2 = [a if a != "1" else "2" for a in FAST]  # --epochs 2
    code = main(["train", "--arch", ARCH, "--data", str(image_folder), "--out", str(out),
                 "--recipe", "cifar", "--resume", *fast2])
    assert code == 0
    assert "epochs:       2 (finished)" in capsys.readouterr().out
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2


def test_hswish_se_and_recipe_file(image_folder, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("base: imagenet\nema_decay: 0.9\n")
    out = tmp_path / "run"
    code = main(["train", "--arch", ARCH, "--data", str(image_folder), "--out", str(out),
                 "--recipe", str(recipe), "--se", "--hswish", "--lr", "0.01", *FAST])
    assert code == 0
    assert "EMA top-1" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    assert run["se"] and run["activation"] == "hswish"
    assert run["recipe"]["optimizer"] == "rmsprop" and run["recipe"]["ema_decay"] == 0.9
    assert run["recipe"]["lr"] == 0.01 and run["recipe"]["lr_batch"] == 2


@pytest.mark.parametrize(
    "arch, match",
    [("tiny:33-357", "has 4"), ("tiny:33-357-5577-99", "kernel 9"), ("nowhere.json", "not found"),
     ("mars:33", "unknown search space")],
)
def test_bad_arch_is_one_line_exit_2(image_folder, tmp_path, capsys, arch, match):
    code = main(["train", "--arch", arch, "--data", str(image_folder), "--out",
                 str(tmp_path / "x"), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and match in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_unknown_recipe(image_folder, tmp_path, capsys):
    code = main(["train", "--arch", ARCH, "--data", str(image_folder), "--out", str(tmp_path / "x"),
                 "--recipe", "mnist", *FAST])
    assert code == 2 and "unknown recipe" in capsys.readouterr().err
