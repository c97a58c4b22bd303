"""Choosing calibration networks over the whole latency range, and their fit/held-out split."""

import numpy as np
import pytest

from profiler.calibration_set import (calibration_networks, candidate_pool, check_split_size,
                                      range_thirds, split_fit_heldout)
from sgnas.errors import SgnasError
from sgnas.lut import EntryStats, Lut
from sgnas.network import block_flops
from sgnas.space import get_space


def flops_lut(space):
    """A LUT whose entries grow with the block's FLOPs (the shape a measured one has)."""
    entries = {}
    for layer in space.layers:
        for c in space.configs:
            ms = 0.01 + block_flops(layer, c) * 1e-8
            entries[layer.key(c)] = EntryStats(ms, ms, ms, 10, 0.0)
    for k in (space.stem_key, space.head_key):
        entries[k] = EntryStats(0.05, 0.05, 0.05, 10, 0.0)
    return Lut(space.name, space.fingerprint, {"name": "cpu"}, entries,
               input_size=space.input_size, complete=True)


@pytest.fixture(scope="module")
def cifar():
    space = get_space("cifar10")
    return space, flops_lut(space)


def test_spread_over_the_whole_range_with_both_ends(cifar):
    space, lut = cifar
    archs = calibration_networks(space, lut, 30, np.random.default_rng(0))
    assert len(archs) == 30 and len(set(archs)) == 30
    pred = np.array([lut.raw_ms(a, space) for a in archs])
    assert np.all(np.diff(pred) >= 0)  # sorted by predicted latency
    light = lut.raw_ms(type(archs[0])(space.name, ((3, 3),) * space.num_layers), space)
    heavy = lut.raw_ms(type(archs[0])(space.name, ((7,) * 6,) * space.num_layers), space)
    assert pred[0] == pytest.approx(light) and pred[-1] == pytest.approx(heavy)
    assert str(archs[0]).endswith("-".join(["33"] * space.num_layers))
    # every third of the range is covered evenly, unlike uniform random samples
    thirds = range_thirds(pred)
    assert all(len(v) >= 8 for v in thirds.values())
    gaps = np.diff(pred) / (pred[-1] - pred[0])
    assert gaps.max() < 0.15
    rng = np.random.default_rng(0)
    rand = np.array([lut.raw_ms(space.sample(rng), space) for _ in range(30)])
    assert np.ptp(rand) < 0.5 * np.ptp(pred)


def test_deterministic_under_a_seed(cifar):
    space, lut = cifar
    a = calibration_networks(space, lut, 12, np.random.default_rng(5))
    b = calibration_networks(space, lut, 12, np.random.default_rng(5))
    c = calibration_networks(space, lut, 12, np.random.default_rng(6))
    assert a == b and a != c


def test_pool_holds_the_generator_like_families(cifar):
    space, lut = cifar
    pool, fams = candidate_pool(space, lut.layer_table(space), 20, np.random.default_rng(0))
    assert set(fams) == {"uniform", "stage", "mixture", "random"}
    uniform = pool[[f == "uniform" for f in fams]]
    assert len(uniform) == len(space.configs) and np.all(uniform == uniform[:, :1])
    mixture = pool[[f == "mixture" for f in fams]]
    assert all(len(set(row)) <= 2 for row in mixture)


def test_split_spans_the_range_and_keeps_the_ends_in_the_fit():
    pred = np.linspace(1.0, 4.0, 20)
    fit, test = split_fit_heldout(pred, 0.5, np.random.default_rng(0))
    assert len(fit) == 10 and len(test) == 10
    assert 0 in fit and 19 in fit and not set(fit) & set(test)
    thirds = range_thirds(pred)
    assert all(set(idx) & set(test) for idx in thirds.values())
    again = split_fit_heldout(pred, 0.5, np.random.default_rng(0))
    assert all(np.array_equal(x, y) for x, y in zip((fit, test), again))


@pytest.mark.parametrize("n", [0, 1, 3])
def test_validate_count_too_small_is_a_one_line_error(n):
    with pytest.raises(SgnasError, match=f"--validate {n} is too small") as e:
        check_split_size(n)
    assert "\n" not in str(e.value)


def test_split_sizes():
    assert check_split_size(4) == (2, 2)
    assert check_split_size(20, 0.7) == (14, 6)
    assert check_split_size(5, 0.95) == (3, 2)
    with pytest.raises(SgnasError, match="fit fraction"):
        check_split_size(10, 1.0)
