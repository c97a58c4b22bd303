"""Exact decoding against brute force: every architecture of the ``tiny`` space (80^4)."""

import itertools

import numpy as np
import pytest

from sgnas.costs import make_cost
from sgnas.decode import (AdditiveCost, Constraint, InfeasibleError, decode, decode_brute_force,
                          window)
from sgnas.errors import SgnasError
from sgnas.space import SPACES


@pytest.fixture(scope="module")
def tiny_costs():
    space = SPACES["tiny"]()
    flops = AdditiveCost.from_cost(make_cost("flops", space))
    params = AdditiveCost.from_cost(make_cost("params", space))
    rng = np.random.default_rng(0)
    # a latency-like cost: FLOPs times a per-entry factor, with a linear calibration
    lat = AdditiveCost("latency", "ms", flops.table * rng.uniform(0.5, 1.5, flops.table.shape) * 2
                       + 0.01, fixed=0.2, slope=1.1, intercept=0.05)
    return lat, flops, params


def random_logp(rng, shape):
    logits = rng.normal(size=shape) * rng.choice([0.3, 1.0, 3.0])
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def check(logp, cons):
    """``decode`` equals brute force: same log-probability, a feasible choice, or both infeasible."""
    ref = decode_brute_force(logp, cons)
    if ref is None:
        with pytest.raises(InfeasibleError):
            decode(logp, cons)
        return False
    out = decode(logp, cons)
    assert all(c.met(c.cost.of(out.choice)) for c in cons)
    assert out.logprob == pytest.approx(ref.logprob, abs=1e-9)
    assert out.gap == 0.0
    return True


def test_brute_force_reference_matches_plain_enumeration():
    rng = np.random.default_rng(3)
    for _ in range(20):
        D, K = int(rng.integers(1, 5)), int(rng.integers(2, 6))
        logp = random_logp(rng, (D, K))
        logp[rng.random((D, K)) < 0.2] = -np.inf
        logp[:, 0] = np.log(0.1)
        a = AdditiveCost("a", "ms", rng.uniform(0.1, 1.0, (D, K)), fixed=0.5, slope=1.2,
                         intercept=0.3)
        b = AdditiveCost("b", "M", rng.uniform(0.1, 1.0, (D, K)), fixed=0.1)
        lo, hi = window(a.bounds()[0] + rng.uniform() * np.ptp(a.bounds()), 0.1)
        cons = [Constraint(a, hi, lo), Constraint(b, b.bounds()[0] + rng.uniform() * np.ptp(b.bounds()))]
        best = -np.inf
        for ch in itertools.product(range(K), repeat=D):
            if all(c.met(c.cost.of(ch)) for c in cons):
                best = max(best, logp[np.arange(D), ch].sum())
        ref = decode_brute_force(logp, cons)
        assert (ref is None and best == -np.inf) or ref.logprob == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize("block", range(4))
def test_window_and_upper_bound_match_brute_force_on_tiny(tiny_costs, block):
    """Random logits, a latency window (0.05% to 5% wide) and a FLOPs or params cap."""
    lat, flops, params = tiny_costs
    rng = np.random.default_rng(100 + block)
    feasible = 0
    for i in range(12):
        logp = random_logp(rng, (4, 80))
        lo_c, hi_c = lat.bounds()
        lo, hi = window(lo_c + rng.uniform(0.02, 0.98) * (hi_c - lo_c),
                        rng.choice([0.0005, 0.005, 0.01, 0.05]))
        other = (flops, params)[i % 2]
        o_lo, o_hi = other.bounds()
        cons = [Constraint(lat, hi, lo), Constraint(other, o_lo + rng.uniform(0.05, 0.9) * (o_hi - o_lo))]
        feasible += check(logp, cons)
        check(logp, cons[:1])
    assert feasible >= 4  # the cases are not all infeasible


def test_two_caps_and_masked_candidates_match_brute_force_on_tiny(tiny_costs):
    lat, flops, params = tiny_costs
    rng = np.random.default_rng(7)
    for i in range(8):
        logp = random_logp(rng, (4, 80))
        logp[rng.random((4, 80)) < 0.5] = -np.inf
        logp[:, 3] = np.log(0.01)
        lo_c, hi_c = lat.bounds()
        lo, hi = window(lo_c + rng.uniform(0.2, 0.9) * (hi_c - lo_c), 0.02)
        caps = [Constraint(c, c.bounds()[0] + rng.uniform(0.3, 1.0) * np.ptp(c.bounds()))
                for c in (flops, params)]
        check(logp, [Constraint(lat, hi, lo), *caps])
        check(logp, [Constraint(lat, hi), caps[1]])  # an upper bound alone drives the grid


@pytest.mark.parametrize("edge", ["upper_on_arch", "lower_on_arch", "top_of_range",
                                  "bottom_of_range"])
def test_single_window_is_exact_at_its_edges(tiny_costs, edge):
    """Very narrow windows (down to 1e-6 relative) whose edge sits on an architecture's exact
    cost or on the end of the cost range."""
    rng = np.random.default_rng(["upper_on_arch", "lower_on_arch", "top_of_range",
                                 "bottom_of_range"].index(edge))
    for i in range(30):
        cost = tiny_costs[i % 3]
        logp = random_logp(rng, (4, 80))
        v = cost.of(rng.integers(0, 80, 4))
        lo_c, hi_c = cost.bounds()
        eps = rng.choice([1e-6, 1e-4, 1e-3])
        lo, hi = {"upper_on_arch": (v * (1 - eps), v), "lower_on_arch": (v, v * (1 + eps)),
                  "top_of_range": (hi_c * (1 - eps), hi_c),
                  "bottom_of_range": (lo_c, lo_c * (1 + eps))}[edge]
        assert check(logp, [Constraint(cost, hi, lo)])  # an architecture sits on the edge


def test_node_budget_returns_a_certified_gap(tiny_costs):
    lat, flops, _ = tiny_costs
    rng = np.random.default_rng(11)
    logp = random_logp(rng, (4, 80))
    lo_c, hi_c = lat.bounds()
    lo, hi = window(lo_c + 0.5 * (hi_c - lo_c), 0.05)
    cons = [Constraint(lat, hi, lo), Constraint(flops, flops.bounds()[0] + 0.4 * np.ptp(flops.bounds()))]
    ref = decode_brute_force(logp, cons)
    full = decode(logp, cons)
    assert full.logprob == pytest.approx(ref.logprob, abs=1e-9) and full.nodes > 2
    for budget in range(1, full.nodes):
        try:
            out = decode(logp, cons, max_nodes=budget)
        except SgnasError as exc:
            assert "max_nodes" in str(exc)
            continue
        assert all(c.met(c.cost.of(out.choice)) for c in cons)
        assert out.logprob + out.gap >= ref.logprob - 1e-9  # the gap is an honest bound


def test_bad_logp_is_one_line_error():
    a = AdditiveCost("a", "ms", np.ones((2, 3)))
    with pytest.raises(SgnasError, match="finite or -inf"):
        decode(np.array([[0.0, np.nan, 0.0], [0.0, 0.0, 0.0]]), [Constraint(a, 3.0, 2.0)])
    with pytest.raises(SgnasError, match="max_archs"):
        decode_brute_force(np.zeros((2, 3)), [Constraint(a, 3.0)], max_archs=5)
