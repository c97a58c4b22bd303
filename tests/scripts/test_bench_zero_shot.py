"""Pieces of scripts/bench_zero_shot.py: the hardware groups, the pick rules, a short run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_zero_shot.py"
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "nasbench201"


def load():
    spec = importlib.util.spec_from_file_location("bench_zero_shot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_groups_are_whole_generations():
    bench = load()
    names = ["1080ti_1", "2080ti_1", "2080ti_256", "titan_rtx_32", "gold_6226", "silver_4114",
             "pixel2", "pixel3", "essential_ph_1", "samsung_s7", "raspi4", "eyeriss"]
    g = bench.groups_of(names)
    assert g["turing"] == ["2080ti_1", "2080ti_256", "titan_rtx_32"]
    assert g["xeon"] == ["gold_6226", "silver_4114"]
    assert g["phone"] == ["pixel2", "pixel3", "essential_ph_1", "samsung_s7"]
    with pytest.raises(Exception, match="no device of group xeon"):
        bench.groups_of(["2080ti_1", "pixel2"])


def test_pick_rules_and_judging():
    bench = load()
    score = np.array([5.0, 9.0, 9.0, 1.0])
    mask = np.array([True, True, True, False])
    assert bench.top_pick(mask, score).tolist() == [1, 2]  # a tie: all of it
    assert bench.top_pick(mask, score, np.array([0, 3.0, 2.0, 0])).tolist() == [2]
    assert bench.top_pick(np.zeros(4, bool), score).size == 0
    truth, acc = np.array([1.0, 2.0, 4.0, 1.0]), np.array([80.0, 90.0, 94.0, 70.0])
    assert bench.judge(np.array([1, 2]), truth, acc, 3.0, 95.0) == (0.5, 3.0)
    met, regret = bench.judge(np.array([], dtype=int), truth, acc, 3.0, 95.0)
    assert met == 0.0 and np.isnan(regret)


def test_spread_cells_one_per_stratum():
    bench = load()
    flops = np.arange(100, dtype=float)
    conn = np.ones(100, dtype=bool)
    cells = bench.spread_cells(flops, conn, 10, seed=0)
    assert sorted(cells // 10) == list(range(10))


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "latency.csv").is_file(), reason="NAS-Bench-201 tables absent")
def test_short_run_prints_one_json_line(capsys):
    bench = load()
    assert bench.main(["--bench", str(DATA), "--ks", "10", "--seeds", "1",
                       "--groups", "xeon"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    s = json.loads(out[0])["by_k"]["10"]
    assert s["pairs"] == 15 and s["met"]["full"] == 1.0 and 0.8 < s["spearman_mean"] <= 1
    assert s["met"]["verify"] == 1.0 and 0 <= s["verify_measurements_mean"] <= 3
