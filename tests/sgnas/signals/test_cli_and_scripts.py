"""``sgnas score`` and the proxy-table scripts."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sgnas.cli.main import main

ROOT = Path(__file__).resolve().parents[3]


def test_list(capsys):
    assert main(["score", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"supernet", "table", "flops", "naswot", "ensemble"} <= set(names)


def test_unknown_signal_one_line_exit_2(tmp_path, capsys):
    assert main(["score", "--signal", "nope", "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown signal 'nope'; known:" in err and "naswot" in err
    assert not (tmp_path / "s.csv").exists()


def test_flops_table_written_and_not_overwritten(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["score", "--signal", "flops", "--cells", "7", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(open(out)))
    assert summary["archs"] == len(rows) == 7 and set(rows[0]) == {"arch_str", "score"}
    before = out.read_text()
    assert main(["score", "--signal", "params", "--cells", "7", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == before


def test_proxy_from_an_image_folder_roundtrips_as_a_table(tmp_path, image_folder, capsys):
    out = tmp_path / "n.csv"
    archs = tmp_path / "archs.txt"
    archs.write_text("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|\n"
                     "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n")
    args = ["score", "--signal", "naswot", "--archs", str(archs), "--data", str(image_folder),
            "--batch-size", "4", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    assert main(args) == 0
    rows = list(csv.DictReader(open(out)))
    scores = [float(r["score"]) for r in rows]
    assert np.isfinite(scores).all() and scores[1] < scores[0]  # dead cell at the floor
    assert main(["score", "--signal", f"table:{out}", "--archs", str(archs), "--column", "score",
                 "--out", str(tmp_path / "t.csv")]) == 2  # a 2-row NB201 table is incomplete
    assert "cells missing" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has nvidia-smi")
def test_gpu_proxies_without_a_gpu_says_so(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_proxies.sh"), str(tmp_path / "w")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["ok"] is False and line["step"] == "gpu"


@pytest.mark.slow
def test_gpu_proxies_smoke_on_cpu(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, DATA=str(tmp_path / "none"), BENCH=str(tmp_path))
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_proxies.sh"), "--smoke",
                           str(tmp_path / "w")], capture_output=True, text=True, env=env,
                          timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["ok"] and line["cells"] == line["scored"] == 50
    # few files under the work folder (a device run returns a limited number); caches elsewhere
    assert sorted(os.listdir(tmp_path / "w" / "proxies")) == ["minibatch.pt", "nb201_proxies.csv",
                                                              "summary.json"]
    rows = list(csv.DictReader(open(line["files"]["wide"])))
    assert len(rows) == 50
    for name in ("synflow", "naswot", "jacob_cov", "snip", "grad_norm"):
        assert line["files"][name] == line["files"]["wide"]
        assert np.isfinite([float(r[name]) for r in rows]).all()


@pytest.mark.slow
def test_nb201_proxies_resumes(tmp_path):
    cmd = [sys.executable, str(ROOT / "scripts" / "nb201_proxies.py"), "--random-data",
           "--out", str(tmp_path / "o"), "--proxies", "naswot,synflow", "--batch-size", "4",
           "--workers", "2", "--quiet", "--format", "both"]
    first = subprocess.run(cmd + ["--cells", "6"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(cmd + ["--cells", "9"], capture_output=True, text=True, timeout=600)
    res = json.loads(again.stdout.strip().splitlines()[-1])
    assert res["ok"] and res["scored"] == 9 and res["computed_now"] == 3
    rows = list(csv.DictReader(open(res["files"]["naswot"])))
    wide = list(csv.DictReader(open(res["files"]["wide"])))
    assert len(rows) == len(wide) == 9
    assert [r["score"] for r in rows] == [r["naswot"] for r in wide]
