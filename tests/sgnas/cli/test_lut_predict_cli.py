"""``sgnas lut import --predict``: a predicted table from a few measured cells; bad input;
``sgnas check`` and ``sgnas generate`` against a predicted table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sgnas.cli.main import main
from sgnas.lut import EntryStats, Lut, load_lut, lut_warnings, save_lut
from sgnas.lut_predict import design_cells, load_basis
from sgnas.space import get_space

SPACE = get_space("nb201")
KEYS = SPACE.all_keys()


def device_table() -> np.ndarray:
    """A device in the span of the shipped basis (ms)."""
    basis = load_basis()
    return 5.0 * (1.0 + basis.components[:, :3] @ np.array([0.8, -0.3, 0.2]))


def write_partial(path: Path, rows, header=("arch_str", "ms")) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def measured(k=12, seed=0):
    table = device_table()
    pos = design_cells(load_basis(), k, seed)
    return table, pos, [(KEYS[i], repr(float(table[i]))) for i in pos]


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def test_predict_from_a_partial_csv(tmp_path, capsys):
    table, pos, rows = measured()
    src = write_partial(tmp_path / "partial.csv", rows)
    out = tmp_path / "new.json"
    assert main(["lut", "import", "--csv", str(src), "--column", "ms", "--space", "nb201",
                 "--predict", "--device", "phone", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["predicted"] and summary["measured"] == 12 and summary["entries"] == 15625
    lut = load_lut(out)  # complete, loads like any LUT
    assert lut.predicted and lut.build["provenance"] == "predicted"
    assert lut.prediction["cv"]["n"] == 12 and "rmse_rel" in lut.prediction["cv"]
    assert sorted(lut.prediction["measured_cells"]) == sorted(r[0] for r in rows)
    for key, v in rows:  # measured cells kept as measured
        assert lut.entries[key].median_ms == float(v) and lut.entries[key].uncertainty_ms == 0
    got = np.array([lut.entries[k].median_ms for k in KEYS])
    assert np.allclose(got, table, rtol=0.02)  # a device on the basis: predicted closely
    assert all(lut.entries[k].uncertainty_ms > 0 for k in KEYS[:50] if k not in dict(rows))
    assert any("predicted from 12 measured cells" in w for w in lut_warnings(lut))


def test_predict_from_a_partial_lut_as_the_profiler_writes_it(tmp_path, capsys):
    _, _, rows = measured(seed=1)
    part = Lut(space="nb201", space_fingerprint=SPACE.fingerprint,
               device={"name": "phone", "backend": "onnxruntime"}, complete=False,
               entries={k: EntryStats(median_ms=float(v), p10_ms=float(v) * 0.98,
                                      p90_ms=float(v) * 1.02, n=30, spread=0.01)
                        for k, v in rows},
               build={"partial": True, "measured_cells": [k for k, _ in rows]})
    save_lut(part, tmp_path / "phone-nb201-cells.json")
    out = tmp_path / "new.json"
    assert main(["lut", "import", "--partial", str(tmp_path / "phone-nb201-cells.json"),
                 "--space", "nb201", "--predict", "--device", "phone", "--out", str(out)]) == 0
    assert "predicted from 12 measured cells" in capsys.readouterr().out
    lut = load_lut(out)
    k0 = rows[0][0]
    assert lut.entries[k0].n == 30 and lut.entries[k0].uncertainty_ms == 0  # stats kept
    assert lut.build["measured_on"]["backend"] == "onnxruntime"


def test_profiler_reference_cells_are_enough_to_predict():
    from profiler.pipeline import resolve_cells
    from sgnas.lut_predict import MIN_CELLS

    cells = resolve_cells("reference", SPACE)
    assert len(cells) >= MIN_CELLS and len({str(c) for c in cells}) == len(cells)


@pytest.mark.parametrize("case, msg", [
    ("few", "9 measured cells, a predicted table needs at least 10"),
    ("duplicate", "appears twice"),
    ("unknown", "unknown op 'sep_conv_3x3'"),
    ("nan", "is not a finite number"),
    ("negative", "want a positive number of ms"),
    ("column", "has no column 'latency'"),
])
def test_bad_partial_tables_exit_2_and_overwrite_nothing(tmp_path, capsys, case, msg):
    _, _, rows = measured()
    rows = [list(r) for r in rows]
    column = "ms"
    if case == "few":
        rows = rows[:9]
    elif case == "duplicate":
        rows[3][0] = rows[5][0]
    elif case == "unknown":
        rows[2][0] = rows[2][0].replace("~0|+", "~0|+", 1).replace(
            rows[2][0].split("~")[0][1:], "sep_conv_3x3", 1)
    elif case == "nan":
        rows[4][1] = "nan"
    elif case == "negative":
        rows[4][1] = "-1.5"
    elif case == "column":
        column = "latency"
    src = write_partial(tmp_path / "partial.csv", rows)
    out = tmp_path / "new.json"
    out.write_text("keep me")
    assert main(["lut", "import", "--csv", str(src), "--column", column, "--space", "nb201",
                 "--predict", "--device", "phone", "--out", str(out), "--force"]) == 2
    assert msg in _error(capsys)
    assert out.read_text() == "keep me"


def test_predicted_lut_refused_by_check_and_served_with_a_margin_by_generate(tmp_path, capsys):
    from sgnas.shared_generator import load_shared
    from sgnas.generator import default_generator_dirs
    from sgnas.shared_generator import find_shared_generator

    table = device_table()
    shared = find_shared_generator(SPACE, default_generator_dirs())
    refs = [str(c) for c in load_shared(shared).references]
    src = write_partial(tmp_path / "refs.csv",
                        [(k, repr(float(table[KEYS.index(k)]))) for k in refs])
    out = tmp_path / "new.json"
    assert main(["lut", "import", "--csv", str(src), "--column", "ms", "--space", "nb201",
                 "--predict", "--device", "phone", "--out", str(out)]) == 0
    capsys.readouterr()

    assert main(["check", "--lut", str(out), "--device", "cpu"]) == 2
    assert "is predicted from 50 measured cells" in _error(capsys)

    target = float(np.quantile(table, 0.5))
    assert main(["generate", "--latency-ms", str(target), "--lut", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    result = json.loads(cap.out)["results"][0]
    m = result["margin"]
    assert "chosen cell predicted at" in cap.err
    lut = load_lut(out)
    e = lut.entries[SPACE.cell_key(SPACE.parse(result["arch"]))]
    assert m["predicted"] == pytest.approx(e.median_ms)
    assert e.median_ms + m["margin"] <= target * (1 + 1e-9)  # the bound meets the target


@pytest.mark.slow
def test_design_profile_then_predict(tmp_path, quick, capsys):
    """The whole path of a new device: which cells, measure them, predict the rest."""
    from sgnas.cli.main import profile_main

    cells = tmp_path / "cells.txt"
    assert main(["lut", "design", "--cells", "10", "--out", str(cells)]) == 0
    assert len(cells.read_text().split()) == 10
    part = tmp_path / "quick-nb201-cells.json"
    assert profile_main(["--device", str(quick), "--space", "nb201", "--cells", str(cells),
                         "--out", str(part), "--json"]) == 0
    out = tmp_path / "quick-nb201.json"
    assert main(["lut", "import", "--partial", str(part), "--space", "nb201", "--predict",
                 "--device", "quick", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["measured"] == 10 and summary["entries"] == 15625
    lut = load_lut(out)
    measured = load_lut(part, allow_incomplete=True)
    for k, e in measured.entries.items():
        assert lut.entries[k].median_ms == e.median_ms and lut.entries[k].uncertainty_ms == 0
    assert main(["lut", "design", "--cells", "9", "--out", str(tmp_path / "x.txt")]) == 2
    assert "at least 10" in _error(capsys)


@pytest.mark.slow
def test_search_keeps_the_margin_on_a_predicted_lut(tmp_path, capsys):
    from tests.conftest import make_image_folder

    folder = make_image_folder(tmp_path / "data", train_per_class=8, test_per_class=2, size=32)
    assert main(["train-supernet", "--space", "nb201", "--epochs", "1", "--batch-size", "4",
                 "--max-steps-per-epoch", "1", "--paths-per-step", "1", "--held-out", "8",
                 "--balanced-split", "--workers", "0", "--no-progress", "--label-smoothing", "0",
                 "--data", str(folder), "--out", str(tmp_path / "run")]) == 0
    table, _, rows = measured(k=20)
    src = write_partial(tmp_path / "partial.csv", rows)
    lut_path = tmp_path / "new.json"
    assert main(["lut", "import", "--csv", str(src), "--column", "ms", "--space", "nb201",
                 "--predict", "--device", "phone", "--out", str(lut_path)]) == 0
    capsys.readouterr()
    target = float(np.quantile(table, 0.5))
    assert main(["search", "--strategy", "random", "--candidates", "3", "--latency-ms",
                 str(target), "--lut", str(lut_path), "--supernet",
                 str(tmp_path / "run" / "supernet.pt"), "--data", str(folder),
                 "--calib-batches", "1", "--batch-size", "2", "--workers", "0", "--device",
                 "cpu", "--no-progress", "--json"]) == 0
    cap = capsys.readouterr()
    result = json.loads(cap.out)
    m = result["meta"]["margin"]
    assert "chosen cell predicted at" in cap.err
    e = load_lut(lut_path).entries[result["best"]["arch"]]
    assert m["predicted"] == pytest.approx(e.median_ms)
    assert e.median_ms + m["margin"] <= target * (1 + 1e-9)
    for c in result["candidates"]:  # every candidate was held to its bound
        assert c["cost"] <= target * (1 + 1e-9)


DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "nasbench201"


@pytest.mark.skipif(not (DATA / "nb201.csv").is_file(), reason="NAS-Bench-201 tables absent")
def test_index_column_instead_of_arch_strings(tmp_path, capsys):
    from sgnas.nb201.bench import BenchmarkIndex

    bidx = BenchmarkIndex.load(DATA)
    _, _, rows = measured()
    src = write_partial(tmp_path / "partial.csv", [(bidx.index(k), v) for k, v in rows],
                        header=("index", "ms"))
    out = tmp_path / "new.json"
    assert main(["lut", "import", "--csv", str(src), "--column", "ms", "--space", "nb201",
                 "--predict", "--device", "phone", "--out", str(out), "--bench", str(DATA)]) == 0
    lut = load_lut(out)
    assert sorted(lut.prediction["measured_cells"]) == sorted(k for k, _ in rows)
    bad = write_partial(tmp_path / "bad.csv", [(99999, 1.0)] * 12, header=("index", "ms"))
    assert main(["lut", "import", "--csv", str(bad), "--column", "ms", "--space", "nb201",
                 "--predict", "--device", "phone", "--out", str(tmp_path / "x.json"),
                 "--bench", str(DATA)]) == 2
    assert "benchmark index 99999" in _error(capsys)
