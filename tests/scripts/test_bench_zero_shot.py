"""Pieces of scripts/bench_zero_shot.py: the ground-truth regret and the reference imputation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_zero_shot.py"


def load():
    spec = importlib.util.spec_from_file_location("bench_zero_shot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_oracle_regret():
    bench = load()
    acc = np.array([90.0, 93.0, 94.0, 80.0])
    lat = np.array([1.0, 2.0, 5.0, 1.5])
    r = bench.oracle_regret(acc, lat, 2.5, 3)
    assert r == {"acc": 80.0, "oracle": 93.0, "regret": 13.0, "met": True}
    assert bench.oracle_regret(acc, lat, 2.5, 2)["met"] is False


def test_imputation_recovers_a_device_on_the_training_span():
    from sgnas.shared_generator import device_features

    bench = load()
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 20))
    train = rng.normal(size=(30, 2)) @ basis + rng.normal(size=(30, 1)) * 3.0
    new = np.array([0.3, -1.2]) @ basis + 5.0  # another absolute speed, same structure
    measured = np.array([0, 4, 9, 14, 19])
    got = bench.impute_features(train, new, measured, alpha=1e-8)
    assert np.allclose(got, device_features(np.exp(new)), atol=1e-5)
    full = bench.impute_features(train, new, np.arange(20))
    assert np.allclose(full, device_features(np.exp(new)))
