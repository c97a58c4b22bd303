"""The per-device profile lock, exercised across processes."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from profiler.lock import ProfileLock, ProfileLockedError, lock_path

ROOT = Path(__file__).resolve().parents[2]

HOLD = textwrap.dedent("""
    import sys, time
    from profiler.lock import ProfileLock
    lock = ProfileLock(sys.argv[1], what="test holder", directory=sys.argv[2]).acquire()
    print("held", flush=True)
    if sys.argv[3] == "crash":
        import os; os._exit(0)      # dies without releasing: the file keeps its PID
    if sys.argv[3].startswith("until:"):   # hold until that file exists
        import os
        t0 = time.time()
        while not os.path.exists(sys.argv[3][6:]) and time.time() - t0 < 120:
            time.sleep(0.05)
    else:
        time.sleep(float(sys.argv[3]))
    lock.release()
""")


def _hold(tmp_path, mode, device="cpu"):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, device, str(tmp_path), mode], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_lock_refused_naming_the_pid(tmp_path):
    proc = _hold(tmp_path, "30")
    try:
        with pytest.raises(ProfileLockedError, match=f"PID {proc.pid} \\(test holder\\).*--wait"):
            ProfileLock("cpu", directory=tmp_path).acquire()
        # another device is independent
        with ProfileLock("cpu-2t", directory=tmp_path) as other:
            assert other.held
    finally:
        proc.kill()
        proc.wait()


def test_wait_until_the_holder_finishes(tmp_path):
    proc = _hold(tmp_path, "1.0")
    notes = []
    t0 = time.monotonic()
    with ProfileLock("cpu", directory=tmp_path, wait=True, poll_s=0.05, warn=notes.append) as lock:
        assert lock.held and lock.took_over is None
    assert time.monotonic() - t0 > 0.3
    assert notes and "waiting" in notes[0] and str(proc.pid) in notes[0]
    proc.wait()


def test_wait_with_timeout_gives_up(tmp_path):
    proc = _hold(tmp_path, "30")
    try:
        with pytest.raises(ProfileLockedError):
            ProfileLock("cpu", directory=tmp_path, wait=True, timeout_s=0.2, poll_s=0.05,
                        warn=lambda m: None).acquire()
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path):
    proc = _hold(tmp_path, "crash")
    proc.wait()
    assert str(proc.pid) in lock_path("cpu", tmp_path).read_text()
    notes = []
    with ProfileLock("cpu", directory=tmp_path, warn=notes.append) as lock:
        assert lock.took_over == proc.pid
    assert len(notes) == 1 and f"left by PID {proc.pid}" in notes[0]
    # a clean release leaves an empty file: the next taker says nothing
    assert lock_path("cpu", tmp_path).read_text() == ""
    notes.clear()
    with ProfileLock("cpu", directory=tmp_path, warn=notes.append):
        pass
    assert notes == []


def test_lock_is_exclusive_within_a_process_too(tmp_path):
    with ProfileLock("cpu", directory=tmp_path):
        with pytest.raises(ProfileLockedError, match=f"PID {os.getpid()}"):
            ProfileLock("cpu", directory=tmp_path).acquire()


def test_device_names_are_made_file_safe(tmp_path):
    assert lock_path("../x/y", tmp_path).parent == tmp_path


def test_cli_refuses_while_the_device_is_locked(tmp_path):
    proc = _hold(tmp_path, "60", device="cpu")
    try:
        out = tmp_path / "lut.json"
        res = subprocess.run(
            [sys.executable, "-m", "sgnas.cli.main", "profile", "--device", "cpu", "--space", "tiny",
             "--out", str(out), "--limit", "1"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT), "SGNAS_LOCK_DIR": str(tmp_path)})
    finally:
        proc.kill()
        proc.wait()
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: device cpu is being profiled by PID "
                                                   f"{proc.pid}")
    assert not out.exists()


@pytest.mark.slow
def test_cli_waits_for_the_holder_with_wait(tmp_path):
    go = tmp_path / "release"
    proc = _hold(tmp_path, f"until:{go}", device="cpu")
    out = tmp_path / "lut.json"
    cli = subprocess.Popen(
        [sys.executable, "-m", "sgnas.cli.main", "profile", "--device", "cpu", "--space", "tiny",
         "--out", str(out), "--limit", "1", "--wait", "--no-canary", "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SGNAS_LOCK_DIR": str(tmp_path)})
    try:
        first = cli.stderr.readline()  # the CLI says it waits, and for whom
        assert first.startswith(f"warning: device cpu is being profiled by PID {proc.pid}")
        assert not out.exists()
        go.touch()
        stdout, stderr = cli.communicate(timeout=300)
    finally:
        go.touch()
        proc.wait()
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, stderr
    assert out.exists() and '"entries": 1' in stdout
