"""A profile lock per device: two measurements on one device at once disturb each other.

The lock is an ``flock`` on ``<lock dir>/<device>.lock`` (default lock dir: ``$SGNAS_LOCK_DIR`` or
``<tmp>/sgnas-locks``, shared by every checkout on the machine). The kernel releases an ``flock``
when its process dies, so taking it is atomic and a crashed holder never blocks anyone. The file
holds the holder's PID and what it is doing; a clean release empties it, so a non-empty file found
when the lock is free was left by a process that died — it is taken over with a warning.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

from sgnas.errors import SgnasError


class ProfileLockedError(SgnasError):
    """The device is being profiled by another live process."""


def lock_dir() -> Path:
    """``$SGNAS_LOCK_DIR`` or ``<system tmp>/sgnas-locks``."""
    env = os.environ.get("SGNAS_LOCK_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "sgnas-locks"


def lock_path(device: str, directory: str | os.PathLike | None = None) -> Path:
    """The lock file of ``device`` (its name made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", device) or "device"
    return Path(directory if directory is not None else lock_dir()) / f"{safe}.lock"


class ProfileLock:
    """Exclusive lock of one device; a context manager.

    ``wait=False``: :meth:`acquire` raises :class:`ProfileLockedError` naming the holder's PID when
    the lock is held. ``wait=True``: it polls every ``poll_s`` until free (``timeout_s``: give up
    then, with the same error). Notices (waiting, taking over a dead holder's lock) go to
    ``warn`` (default: :func:`warnings.warn`).
    """

    def __init__(self, device: str, what: str = "", directory: str | os.PathLike | None = None,
                 wait: bool = False, timeout_s: float | None = None, poll_s: float = 0.5,
                 warn: Callable[[str], None] | None = None) -> None:
        self.device = device
        self.what = what
        self.path = lock_path(device, directory)
        self.wait = wait
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.warn = warn or (lambda msg: warnings.warn(msg, stacklevel=3))
        self._fd: int | None = None
        #: PID of a dead holder whose lock was taken over, if any.
        self.took_over: int | None = None

    def acquire(self) -> "ProfileLock":
        import fcntl

        if self._fd is not None:
            raise SgnasError(f"profile lock {self.path} is already held by this process")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        waited = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _read(fd)
                    if not self.wait or (deadline is not None and time.monotonic() >= deadline):
                        raise ProfileLockedError(self._held_message(holder)) from None
                    if not waited:
                        self.warn(f"device {self.device} is being profiled by "
                                  f"{self._describe(holder)}; waiting")
                        waited = True
                    time.sleep(self.poll_s)
            left = _read(fd)
            pid = int(left.get("pid", 0) or 0)
            if pid and pid != os.getpid():
                self.took_over = pid
                self.warn(f"taking over the profile lock of device {self.device} left by PID {pid}, "
                          f"which is no longer running ({self.path})")
            _write(fd, {"pid": os.getpid(), "host": socket.gethostname(), "device": self.device,
                        "what": self.what, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the file (a clean release) and unlock; the file itself stays."""
        import fcntl

        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "ProfileLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _describe(self, holder: dict) -> str:
        pid = holder.get("pid", "?")
        what = f" ({holder['what']})" if holder.get("what") else ""
        return f"PID {pid}{what}"

    def _held_message(self, holder: dict) -> str:
        return (f"device {self.device} is being profiled by {self._describe(holder)}; wait for it "
                f"to finish or use --wait (lock {self.path})")


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 4096):
        raw += chunk
    try:
        data = json.loads(raw.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(fd: int, data: dict) -> None:
    blob = json.dumps(data).encode()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, blob)
    os.fsync(fd)
