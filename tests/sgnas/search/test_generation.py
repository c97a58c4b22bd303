"""``generate(request)``: the library call under ``sgnas generate``; it prints nothing."""

import json

import numpy as np
import pytest
import torch

from sgnas.costs import FlopsCost
from sgnas.errors import SgnasError
from sgnas.generator import (
    ArchitectureGenerator,
    GeneratorBundle,
    GeneratorConfig,
    make_prior_pool,
    save_generator,
    target_interval,
)
from sgnas.search.generation import GenerationRequest, generate
from sgnas.space import get_space, load_architecture

TINY = get_space("tiny")


@pytest.fixture
def flops_gen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cost = FlopsCost(TINY)
    interval = target_interval(cost)
    pool = make_prior_pool(TINY, cost, 3, np.random.default_rng(0), interval, steps=50)
    gen = ArchitectureGenerator(TINY, GeneratorConfig(num_priors=3),
                                generator=torch.Generator().manual_seed(0))
    path = tmp_path / "flops.pt"
    save_generator(path, GeneratorBundle(TINY, gen, pool, cost.describe(), interval))
    return cost, path


def test_generate_returns_results_and_writes_files_without_printing(flops_gen, tmp_path, capsys):
    cost, path = flops_gen
    lo, hi = target_interval(cost)
    targets = [lo + 0.3 * (hi - lo), lo + 0.7 * (hi - lo)]
    notes: list[str] = []
    res = generate(GenerationRequest(flops_m=targets, generator=str(path),
                                     out=str(tmp_path / "out")), note=notes.append)
    assert capsys.readouterr() == ("", "")  # the library prints nothing
    assert res.generator.path == str(path) and res.eps == 0.01 and res.decode == "exact"
    assert len(res.archs) == len(res.results) == 2
    for t, arch, r in zip(targets, res.archs, res.results):
        assert r["arch"] == str(arch) and r["cost"] == pytest.approx(cost.exact(arch))
        assert t * 0.99 - 1e-9 <= cost.exact(arch) <= t + 1e-9
    assert len(res.files) == 2
    assert [load_architecture(f) for f in res.files] == res.archs
    report = json.loads(json.dumps(res.to_dict()))
    assert report["generator"] == str(path) and [r["arch"] for r in report["results"]] == \
        [str(a) for a in res.archs]
    # the files exist now: a second call refuses to overwrite them, force replaces them
    with pytest.raises(SgnasError, match="exists; pass --force"):
        generate(GenerationRequest(flops_m=targets, generator=str(path), out=str(tmp_path / "out")))
    generate(GenerationRequest(flops_m=targets, generator=str(path), out=str(tmp_path / "out"),
                               force=True))


def test_notes_go_to_the_callback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    notes: list[str] = []
    res = generate(GenerationRequest(latency_ms=[3.0], luts=["cpu-cifar10"]), note=notes.append)
    assert capsys.readouterr() == ("", "")
    assert notes[0].startswith("note: --lut cpu-cifar10 is ") and notes[0].endswith(".json")
    assert res.cost.name == "latency" and res.space.name == "cifar10"
    assert 0.99 * 3.0 - 1e-9 <= res.results[0]["cost"] <= 3.0 + 1e-9


@pytest.mark.parametrize("request_, message", [
    (GenerationRequest(flops_m=[1.0], decode="beam"), "decode 'beam'"),
    (GenerationRequest(flops_m=[1.0], measure=True), "--measure needs --lut"),
    (GenerationRequest(flops_m=[1.0], export_onnx=True), "--export-onnx needs --out"),
    (GenerationRequest(space="tiny"), "give a target"),
])
def test_bad_requests_are_one_line_errors(request_, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SgnasError, match=message) as info:
        generate(request_)
    assert "\n" not in str(info.value)
