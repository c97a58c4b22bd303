"""Shared fixtures: a tiny ImageFolder tree of random images (JPEG and PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def make_image_folder(root: Path, classes=("cat", "dog"), train_per_class: int = 12,
                      test_per_class: int = 4, size: int = 16, seed: int = 0) -> Path:
    """Write ``root/{train,test}/<class>/NNN.{jpg,png}`` random RGB images; returns ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                # class-dependent brightness so that a model can tell the classes apart
                pixels = rng.integers(0, 128, size=(size, size, 3)) + 100 * c
                img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
                img.save(folder / (f"{i:03d}.png" if i % 2 else f"{i:03d}.jpg"))
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """A read-only tiny ImageFolder: 2 classes x 12 train and 4 test images of 16x16 px."""
    return make_image_folder(tmp_path_factory.mktemp("images") / "data")


@pytest.fixture
def make_images(tmp_path):
    """Factory writing a fresh tiny ImageFolder under ``tmp_path`` (for tests that modify it)."""

    def make(name: str = "data", **kw) -> Path:
        return make_image_folder(tmp_path / name, **kw)

    return make


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests run on one intra-op thread: on a busy 2-core machine, two threads are much slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _private_lock_dir(tmp_path_factory, monkeypatch):
    """Profile locks of tests live in a private folder, never the machine-wide one."""
    monkeypatch.setenv("SGNAS_LOCK_DIR", str(tmp_path_factory.mktemp("locks")))


@pytest.fixture(autouse=True)
def _quick_interleave(monkeypatch):
    """State-normalized timing in tests: a few short chunk pairs (the figures are not judged)."""
    from profiler import measure
    from profiler.interleave import InterleaveConfig

    quick = InterleaveConfig(chunk_ms=2.0, pairs=3, max_pairs=3, warmup_ms=2.0)
    monkeypatch.setattr(measure, "ENTRY_INTERLEAVE", quick)
    monkeypatch.setattr(measure, "NETWORK_INTERLEAVE", quick)
