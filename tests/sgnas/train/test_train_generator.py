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
    kendall_tau,
    st_gumbel,
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
    base = dict(epochs=2, batches_per_epoch=3, eval_targets=3, eval_batches=1,
                prior_search_steps=50, device="cpu", progress=False)
    return GeneratorTrainConfig(**{**base, **kw})


@pytest.mark.parametrize("relaxation", ["path", "weighted"])
def test_training_run_writes_last_and_best_and_resumes(tmp_path, relaxation):
    net = supernet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cost = FlopsCost(SPACE)
    out = tmp_path / "run"
    loaders = GeneratorLoaders(data(), val=data(2, seed=9))
    result = train_generator(net, cost, loaders, config(relaxation=relaxation), out,
                             supernet_info={"sha256": "abc"})
    assert [h["epoch"] for h in result.history] == [0, 1]
    for h in result.history:
        assert h["steps"] == 3 and np.isfinite(h["ce"]) and np.isfinite(h["cost_loss"])
        assert h["grad_norm_ce"] > 0 and h["grad_norm_cost"] > 0
        assert len(h["decoded_archs"]) == 3 and np.isfinite(h["val_ce_mean"])
    # the supernet is untouched (BN buffers restored) and its parameters trainable again
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.requires_grad for p in net.parameters())

    raw = torch.load(out / "last.pt", weights_only=True)
    assert raw["epoch"] == 1 and raw["cost"]["fingerprint"] == cost.fingerprint
    assert raw["meta"]["supernet"]["sha256"] == "abc"
    best = torch.load(out / "best.pt", weights_only=True)
    scores = [h["val_ce_mean"] for h in result.history]
    assert best["epoch"] == int(np.argmin(scores))
    assert raw["interval"] == pytest.approx(list(result.bundle.interval))
    bundle = load_generator(out / "last.pt", cost)
    assert bundle.architectures([0.5]) == result.bundle.architectures([0.5])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log] == ["start", "epoch", "epoch", "done"]

    with pytest.raises(SgnasError, match="last.pt exists; pass --resume"):
        train_generator(net, cost, loaders, config(), out)
    with pytest.raises(SgnasError, match="nothing to resume"):
        train_generator(net, cost, loaders, config(), tmp_path / "empty", resume=True)
    with pytest.raises(SgnasError, match="cost mismatch"):
        train_generator(net, ParamsCost(SPACE), loaders, config(), out, resume=True)
    with pytest.raises(SgnasError, match="another supernet"):
        train_generator(net, cost, loaders, config(epochs=3), out,
                        supernet_info={"sha256": "def"}, resume=True)
    resumed = train_generator(net, cost, loaders, config(epochs=3), out,
                              supernet_info={"sha256": "abc"}, resume=True)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log][4:] == ["resume", "epoch", "done"]

    (out / "best.pt").write_bytes(b"stale")
    forced = train_generator(net, cost, loaders, config(epochs=1), out, force=True)
    assert [h["epoch"] for h in forced.history] == [0]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log] == ["start", "epoch", "done"]  # the old run's files are gone
    assert torch.load(out / "best.pt", weights_only=True)["epoch"] == 0


def test_generator_learns_to_meet_targets(tmp_path):
    """With a supernet whose loss ignores the architecture, training is pure cost fitting."""

    class FlatSupernet(torch.nn.Module):
        space = SPACE

        def forward_weighted(self, x, probs):
            return torch.zeros(x.shape[0], SPACE.num_classes) + 0 * probs.sum()

    cost = FlopsCost(SPACE)
    cfg = config(epochs=3, batches_per_epoch=40, cost_samples=16, lr=3e-3, eval_targets=8,
                 relaxation="weighted")
    result = train_generator(FlatSupernet(), cost, GeneratorLoaders(data(1) * 40), cfg,
                             tmp_path / "g")
    first, last = result.history[0], result.history[-1]
    assert last["cost_loss"] < first["cost_loss"]
    assert last["mean_pct_error"] < 8.0
    assert last["kendall_tau"] > 0.8


def test_relative_cost_loss_weights_overshoot():
    target = torch.tensor([2.0, 2.0, 8.0])
    cost = torch.tensor([2.2, 1.8, 8.8])
    loss = cost_loss(cost, target, overshoot_weight=2.0)
    assert loss.tolist() == pytest.approx([2 * 0.01, 0.01, 2 * 0.01])  # relative: same at 2 and 8


def test_straight_through_gumbel_is_exact_one_hot_and_seeded():
    logits = torch.randn(4, 80, requires_grad=True)
    a = st_gumbel(logits, 0.5, torch.Generator().manual_seed(1))
    b = st_gumbel(logits, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert set(a.detach().unique().tolist()) == {0.0, 1.0}
    (a * torch.arange(80.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_kendall_tau():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(kendall_tau([1, 2, 3], [5, 5, 5]))


def test_evaluate_generator_reports_errors():
    from sgnas.generator import (ArchitectureGenerator, GeneratorBundle, PriorPool, indices_of,
                                 target_interval)

    cost = FlopsCost(SPACE)
    arch = cost.max_arch()
    pool = PriorPool(indices_of(SPACE, arch)[None], np.array([1.0]))
    gen = ArchitectureGenerator(SPACE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        gen.tail.weight.zero_()
    lo, hi = target_interval(cost)
    bundle = GeneratorBundle(SPACE, gen, pool, cost.describe(), (lo, hi))
    m = evaluate_generator(bundle, cost, [lo, hi])
    top = cost.range()[1]
    assert m["generated"] == pytest.approx([top, top])  # always the prior
    assert m["max_pct_error"] == pytest.approx((top - lo) / lo * 100)


def test_config_validation():
    with pytest.raises(SgnasError, match="interval"):
        GeneratorTrainConfig(interval=(0.5, 0.4))
    with pytest.raises(SgnasError, match="relaxation"):
        GeneratorTrainConfig(relaxation="soft")
    cfg = GeneratorTrainConfig(tau0=4.0, tau_decay=0.5, tau_min=0.1)
    assert cfg.tau(2) == pytest.approx(1.0) and cfg.tau(10) == pytest.approx(0.1)
