import itertools

import numpy as np
import pytest

from sgnas.decode import AdditiveCost, Constraint, InfeasibleError, decode, window
from sgnas.errors import SgnasError


def problem(seed, D=4, K=5):
    rng = np.random.default_rng(seed)
    logp = np.log(rng.dirichlet(np.ones(K), size=D))
    a = AdditiveCost("latency", "ms", rng.uniform(0.1, 1.0, (D, K)), fixed=0.5, slope=1.2,
                     intercept=0.3)
    b = AdditiveCost("params", "M", rng.uniform(0.1, 1.0, (D, K)), fixed=0.1)
    return logp, a, b


def brute(logp, constraints):
    D, K = logp.shape
    best, arg = -np.inf, None
    for ch in itertools.product(range(K), repeat=D):
        if all(c.met(c.cost.of(ch)) for c in constraints):
            s = logp[np.arange(D), ch].sum()
            if s > best:
                best, arg = s, ch
    return best, arg


@pytest.mark.parametrize("seed", range(6))
def test_single_constraint_matches_enumeration(seed):
    logp, a, _ = problem(seed)
    lo_c, hi_c = a.bounds()
    target = lo_c + 0.5 * (hi_c - lo_c)
    lo, hi = window(target, 0.05)
    cons = [Constraint(a, hi, lo)]
    best, _ = brute(logp, cons)
    out = decode(logp, cons)
    assert lo - 1e-9 <= a.of(out.choice) <= hi + 1e-9
    assert out.logprob == pytest.approx(best, abs=1e-9)
    assert out.logprob_given_up >= -1e-12


@pytest.mark.parametrize("seed", range(4))
def test_second_constraint_is_met(seed):
    logp, a, b = problem(seed)
    lo_c, hi_c = a.bounds()
    target = lo_c + 0.6 * (hi_c - lo_c)
    lo, hi = window(target, 0.05)
    free = decode(logp, [Constraint(a, hi, lo)])
    cap = b.of(free.choice) * 0.9
    cons = [Constraint(a, hi, lo), Constraint(b, cap)]
    best, ref = brute(logp, cons)
    if ref is None:
        with pytest.raises(InfeasibleError, match="achievable region"):
            decode(logp, cons)
        return
    out = decode(logp, cons)
    assert b.of(out.choice) <= cap + 1e-9 and lo - 1e-9 <= a.of(out.choice) <= hi + 1e-9
    assert out.logprob == pytest.approx(best, abs=1e-9)  # exact, not only near the optimum
    assert out.gap == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_an_inactive_second_constraint_keeps_the_exact_optimum(seed):
    """A second bound the single-constraint optimum already meets changes nothing: the answer is
    the enumerated optimum under both."""
    logp, a, b = problem(seed)
    lo_c, hi_c = a.bounds()
    lo, hi = window(lo_c + 0.6 * (hi_c - lo_c), 0.05)
    free = decode(logp, [Constraint(a, hi, lo)])
    cons = [Constraint(a, hi, lo), Constraint(b, b.of(free.choice) * 1.001)]
    best, _ = brute(logp, cons)
    out = decode(logp, cons)
    assert out.logprob == pytest.approx(best, abs=1e-9) == free.logprob


def test_infeasible_messages_give_the_region():
    logp, a, b = problem(0)
    lo_c, hi_c = a.bounds()
    with pytest.raises(InfeasibleError, match="ranges over"):
        decode(logp, [Constraint(a, lo_c * 0.5, lo_c * 0.4)])
    target = hi_c * 0.98
    lo, hi = window(target, 0.02)
    with pytest.raises(InfeasibleError, match="params >= "):
        decode(logp, [Constraint(a, hi, lo), Constraint(b, b.bounds()[0] * 1.01)])


def test_masked_candidates_are_never_chosen_and_bad_eps():
    logp, a, _ = problem(1)
    logp[:, 0] = -np.inf
    lo_c, hi_c = a.bounds(np.isfinite(logp))
    t = 0.5 * (lo_c + hi_c)
    out = decode(logp, [Constraint(a, t, t * 0.95)])
    assert (out.choice != 0).all()
    for eps in (0.0, -0.1, 0.5, 0.7):
        with pytest.raises(SgnasError, match="eps"):
            window(1.0, eps)


def test_enumerated_decoding_matches_brute_force_for_non_additive_costs():
    from sgnas.decode import decode_enumerated

    rng = np.random.default_rng(0)
    logp = np.log(rng.dirichlet(np.ones(5), size=3))
    choices = np.array(list(itertools.product(range(5), repeat=3)))
    values = rng.uniform(1.0, 2.0, size=(len(choices), 1))  # one cost per cell, not additive
    out = decode_enumerated(logp, choices, values, [(1.4, 1.5)])
    scores = logp[np.arange(3), choices].sum(1)
    ok = (values[:, 0] >= 1.4) & (values[:, 0] <= 1.5)
    assert out.logprob == pytest.approx(scores[ok].max())
    assert 1.4 <= out.costs[0] <= 1.5
    with pytest.raises(InfeasibleError, match="ranges over"):
        decode_enumerated(logp, choices, values, [(None, 0.5)], labels=["latency"])
