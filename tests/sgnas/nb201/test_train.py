"""NB201 supernet training through the shared SPOS trainer; the class-balanced split and the
decoded-image cache of the data pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgnas.cli.main import main
from sgnas.nb201.supernet import NB201Supernet
from sgnas.evaluation.checkpoint import load_supernet
from sgnas.evaluation.data import DataConfig, build_datasets, split_indices
from sgnas.space import get_space

TRAIN = ["train-supernet", "--space", "nb201", "--epochs", "2", "--batch-size", "4",
         "--max-steps-per-epoch", "2", "--paths-per-step", "1", "--held-out", "8",
         "--balanced-split", "--workers", "0", "--no-progress", "--label-smoothing", "0"]


@pytest.fixture(scope="module")
def folder32(tmp_path_factory):
    from tests.conftest import make_image_folder

    return make_image_folder(tmp_path_factory.mktemp("img") / "data", train_per_class=8,
                             test_per_class=2, size=32)


def test_balanced_split():
    labels = np.repeat(np.arange(10), 5000)
    train, held = split_indices(len(labels), 25000, seed=0, labels=labels)
    assert len(held) == 25000 and len(train) == 25000
    assert np.all(np.bincount(labels[held]) == 2500)
    assert not set(train) & set(held)
    train2, held2 = split_indices(len(labels), 25000, seed=0, labels=labels)
    assert np.array_equal(held, held2)
    # uneven classes: shares by largest remainder, total exact
    labels = np.array([0] * 7 + [1] * 3)
    _, held = split_indices(10, 5, seed=1, labels=labels)
    assert np.bincount(labels[held]).tolist() == [4, 1]


def test_decoded_cache_matches_pil_pipeline(folder32, tmp_path):
    space = get_space("nb201")
    plain = build_datasets(DataConfig(root=str(folder32), held_out=8, balanced=True), space)
    cached = build_datasets(DataConfig(root=str(folder32), held_out=8, balanced=True,
                                       cache_dir=str(tmp_path / "cache")), space)
    assert list((tmp_path / "cache").iterdir())  # decoded once, stored
    assert plain.held_out.indices == cached.held_out.indices
    x0, y0 = plain.held_out[0]
    x1, y1 = cached.held_out[0]
    assert y0 == y1
    torch.testing.assert_close(x0, x1)
    xt, _ = cached.train[0]
    assert xt.shape == (3, 32, 32) and xt.dtype == torch.float32
    again = build_datasets(DataConfig(root=str(folder32), held_out=8, balanced=True,
                                      cache_dir=str(tmp_path / "cache")), space)
    torch.testing.assert_close(again.test[3][0], cached.test[3][0])


def test_train_resume_and_load(folder32, tmp_path, capsys):
    out = tmp_path / "run"
    args = [*TRAIN, "--data", str(folder32), "--out", str(out),
            "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    ckpt = out / "supernet.pt"
    data = torch.load(ckpt, weights_only=True)
    assert data["space"] == "nb201" and data["global_step"] == 4 and data["data"]["balanced"]
    model, meta = load_supernet(ckpt)
    assert isinstance(model, NB201Supernet) and meta["space"] == "nb201"
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32), (3,) * 6).shape == (1, 10)
    # resuming with another split balance is refused
    capsys.readouterr()
    assert main([a for a in args if a != "--balanced-split"] + ["--resume"]) == 2
    assert "balanced" in capsys.readouterr().err
