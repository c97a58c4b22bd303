"""The prepared GPU scripts stop at once, with one JSON line and exit 2, on a host without a GPU."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has nvidia-smi")
@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_nb201.sh"])
def test_gpu_script_without_a_gpu_says_so(tmp_path, script):
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / script), str(tmp_path / "work")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["ok"] is False and line["step"] == "gpu" and "nvidia-smi" in line["error"]


def _load(path: Path, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_nb201_dry_run_on_the_cpu_reports_where_the_time_goes(tmp_path):
    """Every step of scripts/gpu_nb201.sh on a tiny folder, the CPU standing in for the GPU (a fake
    nvidia-smi, DEVICE=cpu): one JSON line with the throughput split and the ranking."""
    make_image_folder = _load(ROOT / "tests" / "conftest.py", "root_conftest").make_image_folder
    write_bench = _load(ROOT / "tests" / "sgnas" / "nb201" / "synthetic_bench.py",
                        "synthetic_bench").write_bench
    data = make_image_folder(tmp_path / "data", size=32)
    bench = write_bench(tmp_path / "bench")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'Fake GPU'\n")
    (fake / "nvidia-smi").chmod(0o755)
    env = dict(os.environ, PYTHON=sys.executable, PATH=f"{fake}:{os.environ['PATH']}", DEVICE="cpu",
               BATCH="4", HELD_OUT="8", CELLS="3", EVAL_IMAGES="8", WORKERS="0",
               TRAIN_SECONDS="5", DATA=str(data), BENCH=str(bench))
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_nb201.sh"), str(tmp_path / "work")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["ok"] is True and out["gpu"] == "Fake GPU" and out["epochs"] >= 1
    tp = out["throughput"]
    assert tp["augment_on"] == "device" and "--gpu-augment" in out["resume"]
    assert tp["step_images_per_s"] >= tp["end_to_end_images_per_s"] > 0
    assert set(tp["loader_alone_images_per_s"]) == {"uint8", "augmenting"}
    assert all(v > 0 for v in tp["loader_alone_images_per_s"].values())
    split = tp["last_epoch_s"]
    assert split["wait_s"] + split["input_s"] + split["step_s"] <= split["time_s"] + 1e-3
    assert tp["bottleneck"] in ("loader", "step")
    assert out["ranking"]["cells"] == 3
    log = [json.loads(x) for x in (tmp_path / "work" / "supernet" / "train_log.jsonl").open()]
    epoch = [r for r in log if r["event"] == "epoch"][-1]
    assert {"wait_s", "input_s", "step_s", "step_images_per_s"} <= set(epoch)
