"""Files the package ships (device descriptors, LUTs, generators, supernets) and the per-user folder.

An installed wheel carries them as package data, ``sgnas/_shipped/<folder>/``, found through
:mod:`importlib.resources`; a source checkout (or an editable install) reads the repository's
top-level folders ``devices/``, ``lut/``, ``generators/``, ``supernets/``. Shipped files are
read-only to the tools: what a user measures goes to an explicit ``--out`` or to the per-user
folder :func:`user_dir` (``$SGNAS_HOME``, default ``~/.cache/sgnas``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: The shipped folders (top-level in the repository, ``sgnas/_shipped/`` in a wheel).
FOLDERS = ("devices", "lut", "generators", "supernets")
#: Name of the package-data folder inside the installed ``sgnas`` package.
DATA_FOLDER = "_shipped"


def shipped_dir(folder: str) -> Path:
    """The folder of shipped ``folder`` files (one of :data:`FOLDERS`): the package data of an
    installed wheel, else the repository's top-level folder."""
    if folder not in FOLDERS:
        raise ValueError(f"unknown shipped folder {folder!r}; known: {', '.join(FOLDERS)}")
    packaged = Path(str(resources.files("sgnas") / DATA_FOLDER / folder))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / folder


def shipped_file(folder: str, name: str) -> Path | None:
    """The shipped file ``folder/name``, or ``None`` when the package ships none."""
    path = shipped_dir(folder) / name
    return path if path.is_file() else None


def is_shipped(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an existing file inside one of the shipped folders (read-only to the
    tools)."""
    try:
        target = Path(path).resolve()
    except OSError:
        return False
    if not target.is_file():
        return False
    for folder in FOLDERS:
        root = shipped_dir(folder).resolve()
        if target.parent == root or root in target.parents:
            return True
    return False


def sgnas_home() -> Path:
    """The per-user folder: ``$SGNAS_HOME``, default ``~/.cache/sgnas`` (``$XDG_CACHE_HOME``
    honoured)."""
    env = os.environ.get("SGNAS_HOME")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "sgnas"


def user_dir(folder: str = "lut") -> Path:
    """``<sgnas_home()>/<folder>``: where measurements go when no ``--out`` is given (not created
    here; writers create it)."""
    return sgnas_home() / folder


def find_lut(text: str) -> Path | None:
    """A LUT named on the command line: an existing path as given; else a LUT name (``cpu-cifar10``
    or ``cpu-cifar10.json``) in the per-user folder, then among the shipped LUTs; else a path
    ``lut/<name>.json`` that does not exist here (outside the repository) names the shipped LUT.
    ``None`` when none of them exists."""
    path = Path(text)
    if path.is_file():
        return path
    parts = path.parts
    if path.is_absolute() or len(parts) > 2 or (len(parts) == 2 and parts[0] != "lut"):
        return None
    name = path.name if path.suffix == ".json" else path.name + ".json"
    mine = user_dir("lut") / name
    if len(parts) == 1 and mine.is_file():
        return mine
    return shipped_file("lut", name)


def shipped_names(folder: str, pattern: str = "*") -> list[str]:
    """Names of the shipped files of ``folder`` matching ``pattern``, sorted."""
    root = shipped_dir(folder)
    return sorted(p.name for p in root.glob(pattern)) if root.is_dir() else []
