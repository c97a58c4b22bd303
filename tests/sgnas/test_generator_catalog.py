"""The generator catalog reads checkpoint headers only; a command loads one generator in full."""

import json

import numpy as np
import pytest
import torch

from sgnas.cli.main import main
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
from sgnas.generator_catalog import (
    GENERATOR_KIND,
    SHARED_KIND,
    GeneratorCatalog,
    load_generator_file,
    read_entry,
)
from sgnas.generator_protocol import Generator
from sgnas.shared_generator import SharedBundle
from sgnas.shipped import shipped_dir
from sgnas.space import get_space

TINY = get_space("tiny")


def write_generator(path, cost, meta=None):
    interval = target_interval(cost)
    pool = make_prior_pool(TINY, cost, 3, np.random.default_rng(0), interval, steps=50)
    gen = ArchitectureGenerator(TINY, GeneratorConfig(num_priors=3),
                                generator=torch.Generator().manual_seed(0))
    save_generator(path, GeneratorBundle(TINY, gen, pool, cost.describe(), interval,
                                         meta=dict(meta or {})))
    return path


@pytest.fixture
def full_loads(monkeypatch):
    """The ``torch.load`` calls that read a whole file (not memory-mapped)."""
    calls = []
    real = torch.load

    def counting(path, *args, **kwargs):
        if not kwargs.get("mmap"):
            calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting)
    return calls


def test_shipped_generators_are_read_from_headers_and_still_load(full_loads):
    paths = sorted(shipped_dir("generators").glob("*.pt"))
    assert paths, "the repository ships generators"
    catalog = GeneratorCatalog([shipped_dir("generators")])
    assert [e.path for e in catalog.entries] == paths
    assert full_loads == []  # the scan read no file in full
    kinds = {e.path.name: e.kind for e in catalog.entries}
    assert kinds["nb201-shared-latency.pt"] == SHARED_KIND
    assert kinds["cifar10-flops-b8cf6e5afea4b0a7.pt"] == GENERATOR_KIND
    for entry in catalog.entries:
        bundle = load_generator_file(entry.path)
        assert isinstance(bundle, Generator) and bundle.kind == entry.kind
        assert bundle.space.fingerprint == entry.space_fingerprint
        assert bundle.signal == entry.signal
        if entry.kind == GENERATOR_KIND:
            assert bundle.cost["fingerprint"] == entry.cost["fingerprint"]
        else:
            assert isinstance(bundle, SharedBundle) and entry.device_input
            assert list(entry.devices) == [d["name"] for d in bundle.devices]
    assert len(full_loads) == len(paths)  # one full read per generator loaded


def test_catalog_queries(tmp_path):
    flops = FlopsCost(TINY)
    old = write_generator(tmp_path / "a.pt", flops)
    new = write_generator(tmp_path / "b.pt", flops)
    import os

    os.utime(old, (1, 1))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"kind": "sgnas-supernet"}, tmp_path / "supernet.pt")
    catalog = GeneratorCatalog([tmp_path, tmp_path / "missing"])
    assert [e.path.name for e in catalog.entries] == ["a.pt", "b.pt"]  # others skipped
    assert catalog.find(flops) == new  # the newest
    assert catalog.spaces("flops") == ["tiny"] and catalog.spaces("params") == []
    assert catalog.spaces("flops", [tmp_path / "elsewhere"]) == []
    assert catalog.choose(flops) == new
    with pytest.raises(SgnasError, match="no params generator for space tiny"):
        from sgnas.costs import ParamsCost

        catalog.choose(ParamsCost(TINY))
    with pytest.raises(SgnasError, match="'sgnas-supernet' checkpoint, expected a generator"):
        read_entry(tmp_path / "supernet.pt")


def test_generate_loads_one_generator_in_full(tmp_path, monkeypatch, capsys, full_loads):
    monkeypatch.chdir(tmp_path)
    cost = FlopsCost(TINY)
    lo, hi = target_interval(cost)
    t = f"{(lo + hi) / 2:.4f}"
    gens = tmp_path / "gens"
    path = write_generator(gens / "flops.pt", cost, meta={"signal": "synflow"})
    write_generator(gens / "other.pt", cost)  # older: not chosen
    import os

    os.utime(gens / "other.pt", (1, 1))
    # searched: the shipped generators and both of gens/ are scanned, one file is read in full
    assert main(["generate", "--flops-m", t, "--generators-dir", str(gens), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["generator"] == str(path) and report["signal"] == "synflow"
    assert full_loads == [str(path)]
    full_loads.clear()
    # named: read in full once
    assert main(["generate", "--flops-m", t, "--generator", str(path)]) == 0
    assert full_loads == [str(path)]


def test_generate_loads_the_shipped_nb201_generator_once(tmp_path, monkeypatch, capsys,
                                                          full_loads):
    from sgnas.costs import make_cost
    from sgnas.lut import load_lut

    monkeypatch.chdir(tmp_path)
    lut_path = shipped_dir("lut") / "cpu-nb201.json"
    cost = make_cost("latency", get_space("nb201"), lut=load_lut(lut_path))
    lo, hi = target_interval(cost)
    full_loads.clear()
    assert main(["generate", "--latency-ms", f"{(lo + hi) / 2:.4f}", "--lut", str(lut_path),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["generator"].startswith(str(shipped_dir("generators"))) and "shared" in report
    assert [p for p in full_loads if p.endswith(".pt")] == [report["generator"]]
