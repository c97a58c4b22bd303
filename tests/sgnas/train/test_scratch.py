import json

import numpy as np
import pytest
import torch

from sgnas.errors import SgnasError
from sgnas.space import get_space
from sgnas.evaluation.data import DataConfig
from sgnas.train.recipes import cifar_recipe, imagenet_recipe
from sgnas.train.scratch import (
    ScratchTrainer,
    cutout,
    load_trained,
    make_optimizer,
    train_from_scratch,
)


@pytest.fixture
def data_cfg(image_folder):
    return DataConfig(root=str(image_folder), workers=0)


@pytest.fixture
def space():
    return get_space("tiny")


@pytest.fixture
def arch(space):
    return space.sample(np.random.default_rng(0))


RECIPE = cifar_recipe().override(epochs=2, batch_size=2, warmup_epochs=0.5)
OPTS = dict(progress=False, max_steps_per_epoch=2, device="cpu")


def test_trains_logs_and_checkpoints(tmp_path, space, arch, data_cfg):
    out = tmp_path / "run"
    result = train_from_scratch(space, arch, RECIPE.override(epochs=1), data_cfg, out, **OPTS)
    assert result.finished and result.epochs == 1
    assert 0.0 <= result.test_top1 <= 1.0
    assert result.params > 0 and result.flops > 0
    for name in ("last.pt", "model.pt", "train_log.jsonl", "run.json"):
        assert (out / name).is_file()
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["kind"] == "sgnas-scratch" and ckpt["epoch"] == 1 and ckpt["global_step"] == 2
    events = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["start", "epoch"]
    assert events[1]["test_top1"] == pytest.approx(result.test_top1)
    net, meta = load_trained(out / "model.pt")
    assert meta["arch_str"] == str(arch)
    assert net(torch.zeros(1, 3, 16, 16)).shape == (1, space.num_classes)


@pytest.mark.parametrize(
    "recipe",
    [RECIPE, imagenet_recipe().override(epochs=2, batch_size=2, warmup_epochs=1.0, cutout=4,
                                        ema_decay=0.9, augment="cifar")],
    ids=["cifar", "imagenet-ema-cutout"],
)
def test_resume_is_exact(tmp_path, space, arch, data_cfg, recipe):
    straight = train_from_scratch(space, arch, recipe, data_cfg, tmp_path / "a", **OPTS)
    first = train_from_scratch(space, arch, recipe, data_cfg, tmp_path / "b", stop_after=1, **OPTS)
    assert not first.finished and not (tmp_path / "b" / "model.pt").exists()
    resumed = train_from_scratch(space, arch, recipe, data_cfg, tmp_path / "b", resume=True,
                                 **OPTS)
    assert resumed.finished and resumed.epochs == straight.epochs == 2
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for key in ("model", "ema"):
        if a[key] is None:
            assert b[key] is None
            continue
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), (key, name)
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert a["history"][1]["test_top1"] == b["history"][1]["test_top1"]


def test_existing_output_is_refused_and_untouched(tmp_path, space, arch, data_cfg):
    out = tmp_path / "run"
    train_from_scratch(space, arch, RECIPE.override(epochs=1), data_cfg, out, **OPTS)
    before = (out / "last.pt").read_bytes()
    with pytest.raises(SgnasError, match="--resume"):
        train_from_scratch(space, arch, RECIPE, data_cfg, out, **OPTS)
    assert (out / "last.pt").read_bytes() == before
    other = space.sample(np.random.default_rng(1))
    with pytest.raises(SgnasError, match="cannot resume"):
        train_from_scratch(space, other, RECIPE, data_cfg, out, resume=True, **OPTS)
    with pytest.raises(SgnasError, match="recipe lr"):
        train_from_scratch(space, arch, RECIPE.override(lr=0.5), data_cfg, out, resume=True,
                           **OPTS)
    with pytest.raises(SgnasError, match="nothing to resume"):
        train_from_scratch(space, arch, RECIPE, data_cfg, tmp_path / "empty", resume=True, **OPTS)


def test_force_starts_over(tmp_path, space, arch, data_cfg):
    out = tmp_path / "run"
    train_from_scratch(space, arch, RECIPE.override(epochs=1), data_cfg, out, **OPTS)
    result = train_from_scratch(space, arch, RECIPE, data_cfg, out, force=True, stop_after=1,
                                **OPTS)
    assert result.epochs == 1 and not result.finished
    assert not (out / "model.pt").exists()  # the old run's final model is gone


def test_batch_larger_than_data_is_an_error(tmp_path, space, arch, data_cfg):
    with pytest.raises(SgnasError, match="no full batch"):
        ScratchTrainer(space, arch, RECIPE.override(batch_size=256), data_cfg, tmp_path / "x",
                       progress=False)


def test_cutout_zeroes_one_square_per_image():
    torch.manual_seed(0)
    x = torch.ones(8, 3, 16, 16)
    y = cutout(x, 4)
    zeros = (y[:, 0] == 0).sum(dim=(1, 2))
    assert torch.all(zeros <= 16) and torch.all(zeros >= 4)  # 4x4 square, clipped at the border
    assert torch.equal((y == 0).all(dim=1), (y[:, 0] == 0))  # same square in every channel


def test_optimizers_follow_recipe(space, arch):
    from sgnas.network import build_network

    net = build_network(space, arch)
    sgd = make_optimizer(net, cifar_recipe())
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"]
    assert sgd.param_groups[0]["weight_decay"] == 5e-4 and sgd.param_groups[1]["weight_decay"] == 0
    rms = make_optimizer(net, imagenet_recipe())
    assert isinstance(rms, torch.optim.RMSprop)
    assert rms.defaults["alpha"] == 0.9 and rms.defaults["momentum"] == 0.9
    assert rms.defaults["eps"] == pytest.approx(1e-3 ** 0.5)


def test_force_with_bad_data_keeps_the_old_run(tmp_path, space, arch, data_cfg):
    out = tmp_path / "run"
    train_from_scratch(space, arch, RECIPE.override(epochs=1), data_cfg, out, **OPTS)
    bad = DataConfig(root=str(tmp_path / "missing"), workers=0)
    with pytest.raises(SgnasError, match="not found"):
        train_from_scratch(space, arch, RECIPE, bad, out, force=True, **OPTS)
    assert (out / "last.pt").exists() and (out / "model.pt").exists()
