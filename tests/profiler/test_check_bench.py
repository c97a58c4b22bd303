"""The CI-check benchmark script: the planted slowdown is a heavier model, the counts are right."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_ci_check.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_ci_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_planted_slowdown_is_about_ten_percent_heavier(bench, tmp_path):
    pytest.importorskip("onnx")
    from sgnas.lut import load_lut
    from sgnas.space import load_architecture

    model, heavy, arch, heavy_arch = bench.build_models(tmp_path)
    assert model.exists() and heavy.exists() and arch != heavy_arch
    lut = load_lut(Path(__file__).resolve().parents[2] / "lut" / "cpu-cifar10.json")
    a, b = load_architecture(arch), load_architecture(heavy_arch)
    ratio = lut.predict_ms(b) / lut.predict_ms(a)
    assert 1.08 < ratio < 1.15  # the same network, two layers heavier


def test_run_case_counts_verdicts(bench, tmp_path, monkeypatch):
    codes = iter([0, 1, 0, 3, 0, 0])  # (update, check) pairs: pass, regression, inconclusive

    def fake(*args, env):
        if "--update" in args:
            return next(codes), 0.1, ""
        return next(codes), 0.1, "line"

    monkeypatch.setattr(bench, "sgnas", fake)
    out = bench.run_case("quiet", 3, tmp_path / "m.onnx", tmp_path / "h.onnx", tmp_path, "cpu", [], {})
    assert (out["ok"], out["fail"], out["inconclusive"], out["errors"]) == (1, 1, 1, 0)
    codes = iter([0, 1, 0, 0, 0, 3])
    out = bench.run_case("slow", 3, tmp_path / "m.onnx", tmp_path / "h.onnx", tmp_path, "cpu", [], {})
    assert (out["caught"], out["passed"], out["inconclusive"]) == (1, 1, 1)
