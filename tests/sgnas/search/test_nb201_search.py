"""Random and evolutionary search on NB201 cells, and the ground-truth benchmark helpers."""

import numpy as np
import pytest

from sgnas.errors import SgnasError
from sgnas.nb201.constraint import CellCost, Constraint, oracle
from sgnas.nb201.cost import flops_table
from sgnas.nb201.groundtruth import GroundTruth
from sgnas.nb201.space import NB201Space
from sgnas.search import EvolutionConfig, crossover, evolution_search, mutate, random_search
from sgnas.search.nb201_bench import SearchBudget, score_pick, search_pick, summarise

SPACE = NB201Space()
FLOPS = CellCost(flops_table(), "flops", "MFLOPs")


def conv_score(cell):
    """Synthetic: more 3x3 convs score higher, a 1x1 conv a little."""
    return sum({3: 1.0, 2: 0.3}.get(o, 0.0) for o in cell.ops) / 6


def test_mutation_changes_at_least_one_edge_and_crossover_mixes_parents():
    rng = np.random.default_rng(0)
    a, b = SPACE.sample(rng), SPACE.sample(rng)
    for prob in (0.0, 1 / 6, 1.0):
        for _ in range(50):
            child = mutate(SPACE, a, prob, rng)
            changed = sum(x != y for x, y in zip(child.ops, a.ops))
            assert changed >= 1 and (prob < 1 or changed == 6)
    assert sum(sum(x != y for x, y in zip(mutate(SPACE, a, 0.0, rng).ops, a.ops))
               for _ in range(20)) == 20  # prob 0: exactly one edge
    for _ in range(50):
        child = crossover(SPACE, a, b, rng)
        assert all(c in (x, y) for c, x, y in zip(child.ops, a.ops, b.ops))


def test_searches_on_cells_respect_the_constraint():
    target = 40.0
    res = random_search(SPACE, FLOPS, conv_score, target, n=30, rng=np.random.default_rng(1))
    assert res.evaluations == 30 and all(c["cost"] <= target for c in res.candidates)
    cfg = EvolutionConfig(population=10, top_k=3, generations=4, mutants=5, crossovers=3)
    evo = evolution_search(SPACE, FLOPS, conv_score, target, cfg, rng=np.random.default_rng(1))
    assert all(c["cost"] <= target for c in evo.candidates)
    assert len({c["arch"] for c in evo.candidates}) == evo.evaluations <= 40
    assert evo.best_accuracy >= max(c["accuracy"] for c in evo.candidates[:10])
    assert FLOPS.exact(evo.best) <= target


def test_budget_is_equal_across_methods():
    budget = SearchBudget(evaluations=12, generations=3)
    cfg = budget.evolution_config()
    assert cfg.population * cfg.generations == 12
    calls = {}
    for method in ("random", "evolution"):
        seen = set()

        def score(cell, seen=seen):
            seen.add(cell)
            return conv_score(cell)

        pick = search_pick(method, FLOPS, 60.0, score, budget, seed=0)
        calls[method] = (pick.evaluations, len(seen))
        assert FLOPS.exact(pick.cell) <= 60.0
    assert calls["random"] == (12, 12) and calls["evolution"][0] == calls["evolution"][1] <= 12
    with pytest.raises(SgnasError, match="budget"):
        SearchBudget(1).evolution_config()


def test_generator_hook_and_scoring(tmp_path):
    from tests.sgnas.nb201.synthetic_bench import write_bench

    gt = GroundTruth.load(write_bench(tmp_path / "b"), devices=["gpu_1"])
    con = Constraint(CellCost(gt.latency["gpu_1"], "gpu_1"), 3.0)

    def generate(table, target):  # the oracle by latency itself: cheapest-best under target
        return oracle(gt.acc("cifar10_test_acc"), Constraint(CellCost(table), target))[0]

    pick = search_pick("generator", con.cost, con.max_value, None, SearchBudget(), 0, generate=generate)
    row = score_pick(gt, con, pick.cell)
    assert row["holds"] and row["cifar10_regret"] == 0.0 and row["oracle_arch"] == row["arch"]
    assert row["cifar100_regret"] >= 0 and row["cost"] <= 3.0
    assert row["cifar10_feasible_mean"] < row["cifar10_oracle"]
    names = []

    def named(table, target, name):
        names.append(name)
        return generate(table, target)

    assert search_pick("generator", con.cost, 3.0, None, SearchBudget(), 0, generate=named).cell \
        == pick.cell and names == ["gpu_1"]
    with pytest.raises(SgnasError, match="needs a generate"):
        search_pick("generator", con.cost, 3.0, None, SearchBudget(), 0)
    with pytest.raises(SgnasError, match="unknown method"):
        search_pick("bayes", con.cost, 3.0, conv_score, SearchBudget(), 0)


def test_summarise_means_over_constraints_then_seeds():
    rows = [{"method": "m", "seed": s, "cifar10": v, "cifar100": 0.0, "imagenet16_120": 0.0,
             "cifar10_regret": 1.0, "cifar100_regret": 0.0, "imagenet16_120_regret": 0.0,
             "cifar10_oracle": 95.0, "cifar10_feasible_mean": 80.0, "holds": True,
             "evaluations": 4, "seconds": 2.0}
            for s, vals in ((0, (90.0, 92.0)), (1, (93.0, 95.0))) for v in vals]
    out = summarise(rows)["m"]
    assert out["cifar10"]["mean"] == 92.5 and out["cifar10"]["std"] == pytest.approx(2.1213, abs=1e-4)
    assert out["seeds"] == 2 and out["constraints"] == 2 and out["holds"]["mean"] == 1.0
