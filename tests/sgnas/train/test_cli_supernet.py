"""``sgnas train-supernet`` and ``sgnas evaluate`` on the tiny space and a tiny image folder."""

from __future__ import annotations

import json

import pytest
import torch

from sgnas.cli.main import main
from sgnas.space import get_space

TRAIN = ["train-supernet", "--space", "tiny", "--epochs", "1", "--batch-size", "2",
         "--max-steps-per-epoch", "2", "--paths-per-step", "2", "--held-out", "4",
         "--workers", "0", "--no-progress"]


def test_bad_data_folder_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    code = main([*TRAIN, "--data", str(tmp_path / "nowhere"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: data folder not found") and "\n" not in err
    assert str(tmp_path / "nowhere") in err
    assert not out.exists()


def test_train_then_evaluate(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--data", str(image_folder), "--out", str(out)]) == 0
    ckpt = out / "supernet.pt"
    assert capsys.readouterr().out.strip() == str(ckpt)
    assert torch.load(ckpt, weights_only=True)["global_step"] == 2
    assert (out / "train_log.jsonl").exists()

    # a second start over the finished run is refused and changes nothing
    before = ckpt.read_bytes()
    assert main([*TRAIN, "--data", str(image_folder), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert ckpt.read_bytes() == before

    code = main(["evaluate", "--supernet", str(ckpt), "--data", str(image_folder), "--random", "2",
                 "--calib-batches", "1", "--batch-size", "4", "--workers", "0", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["results"]) == 2 and report["summary"]["n"] == 2
    assert all(0 <= r["top1"] <= 1 for r in report["results"])
    assert report["images"] == 8  # the whole test split: 2 classes x 4 images

    # --max-batches scores a fixed random subset of max-batches x batch-size images
    code = main(["evaluate", "--supernet", str(ckpt), "--data", str(image_folder), "--random", "1",
                 "--calib-batches", "1", "--batch-size", "2", "--max-batches", "2", "--workers", "0",
                 "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["images"] == 4

    arch = str(get_space("tiny").sample(__import__("numpy").random.default_rng(0)))
    code = main(["evaluate", "--supernet", str(ckpt), "--data", str(image_folder), "--arch", arch,
                 "--calib-batches", "1", "--batch-size", "4", "--workers", "0"])
    text = capsys.readouterr().out
    assert code == 0 and arch in text and "mean" in text

    code = main(["evaluate", "--supernet", str(ckpt), "--data", str(image_folder), "--arch",
                 "cifar10:" + "-".join(["33"] * 19), "--workers", "0"])
    assert code == 2 and "space" in capsys.readouterr().err


def test_evaluate_missing_checkpoint(image_folder, tmp_path, capsys):
    code = main(["evaluate", "--supernet", str(tmp_path / "x.pt"), "--data", str(image_folder),
                 "--random", "1"])
    assert code == 2 and "checkpoint not found" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "2.5", "abc"])
def test_bad_held_out(value, tmp_path):
    with pytest.raises(SystemExit) as info:
        main([*TRAIN[:-1], "--held-out", value, "--data", str(tmp_path), "--out", str(tmp_path)])
    assert info.value.code == 2


def test_gpu_augment_needs_the_cache_and_trains_with_it(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = main([*TRAIN, "--data", str(image_folder), "--out", str(out), "--gpu-augment"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "--cache-dir" in err and "\n" not in err
    assert not out.exists()
    code = main([*TRAIN, "--data", str(image_folder), "--out", str(out), "--gpu-augment",
                 "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"])
    assert code == 0
    log = [json.loads(x) for x in (out / "train_log.jsonl").open()]
    assert [r["augment_on"] for r in log if r["event"] == "epoch"] == ["device"]
