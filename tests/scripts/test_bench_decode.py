"""Smoke test of scripts/bench_decode.py: it runs on a few cases and prints one JSON line."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_decode.py"


def test_bench_decode_prints_one_json_line_without_misses(capsys):
    spec = importlib.util.spec_from_file_location("bench_decode", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--tiny-cases", "4", "--timing-cases", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    for kind in ("window_and_cap", "window", "narrow_edge_window"):
        assert record["tiny"][kind]["cases"] == 4 and record["tiny"][kind]["misses"] == 0
    assert record["cifar10"]["two_constraints"]["median_ms"] > 0
    assert record["imagenet"]["one_constraint"]["median_ms"] > 0
