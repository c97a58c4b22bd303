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
