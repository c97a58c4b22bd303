"""``profiler.pipeline.profile_device``: the one profiling sequence, under the device's lock."""

import pytest

from profiler import pipeline
from profiler.lock import ProfileLock, ProfileLockedError
from profiler.pipeline import DEFAULT_NETWORKS, ProfileRequest, profile_device
from sgnas.errors import SgnasError
from sgnas.lut import load_lut
from sgnas.space import get_space

SPACE = get_space("tiny")
@pytest.fixture
def device(quick_cpu):
    return quick_cpu


@pytest.fixture(autouse=True)
def locks(tmp_path, monkeypatch):
    monkeypatch.setenv("SGNAS_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("SGNAS_HOME", str(tmp_path / "home"))
    return tmp_path / "locks"


def test_build_holds_the_device_lock_and_reports_through_notify(tmp_path, device, locks,
                                                                 monkeypatch, capsys):
    import profiler.build as build

    held = []
    real = build.build_lut

    def spy(cfg, **kw):
        held.append((locks / "cpu.lock").read_text())
        return real(cfg, **kw)

    monkeypatch.setattr(build, "build_lut", spy)
    out = tmp_path / "lut.json"
    notes: list[str] = []
    result = profile_device(ProfileRequest(device, SPACE, out=out, networks=0, limit=2,
                                           notify=notes.append))
    assert len(held) == 1 and f"sgnas-profile building {out}" in held[0]
    assert (locks / "cpu.lock").read_text() == ""  # released cleanly
    assert result.path == out and result.built and result.report is None
    assert result.record["entries"] == 2 and result.record["calibrated"] is False
    assert list(load_lut(out, allow_incomplete=True).entries) == SPACE.all_keys()[:2]
    assert capsys.readouterr() == ("", "")  # the library prints nothing
    profile_device(ProfileRequest(device, SPACE, out=out, networks=0, limit=3, resume=True,
                                  notify=notes.append))
    assert notes == [f"resuming {out}: kept 2 measured entries, 1 remain"]


def test_a_held_lock_refuses_before_anything_is_written(tmp_path, device, locks):
    out = tmp_path / "lut.json"
    with ProfileLock("cpu", what="another build", directory=locks):
        with pytest.raises(ProfileLockedError, match="another build"):
            profile_device(ProfileRequest(device, SPACE, out=out, networks=0, limit=1))
    assert not out.exists()


def test_bad_requests_are_refused_before_measuring(tmp_path, device, monkeypatch):
    monkeypatch.setattr(pipeline, "_build", lambda *a: pytest.fail("measured"))
    out = tmp_path / "lut.json"
    with pytest.raises(SgnasError, match="--validate 3 is too small"):
        profile_device(ProfileRequest(device, SPACE, out=out, networks=3))
    with pytest.raises(SgnasError, match="does not exist"):
        profile_device(ProfileRequest(device, SPACE, out=out, resume=True))
    with pytest.raises(SgnasError, match="not a cell space"):
        profile_device(ProfileRequest(device, SPACE, out=out, cells="2"))
    assert not out.exists()


def test_one_default_network_count_for_both_kinds_of_space(tmp_path, device, monkeypatch):
    seen = {}
    monkeypatch.setattr(pipeline, "_build", lambda r, d, s, o, n: seen.setdefault("layers", n))
    monkeypatch.setattr(pipeline, "_cells", lambda r, d, s, o, n: seen.setdefault("cells", n))
    profile_device(ProfileRequest(device, SPACE, out=tmp_path / "a.json"))
    profile_device(ProfileRequest(device, "nb201", out=tmp_path / "b.json"))
    assert seen == {"layers": DEFAULT_NETWORKS, "cells": DEFAULT_NETWORKS}
