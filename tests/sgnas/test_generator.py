import numpy as np
import pytest
import torch

from sgnas.costs import FlopsCost, ParamsCost
from sgnas.errors import SgnasError
from sgnas.generator import (
    ArchitectureGenerator,
    GeneratorBundle,
    GeneratorConfig,
    PriorPool,
    arch_from_indices,
    decisions,
    find_generator,
    indices_of,
    load_generator,
    make_prior_pool,
    resolve_generator,
    save_generator,
    target_interval,
)
from sgnas.space import Architecture, get_space

SPACE = get_space("tiny")


def make_bundle(cost=None, seed=0, **cfg) -> GeneratorBundle:
    cost = cost or FlopsCost(SPACE)
    rng = np.random.default_rng(seed)
    gen_cfg = GeneratorConfig(**{"num_priors": 4, **cfg})
    interval = target_interval(cost)
    pool = make_prior_pool(SPACE, cost, gen_cfg.num_priors, rng, interval, steps=100)
    gen = ArchitectureGenerator(SPACE, gen_cfg, generator=torch.Generator().manual_seed(seed))
    return GeneratorBundle(SPACE, gen, pool, cost.describe(), interval)


def test_output_shape_comes_from_the_space():
    D, K = decisions(SPACE)
    assert (D, K) == (SPACE.num_layers, len(SPACE.configs)) == (4, 80)
    gen = ArchitectureGenerator(SPACE, generator=torch.Generator().manual_seed(0))
    prior = torch.as_tensor(np.stack([indices_of(SPACE, SPACE.sample(np.random.default_rng(i)))
                                      for i in range(3)]))
    logits = gen(torch.tensor([0.1, 0.5, 0.9]), prior)
    assert logits.shape == (3, D, K) and torch.isfinite(logits).all()
    other = gen(torch.tensor([0.9, 0.1, 0.5]), prior)
    assert not torch.allclose(logits, other)
    archs = gen.to_architecture(logits)
    assert len(archs) == 3 and all(isinstance(a, Architecture) for a in archs)
    with pytest.raises(SgnasError, match="prior must have shape"):
        gen(torch.tensor([0.5]), prior[:, :2])


def test_indices_round_trip_and_prior_residual():
    arch = SPACE.sample(np.random.default_rng(1))
    assert arch_from_indices(SPACE, indices_of(SPACE, arch)) == arch
    gen = ArchitectureGenerator(SPACE, GeneratorConfig(prior_logit_scale=100.0),
                                generator=torch.Generator().manual_seed(0))
    prior = torch.as_tensor(indices_of(SPACE, arch))[None]
    assert gen.to_architecture(gen(torch.tensor([0.3]), prior))[0] == arch


def test_target_interval_is_where_forced_sampling_architectures_lie():
    cost = FlopsCost(SPACE)
    lo, hi = target_interval(cost)
    c_lo, c_hi = cost.range()
    assert c_lo < lo < hi < c_hi
    rng = np.random.default_rng(5)
    vals = np.array([cost.exact(SPACE.sample(rng)) for _ in range(500)])
    inside = ((vals >= lo) & (vals <= hi)).mean()
    assert 0.9 < inside <= 1.0
    assert target_interval(cost) == (lo, hi)  # seeded


def test_prior_pool_spans_the_interval():
    cost = FlopsCost(SPACE)
    interval = target_interval(cost)
    pool = make_prior_pool(SPACE, cost, 5, np.random.default_rng(0), interval, steps=300)
    again = make_prior_pool(SPACE, cost, 5, np.random.default_rng(0), interval, steps=300)
    assert np.array_equal(pool.choices, again.choices)
    assert pool.choices.shape == (5, SPACE.num_layers)
    goals = (np.arange(5) + 0.5) / 5
    assert np.abs(pool.levels - goals).max() < 0.1
    lo, hi = interval
    for arch, level in zip(pool.architectures(SPACE), pool.levels):
        assert (cost.exact(arch) - lo) / (hi - lo) == pytest.approx(level)
    assert pool.nearest([0.0, 0.5, 1.0]).tolist() == [0, 2, 4]
    assert pool.select([0.95]).shape == (1, SPACE.num_layers)
    restored = PriorPool.from_state(pool.state())
    assert np.array_equal(restored.choices, pool.choices)


def test_checkpoint_round_trip_and_cost_check(tmp_path):
    cost = FlopsCost(SPACE)
    bundle = make_bundle(cost)
    path = save_generator(tmp_path / "g.pt", bundle, epoch=3)
    raw = torch.load(path, weights_only=True)
    assert raw["kind"] == "sgnas-generator" and raw["epoch"] == 3 and raw["decisions"] == [4, 80]
    loaded = load_generator(path, cost)
    c = [0.1, 0.6]
    assert loaded.architectures(c) == bundle.architectures(c)
    assert loaded.interval == bundle.interval
    with pytest.raises(SgnasError) as err:
        load_generator(path, ParamsCost(SPACE))
    assert cost.fingerprint in str(err.value) and ParamsCost(SPACE).fingerprint in str(err.value)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert find_generator(cost, [tmp_path]) == path
    assert find_generator(ParamsCost(SPACE), [tmp_path]) is None
    found, note = resolve_generator(cost, [tmp_path])
    assert found.path == str(path) and note == ""
    with pytest.raises(SgnasError, match="train-generator"):
        resolve_generator(ParamsCost(SPACE), [tmp_path])
    with pytest.raises(SgnasError, match="not found"):
        load_generator(tmp_path / "missing.pt")


def test_targets_outside_the_interval_are_refused_and_decoding_meets_the_window():
    cost = FlopsCost(SPACE)
    bundle = make_bundle(cost)
    lo, hi = bundle.interval
    assert len(bundle.argmax([lo, (lo + hi) / 2, hi], cost)) == 3
    with pytest.raises(SgnasError, match="outside the interval") as err:
        bundle.argmax([hi * 1.01], cost)
    assert f"{lo:.4g}" in str(err.value) and f"{hi:.4g}" in str(err.value)
    for t in np.linspace(lo, hi, 7):
        arch, out = bundle.decode(float(t), cost, eps=0.01)
        assert t * 0.99 <= cost.exact(arch) <= t
        assert out.logprob_given_up >= -1e-9
        logp = bundle.logprobs(float(t), cost)
        assert out.logprob == pytest.approx(logp[np.arange(4), indices_of(SPACE, arch)].sum())


def test_what_the_generator_is_scored_on_is_what_is_exported():
    """The straight-through one-hot of a decision maps to the canonical sub-block assignment:
    the supernet's weighted forward on it equals the exported sub-network's output."""
    from sgnas.supernet import UnifiedSupernet
    from sgnas.train.generator import canonical_subblocks, gated_path_forward, st_gumbel

    torch.manual_seed(0)
    net = UnifiedSupernet(SPACE, generator=torch.Generator().manual_seed(0)).eval()
    bundle = make_bundle()
    logits = bundle.generator(torch.tensor([0.5]), bundle.priors.select([0.5]))[0]
    onehot = st_gumbel(logits, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(onehot.detach().sum(-1), torch.ones(4))
    arch = arch_from_indices(SPACE, onehot.argmax(-1).numpy())
    sub = canonical_subblocks(SPACE)
    probs = torch.einsum("dk,kmc->dmc", onehot, sub)
    assert np.array_equal(probs.detach().argmax(-1).numpy(), SPACE.choices(arch))
    x = torch.randn(2, 3, SPACE.input_size, SPACE.input_size)
    exported = net.export_subnet(arch).eval()
    with torch.no_grad():
        want = exported(x)
        assert torch.allclose(net.forward_weighted(x, probs.detach()), want, atol=1e-5)
    got = gated_path_forward(net, x, onehot, sub)
    assert torch.allclose(got.detach(), want, atol=1e-5)
    got.sum().backward()
    assert bundle.generator.tail.weight.grad is not None


def test_another_lut_of_the_space_is_served_with_a_note(tmp_path):
    from sgnas.costs import TableCost

    cost = FlopsCost(SPACE)
    path = save_generator(tmp_path / "g.pt", make_bundle(cost))
    other = TableCost(SPACE, cost.table * 1.3, cost.fixed * 1.3, "flops", "MFLOPs", fingerprint="other")
    bundle, note = resolve_generator(other, [tmp_path])
    assert bundle.path == str(path) and "another flops model" in note
    lo, hi = bundle.interval_for(other)
    assert (lo, hi) == pytest.approx(tuple(1.3 * np.array(bundle.interval)), rel=0.02)
    t = 0.5 * (lo + hi)
    arch, _ = bundle.decode(t, other)
    assert t * 0.99 <= other.exact(arch) <= t
