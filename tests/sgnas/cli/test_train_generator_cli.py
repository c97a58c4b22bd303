import json

import pytest
import torch

from sgnas.cli.main import main
from sgnas.costs import FlopsCost
from sgnas.generator import default_generator_name, load_generator
from sgnas.lut import EntryStats, Lut, save_lut
from sgnas.space import get_space, load_architecture
from sgnas.supernet import UnifiedSupernet
from sgnas.evaluation.checkpoint import SUPERNET_KIND, save_checkpoint

SPACE = get_space("tiny")


@pytest.fixture
def supernet_ckpt(tmp_path):
    torch.manual_seed(0)
    net = UnifiedSupernet(SPACE)
    payload = {"space": SPACE.name, "space_fingerprint": SPACE.fingerprint,
               "forced_sampling": True, "model": net.state_dict(), "epoch": 7}
    return save_checkpoint(tmp_path / "supernet.pt", payload, SUPERNET_KIND)


def args(ckpt, data, *extra):
    return ["train-generator", "--supernet", str(ckpt), "--data", str(data), "--held-out", "0.5",
            "--batch-size", "2", "--workers", "0", "--epochs", "1", "--batches-per-epoch", "2",
            "--eval-targets", "3", "--num-priors", "2", "--device", "cpu", "--no-progress", *extra]


@pytest.mark.slow
def test_train_then_generate(supernet_ckpt, image_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cost = FlopsCost(SPACE)
    assert main(args(supernet_ckpt, image_folder, "--cost", "flops")) == 0
    run = tmp_path / "runs" / ("generator-" + default_generator_name(SPACE, cost)[:-3])
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert (run / "log.jsonl").is_file()
    bundle = load_generator(run / "best.pt", cost)
    assert bundle.meta["supernet"]["epoch"] == 7 and len(bundle.meta["supernet"]["sha256"]) == 64
    assert default_generator_name(SPACE, cost) in capsys.readouterr().out
    # a second run without --resume refuses to overwrite the run
    assert main(args(supernet_ckpt, image_folder, "--cost", "flops")) == 2
    assert "--resume" in capsys.readouterr().err
    # sgnas generate finds the shipped copy in ./generators
    (tmp_path / "generators").mkdir()
    (tmp_path / "generators" / "g.pt").write_bytes((run / "best.pt").read_bytes())
    lo, hi = bundle.interval
    t = (lo + hi) / 2
    assert main(["generate", "--flops-m", f"{t:.4f}", "--space", "tiny", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["generator"].endswith("g.pt")
    r = report["results"][0]
    assert round(t, 4) * 0.99 <= r["cost"] <= round(t, 4)
    load_architecture(r["arch"])


def test_latency_cost_and_interval_checks(supernet_ckpt, image_folder, tmp_path, capsys):
    entries = {k: EntryStats(0.1, 0.1, 0.1, 5, 0.0) for k in SPACE.all_keys()}
    save_lut(Lut(SPACE.name, SPACE.fingerprint, {"name": "cpu"}, entries, complete=True),
             tmp_path / "lut.json")
    out = tmp_path / "g"
    rc = main(args(supernet_ckpt, image_folder, "--lut", str(tmp_path / "lut.json"), "--out",
                   str(out), "--interval", "0.01", "0.02"))
    assert rc == 2
    err = capsys.readouterr().err
    assert "--interval" in err and "ms" in err
    assert not out.exists()
    with pytest.raises(SystemExit):
        main(args(supernet_ckpt, image_folder))  # --lut or --cost is required


def test_cost_names_come_from_the_registry(tmp_path, capsys):
    """--cost takes any registered cost; an unknown one fails naming the known ones, before the
    supernet is read (the checkpoint path here does not even exist)."""
    rc = main(["train-generator", "--supernet", str(tmp_path / "missing.pt"), "--data",
               str(tmp_path), "--cost", "energy"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown cost 'energy'" in err and "flops, params, latency" in err
