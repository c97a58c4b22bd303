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
    from sgnas.evaluation.checkpoint import load_supernet
    from sgnas.evaluation.data import DataConfig
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
        result = train_generator(
            model, cost, GeneratorLoaders(batches, val=batches[:1]),
            GeneratorTrainConfig(epochs=1, batches_per_epoch=2, eval_targets=2, eval_batches=1,
                                 prior_search_steps=20, device="cpu", progress=False),
            tmp / "gen", gen_cfg=GeneratorConfig(num_priors=3))
        gen = result.best
    finally:
        torch.set_num_threads(threads)
    return {"supernet": ckpt, "lut": tmp / "lut.json", "generator": gen, "data": image_folder,
            "cost": cost}


def bench_args(a: dict, *extra: str) -> list[str]:
    return ["--supernet", str(a["supernet"]), "--generator", str(a["generator"]),
            "--lut", str(a["lut"]), "--data", str(a["data"]), "--batch-size", "2",
            "--workers", "0", "--device", "cpu", "--threads", "1", "--select-images", "2",
            "--select-calib-images", "2", "--final-images", "4", "--calib-images", "2",
            "--signal-archs", "3", "--signal-calib-images", "2", "--signal-images", "2",
            "--signal-batches", "1", "--bootstrap", "200", *extra]


@pytest.mark.slow
def test_bench_generator_compares_three_methods_on_an_unselected_split(artifacts, monkeypatch,
                                                                         capsys):
    import sgnas.search.generation as generation
    from sgnas.space import load_architecture

    monkeypatch.setattr(generation, "measure_archs",
                        lambda space, lut, archs, force=False:
                        [1.1 * artifacts["cost"].exact(a) for a in archs])
    bench = load_script("bench_generator")
    assert bench.main(bench_args(artifacts, "--measure", "--targets", "1", "--population", "4",
                                 "--generations", "2", "--random-samples", "3",
                                 "--tracking-targets", "4")) == 0
    record = one_json_line(capsys)
    assert {"tracking", "comparison", "search_cost", "signal", "machine", "date"} <= set(record)
    cost = artifacts["cost"]
    tr = record["tracking"]
    assert tr["within_eps"] == 1.0 and len(tr["targets"]) == 4
    assert tr["achieved"] == pytest.approx([cost.exact(load_architecture(a)) for a in tr["archs"]])
    assert tr["measured"]["ms"] == pytest.approx([1.1 * a for a in tr["achieved"]])
    assert record["data"]["final_split"] == "test" and record["data"]["select_split"] == "held-out"
    run = record["comparison"][0]
    for name in ("generator", "evolution", "random"):
        r = run[name]
        assert r["cost"] <= run["target"] + 1e-9
        assert r["ci95"][0] <= r["top1"] <= r["ci95"][1]
    g = run["generator"]
    assert run["target"] * 0.99 <= g["cost"]
    assert g["minus_evolution"]["difference"] == pytest.approx(g["top1"] - run["evolution"]["top1"])
    sc = record["search_cost"]
    assert sc["ratio_10_targets"] == pytest.approx(
        sc["generator_10_targets_s"] / sc["evolution_10_targets_s"])
    assert sc["spos_settings"] is False
    assert len(record["signal"]["ce"]) == 3
