"""Zero-cost proxies: definitions against direct computations, determinism, dead cells, spaces."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from sgnas.errors import SgnasError
from sgnas.signals.proxies import PROXIES, ProxyRunner, check_names


def _toy(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)


def test_definitions_match_direct_computation(batch):
    x, y = batch
    model = _toy()
    runner = ProxyRunner(model, x, y, PROXIES)
    got = runner.run(model, runner.syn)
    runner.close()

    ref = _toy()
    # naswot: sum over ReLUs of the same-code counts, log-determinant
    codes = []
    ref[2].register_forward_hook(lambda m, i, o: codes.append((o > 0).float().flatten(1)))
    ref[4].register_forward_hook(lambda m, i, o: codes.append((o > 0).float().flatten(1)))
    xx = x.clone().requires_grad_(True)
    out = ref(xx)
    k = sum(c @ c.t() + (1 - c) @ (1 - c).t() for c in codes).double()
    assert got["naswot"] == pytest.approx(float(torch.linalg.slogdet(k)[1]), rel=1e-9)
    # jacob_cov
    (jac,) = torch.autograd.grad(out.sum(), xx, retain_graph=True)
    v = np.linalg.eigvalsh(np.corrcoef(jac.flatten(1).double().numpy()))
    assert got["jacob_cov"] == pytest.approx(-np.sum(np.log(np.abs(v) + 1e-5) + 1 / (np.abs(v) + 1e-5)),
                                             rel=1e-6)
    # snip and grad_norm over conv and linear weights
    loss = nn.functional.cross_entropy(out, y)
    ws = [ref[0].weight, ref[3].weight, ref[7].weight]
    gs = torch.autograd.grad(loss, ws)
    assert got["snip"] == pytest.approx(float(sum((w.detach() * g).abs().sum() for w, g in zip(ws, gs))),
                                        rel=1e-5)
    assert got["grad_norm"] == pytest.approx(float(sum(g.norm() for g in gs)), rel=1e-5)
    # synflow: |weights|, all-ones input, float64, BN in inference mode
    syn = _toy().double().eval()
    with torch.no_grad():
        for p in syn.parameters():
            p.abs_()
    r = syn(torch.ones(1, 3, 8, 8, dtype=torch.float64)).sum()
    ps = list(syn.parameters())
    gs = torch.autograd.grad(r, ps)
    assert got["synflow"] == pytest.approx(math.log(float(sum((p.detach() * g).sum() for p, g in zip(ps, gs)))),
                                           rel=1e-9)


def test_bn_statistics_untouched(batch):
    x, y = batch
    model = _toy()
    before = model[1].running_mean.clone()
    runner = ProxyRunner(model, x, y, ["snip", "naswot"])
    runner.run(model)
    assert torch.equal(model[1].running_mean, before)


def test_unknown_proxy_and_missing_labels(batch):
    with pytest.raises(SgnasError, match="unknown zero-cost proxy 'foo'; known: synflow"):
        check_names(["foo"])
    with pytest.raises(SgnasError, match="labels"):
        ProxyRunner(_toy(), batch[0], None, ["snip"])


def test_nb201_scores_deterministic_seeded_and_dead_lowest():
    from sgnas.nb201.space import Cell
    from sgnas.signals.compute import NB201Scorer

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)
    cells = [Cell.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"),
             Cell.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
             Cell.parse("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")]
    a = NB201Scorer(PROXIES, x, y, seed=3).score(cells)
    b = NB201Scorer(PROXIES, x, y, seed=3).score(cells)
    c = NB201Scorer(PROXIES, x, y, seed=4).score(cells)
    for n in PROXIES:
        np.testing.assert_array_equal(a[n], b[n])
        assert np.isneginf(a[n][1]) and np.isfinite(a[n][[0, 2]]).all(), n
    assert any(a[n][0] != c[n][0] for n in PROXIES)


def test_unified_space_networks():
    from sgnas.signals import get_signal
    from sgnas.space import get_space

    space = get_space("tiny")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(3)]
    x = torch.randn(4, 3, space.input_size, space.input_size, generator=torch.Generator().manual_seed(0))
    for name in PROXIES:
        s = get_signal(name, data=x, batch_size=4, cache_dir=False)
        v = s.score(archs)
        assert v.shape == (3,) and np.isfinite(v).all(), name
        np.testing.assert_array_equal(v, s.score([str(a) for a in archs]))
