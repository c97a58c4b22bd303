"""Shared fixtures of the CLI tests."""

from pathlib import Path

import pytest

#: A device descriptor with a protocol quick enough for tests.
QUICK_YAML = """
name: quick
description: ONNX Runtime, 1 thread, quick protocol for tests
kind: cpu
backend: onnxruntime
precision: fp32
batch_size: 1
threads: 1
pin_threads: false
protocol: {warmup_ms: 0, warmup_min_iters: 1, rounds: 1, min_iters_per_round: 2, min_round_ms: 0,
           remeasure: 0, canary_every: 100}
"""


@pytest.fixture
def quick(tmp_path) -> Path:
    """The quick device descriptor written to a file."""
    path = tmp_path / "quick.yaml"
    path.write_text(QUICK_YAML)
    return path


@pytest.fixture(autouse=True)
def sgnas_home(tmp_path, monkeypatch) -> Path:
    """The per-user folder of every CLI test: a fresh folder, never the user's ~/.cache/sgnas."""
    home = tmp_path / "sgnas-home"
    monkeypatch.setenv("SGNAS_HOME", str(home))
    return home
