"""The generator trained on accuracy signals other than the supernet CE (sgnas.train.reward)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sgnas.cli.main import main
from sgnas.costs import FlopsCost, ParamsCost
from sgnas.errors import SgnasError
from sgnas.generator import load_generator
from sgnas.signals import get_signal
from sgnas.signals.base import Signal
from sgnas.space import get_space
from sgnas.supernet import UnifiedSupernet
from sgnas.train.generator import (
    GeneratorLoaders,
    GeneratorTrainConfig,
    GeneratorTrainer,
    accuracy_forward,
    cost_loss,
    st_gumbel,
    train_generator,
)
from sgnas.train.reward import (
    ADVANTAGE_CLIP,
    REFERENCE_POOL,
    WARMUP,
    ExpectedSignal,
    PoolRankSignal,
    RewardBaseline,
    ScoreFunctionSignal,
    make_objective,
)

SPACE = get_space("tiny")
FLOPS = FlopsCost(SPACE)


def data(n=3, seed=0, batch=2):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 3, SPACE.input_size, SPACE.input_size, generator=g),
             torch.randint(0, SPACE.num_classes, (batch,), generator=g)) for _ in range(n)]


def supernet():
    torch.manual_seed(0)
    return UnifiedSupernet(SPACE).eval()


def config(**kw):
    base = dict(epochs=2, batches_per_epoch=3, eval_targets=3, eval_batches=1,
                prior_search_steps=50, device="cpu", progress=False)
    return GeneratorTrainConfig(**{**base, **kw})


class FlatSupernet(torch.nn.Module):
    """A supernet whose loss ignores the architecture: training is cost fitting plus the signal."""

    space = SPACE

    def forward_weighted(self, x, probs):
        return torch.zeros(x.shape[0], SPACE.num_classes) + 0 * probs.sum()


class BlackBoxFlops(Signal):
    """FLOPs behind the plain ``score`` interface: the trainer must estimate its gradient."""

    name = "blackbox-flops"

    def __init__(self):
        self.calls = []

    def score(self, archs):
        self.calls.append(len(archs))
        return np.array([FLOPS.exact(a) for a in archs])


# ------------------------------------------------------------------- the default is unchanged
def reference_step(t, x, y, tau):
    """The supernet-CE step as it was before other signals existed (Algorithm 1)."""
    cfg, (lo, hi) = t.cfg, t.cfg.interval
    c = torch.as_tensor(t.rng.uniform(0.0, 1.0, size=cfg.cost_samples), dtype=torch.float32)
    targets = lo + c * (hi - lo)
    prior = t.priors[t.bundle.priors.nearest(c)]
    logits = t.generator(c, prior)
    onehot = st_gumbel(logits[0], tau, t.tgen)
    ce = F.cross_entropy(accuracy_forward(t.supernet, x, onehot, t.subblocks, cfg.relaxation), y)
    expected = t.expected_cost(logits)
    lc = cost_loss(expected, targets, cfg.overshoot_weight).mean()
    params = [p for p in t.generator.parameters() if p.requires_grad]
    g_ce = torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True)
    g_lc = torch.autograd.grad(cfg.cost_weight * lc, params, allow_unused=True)
    t.optimizer.zero_grad(set_to_none=True)
    for p, a, b in zip(params, g_ce, g_lc):
        parts = [g for g in (a, b) if g is not None]
        p.grad = sum(parts) if parts else None
    t.optimizer.step()
    return ce.item(), lc.item()


@pytest.mark.parametrize("signal", [None, "supernet"])
def test_default_signal_is_the_supernet_ce_step_unchanged(tmp_path, signal):
    batches = data(3)
    trainers = []
    for name in ("new", "ref"):
        (tmp_path / name).mkdir()
        t = GeneratorTrainer(supernet(), FlopsCost(SPACE), GeneratorLoaders(batches), config(),
                             tmp_path / name, signal=signal)
        t.prepare()
        t.supernet.train()
        trainers.append(t)
    new, ref = trainers
    assert new.objective is None and new.bundle.meta["signal"] == {"name": "supernet"}
    for x, y in batches:
        out = new.step(x, y, 1.5)
        ce, lc = reference_step(ref, x, y, 1.5)
        assert out["ce"] == ce and out["cost_loss"] == lc
        assert set(out) == {"ce", "cost_loss", "grad_norm_ce", "grad_norm_cost",
                            "expected_cost_rel_error"}
    for a, b in zip(new.generator.state_dict().values(), ref.generator.state_dict().values()):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------- exact: flops, params
def test_expected_signal_is_exact_and_matches_the_registered_signal():
    obj = make_objective("flops", SPACE)
    assert isinstance(obj, ExpectedSignal)
    rng = np.random.default_rng(0)
    archs = [SPACE.sample(rng) for _ in range(6)]
    ours = obj.score(archs)
    registered = get_signal("flops", space=SPACE).score(archs)
    assert np.all(np.argsort(ours) == np.argsort(registered))  # the same ranking (and ratio)
    assert np.allclose(ours / ours.sum(), registered / registered.sum())
    # the loss is -E[flops] / range exactly: a uniform distribution gives the mean column cost
    D, K = SPACE.num_layers, len(SPACE.configs)
    logits = torch.zeros(1, D, K, requires_grad=True)
    loss, stats = obj.loss(logits, torch.Generator())
    mean_flops = FLOPS.fixed + FLOPS.table.mean(axis=1).sum()
    lo, hi = FLOPS.range()
    assert stats["reward"] == pytest.approx(mean_flops)
    assert loss.item() == pytest.approx(-mean_flops / (hi - lo))
    loss.backward()
    assert logits.grad.abs().sum() > 0


def _train_flat(tmp_path, name, cost, **kw):
    signal = kw.pop("signal", "flops")
    cfg = config(epochs=3, batches_per_epoch=40, eval_targets=6, eval_batches=0, lr=3e-3,
                 relaxation="weighted", **kw)
    return train_generator(FlatSupernet(), cost, GeneratorLoaders(data(1) * 40), cfg,
                           tmp_path / name, signal=signal)


def test_flops_signal_raises_flops_under_the_same_constraint(tmp_path):
    cost = ParamsCost(SPACE)
    control = _train_flat(tmp_path, "control", cost, signal_weight=0.0)
    trained = _train_flat(tmp_path, "flops", cost)
    c = control.history[-1]
    h = trained.history[-1]
    assert h["targets"] == c["targets"]
    # the decoded architectures (same constraints) have more FLOPs on average ...
    assert h["val_signal_mean"] > c["val_signal_mean"] + 0.01
    # ... and so does the generator's distribution (its expectation over the targets)
    norm = [trained.bundle.normalize(t, cost) for t in h["targets"]]
    expected = [FLOPS.expected_probs(torch.softmax(b.logits(norm), -1)).detach()
                for b in (control.bundle, trained.bundle)]
    assert expected[1].mean() > expected[0].mean() + 0.01
    # while the constraint is tracked as well as without the signal
    assert h["mean_pct_error"] < c["mean_pct_error"] + 3.0
    meta = load_generator(tmp_path / "flops" / "last.pt", cost).meta
    assert meta["signal"] == {"name": "flops", "estimator": "exact"}


# ------------------------------------------------------------------------- REINFORCE
def test_reinforce_on_a_black_box_signal_learns_like_the_exact_route(tmp_path):
    cost = ParamsCost(SPACE)
    control = _train_flat(tmp_path, "control", cost, signal_weight=0.0)
    signal = BlackBoxFlops()
    trained = _train_flat(tmp_path, "bb", cost, signal=signal)
    c, h = control.history[-1], trained.history[-1]
    assert h["val_signal_mean"] > c["val_signal_mean"] + 0.01
    assert h["mean_pct_error"] < c["mean_pct_error"] + 3.0
    assert h["grad_norm_signal"] > 0 and h["baseline_std"] > 0
    # each architecture is scored once: samples repeat, the cache answers
    assert sum(signal.calls) < 3 * 40 * 4 + 3 * 6
    meta = trained.bundle.meta["signal"]
    assert meta["name"] == "blackbox-flops" and meta["estimator"] == "reinforce"
    assert meta["samples"] == 4


def test_reward_baseline_warms_up_then_standardizes():
    b = RewardBaseline(momentum=0.5)
    for v in (1.0, 2.0, 3.0, 4.0):
        assert b.advantages([v]).tolist() == [0.0]  # warming up
        b.update([v])
    assert b.count == WARMUP and b.mean == pytest.approx(2.5)
    assert b.var == pytest.approx(np.var([1.0, 2.0, 3.0, 4.0]))
    adv = b.advantages([2.5, 2.5 + np.sqrt(1.25), 1e9, -np.inf])
    assert adv.tolist() == pytest.approx([0.0, 1.0, ADVANTAGE_CLIP, -ADVANTAGE_CLIP])
    b.update([4.5, -np.inf])  # non-finite rewards do not move the statistics
    assert b.count == WARMUP + 1
    assert b.mean == pytest.approx(3.5) and b.var == pytest.approx(0.5 * (1.25 + 0.5 * 4.0))
    c = RewardBaseline()
    c.load_state_dict(b.state_dict())
    assert c.state_dict() == b.state_dict()


def test_score_function_log_probability_gradient():
    """The REINFORCE term's gradient is -A/D * d log P(arch) / d logits of the sampled rows."""
    obj = ScoreFunctionSignal(BlackBoxFlops(), SPACE, samples=2)
    obj.baseline.count, obj.baseline.mean, obj.baseline.var = WARMUP, 0.0, 1.0
    D, K = SPACE.num_layers, len(SPACE.configs)
    logits = torch.randn(3, D, K, requires_grad=True)
    loss, stats = obj.loss(logits, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.all(logits.grad[2] == 0)  # only the first `samples` targets are sampled
    picked = st_gumbel(logits[:2].detach(), 1.0, torch.Generator().manual_seed(0)).argmax(-1)
    rewards = [FLOPS.of_indices(p.tolist()) for p in picked]
    assert stats["reward"] == pytest.approx(np.mean(rewards))
    p = torch.softmax(logits[:2].detach(), -1)
    expected = torch.stack([(p[i] - F.one_hot(picked[i], K)) * min(rewards[i], ADVANTAGE_CLIP)
                            for i in range(2)]) / 2 / D
    assert torch.allclose(logits.grad[:2], expected, atol=1e-6)


def test_proxy_signal_trains_records_and_resumes(tmp_path):
    net, cost = supernet(), FlopsCost(SPACE)
    loaders = GeneratorLoaders(data(3, batch=4), val=data(1, seed=9))
    opts = {"cache_dir": False}
    result = train_generator(net, cost, loaders, config(signal_samples=2), tmp_path / "run",
                             signal="synflow", signal_options=opts)
    for h in result.history:
        assert np.isfinite(h["reward"]) and h["grad_norm_cost"] > 0
        assert len(h["val_signal"]) == 3 and np.isfinite(h["val_ce_mean"])
    assert result.history[-1]["baseline_std"] > 0
    raw = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert raw["signal_state"]["baseline"]["count"] == 2 * 3 * 2  # epochs x steps x samples
    assert raw["meta"]["signal"]["name"] == "synflow"
    assert raw["meta"]["signal"]["estimator"] == "reinforce"
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["epoch"] == int(np.argmax([h["val_signal_mean"] for h in result.history]))
    with pytest.raises(SgnasError, match="trained on signal 'synflow', not 'supernet'"):
        train_generator(net, cost, loaders, config(epochs=3), tmp_path / "run", resume=True)
    resumed = train_generator(net, cost, loaders, config(epochs=3), tmp_path / "run",
                              resume=True, signal="synflow", signal_options=opts)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    raw = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert raw["signal_state"]["baseline"]["count"] == 3 * 3 * 2


def test_ensemble_ranks_each_sample_against_a_fixed_pool(tmp_path):
    obj = make_objective("ensemble:flops+params", SPACE, seed=3)
    assert isinstance(obj.signal, PoolRankSignal) and obj.signal.pool_size == REFERENCE_POOL
    rng = np.random.default_rng(0)
    archs = [SPACE.sample(rng) for _ in range(20)] + [FLOPS.max_arch(), FLOPS.min_arch()]
    r = obj.score(archs)
    assert np.all((r >= 0) & (r <= 1)) and r[-2] == 1.0 and r[-1] == 0.0
    # the mean over members of the fraction of the pool below (ties count half)
    fractions = []
    for name, ref in zip(("flops", "params"), obj.signal.reference):
        v = get_signal(name, space=SPACE).score(archs)
        fractions.append([(np.sum(ref < x) + 0.5 * np.sum(ref == x)) / len(ref) for x in v])
    assert r == pytest.approx(np.mean(fractions, axis=0))
    result = train_generator(FlatSupernet(), FLOPS, GeneratorLoaders(data(1) * 3),
                             config(relaxation="weighted"), tmp_path / "ens",
                             signal="ensemble:flops+params")
    meta = result.bundle.meta["signal"]
    assert meta["name"] == "ensemble:flops+params" and meta["estimator"] == "reinforce"
    assert meta["settings"]["members"] == ["flops", "params"]
    assert meta["settings"]["reference_pool"] == REFERENCE_POOL


def test_unknown_signals_are_refused(tmp_path):
    loaders = GeneratorLoaders(data(1))
    with pytest.raises(SgnasError, match="unknown signal 'accuracy'; known: .*synflow"):
        GeneratorTrainer(supernet(), FLOPS, loaders, config(), tmp_path, signal="accuracy")
    with pytest.raises(SgnasError, match="unknown signal 'snyflow'"):
        GeneratorTrainer(supernet(), FLOPS, loaders, config(), tmp_path,
                         signal="ensemble:flops+snyflow").prepare()
    with pytest.raises(SgnasError, match="signal samples"):
        config(signal_samples=0)
    assert not any(tmp_path.iterdir())


def test_cli_unknown_signal_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["train-generator", "--supernet", str(tmp_path / "missing.pt"), "--data",
               str(tmp_path), "--cost", "flops", "--signal", "accuracy"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown signal 'accuracy'" in err and "naswot" in err and "flops" in err


@pytest.mark.slow
@pytest.mark.parametrize("signal", ["naswot", "ensemble:flops+naswot"])
def test_cli_trains_on_a_proxy(image_folder, tmp_path, capsys, monkeypatch, signal):
    monkeypatch.chdir(tmp_path)  # the proxies' score cache goes to ./.sgnas_cache
    torch.manual_seed(0)
    from sgnas.evaluation.checkpoint import SUPERNET_KIND, save_checkpoint

    payload = {"space": SPACE.name, "space_fingerprint": SPACE.fingerprint,
               "forced_sampling": True, "model": UnifiedSupernet(SPACE).state_dict(), "epoch": 1}
    ckpt = save_checkpoint(tmp_path / "supernet.pt", payload, SUPERNET_KIND)
    out = tmp_path / "g"
    rc = main(["train-generator", "--supernet", str(ckpt), "--data", str(image_folder),
               "--held-out", "0.5", "--batch-size", "2", "--workers", "0", "--epochs", "1",
               "--batches-per-epoch", "2", "--eval-targets", "2", "--num-priors", "2",
               "--device", "cpu", "--no-progress", "--cost", "params", "--signal", signal,
               "--signal-samples", "2", "--signal-batch", "8", "--out", str(out)])
    assert rc == 0
    assert f"signal {signal}" in capsys.readouterr().out
    meta = load_generator(out / "last.pt").meta
    assert meta["signal"]["name"] == signal
    settings = meta["signal"]["settings"]
    proxy = settings["member_settings"][1] if "members" in settings else settings
    assert proxy["signal"] == "naswot" and proxy["batch_size"] == 8
    assert any((tmp_path / ".sgnas_cache" / "signals").iterdir())  # scores cached on disk
