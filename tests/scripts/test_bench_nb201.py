"""scripts/bench_nb201.py on a synthetic benchmark folder: the device study, the generator hook path
(no supernet needed) and its bad-input errors."""

from __future__ import annotations

import json

import pytest

from sgnas.errors import SgnasError

from tests.sgnas.nb201.synthetic_bench import write_bench

from .test_benchmarks import load_script, one_json_line

#: A generator that always answers the cheapest cell (every edge ``none``): feasible under every
#: target, far from the oracle, so the bench's regret has to be computed, not assumed zero.
HOOK = '''
def cheapest(table, target):
    return "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
'''
CHEAPEST = (0, 0, 0, 0, 0, 0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_bench(tmp_path_factory.mktemp("nb201"))


def test_device_study(folder, tmp_path, capsys):
    bench = load_script("bench_nb201")
    assert bench.main(["--device-study", "--bench", str(folder), "--study-devices",
                       "gpu_1,cpu_a,phone", "--figures", str(tmp_path)]) == 0
    rec = one_json_line(capsys)
    assert rec["devices"] == ["gpu_1", "cpu_a", "phone"] and rec["quantile"] == 0.3
    assert all(rec["regret"][d][d] == 0 for d in rec["devices"])
    assert (tmp_path / "nb201_device_study.png").stat().st_size > 0
    assert (tmp_path / "nb201_device_oracles.png").stat().st_size > 0


def test_generator_hook_against_ground_truth(folder, tmp_path, capsys, monkeypatch):
    import numpy as np

    from sgnas.nb201.groundtruth import GroundTruth

    (tmp_path / "nb201_hook.py").write_text(HOOK)
    monkeypatch.syspath_prepend(str(tmp_path))
    bench = load_script("bench_nb201")
    out = tmp_path / "rows.json"
    assert bench.main(["--bench", str(folder), "--devices", "gpu_1", "--methods", "generator",
                       "--generator", "nb201_hook:cheapest", "--seeds", "2", "--out", str(out),
                       "--figures", str(tmp_path / "fig")]) == 0
    rec = one_json_line(capsys)
    gen = rec["summary"]["generator"]
    assert gen["seeds"] == 2 and gen["constraints"] == 10  # FLOPs + gpu_1, 5 targets each
    assert rec["per_family"]["gpu_1/generator"]["constraints"] == 5
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 2 * 11 and {r["family"] for r in rows} == {"flops", "gpu_1", "unconstrained"}
    # every row's regret is the best feasible accuracy of the ground truth minus the pick's,
    # with the feasible set computed here from the tables themselves
    gt = GroundTruth.load(str(folder), ["cifar10_test_acc"], devices=("gpu_1",))
    acc = gt.acc("cifar10_test_acc")
    costs = {"flops": gt.flops, "gpu_1": gt.latency["gpu_1"]}
    for r in rows:
        assert r["arch"] == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|" and r["holds"]
        feasible = acc if r["family"] == "unconstrained" else acc[costs[r["family"]] <= r["target"]]
        assert r["cifar10_regret"] == pytest.approx(float(feasible.max()) - float(acc[CHEAPEST]))
    assert max(r["cifar10_regret"] for r in rows) > 0
    regrets = [r["cifar10_regret"] for r in rows if r["family"] != "unconstrained"]
    assert gen["cifar10_regret"]["mean"] == pytest.approx(float(np.mean(regrets)))
    assert (tmp_path / "fig" / "nb201_fronts.png").stat().st_size > 0


@pytest.mark.parametrize("args, message", [
    (["--methods", "generator"], "needs --generator"),
    (["--methods", "bayes"], "unknown method 'bayes'"),
    (["--methods", "generator", "--generator", "no_such_module:f"], "no_such_module"),
    (["--devices", "tpu", "--methods", "generator", "--generator", "json:loads"], "no column 'tpu_ms'"),
])
def test_bad_input_exits_2(folder, args, message, capsys):
    bench = load_script("bench_nb201")
    assert bench.main(["--bench", str(folder), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_missing_tables_exit_2(tmp_path, capsys):
    bench = load_script("bench_nb201")
    assert bench.main(["--device-study", "--bench", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_score_cache_reuse_and_mismatch(tmp_path):
    from sgnas.errors import SgnasError
    from sgnas.search import InheritedAccuracy

    bench = load_script("bench_nb201")
    arch = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"settings": {"eval_images": 128}, "scores": {arch: 0.25}}))
    ev = InheritedAccuracy(score=lambda cell: 0.0)
    bench.load_score_cache(str(path), {"eval_images": 128}, ev)
    from sgnas.nb201.space import Cell

    assert ev(Cell.parse(arch)) == 0.25 and ev.evaluations == 0 and ev.cache_hits == 1
    with pytest.raises(SgnasError, match="other evaluator settings"):
        bench.load_score_cache(str(path), {"eval_images": 256}, ev)
    path.write_text("{not json")
    with pytest.raises(SgnasError, match="cannot read score cache"):
        bench.load_score_cache(str(path), {"eval_images": 128}, ev)


def test_score_cache_carries_the_measured_evaluation_time(tmp_path):
    from sgnas.search import InheritedAccuracy

    bench = load_script("bench_nb201")
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"settings": {}, "eval_time_s": 6.0, "evaluations": 3, "scores": {}}))
    ev = InheritedAccuracy(score=lambda cell: 0.0)
    bench.load_score_cache(str(path), {}, ev)
    assert ev.stats()["seconds_per_evaluation"] == 2.0


def _score_csv(folder, path, noise):
    """A per-cell score table: the synthetic test accuracy plus ``noise`` x uniform noise."""
    import csv

    import numpy as np

    rng = np.random.default_rng(1)
    with open(folder / "nb201.csv", newline="") as fh, open(path, "w", newline="") as out:
        rows = csv.DictReader(fh)
        w = csv.writer(out)
        w.writerow(["arch_str", "score"])
        for r in rows:
            w.writerow([r["arch_str"], float(r["cifar10_test_acc"]) + noise * rng.random()])
    return path


def test_signal_protocol_scores_signals_beside_the_baselines(folder, tmp_path, capsys):
    bench = load_script("bench_nb201")
    exact = _score_csv(folder, tmp_path / "exact.csv", 0.0)
    noisy = _score_csv(folder, tmp_path / "noisy.csv", 5.0)
    assert bench.main(["--bench", str(folder), "--signals",
                       f"flops,oracle_like={exact},noisy={noisy};{noisy},ens=ensemble:flops+noisy",
                       "--budget", "20", "--boot", "5"]) == 0
    rec = one_json_line(capsys)
    assert rec["targets"] == 4 * 5 and rec["baselines"]["oracle"] == 0.0  # FLOPs + 3 devices
    sig = rec["signals"]
    assert sig["oracle_like"]["exhaustive"]["mean"] == 0.0  # the accuracy itself picks the oracle
    assert sig["oracle_like"]["tau"][0]["kendall_tau"] > sig["noisy"]["tau"][0]["kendall_tau"]
    assert sig["noisy"]["seeds"] == 2 and sig["ens"]["seeds"] == 2
    assert sig["flops"]["exhaustive"]["mean"] == rec["baselines"]["largest_feasible_flops"]["mean"]
    for s in sig.values():  # searches see a sample of the feasible cells: never beat exhaustive
        assert set(s["searches"]) == {"random", "evolution"}
    assert sig["oracle_like"]["searches"]["random"]["gap_to_exhaustive"] >= 0


def test_signal_protocol_rejects_an_unknown_signal(folder, capsys):
    bench = load_script("bench_nb201")
    assert bench.main(["--bench", str(folder), "--signals", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown signal 'bogus'" in err[0]


def test_generator_hook_shipped_serves_the_shipped_generators_under_the_target():
    import numpy as np

    script = load_script("bench_nb201")
    generate = script.load_generator("shipped")
    from sgnas.space import get_space

    space = get_space("nb201")
    rng = np.random.default_rng(0)
    table = rng.uniform(1.0, 3.0, (5,) * 6)
    target = float(np.quantile(table, 0.5))
    cell = generate(table, target)
    cell = space.parse(cell) if isinstance(cell, str) else cell
    assert table[tuple(space.indices_of(cell))] <= target and not space.is_degenerate(cell)
    with pytest.raises(SgnasError, match="MODULE:FUNCTION"):
        script.load_generator("nonsense")
