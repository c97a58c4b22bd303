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
    find_generator,
    load_generator,
    make_prior_pool,
    save_generator,
)
from sgnas.space import SKIP_INDEX, Architecture, get_space

SPACE = get_space("tiny")


def make_bundle(cost=None, seed=0, **cfg) -> GeneratorBundle:
    cost = cost or FlopsCost(SPACE)
    rng = np.random.default_rng(seed)
    gen_cfg = GeneratorConfig(**{"num_priors": 4, **cfg})
    pool = make_prior_pool(SPACE, cost, gen_cfg.num_priors, rng, steps=100)
    gen = ArchitectureGenerator(SPACE, gen_cfg, generator=torch.Generator().manual_seed(seed))
    return GeneratorBundle(SPACE, gen, pool, cost.describe())


def test_output_shape_and_skip_mask():
    gen = ArchitectureGenerator(SPACE, generator=torch.Generator().manual_seed(0))
    prior = torch.nn.functional.one_hot(torch.as_tensor(
        np.stack([SPACE.sample_choices(np.random.default_rng(i)) for i in range(3)])), 4).float()
    logits = gen(torch.tensor([0.1, 0.5, 0.9]), prior)
    assert logits.shape == (3, SPACE.num_layers, SPACE.max_expansion, 4)
    forbidden = logits[:, :, : SPACE.min_expansion, SKIP_INDEX]
    assert torch.isinf(forbidden).all() and (forbidden < 0).all()
    rest = logits.clone()
    rest[:, :, : SPACE.min_expansion, SKIP_INDEX] = 0
    assert torch.isfinite(rest).all()
    # the constraint changes the output
    other = gen(torch.tensor([0.9, 0.1, 0.5]), prior)
    assert not torch.allclose(torch.nan_to_num(logits, neginf=0), torch.nan_to_num(other, neginf=0))
    archs = gen.to_architecture(logits)
    assert len(archs) == 3 and all(isinstance(a, Architecture) for a in archs)
    for a in archs:
        SPACE.validate(a)
        assert min(a.expansions) >= SPACE.min_expansion
    assert isinstance(gen.to_architecture(logits[0]), Architecture)
    with pytest.raises(SgnasError, match="prior must have shape"):
        gen(torch.tensor([0.5]), prior[:, :2])


def test_seeded_init_is_reproducible_and_prior_residual():
    a = ArchitectureGenerator(SPACE, generator=torch.Generator().manual_seed(7))
    b = ArchitectureGenerator(SPACE, generator=torch.Generator().manual_seed(7))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    # a large prior scale makes an untrained generator return its prior
    gen = ArchitectureGenerator(SPACE, GeneratorConfig(prior_logit_scale=100.0),
                                generator=torch.Generator().manual_seed(0))
    arch = SPACE.sample(np.random.default_rng(1))
    prior = torch.as_tensor(SPACE.one_hot(arch))[None]
    assert gen.to_architecture(gen(torch.tensor([0.3]), prior))[0] == arch


def test_gradients_through_masked_gumbel_and_cost_are_finite():
    from sgnas.train.generator import gumbel_softmax

    cost = FlopsCost(SPACE)
    bundle = make_bundle(cost)
    c = torch.tensor([0.2, 0.8])
    logits = bundle.generator(c, bundle.priors.select(c))
    sample = gumbel_softmax(logits, 2.0, torch.Generator().manual_seed(0))
    assert torch.allclose(sample.sum(-1), torch.ones(sample.shape[:-1]))
    assert (sample[:, :, : SPACE.min_expansion, SKIP_INDEX] == 0).all()
    cost.normalize(cost.expected(sample)).sum().backward()
    grads = [p.grad for p in bundle.generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_prior_pool_spans_the_range():
    cost = FlopsCost(SPACE)
    pool = make_prior_pool(SPACE, cost, 5, np.random.default_rng(0), steps=300)
    again = make_prior_pool(SPACE, cost, 5, np.random.default_rng(0), steps=300)
    assert np.array_equal(pool.choices, again.choices)
    assert pool.choices.shape == (5, SPACE.num_layers, SPACE.max_expansion)
    goals = (np.arange(5) + 0.5) / 5
    assert np.abs(pool.levels - goals).max() < 0.1
    for arch, level in zip(pool.architectures(SPACE), pool.levels):
        assert cost.normalize(cost.exact(arch)) == pytest.approx(level)
        assert np.array_equal(SPACE.choices(arch), pool.choices[list(pool.levels).index(level)])
    assert pool.nearest([0.0, 0.5, 1.0]).tolist() == [0, 2, 4]
    assert pool.select([0.95]).shape == (1, SPACE.num_layers, SPACE.max_expansion, 4)
    restored = PriorPool.from_state(pool.state())
    assert np.array_equal(restored.choices, pool.choices)
    assert np.allclose(restored.levels, pool.levels)


def test_checkpoint_round_trip_and_cost_check(tmp_path):
    cost = FlopsCost(SPACE)
    bundle = make_bundle(cost)
    path = save_generator(tmp_path / "g.pt", bundle, epoch=3)
    raw = torch.load(path, weights_only=True)
    assert raw["kind"] == "sgnas-generator" and raw["epoch"] == 3
    loaded = load_generator(path, cost)
    c = [0.1, 0.6]
    assert loaded.architectures(c) == bundle.architectures(c)
    assert loaded.cost["fingerprint"] == cost.fingerprint
    with pytest.raises(SgnasError) as err:
        load_generator(path, ParamsCost(SPACE))
    assert cost.fingerprint in str(err.value) and ParamsCost(SPACE).fingerprint in str(err.value)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert find_generator(cost, [tmp_path]) == path
    assert find_generator(ParamsCost(SPACE), [tmp_path]) is None
    with pytest.raises(SgnasError, match="not found"):
        load_generator(tmp_path / "missing.pt")


def test_generate_checks_the_range():
    cost = FlopsCost(SPACE)
    bundle = make_bundle(cost)
    bundle.target_range = (0.2, 0.8)
    lo, hi = bundle.allowed_range(cost)
    archs = bundle.generate([lo, (lo + hi) / 2, hi], cost)
    assert len(archs) == 3
    with pytest.raises(SgnasError, match="outside the range") as err:
        bundle.generate([hi * 1.01], cost)
    assert f"{lo:.4g}" in str(err.value) and f"{hi:.4g}" in str(err.value)
