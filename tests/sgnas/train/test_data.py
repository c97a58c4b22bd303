from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from sgnas.errors import SgnasError
from sgnas.space import get_space
from sgnas.evaluation.data import (
    DataConfig,
    SkipSampler,
    batches_per_epoch,
    build_datasets,
    calibration_loader,
    check_image_folder,
    detect_format,
    split_indices,
    supernet_data_config,
    train_loader,
)


def _cfg(root, **kw):
    return DataConfig(root=str(root), batch_size=2, workers=0, held_out=4, **kw)


def test_build_datasets_splits_and_shapes(image_folder):
    ds = build_datasets(_cfg(image_folder), get_space("tiny"))
    assert ds.classes == ["cat", "dog"]
    assert (len(ds.train), len(ds.held_out), len(ds.test)) == (20, 4, 8)
    assert ds.style == "cifar" and ds.image_size == 16
    x, y = ds.train[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y in (0, 1)
    # held-out (eval transforms) is deterministic, its augmented twin is not the same object
    a, _ = ds.held_out[0]
    b, _ = ds.held_out[0]
    assert torch.equal(a, b)
    assert ds.held_out.indices == ds.held_out_augmented.indices
    assert ds.held_out.dataset.transform is not ds.held_out_augmented.dataset.transform


def test_split_is_deterministic_disjoint_and_complete():
    tr, ho = split_indices(100, 0.1, seed=3)
    tr2, ho2 = split_indices(100, 0.1, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(ho, ho2)
    assert len(ho) == 10 and len(tr) == 90
    assert not set(tr) & set(ho)
    assert sorted(set(tr) | set(ho)) == list(range(100))
    _, ho3 = split_indices(100, 0.1, seed=4)
    assert not np.array_equal(ho, ho3)
    assert len(split_indices(100, 25, seed=0)[1]) == 25
    assert len(split_indices(100, 0, seed=0)[1]) == 0


def test_split_rejects_bad_sizes():
    with pytest.raises(SgnasError, match="leaves no training images"):
        split_indices(10, 10, seed=0)
    with pytest.raises(SgnasError, match="whole number"):
        split_indices(10, 2.5, seed=0)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda r: shutil.rmtree(r), "data folder not found"),
        (lambda r: shutil.rmtree(r / "train"), "no train/ split"),
        (lambda r: shutil.rmtree(r / "test"), "no test/ or val/ split"),
        (lambda r: [shutil.rmtree(p) for p in (r / "train").iterdir()], "has no class folders"),
        (lambda r: shutil.rmtree(r / "test" / "dog"), "different class folders"),
        (lambda r: [p.unlink() for p in (r / "train" / "dog").iterdir()],
         "class folders without images: dog"),
    ],
)
def test_folder_validation_errors_name_the_path(make_images, damage, message):
    root = make_images(train_per_class=2, test_per_class=1)
    damage(root)
    with pytest.raises(SgnasError, match=message) as info:
        build_datasets(_cfg(root), get_space("tiny"))
    text = str(info.value)
    assert "\n" not in text and str(root) in text


def test_val_split_is_accepted(make_images):
    root = make_images(train_per_class=2, test_per_class=1)
    (root / "test").rename(root / "val")
    train, test = check_image_folder(root)
    assert test.name == "val" and train.name == "train"


def test_too_many_classes_for_the_space(make_images):
    root = make_images(classes=tuple(f"c{i}" for i in range(11)), train_per_class=1,
                       test_per_class=1)
    with pytest.raises(SgnasError, match="11 classes"):
        build_datasets(_cfg(root, ), get_space("tiny"))


def test_missing_cifar10_pickles(tmp_path):
    (tmp_path / "c").mkdir()
    assert detect_format(tmp_path / "c") == "imagefolder"
    with pytest.raises(SgnasError, match="CIFAR-10 not found"):
        build_datasets(DataConfig(root=str(tmp_path / "c"), format="cifar10"), get_space("cifar10"))


def test_config_validation():
    with pytest.raises(SgnasError, match="unknown data format"):
        DataConfig(root=".", format="lmdb")
    with pytest.raises(SgnasError, match="batch size"):
        DataConfig(root=".", batch_size=0)


def test_train_loader_order_depends_on_epoch_and_skips(image_folder):
    ds = build_datasets(_cfg(image_folder), get_space("tiny"))

    def order(epoch, start=0):
        loader = train_loader(ds.train, 2, seed=0, epoch=epoch, start_batch=start)
        return list(iter(loader.sampler))

    full = order(0)
    assert full == order(0)
    assert full != order(1)
    assert order(0, start=3) == full[6:]
    assert sorted(full) == list(range(20))
    assert batches_per_epoch(ds.train, 2) == 10 == len(train_loader(ds.train, 2, seed=0))
    assert len(SkipSampler(range(10), 4)) == 6


def test_calibration_loader_is_a_fixed_subset(image_folder):
    ds = build_datasets(_cfg(image_folder), get_space("tiny"))
    a = calibration_loader(ds.train, 2, 3, seed=1)
    b = calibration_loader(ds.train, 2, 3, seed=1)
    assert a.dataset.indices == b.dataset.indices and len(a.dataset) == 6
    assert len(a) == 3


def test_supernet_data_config_reproduces_the_trained_split():
    meta = {"data": {"image_size": 24, "style": "cifar", "held_out": 6, "seed": 3, "batch_size": 9}}
    cfg = supernet_data_config(meta, "root", batch_size=4, workers=0)
    assert (cfg.root, cfg.image_size, cfg.style, cfg.held_out, cfg.seed) == ("root", 24, "cifar", 6, 3)
    assert (cfg.batch_size, cfg.workers, cfg.download) == (4, 0, False)
    over = supernet_data_config(meta, "root", held_out=0.2, seed=0, download=True)
    assert (over.held_out, over.seed, over.download) == (0.2, 0, True)
    bare = supernet_data_config({"data": None}, "root")
    assert (bare.image_size, bare.style, bare.held_out, bare.seed) == (None, "auto", 0.1, 0)
