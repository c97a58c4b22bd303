import numpy as np
import pytest

from sgnas.errors import SgnasError
from sgnas.search import (
    EvolutionConfig,
    SearchResult,
    crossover,
    evolution_search,
    mutate,
    random_search,
    sample_layer,
)
from sgnas.space import Architecture

SMALL = EvolutionConfig(population=12, top_k=4, generations=5, mutants=6, crossovers=6)


def test_sample_layer_covers_expansions_and_kernels(tiny):
    rng = np.random.default_rng(0)
    configs = [sample_layer(tiny, rng) for _ in range(2000)]
    assert all(c in tiny.config_index for c in configs)
    assert {len(c) for c in configs} == {2, 3, 4, 5, 6}
    # e uniform first (SPOS), so e = 2 is as frequent as e = 6 although it has fewer configs
    counts = np.bincount([len(c) for c in configs], minlength=7)[2:]
    assert counts.min() > 300


def test_mutate_changes_layers_with_probability(tiny):
    rng = np.random.default_rng(1)
    arch = tiny.sample(rng)
    assert mutate(tiny, arch, 0.0, rng) == arch
    changed = 0
    for _ in range(200):
        child = mutate(tiny, arch, 1.0, rng)
        tiny.validate(child)
        changed += child != arch
    assert changed > 190


def test_crossover_takes_each_layer_from_a_parent(tiny):
    rng = np.random.default_rng(2)
    a, b = tiny.sample(rng), tiny.sample(rng)
    seen_a = seen_b = False
    for _ in range(50):
        child = crossover(tiny, a, b, rng)
        tiny.validate(child)
        for ca, cb, cc in zip(a.layers, b.layers, child.layers):
            assert cc in (ca, cb)
        seen_a |= child.layers[0] == a.layers[0]
        seen_b |= child.layers[0] == b.layers[0]
    assert seen_a and seen_b


def test_every_evaluated_candidate_meets_the_constraint(tiny, kernel_cost, synthetic):
    score, _ = synthetic
    costs = []

    def evaluate(arch):
        costs.append(kernel_cost.exact(arch))
        return score(arch)

    result = evolution_search(tiny, kernel_cost, evaluate, 300.0, SMALL, np.random.default_rng(0))
    assert costs and max(costs) <= 300.0
    assert result.evaluations == len(costs)  # each distinct candidate evaluated once
    assert len({c["arch"] for c in result.candidates}) == len(result.candidates)
    assert result.best_cost <= 300.0
    assert result.best_cost == kernel_cost.exact(result.best)
    assert len(result.history) == SMALL.generations
    assert [h["generation"] for h in result.history] == list(range(SMALL.generations))
    best_so_far = [h["best_so_far"] for h in result.history]
    assert best_so_far == sorted(best_so_far)
    assert result.best_accuracy == best_so_far[-1] == max(c["accuracy"] for c in result.candidates)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evolution_finds_near_optimum_and_beats_random(tiny, kernel_cost, synthetic, seed):
    score, optimum = synthetic
    best = optimum(tiny, 500.0)
    evo = evolution_search(tiny, kernel_cost, score, 500.0, EvolutionConfig(),
                           np.random.default_rng(seed))
    rnd = random_search(tiny, kernel_cost, score, 500.0, n=evo.evaluations,
                        rng=np.random.default_rng(seed))
    assert evo.evaluations == rnd.evaluations
    assert evo.best_accuracy >= best - 0.02
    assert evo.best_accuracy <= best + 1e-9
    assert evo.best_accuracy > rnd.best_accuracy


def test_same_seed_same_result(tiny, kernel_cost, synthetic):
    score, _ = synthetic
    a = evolution_search(tiny, kernel_cost, score, 400.0, SMALL, np.random.default_rng(5))
    b = evolution_search(tiny, kernel_cost, score, 400.0, SMALL, np.random.default_rng(5))
    assert a.best == b.best and a.candidates == b.candidates


def test_result_json_round_trip(tiny, kernel_cost, synthetic, tmp_path):
    score, _ = synthetic
    result = evolution_search(tiny, kernel_cost, score, 400.0, SMALL, np.random.default_rng(3))
    back = SearchResult.from_json(result.to_json())
    assert back == result
    assert isinstance(back.best, Architecture)
    path = tmp_path / "result.json"
    result.save(path)
    assert SearchResult.load(path) == result
    assert str(result.best) in result.summary()


def test_target_below_minimum_names_the_range(tiny, kernel_cost, synthetic):
    score, _ = synthetic
    with pytest.raises(SgnasError, match=r"achievable range 72 to 1176 u"):
        evolution_search(tiny, kernel_cost, score, 50.0, SMALL, np.random.default_rng(0))


def test_target_at_minimum_exhausts_gracefully(tiny, kernel_cost, synthetic):
    score, _ = synthetic
    # exactly one architecture (all layers 33) meets the minimum: the initial population cannot fill
    cfg = EvolutionConfig(population=2, top_k=1, generations=2, mutants=1, crossovers=1,
                          max_sample_tries=50)
    with pytest.raises(SgnasError, match="cannot sample"):
        evolution_search(tiny, kernel_cost, score, 72.0, cfg, np.random.default_rng(0))


@pytest.mark.parametrize(
    "bad",
    [dict(population=0), dict(mutants=40, crossovers=20), dict(mutation_prob=1.5),
     dict(mutants=-1)],
)
def test_config_validation(bad):
    with pytest.raises(SgnasError):
        EvolutionConfig(**bad).validate()


def test_on_generation_callback(tiny, kernel_cost, synthetic):
    score, _ = synthetic
    seen = []
    result = evolution_search(tiny, kernel_cost, score, 400.0, SMALL, np.random.default_rng(4),
                              on_generation=seen.append)
    assert seen == result.history
    assert seen[0]["random"] == SMALL.population
    assert all(h["population"] <= SMALL.population for h in seen)
