"""Supernet training under torchrun: 2 CPU processes on Gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from sgnas.evaluation.distributed import DistInfo, all_gather_object, current, init_from_env, resolve_device


def test_single_process_defaults(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_from_env() is False
    assert current() == DistInfo(0, 1, 0) and current().is_main and not current().distributed
    assert all_gather_object("x") == ["x"]
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda:3")


@pytest.mark.slow
def test_torchrun_two_processes(image_folder, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "sgnas", "train-supernet", "--space", "tiny", "--data", str(image_folder),
           "--out", str(out), "--epochs", "2", "--batch-size", "2", "--max-steps-per-epoch", "2",
           "--paths-per-step", "2", "--held-out", "4", "--workers", "0", "--log-every", "1",
           "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(out / "supernet.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and ckpt["global_step"] == 4 and ckpt["finished"]
    epochs = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    epochs = [r for r in epochs if r["event"] == "epoch"]
    assert len(epochs) == 2
    for record in epochs:
        hashes = record["param_hashes"]
        assert len(hashes) == 2 and hashes[0] == hashes[1]
    assert epochs[0]["param_hashes"] != epochs[1]["param_hashes"]
    # only rank 0 prints the checkpoint path
    assert proc.stdout.strip().splitlines() == [str(out / "supernet.pt")]
