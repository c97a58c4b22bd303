import numpy as np
import pytest
import torch

from sgnas.costs import (
    ConfigDistribution,
    FlopsCost,
    LatencyCost,
    ParamsCost,
    TableCost,
    make_cost,
)
from sgnas.errors import SgnasError
from sgnas.lut import Calibration, EntryStats, Lut
from sgnas.network import count_flops, count_params
from sgnas.space import CHOICES, SKIP_INDEX, get_space

DEVICE = {"name": "cpu", "backend": "onnxruntime", "precision": "fp32", "batch_size": 1,
          "threads": 1, "input_size": None}


def tiny_lut(calibration=None, device=None) -> Lut:
    space = get_space("tiny")
    rng = np.random.default_rng(3)
    entries = {}
    for k in space.all_keys():
        v = float(rng.uniform(0.05, 0.5))
        entries[k] = EntryStats(v, 0.9 * v, 1.1 * v, 50, 0.01)
    return Lut(space.name, space.fingerprint, dict(device or DEVICE), entries,
               input_size=space.input_size, calibration=calibration, complete=True)


def random_cost(space_name="tiny", seed=0) -> TableCost:
    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    table = rng.uniform(1.0, 3.0, size=(space.num_layers, len(space.configs)))
    return TableCost(space, table, 2.5, "synthetic", "u")


def random_probs(space, rng, batch=(), allow_early_skip=False) -> np.ndarray:
    logits = rng.normal(size=(*batch, space.num_layers, space.max_expansion, len(CHOICES))) * 1.5
    if not allow_early_skip:
        logits[..., : space.min_expansion, SKIP_INDEX] = -np.inf
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("space_name", ["tiny", "imagenet"])
def test_expected_at_one_hot_equals_exact(space_name):
    cost = random_cost(space_name)
    space = cost.space
    rng = np.random.default_rng(1)
    for _ in range(5):
        arch = space.sample(rng)
        probs = torch.tensor(space.one_hot(arch), dtype=torch.float64)
        assert cost.expected(probs).item() == pytest.approx(cost.exact(arch), rel=1e-12)
        # a non-canonical placement of the same multiset has the same cost
        choices = space.choices(arch)
        shuffled = np.stack([np.concatenate([row[:2], rng.permutation(row[2:])]) for row in choices])
        onehot = torch.nn.functional.one_hot(torch.as_tensor(shuffled), len(CHOICES)).double()
        assert cost.expected(onehot).item() == pytest.approx(cost.exact(arch), rel=1e-12)


def _monte_carlo(cost, probs: np.ndarray, n: int, rng) -> tuple[float, float]:
    """Mean and standard error of the cost of per-sub-block draws, invalid layers rejected."""
    space = cost.space
    L, m, _ = probs.shape
    cum = probs.cumsum(axis=-1)
    u = rng.random((n, L, m, 1))
    draws = (u > cum[None]).sum(axis=-1)  # (n, L, m) choice indices
    draws = np.minimum(draws, len(CHOICES) - 1)
    kernels = np.array(CHOICES)[draws]
    counts = np.stack([(kernels == k).sum(axis=-1) for k in space.kernels], axis=-1)  # (n, L, 3)
    valid = counts.sum(axis=-1) >= space.min_expansion
    keep = valid.all(axis=1)
    index = {tuple(sum(1 for x in c if x == k) for k in space.kernels): i
             for i, c in enumerate(space.configs)}
    costs = []
    for sample in counts[keep]:
        costs.append(cost.fixed + sum(cost.table[l, index[tuple(c)]] for l, c in enumerate(sample)))
    costs = np.asarray(costs)
    return float(costs.mean()), float(costs.std(ddof=1) / np.sqrt(len(costs)))


def test_expected_matches_monte_carlo():
    cost = random_cost("tiny", seed=4)
    rng = np.random.default_rng(5)
    probs = random_probs(cost.space, rng)
    exact = cost.expected(torch.tensor(probs)).item()
    mean, se = _monte_carlo(cost, probs, 20000, rng)
    assert abs(exact - mean) < 3 * se
    assert se < 0.05 * abs(mean)  # the test has power


def test_expected_is_conditioned_on_valid_draws():
    """Skips allowed everywhere: the expectation is over draws with at least min_expansion kernels."""
    cost = random_cost("tiny", seed=6)
    rng = np.random.default_rng(7)
    probs = random_probs(cost.space, rng, allow_early_skip=True)
    probs[..., SKIP_INDEX] += 0.5
    probs /= probs.sum(axis=-1, keepdims=True)
    exact = cost.expected(torch.tensor(probs)).item()
    mean, se = _monte_carlo(cost, probs, 20000, rng)
    assert abs(exact - mean) < 3 * se


def test_gradcheck():
    cost = random_cost("tiny", seed=8)
    space = cost.space
    logits = torch.randn(space.num_layers, space.max_expansion, 4, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: cost.expected(torch.softmax(a, -1)), (logits,),
                                     fast_mode=True)
    probs = torch.softmax(logits.detach(), -1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: cost.expected(p), (probs,), fast_mode=True)


def test_batched_expected_and_config_probs():
    cost = random_cost("tiny", seed=9)
    rng = np.random.default_rng(10)
    probs = torch.tensor(random_probs(cost.space, rng, batch=(5,)))
    batched = cost.expected(probs)
    assert batched.shape == (5,)
    for i in range(5):
        assert batched[i].item() == pytest.approx(cost.expected(probs[i]).item(), rel=1e-12)
    cp = cost.config_probs(probs)
    assert cp.shape == (5, cost.space.num_layers, len(cost.space.configs))
    assert torch.allclose(cp.sum(-1), torch.ones(5, cost.space.num_layers, dtype=torch.float64))
    assert ConfigDistribution(cost.space).num_states == 84


def test_bad_probs_shape_is_an_error():
    cost = random_cost("tiny")
    with pytest.raises(SgnasError, match="shape"):
        cost.expected(torch.zeros(3, 6, 4))


def test_range_endpoints_are_achieved():
    for cost in (random_cost("tiny", seed=11), FlopsCost(get_space("imagenet"))):
        lo, hi = cost.range()
        assert cost.exact(cost.min_arch()) == pytest.approx(lo)
        assert cost.exact(cost.max_arch()) == pytest.approx(hi)
        rng = np.random.default_rng(0)
        for _ in range(20):
            assert lo <= cost.exact(cost.space.sample(rng)) <= hi
        assert cost.normalize(lo) == pytest.approx(0.0)
        assert cost.denormalize(cost.normalize(0.3 * lo + 0.7 * hi)) == pytest.approx(0.3 * lo + 0.7 * hi)
        t = torch.tensor([lo, hi], dtype=torch.float64)
        assert torch.allclose(cost.normalize(t), torch.tensor([0.0, 1.0], dtype=torch.float64))


def test_flops_and_params_match_network_counts():
    space = get_space("imagenet")
    flops, params = FlopsCost(space), ParamsCost(space)
    rng = np.random.default_rng(12)
    for _ in range(3):
        arch = space.sample(rng)
        assert flops.exact(arch) == pytest.approx(count_flops(space, arch), rel=1e-12)
        assert params.exact(arch) == pytest.approx(count_params(space, arch), rel=1e-12)
    assert flops.unit == "MFLOPs" and params.unit == "Mparams"
    assert flops.fingerprint != params.fingerprint
    assert flops.fingerprint == FlopsCost(space).fingerprint
    assert flops.fingerprint != FlopsCost(get_space("tiny")).fingerprint


def test_latency_cost_matches_lut_with_calibration():
    space = get_space("tiny")
    lut = tiny_lut(Calibration(slope=1.3, intercept=0.2))
    cost = LatencyCost(lut, space)
    rng = np.random.default_rng(13)
    arch = space.sample(rng)
    assert cost.exact(arch) == pytest.approx(lut.predict_ms(arch))
    assert cost.exact(arch, calibrated=False) == pytest.approx(lut.predict_ms(arch, calibrated=False))
    probs = torch.tensor(space.one_hot(arch), dtype=torch.float64)
    assert cost.expected(probs).item() == pytest.approx(lut.predict_ms(arch))
    lo, hi = cost.range()
    raw_lo, raw_hi = cost.range(calibrated=False)
    assert lo == pytest.approx(1.3 * raw_lo + 0.2) and hi == pytest.approx(1.3 * raw_hi + 0.2)
    # the fingerprint is the LUT's latency-model fingerprint; calibration leaves normalization alone
    uncal = LatencyCost(tiny_lut(), space)
    assert cost.fingerprint == lut.fingerprint == uncal.fingerprint
    assert cost.normalize(cost.exact(arch)) == pytest.approx(uncal.normalize(uncal.exact(arch)))
    other = LatencyCost(tiny_lut(device={**DEVICE, "name": "other"}), space)
    assert other.fingerprint != cost.fingerprint
    assert cost.describe()["lut_fingerprint"] == lut.fingerprint


def test_calibration_must_be_increasing_and_linear():
    space = get_space("tiny")
    table = np.ones((space.num_layers, len(space.configs)))

    class Squared:
        def apply(self, raw):
            return raw * raw

    with pytest.raises(SgnasError, match="linear"):
        TableCost(space, table, 1.0, "x", "u", calibration=Squared())
    with pytest.raises(SgnasError, match="positive"):
        TableCost(space, table, 1.0, "x", "u", calibration=(-1.0, 0.0))
    cost = TableCost(space, table, 1.0, "x", "u", calibration=(2.0, 1.0))
    assert cost.range() == (2.0 * (1.0 + space.num_layers) + 1.0,) * 2


def test_table_validation_and_make_cost():
    space = get_space("tiny")
    with pytest.raises(SgnasError, match="shape"):
        TableCost(space, np.ones((2, 80)), 0.0, "x", "u")
    bad = np.ones((space.num_layers, len(space.configs)))
    bad[0, 0] = np.nan
    with pytest.raises(SgnasError, match="non-finite"):
        TableCost(space, bad, 0.0, "x", "u")
    assert isinstance(make_cost("flops", space), FlopsCost)
    assert isinstance(make_cost("params", space), ParamsCost)
    assert isinstance(make_cost("latency", space, lut=tiny_lut()), LatencyCost)
    with pytest.raises(SgnasError, match="LUT"):
        make_cost("latency", space)
    with pytest.raises(SgnasError, match="unknown cost 'energy'"):
        make_cost("energy", space)
