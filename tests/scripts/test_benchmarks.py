"""Smoke tests of the benchmark scripts on the tiny space: they run and print one parsable JSON line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_json_line(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


def test_bench_supernet_params_and_throughput(capsys):
    bench = load_script("bench_supernet")
    assert bench.main(["--space", "tiny", "--sections", "params,throughput", "--batch-size", "2",
                       "--steps", "1", "--warmup", "0", "--threads", "1", "--device", "cpu"]) == 0
    record = one_json_line(capsys)
    assert record["space"] == "tiny" and record["params"]["space"] == "tiny"
    assert 0 < record["params"]["ratio_unified_greedynas13"] < 1
    tp = record["throughput"]
    assert tp["data"] == "synthetic" and tp["device"] == "cpu" and tp["threads"] == 1
    assert tp["training"]["images_per_s"] > 0
    assert tp["inference"]["supernet_path_images_per_s"] > 0
    assert tp["inference"]["standalone_images_per_s"] > 0
    assert tp["rss_peak_mib"] > 10
    assert record["machine"]["torch"] == str(torch.__version__)


def test_bench_supernet_params_only_keeps_its_default_space(capsys):
    bench = load_script("bench_supernet")
    assert bench.main(["--sections", "params"]) == 0
    record = one_json_line(capsys)
    assert record["space"] == "imagenet" and "throughput" not in record
    with pytest.raises(SystemExit):
        bench.main(["--sections", "nope"])


def _tiny_lut(path: Path):
    from sgnas.lut import EntryStats, Lut, save_lut
    from sgnas.space import get_space

    space = get_space("tiny")
    rng = np.random.default_rng(0)
    entries = {}
    for key in space.all_keys():
        v = float(rng.uniform(0.05, 0.5))
        entries[key] = EntryStats(v, v, v, 5, 0.0)
    lut = Lut(space.name, space.fingerprint, {"name": "cpu", "backend": "onnxruntime"}, entries,
              complete=True)
    save_lut(lut, path)
    return lut


@pytest.fixture(scope="module")
def artifacts(image_folder, tmp_path_factory):
    """A 1-step tiny supernet, a hand-made LUT and a generator trained 1 epoch x 2 batches."""
    from sgnas.costs import LatencyCost
    from sgnas.generator import GeneratorConfig
    from sgnas.space import get_space
    from sgnas.train.checkpoint import load_supernet
    from sgnas.train.data import DataConfig
    from sgnas.train.generator import GeneratorLoaders, GeneratorTrainConfig, train_generator
    from sgnas.train.supernet import SupernetTrainConfig, train_supernet

    tmp = tmp_path_factory.mktemp("bench")
    space = get_space("tiny")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ckpt = train_supernet(
            SupernetTrainConfig(space="tiny", epochs=1, max_steps_per_epoch=1, paths_per_step=1,
                                device="cpu", progress=False),
            DataConfig(root=str(image_folder), batch_size=2, workers=0, held_out=4),
            tmp / "supernet",
        )
        lut = _tiny_lut(tmp / "lut.json")
        cost = LatencyCost(lut, space)
        model, _ = load_supernet(ckpt)
        g = torch.Generator().manual_seed(0)
        batches = [(torch.randn(2, 3, 16, 16, generator=g), torch.randint(0, 2, (2,), generator=g))
                   for _ in range(2)]
        gen = tmp / "gen.pt"
        train_generator(model, cost, GeneratorLoaders(batches),
                        GeneratorTrainConfig(epochs=1, batches_per_epoch=2, eval_targets=2,
                                             prior_search_steps=20, device="cpu", progress=False),
                        gen, gen_cfg=GeneratorConfig(num_priors=3))
    finally:
        torch.set_num_threads(threads)
    return {"supernet": ckpt, "lut": tmp / "lut.json", "generator": gen, "data": image_folder,
            "cost": cost}


def bench_args(a: dict, *extra: str) -> list[str]:
    return ["--supernet", str(a["supernet"]), "--generator", str(a["generator"]),
            "--lut", str(a["lut"]), "--data", str(a["data"]), "--calib-batches", "1",
            "--eval-batches", "1", "--batch-size", "2", "--workers", "0", "--device", "cpu",
            "--threads", "1", *extra]


@pytest.mark.slow
def test_bench_generator_reports_tracking_cost_and_accuracy(artifacts, capsys):
    from sgnas.space import load_architecture

    wall = torch.load(artifacts["generator"], weights_only=True)["wall_time_s"]
    assert wall > 0
    bench = load_script("bench_generator")
    assert bench.main(bench_args(artifacts, "--no-measure", "--population", "4", "--generations",
                                 "2", "--mutants", "1", "--crossovers", "1", "--top-k", "2")) == 0
    record = one_json_line(capsys)
    assert {"config", "tracking", "measured", "search_cost", "accuracy", "machine",
            "date"} <= set(record)
    assert record["machine"]["torch"] == str(torch.__version__)
    tr = record["tracking"]
    lo, hi = record["generator"]["range_ms"]
    assert len(tr["targets_ms"]) == len(tr["achieved_ms"]) == len(tr["forward_ms"]) == 20
    assert all(lo < t < hi for t in tr["targets_ms"])
    cost = artifacts["cost"]
    assert tr["achieved_ms"] == pytest.approx([cost.exact(load_architecture(a))
                                               for a in tr["archs"]])
    assert tr["kendall_tau"] is None or -1 <= tr["kendall_tau"] <= 1
    assert 0 <= tr["within_5pct"] <= 1 and tr["max_abs_error_pct"] >= tr["mean_abs_error_pct"]
    assert record["measured"] is None

    sc = record["search_cost"]
    assert sc["generator_train_s"] == pytest.approx(wall)
    assert sc["generator_train_s_source"] == "checkpoint wall_time_s"
    assert len(sc["evolution_run_s"]) == 3
    assert sc["evolution_cost_10_s_extrapolated"] == pytest.approx(10 * np.mean(sc["evolution_run_s"]))
    assert sc["ratio_generator_to_evolution"] == pytest.approx(
        sc["generator_cost_10_s"] / sc["evolution_cost_10_s_extrapolated"])

    runs = record["accuracy"]["runs"]
    assert [r["target_ms"] for r in runs] == pytest.approx(
        [lo + f * (hi - lo) for f in (0.25, 0.5, 0.75)])
    for r in runs:
        assert r["evolution_ms"] <= r["target_ms"]
        assert 0 <= r["generator_accuracy"] <= 1 and 0 <= r["evolution_accuracy"] <= 1
        assert r["accuracy_difference"] == pytest.approx(r["generator_accuracy"]
                                                         - r["evolution_accuracy"])
        assert r["evaluations"] >= 4


def test_bench_generator_scores_both_methods_with_one_evaluator(artifacts, monkeypatch, capsys):
    """The generator's architecture is scored by the evaluator the evolution used (same settings),
    and --measure compares the measured latencies with the targets."""
    import sgnas.cli.generate as generate
    import sgnas.search.evaluator as evaluator_mod
    from sgnas.space import load_architecture

    evaluators = []
    real = evaluator_mod.InheritedAccuracy

    def recording(*args, **kw):
        evaluators.append(real(*args, **kw))
        return evaluators[-1]

    monkeypatch.setattr(evaluator_mod, "InheritedAccuracy", recording)  # built by build_evaluator
    seen = []

    def fake_measure(space, lut, archs, force=False):
        seen.append(len(archs))
        return [1.1 * artifacts["cost"].exact(a) for a in archs]

    monkeypatch.setattr(generate, "measure_archs", fake_measure)
    bench = load_script("bench_generator")
    assert bench.main(bench_args(artifacts, "--measure", "--targets", "4", "--evolution-targets",
                                 "1", "--population", "2", "--generations", "1", "--mutants", "0",
                                 "--crossovers", "0", "--top-k", "1")) == 0
    record = one_json_line(capsys)
    assert seen == [4] and len(evaluators) == 1
    m = record["measured"]
    assert m["measured_ms"] == pytest.approx([1.1 * a for a in record["tracking"]["achieved_ms"]])
    assert m["kendall_tau_achieved_measured"] == pytest.approx(1.0)
    assert {"kendall_tau", "mean_abs_error_pct", "within_5pct", "within_10pct"} <= set(m)
    run = record["accuracy"]["runs"][0]
    stats = record["accuracy"]["evaluator"]
    # 2 evolution candidates + the generator's architecture, all through the one evaluator
    assert stats["calls"] == evaluators[0].calls == 3
    assert record["search_cost"]["evolution_runs"] == 1
    hits = evaluators[0].cache_hits
    assert evaluators[0](load_architecture(run["generator_arch"])) == run["generator_accuracy"]
    assert evaluators[0].cache_hits == hits + 1  # already scored by this very evaluator


def test_bench_interleave_on_the_tiny_space(capsys):
    bench = load_script("bench_interleave")
    assert bench.main(["--space", "tiny", "--seconds", "0.6", "--window", "0.2", "--cycles", "2",
                       "--cycle-s", "0.1", "--chunk-ms", "5", "--probe-chain", "2"]) == 0
    record = one_json_line(capsys)
    assert record["space"] == "tiny" and record["pairs"] >= 5
    assert set(record["drift"]) == {"entry_ms", "reference_ms", "probe_ms", "ratio_entry_reference",
                                    "ratio_entry_probe", "ratio_entry_reference_mean",
                                    "ratio_entry_probe_mean"}
    assert record["drift"]["entry_ms"]["windows"] >= 2
    d = record["disturbance"]
    assert len(d["interleaved_over_alone"]) == 2 and d["median_interleaved_over_alone"] > 0


def test_gpu_check_fails_fast_without_a_gpu(tmp_path):
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        pytest.skip("this host has nvidia-smi; the script would run for real")
    res = subprocess.run(["bash", str(SCRIPTS / "gpu_check.sh"), str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["ok"] is False and record["step"] == "gpu" and "NVIDIA GPU" in record["error"]


def test_bench_calibration_set_on_the_tiny_space(capsys, tmp_path):
    from sgnas.lut import EntryStats, Lut, save_lut
    from sgnas.space import get_space

    space = get_space("tiny")
    entries = {k: EntryStats(0.01 * (i + 1), 0.01, 0.01, 1, 0.0)
               for i, k in enumerate(space.all_keys())}
    path = tmp_path / "lut.json"
    save_lut(Lut(space.name, space.fingerprint, {"name": "cpu"}, entries,
                 input_size=space.input_size, complete=True), path)
    assert load_script("bench_calibration_set").main(["--lut", str(path), "--n", "12"]) == 0
    record = one_json_line(capsys)
    assert sum(record["calibration"]["thirds"].values()) == 12
    assert record["calibration"]["max_ms"] >= record["random"]["max_ms"]
