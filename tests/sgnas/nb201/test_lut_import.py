import json

import numpy as np
import pytest
import torch

from sgnas.cli.main import main
from sgnas.lut import load_lut
from sgnas.nb201.cost import expected_cost, lut_table
from sgnas.nb201.space import Cell, NB201Space, all_cells

from .conftest import bench_dir_or_skip

SP = NB201Space()


@pytest.fixture(scope="module")
def full_csv(tmp_path_factory):
    """A per-cell table of every cell, rows shuffled: dev_ms = 1 + code / 1000."""
    cells = list(all_cells())
    order = np.random.default_rng(0).permutation(len(cells))
    path = tmp_path_factory.mktemp("t") / "lat.csv"
    lines = ["index,arch_str,dev_ms,other_ms"]
    for i, k in enumerate(order):
        c = cells[k]
        lines.append(f"{i},{c},{1 + c.code / 1000},2.0")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(args, capsys):
    code = main(["lut", "import", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_full_table(full_csv, tmp_path, capsys):
    out = tmp_path / "lut" / "dev-nb201.json"
    code, stdout, _ = run(["--csv", str(full_csv), "--column", "dev_ms", "--space", "nb201",
                           "--device", "dev", "--out", str(out), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["entries"] == 15625
    lut = load_lut(out, space="nb201", device="dev")
    assert lut.build["provenance"] == "imported" and lut.build["column"] == "dev_ms"
    assert lut.build["source"].endswith("lat.csv") and len(lut.build["source_sha256"]) == 64
    cell = Cell.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                      "nor_conv_3x3~1|nor_conv_1x1~2|")
    assert lut.predict_ms(cell, space=SP) == pytest.approx(1 + cell.code / 1000)
    table = lut_table(lut, SP)
    probs = torch.full((6, 5), 0.2, dtype=torch.float64)
    assert expected_cost(table, probs).item() == pytest.approx(1 + (15625 - 1) / 2000)


def _expect_error(capsys, args, match, out):
    before = out.read_bytes() if out.exists() else None
    code, _, err = run(args, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and match in err, err
    assert (out.read_bytes() if out.exists() else None) == before


def test_import_errors_leave_nothing(full_csv, tmp_path, capsys):
    out = tmp_path / "x.json"
    base = ["--space", "nb201", "--device", "dev", "--out", str(out)]
    _expect_error(capsys, ["--csv", str(full_csv), "--column", "gold_ms", *base],
                  "no column 'gold_ms'", out)
    lines = full_csv.read_text().splitlines()
    missing = tmp_path / "missing.csv"
    missing.write_text("\n".join(lines[:-1]) + "\n")
    _expect_error(capsys, ["--csv", str(missing), "--column", "dev_ms", *base],
                  "1 of 15625 cells missing", out)
    dup = tmp_path / "dup.csv"
    dup.write_text("\n".join(lines[:-1] + [lines[1]]) + "\n")
    _expect_error(capsys, ["--csv", str(dup), "--column", "dev_ms", *base], "appears twice", out)
    bad = tmp_path / "bad.csv"
    row = lines[10].split(",")
    row[2] = "n/a"
    bad.write_text("\n".join(lines[:10] + [",".join(row)] + lines[11:]) + "\n")
    _expect_error(capsys, ["--csv", str(bad), "--column", "dev_ms", *base],
                  "line 11 ", out)
    other = tmp_path / "other.csv"
    other.write_text("arch_str,dev_ms\ncifar10:33-33-33,1.0\n")
    _expect_error(capsys, ["--csv", str(other), "--column", "dev_ms", *base],
                  "a table of space 'cifar10'", out)
    _expect_error(capsys, ["--csv", str(full_csv), "--column", "dev_ms", "--space", "cifar10",
                           "--device", "dev", "--out", str(out)], "not a cell space", out)
    # an existing file is not overwritten without --force, even by a valid table
    out.write_text("keep")
    _expect_error(capsys, ["--csv", str(full_csv), "--column", "dev_ms", *base], "exists", out)
    assert out.read_text() == "keep"


def test_import_benchmark_latency_column(tmp_path, capsys):
    folder = bench_dir_or_skip()
    out = tmp_path / "gold_6226-nb201.json"
    code, _, _ = run(["--csv", str(folder / "latency.csv"), "--column", "gold_6226_ms",
                      "--space", "nb201", "--device", "gold_6226", "--out", str(out)], capsys)
    assert code == 0
    lut = load_lut(out, space="nb201", device="gold_6226")
    assert len(lut.entries) == 15625 and lut.build["source_name"] == "latency.csv"
    # HELP's file names quote gold_6226 latencies 8.026 / 10.680 / 14.324 ms for some cells
    values = np.array([e.median_ms for e in lut.entries.values()])
    for v in (8.026, 10.680, 14.324):
        assert np.abs(values - v).min() < 5e-4


def test_cost_cli_on_cells(full_csv, tmp_path, capsys):
    out = tmp_path / "dev.json"
    assert run(["--csv", str(full_csv), "--column", "dev_ms", "--space", "nb201", "--device",
                "dev", "--out", str(out)], capsys)[0] == 0
    text = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    assert main(["cost", "--arch", text, "--lut", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    cell = Cell.parse(text)
    assert rep["arch"] == text and rep["params"] == 1073466
    assert rep["latency_ms_raw"] == pytest.approx(1 + cell.code / 1000)
    assert main(["cost", "--arch", text.replace("nor_conv_1x1~2", "conv_7x7~2")]) == 2
    err = capsys.readouterr().err
    assert "edge 5 (node 3 <- node 2): unknown op 'conv_7x7'" in err
