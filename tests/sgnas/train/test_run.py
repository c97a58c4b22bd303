"""Run-folder rules shared by the trainers: refuse, resume, force; resume checks; autocast."""

from __future__ import annotations

import pytest
import torch

from sgnas.checkpoint import save_checkpoint
from sgnas.errors import SgnasError
from sgnas.space import get_space
from sgnas.train.run import RunDir, autocast, check_resume

SPACE = get_space("tiny")


def _ckpt(path, kind="k"):
    save_checkpoint(path, {"space": SPACE.name, "space_fingerprint": SPACE.fingerprint, "v": 1}, kind)


def test_fresh_run_refuses_existing_files_unless_forced(tmp_path):
    run = RunDir(tmp_path, ("last.pt", "log.jsonl"), ("last.pt",), "k")
    assert run.open(resume=False, force=False) is None
    (tmp_path / "log.jsonl").write_text("{}\n")
    with pytest.raises(SgnasError, match="log.jsonl exists; pass --resume"):
        run.open(resume=False, force=False)
    assert run.open(resume=False, force=True) is None and run.replaced == [tmp_path / "log.jsonl"]
    run.remove_replaced()
    assert not (tmp_path / "log.jsonl").exists()


def test_resume_loads_the_first_checkpoint_and_checks_kind(tmp_path):
    run = RunDir(tmp_path, ("last.pt", "final.pt"), ("last.pt", "final.pt"), "k")
    with pytest.raises(SgnasError, match="nothing to resume: no last.pt or final.pt"):
        run.open(resume=True, force=False)
    _ckpt(tmp_path / "final.pt")
    assert run.open(resume=True, force=False)["v"] == 1
    assert run.resumed_from == tmp_path / "final.pt"
    _ckpt(tmp_path / "last.pt", kind="other")
    with pytest.raises(SgnasError, match="'other' checkpoint, expected 'k'"):
        RunDir(tmp_path, ("last.pt",), ("last.pt",), "k").open(resume=True, force=False)


def test_check_resume_names_the_first_changed_setting():
    check_resume("p", [("a", 1, 1)])
    with pytest.raises(SgnasError, match="cannot resume p: b was 1, now 2"):
        check_resume("p", [("a", 1, 1), ("b", 1, 2), ("c", 0, 9)])


def test_autocast_only_when_enabled():
    cpu = torch.device("cpu")
    with autocast(cpu, enabled=True):
        assert torch.is_autocast_enabled('cpu')
    with autocast(cpu, enabled=True, cuda_only=True):
        assert not torch.is_autocast_enabled('cpu')
    with autocast(cpu, enabled=False):
        assert not torch.is_autocast_enabled('cpu')
