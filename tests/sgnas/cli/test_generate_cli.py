import json

import numpy as np
import pytest
import torch

from sgnas.cli.main import main
from sgnas.costs import FlopsCost, LatencyCost
from sgnas.generator import (
    ArchitectureGenerator,
    GeneratorBundle,
    GeneratorConfig,
    make_prior_pool,
    save_generator,
    target_interval,
)
from sgnas.lut import Calibration, EntryStats, Lut, load_lut, save_lut
from sgnas.network import count_flops
from sgnas.space import get_space, load_architecture

SPACE = get_space("tiny")


def write_lut(path, space_name="tiny", device="cpu", calibration=None):
    space = get_space(space_name)
    rng = np.random.default_rng(0)
    entries = {}
    for k in space.all_keys():
        v = float(rng.uniform(0.05, 0.5))
        entries[k] = EntryStats(v, v, v, 5, 0.0)
    lut = Lut(space.name, space.fingerprint, {"name": device, "backend": "onnxruntime"}, entries,
              calibration=calibration, complete=True)
    save_lut(lut, path)
    return lut


def write_generator(path, cost):
    interval = target_interval(cost)
    pool = make_prior_pool(SPACE, cost, 3, np.random.default_rng(0), interval, steps=50)
    gen = ArchitectureGenerator(SPACE, GeneratorConfig(num_priors=3),
                                generator=torch.Generator().manual_seed(0))
    save_generator(path, GeneratorBundle(SPACE, gen, pool, cost.describe(), interval))
    return path


@pytest.fixture
def flops_gen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./generators must not leak in from elsewhere
    cost = FlopsCost(SPACE)
    return cost, write_generator(tmp_path / "gens" / "flops.pt", cost)


def mid(cost, frac=0.5):
    lo, hi = target_interval(cost)
    return round(lo + frac * (hi - lo), 4)


def test_generate_flops_text_and_json(flops_gen, capsys):
    cost, path = flops_gen
    targets = [mid(cost, 0.3), mid(cost, 0.7)]
    assert main(["generate", "--flops-m", *map(str, targets), "--generator", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("tiny:") == 2 and "MFLOPs" in out
    assert main(["generate", "--flops-m", *map(str, targets), "--generator", str(path),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["target"] for r in report["results"]] == targets
    for r in report["results"]:
        arch = load_architecture(r["arch"])
        assert r["predicted"]["flops_m"] == pytest.approx(count_flops(SPACE, arch))
        assert r["cost"] == pytest.approx(cost.exact(arch))
    assert report["cost"]["fingerprint"] == cost.fingerprint


def test_generator_found_in_generators_dir(flops_gen, capsys):
    cost, path = flops_gen
    assert main(["generate", "--flops-m", str(mid(cost)), "--generators-dir",
                 str(path.parent)]) == 0
    assert str(path) in capsys.readouterr().out


def test_missing_generator_names_the_training_command(flops_gen, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert main(["generate", "--params-m", "0.05", "--generators-dir", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "sgnas train-generator" in err and "--cost params" in err
    write_lut(tmp_path / "lut.json")
    assert main(["generate", "--latency-ms", "2", "--lut", str(tmp_path / "lut.json"),
                 "--generators-dir", str(flops_gen[1].parent)]) == 2
    err = capsys.readouterr().err
    assert "sgnas train-generator --supernet SUPERNET.pt --lut" in err


def test_target_out_of_range_is_exit_2_with_the_range(flops_gen, capsys):
    cost, path = flops_gen
    lo, hi = target_interval(cost)
    c_lo, c_hi = cost.range()
    assert main(["generate", "--flops-m", str(c_hi * 2), "--generator", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not achievable" in err and f"{c_hi:.4g}" in err
    assert len(err.strip().splitlines()) == 1
    # achievable but outside the generator's interval [C_L, C_H]
    assert main(["generate", "--flops-m", str(lo * 0.999), "--generator", str(path)]) == 2
    err = capsys.readouterr().err
    assert "outside the interval" in err and f"{lo:.4g}" in err and f"{hi:.4g}" in err


@pytest.mark.parametrize("bad", ["-3", "abc", "nan", "0"])
def test_bad_target_is_an_argparse_error(flops_gen, capsys, bad):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--flops-m", bad, "--generator", str(flops_gen[1])])
    assert exc.value.code == 2
    assert "--flops-m" in capsys.readouterr().err


def test_mismatched_cost_fingerprint_is_exit_2(flops_gen, capsys):
    cost, path = flops_gen
    assert main(["generate", "--params-m", "0.05", "--generator", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cost mismatch" in err and cost.fingerprint in err


def test_latency_generation_and_lut_checks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lut = write_lut(tmp_path / "lut.json", calibration=Calibration(1.5, 0.1))
    cost = LatencyCost(lut, SPACE)
    path = write_generator(tmp_path / "lat.pt", cost)
    t = mid(cost)
    assert main(["generate", "--latency-ms", str(t), "--lut", str(tmp_path / "lut.json"),
                 "--generator", str(path), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)["results"][0]
    arch = load_architecture(r["arch"])
    assert r["predicted"]["latency_ms"] == pytest.approx(lut.predict_ms(arch))
    assert r["predicted"]["latency_raw_ms"] == pytest.approx(lut.predict_ms(arch, calibrated=False))

    assert t * 0.99 <= r["cost"] <= t and r["logprob_given_up"] >= 0

    # a LUT of another device is served without retraining, with a note
    write_lut(tmp_path / "other.json", device="other-cpu")
    other = LatencyCost(load_lut(tmp_path / "other.json"), SPACE)
    t2 = mid(other)
    assert main(["generate", "--latency-ms", str(t2), "--lut", str(tmp_path / "other.json"),
                 "--generator", str(path), "--json"]) == 0
    out = capsys.readouterr()
    assert "note:" in out.err
    r = json.loads(out.out)["results"][0]
    assert t2 * 0.99 <= r["cost"] <= t2
    # a LUT of another space
    write_lut(tmp_path / "cifar.json", space_name="cifar10")
    assert main(["generate", "--latency-ms", "5", "--lut", str(tmp_path / "cifar.json"),
                 "--generator", str(path)]) == 2
    assert "space" in capsys.readouterr().err
    # latency needs a LUT
    assert main(["generate", "--latency-ms", "5", "--generator", str(path)]) == 2
    assert "--lut" in capsys.readouterr().err


def test_out_dir_writes_and_refuses_to_overwrite(flops_gen, capsys, tmp_path):
    cost, path = flops_gen
    t = mid(cost)
    out = tmp_path / "archs"
    args = ["generate", "--flops-m", str(t), "--generator", str(path), "--out", str(out)]
    assert main(args) == 0
    written = out / f"arch-{t:g}mflops.json"
    arch = load_architecture(str(written))
    assert json.loads(written.read_text())["target"] == t
    written.write_text("keep me")
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert written.read_text() == "keep me"
    assert main(args + ["--force"]) == 0
    assert load_architecture(str(written)) == arch


def test_measure_times_each_network_on_the_lut_device(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)
    lut = write_lut(tmp_path / "lut.json")
    lut.device = {"name": "test-cpu", "description": "test", "kind": "cpu",
                  "backend": "onnxruntime", "precision": "fp32", "batch_size": 1, "threads": 1,
                  "protocol": {"warmup_ms": 1, "warmup_min_iters": 1, "rounds": 1,
                               "min_iters_per_round": 2, "min_round_ms": 1, "remeasure": 0}}
    save_lut(lut, tmp_path / "lut.json")
    cost = LatencyCost(lut, SPACE)
    path = write_generator(tmp_path / "lat.pt", cost)
    import profiler.measure as pm

    calls = []
    real = pm.Measurer.network

    def spy(self, arch, name, *a, **kw):
        out = real(self, arch, name, *a, **kw)
        calls.append((str(arch), self.device.name, out.median_ms))
        return out

    monkeypatch.setattr(pm.Measurer, "network", spy)
    assert main(["generate", "--latency-ms", str(mid(cost)), "--lut", str(tmp_path / "lut.json"),
                 "--generator", str(path), "--measure", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    # the generated architectures themselves were timed, on the LUT's device, and each result
    # carries its own architecture's measurement
    assert [c[0] for c in calls] == [r["arch"] for r in results]
    assert {c[1] for c in calls} == {"test-cpu"}
    assert [r["measured_ms"] for r in results] == pytest.approx([c[2] for c in calls])
    assert all(np.isfinite(c[2]) and c[2] > 0 for c in calls)


@pytest.mark.slow
def test_export_onnx_writes_one_model_per_target(flops_gen, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    cost, path = flops_gen
    t = mid(cost)
    assert main(["generate", "--flops-m", str(t), "--generator", str(path), "--out",
                 str(tmp_path / "o"), "--export-onnx"]) == 0
    model = onnx.load(str(tmp_path / "o" / f"arch-{t:g}mflops.onnx"))
    assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_value == SPACE.input_size


def test_exact_decoding_meets_every_target_and_argmax_keeps_the_old_way(flops_gen, capsys):
    cost, path = flops_gen
    targets = [mid(cost, f) for f in (0.1, 0.4, 0.7, 0.95)]
    assert main(["generate", "--flops-m", *map(str, targets), "--generator", str(path),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for t, r in zip(targets, report["results"]):
        assert t * 0.99 <= r["cost"] <= t + 1e-9
    assert main(["generate", "--flops-m", str(targets[0]), "--generator", str(path), "--json",
                 "--decode", "argmax", "--eps", "0.2"]) == 0
    r = json.loads(capsys.readouterr().out)["results"][0]
    assert "logprob_given_up" not in r


def test_several_constraints_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    lut_a = write_lut(tmp_path / "a.json", calibration=Calibration(1.2, 0.05))
    write_lut(tmp_path / "b.json", device="other")
    lut_b = load_lut(tmp_path / "b.json")
    cost_a = LatencyCost(lut_a, SPACE)
    path = write_generator(tmp_path / "lat.pt", cost_a)
    t_a = mid(cost_a, 0.6)
    free = ["generate", "--latency-ms", str(t_a), "--lut", str(tmp_path / "a.json"),
            "--generator", str(path), "--json"]
    assert main(free) == 0
    r = json.loads(capsys.readouterr().out)["results"][0]
    params_cap = r["predicted"]["params_m"] * 0.97
    t_b = LatencyCost(lut_b, SPACE).exact(load_architecture(r["arch"])) * 1.5
    both = ["generate", "--lut", str(tmp_path / "a.json"), "--lut", str(tmp_path / "b.json"),
            "--latency-ms", str(t_a), str(t_b), "--params-m", str(params_cap),
            "--generator", str(path), "--json"]
    assert main(both) == 0
    r = json.loads(capsys.readouterr().out)["results"][0]
    arch = load_architecture(r["arch"])
    assert t_a * 0.99 <= cost_a.exact(arch) <= t_a
    assert LatencyCost(lut_b, SPACE).exact(arch) <= t_b
    assert r["predicted"]["params_m"] <= params_cap + 1e-9
    # infeasible: the message gives the achievable region
    assert main(both[:-5] + ["--params-m", "0.0001", "--generator", str(path)]) == 2
    err = capsys.readouterr().err
    assert "params" in err and ("ranges over" in err or "achievable region" in err)
    # one target per LUT
    assert main(["generate", "--lut", str(tmp_path / "a.json"), "--lut", str(tmp_path / "b.json"),
                 "--latency-ms", str(t_a), "--generator", str(path)]) == 2
    assert "one per LUT" in capsys.readouterr().err
    # argmax takes one constraint
    assert main(free + ["--params-m", "5", "--decode", "argmax"]) == 2
    assert "argmax" in capsys.readouterr().err


@pytest.mark.parametrize("eps", ["0", "-0.1", "0.5", "0.9"])
def test_bad_eps_is_exit_2(flops_gen, capsys, eps):
    cost, path = flops_gen
    assert main(["generate", "--flops-m", str(mid(cost)), "--generator", str(path),
                 "--eps", eps]) == 2
    assert "eps" in capsys.readouterr().err


def test_old_format_generator_is_refused_with_what_to_do(flops_gen, capsys, tmp_path):
    from sgnas.evaluation.checkpoint import load_checkpoint, save_checkpoint

    cost, path = flops_gen
    ckpt = load_checkpoint(path)
    ckpt["generator_version"] = 1
    ckpt.pop("kind"), ckpt.pop("format_version")
    save_checkpoint(tmp_path / "old.pt", ckpt, "sgnas-generator")
    assert main(["generate", "--flops-m", str(mid(cost)), "--generator",
                 str(tmp_path / "old.pt")]) == 2
    err = capsys.readouterr().err
    assert "old-format" in err and "retrain" in err and len(err.strip().splitlines()) == 1
