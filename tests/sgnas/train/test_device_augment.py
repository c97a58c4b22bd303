"""Batched augmentation on the device (``DataConfig.device_augment``), checked on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgnas.errors import SgnasError
from sgnas.space import get_space
from sgnas.evaluation.data import (CIFAR_MEAN, CIFAR_STD, DataConfig, DeviceCifarAugment,
                              build_datasets, describe, loader_images_per_s)
from sgnas.evaluation.decoded import TensorCifarTrain, TensorNormalize
from sgnas.train.supernet import SupernetTrainConfig, SupernetTrainer
from sgnas.train.trainlog import read_jsonl


def _batch(n=16, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def _reference(img, top, left, flip, aug):
    """One image by hand: zero-pad, crop at (top, left), flip, normalize."""
    p, s = aug.pad, aug.size
    padded = torch.nn.functional.pad(img, (p, p, p, p))
    out = padded[:, top:top + s, left:left + s]
    if flip:
        out = out.flip(2)
    return TensorNormalize(CIFAR_MEAN, CIFAR_STD)(out)


def test_each_image_is_its_padded_crop_flipped_and_normalized():
    aug = DeviceCifarAugment(16, 2, CIFAR_MEAN, CIFAR_STD)
    x = _batch()
    draws = aug.draws(len(x), 16, 16, torch.Generator().manual_seed(1))
    out = aug.apply(x, draws)
    assert out.shape == (16, 3, 16, 16) and out.dtype == torch.float32
    for i in range(len(x)):
        top, left, flip = (int(v) for v in draws[i])
        assert torch.allclose(out[i], _reference(x[i], top, left, flip, aug), atol=1e-6)
    # no shift, no flip: exactly the evaluation normalization
    centre = torch.tensor([[2, 2, 0]]).repeat(len(x), 1)
    assert torch.allclose(aug.apply(x, centre), torch.stack([TensorNormalize(CIFAR_MEAN, CIFAR_STD)(i)
                                                             for i in x]), atol=1e-6)


def test_same_seed_same_batch_other_seed_other_batch():
    aug = DeviceCifarAugment(16, 2, CIFAR_MEAN, CIFAR_STD)
    x = _batch()
    assert torch.equal(aug(x, 7), aug(x, 7))
    assert not torch.equal(aug(x, 7), aug(x, 8))
    with pytest.raises(SgnasError, match="uint8"):
        aug(x.float(), 7)


def _placement(out: torch.Tensor, size: int = 8, pad: int = 2) -> tuple[int, int, int]:
    """(top, left, flip) of a crop of the coded image ``1 + 8 r + c`` read back from its pixels."""
    v = (out[0] * 255).round().long()
    i, j = (int(t) for t in (v > 0).nonzero()[0])
    row = v[i][v[i] > 0]
    flip = int(len(row) > 1 and bool(row[1] < row[0]))
    r, c = divmod(int(v[i, j]) - 1, size)
    col = (size - 1 - j) if flip else j
    return r + pad - i, c + pad - col, flip


def test_batched_outputs_follow_the_per_image_transform_distribution():
    """Crop offsets uniform over 0..2p in both axes and flips with probability 1/2, read back from
    the augmented images of the batched transform and of the per-image TensorCifarTrain."""
    img = (torch.arange(64, dtype=torch.int64).view(1, 8, 8) + 1).repeat(3, 1, 1).to(torch.uint8)
    n = 3000
    batched = DeviceCifarAugment(8, 2, (0, 0, 0), (1, 1, 1))(img[None].repeat(n, 1, 1, 1), 0)
    per_image = TensorCifarTrain(8, 2, (0, 0, 0), (1, 1, 1))
    torch.manual_seed(0)
    ours = np.array([_placement(o) for o in batched])
    ref = np.array([_placement(per_image(img)) for _ in range(n)])
    draws = DeviceCifarAugment(8, 2, (0, 0, 0), (1, 1, 1)).draws(n, 8, 8,
                                                                 torch.Generator().manual_seed(0))
    assert np.array_equal(ours, draws.numpy())  # the read-back is right
    for a in (ours, ref):
        for col in (0, 1):
            counts = np.bincount(a[:, col], minlength=5)
            assert len(counts) == 5 and ((counts - n / 5) ** 2 / (n / 5)).sum() < 25  # chi2, 4 dof
        assert abs(a[:, 2].mean() - 0.5) < 0.04


def test_datasets_serve_uint8_and_the_trainer_augments_on_the_device(image_folder, tmp_path):
    cfg = DataConfig(root=str(image_folder), batch_size=4, workers=0, held_out=4,
                     cache_dir=str(tmp_path / "cache"), device_augment=True)
    ds = build_datasets(cfg, get_space("tiny"))
    x, _ = ds.train[0]
    assert x.dtype == torch.uint8 and x.shape == (3, 16, 16)
    assert ds.held_out[0][0].dtype == torch.float32  # evaluation keeps its transform
    assert describe(ds)["augment_on"] == "device"
    assert loader_images_per_s(ds.train, 4, 2, warmup=1) > 0
    with pytest.raises(SgnasError, match="--cache-dir"):
        DataConfig(root=str(image_folder), device_augment=True)

    def run(out):
        t = SupernetTrainer(SupernetTrainConfig(space="tiny", epochs=1, paths_per_step=1,
                                                max_steps_per_epoch=2, log_every=1, progress=False),
                            cfg, out)
        t.run()
        return t

    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    from sgnas.train.supernet import state_hash
    assert state_hash(a.model) == state_hash(b.model)  # deterministic for a seed
    epoch = [r for r in read_jsonl(tmp_path / "a" / "train_log.jsonl") if r["event"] == "epoch"][0]
    assert epoch["augment_on"] == "device"
    for key in ("wait_s", "input_s", "step_s"):
        assert epoch[key] >= 0
    assert epoch["wait_s"] + epoch["input_s"] + epoch["step_s"] <= epoch["time_s"] + 1e-6
    assert epoch["step_images_per_s"] >= epoch["images_per_s"]


def test_resume_inside_an_epoch_with_device_augmentation_is_exact(image_folder, tmp_path):
    from sgnas.train.supernet import state_hash

    cfg = SupernetTrainConfig(space="tiny", epochs=2, paths_per_step=1, max_steps_per_epoch=3,
                              log_every=0, progress=False)
    data = DataConfig(root=str(image_folder), batch_size=4, workers=0, held_out=4,
                      cache_dir=str(tmp_path / "cache"), device_augment=True)
    straight = SupernetTrainer(cfg, data, tmp_path / "a")
    straight.run()

    class Interrupting(SupernetTrainer):
        def train_step(self, x, y):
            if self.global_step == 4:
                raise KeyboardInterrupt
            return super().train_step(x, y)

    with pytest.raises(KeyboardInterrupt):
        Interrupting(cfg, data, tmp_path / "b").run()
    resumed = SupernetTrainer(cfg, data, tmp_path / "b", resume=True)
    resumed.run()
    assert state_hash(resumed.model) == state_hash(straight.model)
