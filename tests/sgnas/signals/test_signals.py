"""The signal registry, table / ensemble / count signals, score caches and NB201 tables."""

import math

import numpy as np
import pytest
import torch

from sgnas.errors import SgnasError
from sgnas.nb201.cost import flops_table, params_table
from sgnas.nb201.space import Cell, NB201Space, all_cells
from sgnas.signals import SIGNALS, Signal, get_signal, nb201_table, signal_names
from sgnas.signals.cache import ScoreCache

CELLS = [Cell.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"),
         Cell.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
         Cell.parse("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"),
         Cell.parse("|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")]


@pytest.fixture
def x():
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_required_names_registered():
    for name in ("supernet", "table", "flops", "params", "synflow", "naswot", "jacob_cov", "snip",
                 "grad_norm", "ensemble"):
        assert name in signal_names()


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(SgnasError, match=r"unknown signal 'nope'; known: .*naswot"):
        get_signal("nope")


def test_counts_match_the_nb201_tables():
    flat_f, flat_p = flops_table().reshape(-1), params_table().reshape(-1)
    np.testing.assert_allclose(get_signal("flops").score(CELLS), [flat_f[c.code] for c in CELLS])
    np.testing.assert_allclose(get_signal("params").score([str(c) for c in CELLS]),
                               [flat_p[c.code] for c in CELLS])
    np.testing.assert_array_equal(nb201_table("flops"), flops_table())


class _Fixed(Signal):
    def __init__(self, values):
        self.values = values

    def score(self, archs):
        return np.array([self.values[str(a)] for a in archs], dtype=float)


def test_ensemble_is_the_mean_rank(monkeypatch):
    a = {str(c): v for c, v in zip(CELLS, [3.0, -np.inf, 1.0, 2.0])}
    b = {str(c): v for c, v in zip(CELLS, [1.0, 5.0, 2.0, 2.0])}
    SIGNALS.register("_fa", lambda: _Fixed(a))
    SIGNALS.register("_fb", lambda: _Fixed(b))
    try:
        s = get_signal("ensemble:_fa+_fb")
        got = s.score(CELLS)
    finally:
        SIGNALS.unregister("_fa")
        SIGNALS.unregister("_fb")
    # ranks: a -> [4, 1, 2, 3]; b -> [1, 4, 2.5, 2.5]; the -inf member keeps the cell dead
    np.testing.assert_allclose(got[[0, 2, 3]], [2.5, 2.25, 2.75])
    assert np.isneginf(got[1])
    with pytest.raises(SgnasError, match="two or more"):
        get_signal("ensemble:flops")


def test_default_ensemble_members_documented():
    from sgnas.signals.ensemble import DEFAULT_MEMBERS

    assert DEFAULT_MEMBERS == ("flops", "naswot", "synflow")


def _write_table(path, rows, header="arch_str,score"):
    path.write_text(header + "\n" + "".join(f"{a},{v}\n" for a, v in rows))
    return path


def test_table_signal_roundtrip_and_partial(tmp_path):
    cells = list(all_cells())
    full = _write_table(tmp_path / "t.csv", [(str(c), c.code * 0.5) for c in cells])
    s = get_signal(f"table:{full}")
    np.testing.assert_allclose(s.score(CELLS), [c.code * 0.5 for c in CELLS])
    part = _write_table(tmp_path / "p.csv", [(str(CELLS[0]), 1.5)], header="index,arch_str,acc")
    part.write_text("index,arch_str,acc\n0," + str(CELLS[0]) + ",1.5\n")
    s = get_signal("table", path=part, partial=True)
    assert s.score([CELLS[0]])[0] == 1.5
    with pytest.raises(SgnasError, match="has no score for"):
        s.score([CELLS[1]])


@pytest.mark.parametrize("rows, message", [
    ([(str(CELLS[0]), 1.0)], r"15624 of 15625 cells missing"),
    ([(str(CELLS[0]), 1.0), (str(CELLS[0]), 2.0)], r"appears twice"),
    ([(str(CELLS[0]), "nan")], r"line 2 .*not a finite number"),
    ([(str(CELLS[0]), "inf")], r"line 2 .*not a finite number"),
    ([("tiny:3-3", 1.0)], r"line 2: a table of space 'tiny', not 'nb201'"),
])
def test_table_signal_refuses_bad_tables(tmp_path, rows, message):
    path = _write_table(tmp_path / "bad.csv", rows)
    with pytest.raises(SgnasError, match=message) as info:
        get_signal(f"table:{path}")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_table_of_a_unified_space(tmp_path):
    from sgnas.space import get_space

    space = get_space("tiny")
    rng = np.random.default_rng(0)
    archs = []
    while len(archs) < 3:
        a = space.sample(rng)
        if a not in archs:
            archs.append(a)
    path = _write_table(tmp_path / "u.csv", [(str(a), i) for i, a in enumerate(archs)])
    s = get_signal(f"table:{path}", space="tiny")
    np.testing.assert_array_equal(s.score(archs), [0, 1, 2])
    dup = _write_table(tmp_path / "d.csv", [(str(archs[0]), 1), (str(archs[0]), 2)])
    with pytest.raises(SgnasError, match="line 3: .* appears twice"):
        get_signal(f"table:{dup}", space="tiny")


def test_proxy_cache_resumes_and_keys_settings(tmp_path, x, monkeypatch):
    s = get_signal("naswot", data=x, batch_size=4, cache_dir=tmp_path)
    first = s.score(CELLS)
    assert np.isneginf(first[1]) and np.isfinite(first[[0, 2, 3]]).all()
    files = sorted(tmp_path.glob("naswot-*.csv"))
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 1 + len(CELLS)

    import sgnas.signals.compute as compute

    def boom(*a, **k):
        raise AssertionError("recomputed a cached architecture")

    monkeypatch.setattr(compute, "make_scorer", boom)
    np.testing.assert_array_equal(s.score(CELLS), first)
    monkeypatch.undo()
    # another seed is another cache file, other values
    other = get_signal("naswot", data=x, batch_size=4, seed=1, cache_dir=tmp_path).score(CELLS)
    assert len(list(tmp_path.glob("naswot-*.csv"))) == 2 and other[0] != first[0]


def test_cache_ignores_and_repairs_a_partial_line(tmp_path):
    cache = ScoreCache(tmp_path, "x", {"k": 1})
    cache.append([("a", 1.0), ("b", -math.inf)])
    with open(cache.path, "a") as fh:
        fh.write("c,2.")  # interrupted write
    assert cache.load() == {"a": 1.0, "b": -math.inf}
    cache.prepare()
    cache.append([("c", 3.0)])
    assert cache.load() == {"a": 1.0, "b": -math.inf, "c": 3.0}


def test_nb201_table_from_csv_and_missing_cells(tmp_path):
    cells = list(all_cells())
    vals = np.arange(len(cells), dtype=float)
    vals[[c.code for c in cells if not c.is_connected()]] = -np.inf
    wide = tmp_path / "w.csv"
    wide.write_text("arch_str,naswot\n" + "".join(f"{c},{v}\n" for c, v in zip(cells, vals)))
    t = nb201_table("naswot", csv=wide)
    assert t.shape == (5,) * 6 and np.isfinite(t).all()
    assert t[CELLS[0].ops] == CELLS[0].code
    assert t[CELLS[1].ops] < t.reshape(-1)[np.isfinite(vals)].min()  # dead below every live cell
    assert np.isneginf(nb201_table("naswot", csv=wide, dead=None)[CELLS[1].ops])
    # an ensemble of a wide file's columns and FLOPs: the mean of their ranks over all cells
    wide2 = tmp_path / "w2.csv"
    rev = np.where(np.isfinite(vals), len(cells) - vals, -np.inf)
    wide2.write_text("arch_str,naswot,synflow\n" + "".join(
        f"{c},{v},{r}\n" for c, v, r in zip(cells, vals, rev)))
    ens = nb201_table("ensemble:naswot+synflow+flops", csv=wide2, dead=None).reshape(-1)
    from sgnas.signals.base import ranks

    live = np.isfinite(vals)
    want = np.mean([ranks(vals), ranks(rev), ranks(flops_table().reshape(-1))], axis=0)
    np.testing.assert_allclose(ens[live], want[live])
    assert np.isneginf(ens[~live]).all()
    short = tmp_path / "s.csv"
    short.write_text("arch_str,score\n" + "".join(f"{c},1\n" for c in cells[:-1]))
    with pytest.raises(SgnasError, match="1 of 15625 cells missing"):
        nb201_table("synflow", csv=short)


def test_nb201_table_from_the_cache_needs_every_cell(tmp_path, x):
    get_signal("synflow", data=x, batch_size=4, cache_dir=tmp_path).score(CELLS)
    with pytest.raises(SgnasError, match=r"15621 of 15625 cells missing .*nb201_proxies.py"):
        nb201_table("synflow", data=x, batch_size=4, cache_dir=tmp_path)


def test_supernet_signal_wraps_an_evaluator():
    calls = []

    def evaluator(cell):
        calls.append(cell)
        return float(sum(cell.ops))

    s = get_signal("supernet", evaluator=evaluator, space="nb201")
    np.testing.assert_array_equal(s.score(CELLS), [sum(c.ops) for c in CELLS])
    assert calls == CELLS
    with pytest.raises(SgnasError, match="--checkpoint"):
        get_signal("supernet")


def test_minibatch_from_a_loader_a_pair_or_images():
    from torch.utils.data import DataLoader, TensorDataset

    from sgnas.signals.zero_cost import data_hash, minibatch

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(10, 3, 8, 8, generator=g), torch.randint(0, 10, (10,), generator=g)
    a = minibatch(DataLoader(TensorDataset(x, y), batch_size=6), 4, 10)
    b = minibatch((x, y), 4, 10)
    assert torch.equal(a[0], x[:4]) and torch.equal(a[1], y[:4]) and data_hash(*a) == data_hash(*b)
    c = minibatch(x, 4, 10, seed=1)  # no labels: drawn from the seed
    assert torch.equal(c[1], minibatch(x, 4, 10, seed=1)[1]) and c[1].max() < 10
    with pytest.raises(SgnasError, match="labels must be in 0..2"):
        minibatch((x, y + 5), 4, 3)
