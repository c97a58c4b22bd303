"""NB201 through the generator machinery: decision view, per-cell costs, exact decoding, training,
sgnas-generate; the shared device-conditioned generator on synthetic device tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sgnas.cli.main import main
from sgnas.costs import CellTableCost, make_cost
from sgnas.generator import (
    GeneratorBundle,
    ArchitectureGenerator,
    GeneratorConfig,
    arch_from_indices,
    decisions,
    decode_tabulated,
    indices_of,
    make_prior_pool,
    save_generator,
    target_interval,
)
from sgnas.lut import EntryStats, Lut, save_lut
from sgnas.nb201.space import Cell, NB201Space
from sgnas.nb201.supernet import NB201Supernet
from sgnas.shared_generator import (
    choose_references,
    device_features,
    load_shared,
    reference_latencies,
)
from sgnas.train.generator import GeneratorLoaders, GeneratorTrainConfig, train_generator
from sgnas.train.shared_generator import SharedTrainConfig, train_shared_generator

SPACE = NB201Space()
SHAPE = (5,) * 6


def synthetic_table(seed: int, scale: float = 1.0) -> np.ndarray:
    """A non-additive per-cell latency table (ms): per-edge op costs plus pairwise terms."""
    rng = np.random.default_rng(seed)
    per = rng.uniform(0.1, 2.0, size=(6, 5))
    grids = np.meshgrid(*[np.arange(5)] * 6, indexing="ij")
    t = 1.0 + sum(per[e][grids[e]] for e in range(6))
    t = t + 0.3 * per[0][grids[0]] * per[5][grids[5]]
    return scale * t


def synthetic_lut(table: np.ndarray, device: str) -> Lut:
    entries = {str(Cell.from_code(i)): EntryStats(median_ms=float(v), p10_ms=float(v),
                                                  p90_ms=float(v), n=1, spread=0.0)
               for i, v in enumerate(table.reshape(-1))}
    return Lut(space=SPACE.name, space_fingerprint=SPACE.fingerprint,
               device={"name": device, "backend": "imported", "input_size": 32},
               entries=entries, input_size=32, build={"provenance": "imported"}, complete=True)


def test_decision_view_round_trips():
    assert decisions(SPACE) == (6, 5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = rng.integers(0, 5, size=6)
        cell = arch_from_indices(SPACE, idx)
        assert isinstance(cell, Cell) and np.array_equal(indices_of(SPACE, cell), idx)
        assert SPACE.all_choices()[cell.code].tolist() == idx.tolist()


def test_cell_cost_expectation_is_exact():
    cost = CellTableCost(SPACE, synthetic_table(1), "latency", "ms")
    p = torch.softmax(torch.randn(3, 6, 5, dtype=torch.float64), dim=-1)
    got = cost.expected_probs(p)
    choices = SPACE.all_choices()
    for b in range(3):
        probs = p[b].numpy()[np.arange(6)[None, :], choices].prod(axis=1)
        assert got[b].item() == pytest.approx(float((probs * cost.values()).sum()), rel=1e-10)
    cell = Cell((3, 1, 0, 2, 4, 1))
    onehot = torch.nn.functional.one_hot(torch.tensor(cell.ops), 5).double()
    assert cost.expected_probs(onehot).item() == pytest.approx(cost.exact(cell))
    # make_cost on nb201: per-cell tables for FLOPs, params and a LUT
    for name in ("flops", "params"):
        assert isinstance(make_cost(name, SPACE), CellTableCost)
    lat = make_cost("latency", SPACE, lut=synthetic_lut(synthetic_table(1), "dev"))
    assert lat.exact(cell) == pytest.approx(cost.exact(cell))


def test_tabulated_decoding_is_exact_over_all_cells():
    cost = CellTableCost(SPACE, synthetic_table(2), "latency", "ms")
    logp = np.log(np.random.default_rng(3).dirichlet(np.ones(5), size=6))
    lo, hi = 0.99 * 8.0, 8.0
    out = decode_tabulated(SPACE, logp, cost, (lo, hi))
    scores = logp[np.arange(6)[None, :], SPACE.all_choices()].sum(axis=1)
    ok = (cost.values() >= lo) & (cost.values() <= hi)
    assert ok.any()
    assert out.logprob == pytest.approx(scores[ok].max())
    assert lo <= cost.of_indices(out.choice) <= hi
    # FLOPs take few values: an empty window starts at the highest level below the target
    flops = make_cost("flops", SPACE)
    levels = np.unique(flops.values())
    t = 0.5 * (levels[3] + levels[4])
    out = decode_tabulated(SPACE, logp, flops, (0.999 * t, t))
    assert flops.of_indices(out.choice) == pytest.approx(levels[3])


@pytest.mark.slow
def test_train_and_generate_nb201(tmp_path):
    torch.manual_seed(0)
    supernet = NB201Supernet(SPACE)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    loaders = GeneratorLoaders(search=[(x, y)] * 2, val=[(x, y)])
    cost = make_cost("flops", SPACE)
    cfg = GeneratorTrainConfig(epochs=2, eval_targets=2, eval_batches=1, device="cpu",
                               progress=False, prior_search_steps=50)
    result = train_generator(supernet, cost, loaders, cfg, tmp_path / "run",
                             gen_cfg=GeneratorConfig(channels=16, trunk_blocks=1, num_priors=4))
    assert result.best is not None and len(result.history) == 2
    gens = tmp_path / "gens"
    gens.mkdir()
    (gens / "nb201-flops.pt").write_bytes(result.best.read_bytes())
    lut_path = tmp_path / "dev.json"
    save_lut(synthetic_lut(synthetic_table(4), "dev"), lut_path)
    lat = make_cost("latency", SPACE, lut=synthetic_lut(synthetic_table(4), "dev"))
    lo, hi = target_interval(lat)
    targets = [f"{lo + f * (hi - lo):.3f}" for f in (0.2, 0.5, 0.8)]
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["generate", "--space", "nb201", "--latency-ms", *targets, "--lut",
                   str(lut_path), "--generator", str(gens / "nb201-flops.pt"), "--json"])
    assert rc == 0
    report = json.loads(out.getvalue())
    assert "FLOPs generator" in err.getvalue() and "FLOPs generator" in report["note"]
    for r, t in zip(report["results"], targets):
        cell = Cell.parse(r["arch"])  # the standard string
        assert 0.99 * float(t) <= lat.exact(cell) <= float(t)
    # without a latency or shared generator, the search falls back on the space's FLOPs generator
    from sgnas.generator import resolve_generator

    bundle, note = resolve_generator(lat, [gens])
    assert bundle.cost["name"] == "flops" and "FLOPs generator" in note


def _shared(tmp_path, device_input=True):
    supernet = NB201Supernet(SPACE)
    costs = [CellTableCost(SPACE, synthetic_table(s, scale), "latency", "ms",
                           fingerprint=f"dev{s}", lut=synthetic_lut(synthetic_table(s, scale),
                                                                   f"dev{s}"))
             for s, scale in ((10, 1.0), (11, 3.0), (12, 0.2))]
    cfg = SharedTrainConfig(steps=30, num_refs=8, cost_samples=8, device_input=device_input)
    return train_shared_generator(supernet, costs, None, cfg, out=tmp_path / "shared.pt",
                                  gen_cfg=GeneratorConfig(channels=16, trunk_blocks=1,
                                                          num_priors=4))


def test_shared_generator_serves_a_new_device(tmp_path, capsys):
    bundle = _shared(tmp_path)
    loaded = load_shared(tmp_path / "shared.pt")
    assert [str(c) for c in loaded.references] == [str(c) for c in bundle.references]
    assert len(loaded.references) == 8 and all(c.is_connected() for c in loaded.references)
    new = synthetic_lut(synthetic_table(20, 2.0), "newdev")
    assert not loaded.knows(new)
    feats = loaded.features_of(new)
    assert feats.shape == (8,) and abs(feats.mean()) < 1e-9
    # the embedding ignores the device's absolute speed
    faster = synthetic_lut(synthetic_table(20, 0.5), "newdev-fast")
    assert np.allclose(loaded.features_of(faster), feats)
    lut_path = tmp_path / "new.json"
    save_lut(new, lut_path)
    cost = make_cost("latency", SPACE, lut=new)
    lo, hi = target_interval(cost)
    targets = [f"{lo + f * (hi - lo):.3f}" for f in (0.1, 0.5, 0.9)]
    rc = main(["generate", "--space", "nb201", "--latency-ms", *targets, "--lut", str(lut_path),
               "--generators-dir", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert rc == 0
    report = json.loads(captured.out)
    assert report["generator"] == str(tmp_path / "shared.pt")
    assert report["shared"]["new_device"] is True and "new to it" in captured.err
    for r, t in zip(report["results"], targets):
        cell = Cell.parse(r["arch"])
        # the CLI's answer is the shared generator's own decode for this device's embedding
        # (not merely some cell in the window, which the exact decoder gives for any generator)
        expected, decoded = loaded.decode(float(t), cost)
        assert cell == expected and r["logprob"] == pytest.approx(decoded.logprob)
        assert 0.99 * float(t) <= cost.exact(cell) <= float(t)


def test_shared_generator_bad_input(tmp_path, capsys):
    from sgnas.errors import SgnasError

    bundle = _shared(tmp_path)
    lut = synthetic_lut(synthetic_table(20), "newdev")
    gone = str(bundle.references[2])
    del lut.entries[gone]
    with pytest.raises(SgnasError, match="lacks 1 of the 8 reference cells") as info:
        reference_latencies(lut, bundle.references, SPACE)
    assert gone in str(info.value)
    # a LUT of another space
    rc = main(["generate", "--latency-ms", "5", "--lut", "lut/cpu.json", "--generator",
               str(tmp_path / "shared.pt")])
    assert rc == 2 and "space" in capsys.readouterr().err
    # a shared checkpoint of another space
    ckpt = torch.load(tmp_path / "shared.pt", weights_only=True)
    ckpt["space_fingerprint"] = "0" * 16
    torch.save(ckpt, tmp_path / "other.pt")
    good = tmp_path / "good.json"
    save_lut(synthetic_lut(synthetic_table(20), "newdev"), good)
    rc = main(["generate", "--latency-ms", "5", "--lut", str(good), "--generator",
               str(tmp_path / "other.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_device_features_and_references():
    refs = choose_references(SPACE, 10)
    assert len(refs) == 10 and len({str(c) for c in refs}) == 10
    assert choose_references(SPACE, 10) == refs  # chosen once: deterministic
    f = device_features(np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 8.0]]))
    assert np.allclose(f[0], f[1]) and np.allclose(f.sum(axis=1), 0.0)


def test_generate_cell_serves_both_kinds(tmp_path):
    from sgnas.shared_generator import generate_cell

    bundle = _shared(tmp_path)
    table = synthetic_table(30, 1.5)
    cost = CellTableCost(SPACE, table, "latency", "ms")
    lo, hi = target_interval(cost)
    t = 0.5 * (lo + hi)
    for gen in (bundle, tmp_path / "shared.pt"):
        cell = generate_cell(gen, table, t)
        assert isinstance(cell, Cell) and 0.99 * t <= table[cell.ops] <= t
    flops = make_cost("flops", SPACE)
    gen = ArchitectureGenerator(SPACE, GeneratorConfig(channels=8, trunk_blocks=1, num_priors=2))
    rng = np.random.default_rng(0)
    interval = target_interval(flops)
    plain = GeneratorBundle(SPACE, gen, make_prior_pool(SPACE, flops, 2, rng, interval, 20),
                            flops.describe(), interval)
    path = save_generator(tmp_path / "flops.pt", plain)
    cell = generate_cell(path, table, t)
    assert 0.99 * t <= table[cell.ops] <= t


@pytest.mark.slow
def test_generate_writes_the_nb201_network(tmp_path, capsys):
    pytest.importorskip("onnx")
    _shared(tmp_path)
    lut = synthetic_lut(synthetic_table(21), "newdev")
    save_lut(lut, tmp_path / "new.json")
    lo, hi = target_interval(make_cost("latency", SPACE, lut=lut))
    t = f"{0.5 * (lo + hi):.3f}"
    assert main(["generate", "--latency-ms", t, "--lut", str(tmp_path / "new.json"),
                 "--generator", str(tmp_path / "shared.pt"), "--out", str(tmp_path / "out"),
                 "--export-onnx"]) == 0
    record = json.loads((tmp_path / "out" / f"arch-{float(t):g}ms.json").read_text())
    assert Cell.parse(record["arch"]) and (tmp_path / "out" / f"arch-{float(t):g}ms.onnx").is_file()
