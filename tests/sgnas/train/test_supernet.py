from __future__ import annotations

import numpy as np
import pytest
import torch

from sgnas.errors import SgnasError
from sgnas.space import get_space
from sgnas.evaluation.checkpoint import SUPERNET_KIND, load_supernet
from sgnas.evaluation.data import DataConfig
from sgnas.train.supernet import (
    SupernetTrainConfig,
    SupernetTrainer,
    build_supernet,
    cosine_lr,
    state_hash,
    train_supernet,
)
from sgnas.train.trainlog import read_jsonl


def _cfgs(root, **kw):
    settings = dict(space="tiny", epochs=2, paths_per_step=2, max_steps_per_epoch=3, log_every=2,
                    progress=False)
    cfg = SupernetTrainConfig(**{**settings, **kw})
    return cfg, DataConfig(root=str(root), batch_size=2, workers=0, held_out=4)


@pytest.fixture(scope="module")
def straight(image_folder, tmp_path_factory):
    """A 2-epoch run without interruption: (checkpoint path, hash of the final model)."""
    out = tmp_path_factory.mktemp("straight")
    trainer = SupernetTrainer(*_cfgs(image_folder), out)
    path = trainer.run()
    return path, state_hash(trainer.model)


def test_run_writes_a_weights_only_checkpoint_and_a_log(straight):
    path, _ = straight
    assert path.name == "supernet.pt" and not (path.parent / "last.pt").exists()
    data = torch.load(path, weights_only=True)
    assert data["kind"] == SUPERNET_KIND
    assert data["finished"] and data["epoch"] == 2 and data["global_step"] == 6
    assert data["space"] == "tiny" and data["space_fingerprint"] == get_space("tiny").fingerprint
    assert data["config"]["paths_per_step"] == 2 and data["config"]["lr"] > 0
    assert data["dataset"]["held_out"] == 4
    model, meta = load_supernet(path)
    arch = get_space("tiny").sample(np.random.default_rng(0))
    assert model(torch.zeros(1, 3, 16, 16), arch).shape == (1, 10)
    assert meta["forced_sampling"] is True
    log = read_jsonl(path.parent / "train_log.jsonl")
    events = [r["event"] for r in log]
    assert events[0] == "start" and events.count("epoch") == 2
    steps = [r for r in log if r["event"] == "step"]
    assert steps and all(np.isfinite(r["loss"]) and r["images_per_s"] > 0 for r in steps)


def test_resume_after_an_epoch_is_exact(straight, image_folder, tmp_path):
    _, expected = straight
    cfg, data = _cfgs(image_folder)
    first = train_supernet(cfg, data, tmp_path, stop_after=1)
    assert first.name == "last.pt"
    assert torch.load(first, weights_only=True)["epoch"] == 1
    trainer = SupernetTrainer(cfg, data, tmp_path, resume=True)
    assert trainer.run().name == "supernet.pt"
    assert state_hash(trainer.model) == expected
    starts = [r for r in read_jsonl(tmp_path / "train_log.jsonl") if r["event"] == "start"]
    assert [r["resumed_at_epoch"] for r in starts] == [0, 1]


class _Interrupting(SupernetTrainer):
    at_step = 4

    def train_step(self, x, y):
        if self.global_step == self.at_step:
            self.space.sample_choices(self.path_rng)  # a half-done step consumed randomness
            raise KeyboardInterrupt
        return super().train_step(x, y)


def test_interrupt_inside_an_epoch_saves_and_resumes_exactly(straight, image_folder, tmp_path):
    _, expected = straight
    cfg, data = _cfgs(image_folder)
    with pytest.raises(KeyboardInterrupt):
        _Interrupting(cfg, data, tmp_path).run()
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert saved["interrupted"] and saved["epoch"] == 1 and saved["batch_in_epoch"] == 1
    assert saved["global_step"] == 4
    trainer = SupernetTrainer(cfg, data, tmp_path, resume=True)
    trainer.run()
    assert state_hash(trainer.model) == expected


def test_existing_checkpoint_needs_resume_or_force(straight, image_folder):
    path, _ = straight
    before = path.read_bytes()
    cfg, data = _cfgs(image_folder)
    with pytest.raises(SgnasError, match="--resume .* --force"):
        SupernetTrainer(cfg, data, path.parent)
    assert path.read_bytes() == before
    # resuming a finished run changes nothing
    assert train_supernet(cfg, data, path.parent, resume=True) == path
    assert path.read_bytes() == before
    with pytest.raises(SgnasError, match="epochs was 2, now 3"):
        SupernetTrainer(_cfgs(image_folder, epochs=3)[0], data, path.parent, resume=True)


def test_resume_without_checkpoint(image_folder, tmp_path):
    with pytest.raises(SgnasError, match="nothing to resume"):
        SupernetTrainer(*_cfgs(image_folder), tmp_path, resume=True)
    assert not any(tmp_path.iterdir())


def test_unsampled_weights_stay_untouched(image_folder, tmp_path):
    cfg, data = _cfgs(image_folder, epochs=1, max_steps_per_epoch=1, paths_per_step=1)
    trainer = SupernetTrainer(cfg, data, tmp_path)
    init = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    # the path the step will draw
    choices = get_space("tiny").sample_choices(np.random.default_rng(cfg.seed))
    trainer.run()
    after = trainer.model.state_dict()
    for layer, row in enumerate(choices):
        for sub, choice in enumerate(row):
            for kernel_pos in range(3):
                name = f"layers.{layer}.dw.{sub}.{kernel_pos}.conv.weight"
                untouched = torch.equal(init[name], after[name])
                assert untouched == (int(choice) != kernel_pos), name
    assert not torch.equal(init["stem.conv.conv.weight"], after["stem.conv.conv.weight"])


def test_model_init_depends_on_seed_only():
    space = get_space("tiny")
    a, b, c = build_supernet(space, True, 1), build_supernet(space, True, 1), build_supernet(space, True, 2)
    assert state_hash(a) == state_hash(b) != state_hash(c)


def test_cosine_schedule():
    assert cosine_lr(0, 100, 0.1) == pytest.approx(0.1)
    assert cosine_lr(50, 100, 0.1) == pytest.approx(0.05)
    assert cosine_lr(100, 100, 0.1) == pytest.approx(0.0)
    assert cosine_lr(0, 100, 0.1, warmup_steps=10) == pytest.approx(0.01)
    assert cosine_lr(10, 100, 0.1, warmup_steps=10) == pytest.approx(0.1)


def test_default_lr_scales_with_batch():
    cfg = SupernetTrainConfig(space="cifar10")
    assert cfg.resolved(get_space("cifar10"), 256).lr == pytest.approx(0.2)
    assert cfg.resolved(get_space("imagenet"), 512).lr == pytest.approx(0.09)
    assert cfg.resolved(get_space("imagenet"), 512).weight_decay == pytest.approx(4e-5)
    with pytest.raises(SgnasError):
        SupernetTrainConfig(paths_per_step=0)


def test_gradient_clipping_bounds_the_update(image_folder, tmp_path, monkeypatch):
    norms = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        norms.append(max_norm)
        return real(params, max_norm, *a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    cfg, data = _cfgs(image_folder, epochs=1, max_steps_per_epoch=2, grad_clip=0.5)
    trainer = SupernetTrainer(cfg, data, tmp_path)
    trainer.run()
    assert norms == [0.5, 0.5]
    assert torch.load(tmp_path / "supernet.pt", weights_only=True)["config"]["grad_clip"] == 0.5
