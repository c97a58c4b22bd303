import json

import numpy as np
import pytest
import torch

from sgnas.costs import FlopsCost, ParamsCost
from sgnas.errors import SgnasError
from sgnas.generator import load_generator
from sgnas.space import get_space
from sgnas.supernet import UnifiedSupernet
from sgnas.train.generator import (
    GeneratorLoaders,
    GeneratorTrainConfig,
    cost_loss,
    evaluate_generator,
    gumbel_softmax,
    kendall_tau,
    train_generator,
)

SPACE = get_space("tiny")


def data(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, 3, SPACE.input_size, SPACE.input_size, generator=g),
             torch.randint(0, SPACE.num_classes, (2,), generator=g)) for _ in range(n)]


def supernet():
    torch.manual_seed(0)
    return UnifiedSupernet(SPACE).eval()


def config(**kw):
    base = dict(epochs=2, batches_per_epoch=3, eval_targets=4, prior_search_steps=50,
                device="cpu", progress=False)
    return GeneratorTrainConfig(**{**base, **kw})


def test_training_run_writes_a_reloadable_checkpoint_and_resumes(tmp_path):
    net = supernet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cost = FlopsCost(SPACE)
    out = tmp_path / "gen.pt"
    result = train_generator(net, cost, GeneratorLoaders(data()), config(), out,
                             supernet_info={"sha256": "abc"})
    assert [h["epoch"] for h in result.history] == [0, 1]
    for h in result.history:
        assert h["steps"] == 3 and np.isfinite(h["ce"]) and np.isfinite(h["cost_loss"])
        assert len(h["archs"]) == 4 and len(h["generated"]) == 4
    # the supernet is untouched and its parameters trainable again
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.requires_grad for p in net.parameters())

    raw = torch.load(out, weights_only=True)
    assert raw["epoch"] == 1 and raw["cost"]["fingerprint"] == cost.fingerprint
    assert raw["meta"]["supernet"]["sha256"] == "abc"
    bundle = load_generator(out, cost)
    assert bundle.architectures([0.5]) == result.bundle.architectures([0.5])
    log = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert [r["event"] for r in log] == ["start", "epoch", "epoch", "done"]

    with pytest.raises(SgnasError, match="exists"):
        train_generator(net, cost, GeneratorLoaders(data()), config(), out)
    with pytest.raises(SgnasError, match="cost mismatch"):
        train_generator(net, ParamsCost(SPACE), GeneratorLoaders(data()), config(), out, resume=True)
    with pytest.raises(SgnasError, match="another supernet"):
        train_generator(net, cost, GeneratorLoaders(data()), config(epochs=3), out,
                        supernet_info={"sha256": "def"}, resume=True)
    resumed = train_generator(net, cost, GeneratorLoaders(data()), config(epochs=3), out,
                              supernet_info={"sha256": "abc"}, resume=True)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    assert torch.load(out, weights_only=True)["epoch"] == 2
    log = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert [r["event"] for r in log][4:] == ["resume", "epoch", "done"]


def test_generator_learns_to_meet_targets(tmp_path):
    """With a supernet whose loss ignores the architecture, training is pure cost fitting."""

    class FlatSupernet(torch.nn.Module):
        space = SPACE

        def forward_weighted(self, x, probs):
            return torch.zeros(x.shape[0], SPACE.num_classes) + 0 * probs.sum()

    cost = FlopsCost(SPACE)
    cfg = config(epochs=3, batches_per_epoch=40, cost_samples=16, tau0=1.0, lr=3e-3,
                 eval_targets=8)
    result = train_generator(FlatSupernet(), cost, GeneratorLoaders(data(1) * 40), cfg,
                             tmp_path / "g.pt")
    first, last = result.history[0], result.history[-1]
    assert last["cost_loss"] < first["cost_loss"]
    assert last["mean_abs_norm_error"] < 0.08
    assert last["kendall_tau"] > 0.8


def test_inherited_accuracy_restores_bn_statistics(tmp_path):
    net = supernet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = config(epochs=1, batches_per_epoch=1, eval_accuracy_batches=1, bn_calibration_batches=1)
    result = train_generator(net, FlopsCost(SPACE), GeneratorLoaders(data(), calib=data(1, seed=5)),
                             cfg, tmp_path / "g.pt")
    assert 0.0 <= result.history[0]["inherited_top1"] <= 1.0
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_cost_loss_weights_and_dead_band():
    target = torch.tensor([0.5, 0.5, 0.5, 0.5])
    cost = torch.tensor([0.6, 0.4, 0.505, 0.495])
    loss = cost_loss(cost, target, overshoot_weight=1.2, dead_band=0.01)
    assert loss.tolist() == pytest.approx([1.2 * 0.01, 0.01, 0.0, 0.0])


def test_gumbel_softmax_is_seeded():
    logits = torch.randn(2, 4, 6, 4)
    logits[..., 0, 3] = float("-inf")
    a = gumbel_softmax(logits, 0.5, torch.Generator().manual_seed(1))
    b = gumbel_softmax(logits, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert (a[..., 0, 3] == 0).all()
    assert torch.allclose(a.sum(-1), torch.ones(2, 4, 6))


def test_kendall_tau():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(kendall_tau([1, 2, 3], [5, 5, 5]))
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 30), rng.integers(0, 5, 30)
    assert kendall_tau(x, y) == pytest.approx(scipy_stats.kendalltau(x, y)[0])


def test_evaluate_generator_reports_errors(tmp_path):
    from sgnas.generator import ArchitectureGenerator, GeneratorBundle, PriorPool

    cost = FlopsCost(SPACE)
    arch = cost.max_arch()
    pool = PriorPool(SPACE.choices(arch)[None], np.array([1.0]))
    gen = ArchitectureGenerator(SPACE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        gen.tail.weight.zero_()
    bundle = GeneratorBundle(SPACE, gen, pool, cost.describe())
    m = evaluate_generator(bundle, cost, [0.25, 0.75])
    hi = cost.range()[1]
    assert m["generated"] == pytest.approx([hi, hi])  # always the prior
    assert m["max_pct_error"] == pytest.approx((hi - m["targets"][0]) / m["targets"][0] * 100)
    assert m["mean_abs_norm_error"] == pytest.approx(0.5)


def test_config_validation():
    with pytest.raises(SgnasError, match="target range"):
        GeneratorTrainConfig(target_range=(0.5, 0.4))
    with pytest.raises(SgnasError, match="cost_on"):
        GeneratorTrainConfig(cost_on="argmax")
    cfg = GeneratorTrainConfig(tau0=4.0, tau_decay=0.5)
    assert cfg.tau(2) == pytest.approx(1.0)
