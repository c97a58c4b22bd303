"""``sgnas search`` end to end on the tiny space with a fresh (untrained) supernet."""

from __future__ import annotations

import json

import pytest
import torch

from sgnas.cli.main import main
from sgnas.costs import FlopsCost
from sgnas.search import SearchResult
from sgnas.space import get_space
from sgnas.supernet import UnifiedSupernet
from sgnas.evaluation.checkpoint import SUPERNET_KIND, save_checkpoint


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    space = get_space("tiny")
    net = UnifiedSupernet(space, generator=torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    save_checkpoint(path, {
        "space": space.name, "space_fingerprint": space.fingerprint, "forced_sampling": True,
        "model": net.state_dict(), "data": {"held_out": 4, "seed": 0},
    }, SUPERNET_KIND)
    return str(path)


def _mid_flops() -> float:
    lo, hi = FlopsCost(get_space("tiny")).range()
    return round((lo + hi) / 2, 4)


SMALL = ["--population", "4", "--generations", "2", "--top-k", "2", "--mutants", "1",
         "--crossovers", "1", "--calib-batches", "1", "--batch-size", "2", "--workers", "0",
         "--device", "cpu", "--no-progress"]


def test_evolution_writes_result(supernet, image_folder, tmp_path, capsys):
    out = tmp_path / "result.json"
    target = _mid_flops()
    code = main(["search", "--strategy", "evolution", "--flops-m", str(target), "--supernet",
                 supernet, "--data", str(image_folder), "--out", str(out), *SMALL])
    assert code == 0
    text = capsys.readouterr().out
    result = SearchResult.load(out)
    assert str(result.best) in text and "evaluations:" in text
    assert result.strategy == "evolution" and result.cost_name == "flops"
    assert result.evaluations <= 8 and len(result.history) == 2
    assert result.best_cost <= target
    assert all(c["cost"] <= target for c in result.candidates)
    assert 0.0 <= result.best_accuracy <= 1.0
    assert result.meta["evaluator"]["evaluations"] == result.evaluations
    # an existing --out is refused before any work, and left as it was
    before = out.read_bytes()
    code = main(["search", "--flops-m", str(target), "--supernet", supernet, "--data",
                 str(image_folder), "--out", str(out), *SMALL])
    assert code == 2 and out.read_bytes() == before
    assert "exists" in capsys.readouterr().err


def test_random_json(supernet, image_folder, capsys):
    code = main(["search", "--strategy", "random", "--candidates", "3", "--flops-m",
                 str(_mid_flops()), "--supernet", supernet, "--data", str(image_folder),
                 "--json", *SMALL])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["strategy"] == "random" and data["evaluations"] == 3
    assert SearchResult.from_dict(data).evaluations == 3


def test_target_below_range(supernet, image_folder, capsys):
    lo, hi = FlopsCost(get_space("tiny")).range()
    code = main(["search", "--flops-m", str(lo / 2), "--supernet", supernet, "--data",
                 str(image_folder), *SMALL])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "achievable range" in err and len(err.splitlines()) == 1


def test_unknown_strategy_is_a_usage_error(supernet, image_folder, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--strategy", "annealing", "--flops-m", "1", "--supernet", supernet,
              "--data", str(image_folder)])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_latency_needs_lut(supernet, image_folder, capsys):
    code = main(["search", "--latency-ms", "5", "--supernet", supernet, "--data",
                 str(image_folder)])
    assert code == 2 and "--lut" in capsys.readouterr().err


def test_bad_evolution_settings(supernet, image_folder, capsys):
    code = main(["search", "--flops-m", "1", "--supernet", supernet, "--data", str(image_folder),
                 "--population", "10", "--mutants", "8", "--crossovers", "8"])
    assert code == 2 and "exceed the population" in capsys.readouterr().err
