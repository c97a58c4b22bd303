"""The generator checkpoints of some folders, read once from their headers.

A :class:`GeneratorCatalog` scans its folders once, reading each ``*.pt`` checkpoint's plain values
only (:func:`sgnas.checkpoint.read_header`: memory-mapped, tensors never read) into a
:class:`GeneratorEntry`; the queries (:meth:`~GeneratorCatalog.find`, ``find_shared``, ``spaces``,
``choose``) work on those entries. The one full load is :func:`load_generator_file`, which hands
the file to the loader its kind registered (``GENERATOR_LOADERS``: the per-cost generator in
:mod:`sgnas.generator`, the device-conditioned one in :mod:`sgnas.shared_generator`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import SgnasError
from .generator_protocol import Generator
from .registry import Registry

#: Checkpoint kind and format version of a per-cost generator.
GENERATOR_KIND = "sgnas-generator"
GENERATOR_VERSION = 2
#: Checkpoint kind and format version of a device-conditioned (shared) generator.
SHARED_KIND = "sgnas-shared-generator"
SHARED_VERSION = 1
_VERSION_KEYS = {GENERATOR_KIND: ("generator_version", GENERATOR_VERSION),
                 SHARED_KIND: ("shared_version", SHARED_VERSION)}

#: kind tag -> ``load(path) -> Generator``; each kind registers itself in its own module.
GENERATOR_LOADERS: Registry[Callable[[str | os.PathLike], Generator]] = Registry("generator kind")


def signal_name(meta: dict) -> str:
    """The accuracy signal named in a generator's ``meta`` (older checkpoints: the supernet)."""
    signal = meta.get("signal", "supernet")
    return str(signal.get("name", "supernet")) if isinstance(signal, dict) else str(signal)


@dataclass(frozen=True)
class GeneratorEntry:
    """A generator checkpoint's header: what choosing a generator needs, no weights."""

    path: Path
    kind: str
    space: str
    space_fingerprint: str
    cost: dict = field(default_factory=dict)  # per-cost kind: name, fingerprint, range...
    meta: dict = field(default_factory=dict)
    device_input: bool = False  # shared kind: conditioned on the device
    devices: tuple[str, ...] = ()  # shared kind: the training devices
    readable: bool = True  # a format version this code reads
    mtime: float = 0.0

    @property
    def signal(self) -> str:
        return signal_name(self.meta)

    @property
    def cost_name(self) -> str | None:
        return self.cost.get("name")


def read_entry(path: str | os.PathLike) -> GeneratorEntry:
    """The header of the generator checkpoint ``path``; a missing, damaged or non-generator file is
    an :class:`SgnasError` naming it."""
    from .checkpoint import read_header

    path = Path(path)
    head = read_header(path)
    kind = str(head["kind"])
    if kind not in _VERSION_KEYS:
        raise SgnasError(f"{path} is a {kind!r} checkpoint, expected a generator "
                         f"({' or '.join(map(repr, _VERSION_KEYS))})")
    key, version = _VERSION_KEYS[kind]
    cost = head.get("cost")
    return GeneratorEntry(
        path=path, kind=kind, space=str(head.get("space")),
        space_fingerprint=str(head.get("space_fingerprint")),
        cost=dict(cost) if isinstance(cost, dict) else {}, meta=dict(head.get("meta") or {}),
        device_input=bool(head.get("device_input", False)),
        devices=tuple(str(d.get("name")) for d in head.get("devices", []) if isinstance(d, dict)),
        readable=int(head.get(key, 0) or 0) == version, mtime=path.stat().st_mtime)


def load_generator_file(path: str | os.PathLike) -> Generator:
    """The generator in ``path``, whatever its kind: the one full checkpoint load."""
    return GENERATOR_LOADERS.get(read_entry(path).kind)(path)


class GeneratorCatalog:
    """The generator checkpoints (``*.pt``) directly in ``dirs``, headers read once; files that are
    not generators or cannot be read are skipped."""

    def __init__(self, dirs: Sequence[str | os.PathLike]) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.entries: list[GeneratorEntry] = []
        for d in self.dirs:
            if not d.is_dir():
                continue
            for path in sorted(d.glob("*.pt")):
                try:
                    self.entries.append(read_entry(path))
                except SgnasError:
                    continue

    def _newest(self, entries: list[GeneratorEntry]) -> Path | None:
        return max(entries, key=lambda e: (e.mtime, e.path)).path if entries else None

    def find(self, cost: Any, same_name: bool = False) -> Path | None:
        """The newest per-cost generator trained for ``cost`` (same cost fingerprint), or with
        ``same_name`` for any cost of the same name and space (e.g. another LUT); else ``None``."""
        return self._newest([
            e for e in self.entries
            if e.kind == GENERATOR_KIND and e.readable
            and e.space_fingerprint == cost.space.fingerprint and e.cost_name == cost.name
            and (same_name or e.cost.get("fingerprint") == cost.fingerprint)])

    def find_shared(self, space: Any) -> Path | None:
        """The newest shared generator (with its device input) for ``space``."""
        return self._newest([e for e in self.entries if e.kind == SHARED_KIND and e.readable
                             and e.device_input and e.space_fingerprint == space.fingerprint])

    def spaces(self, cost_name: str, dirs: Sequence[str | os.PathLike] | None = None) -> list[str]:
        """Names of the spaces that have a ``cost_name`` per-cost generator here (in ``dirs``
        only, when given)."""
        within = None if dirs is None else {Path(d).resolve() for d in dirs}
        out: list[str] = []
        for e in self.entries:
            if e.kind == GENERATOR_KIND and e.readable and e.cost_name == cost_name \
                    and (within is None or e.path.parent.resolve() in within) \
                    and e.space not in out:
                out.append(e.space)
        return out

    def choose(self, cost: Any, shared: bool = True) -> Path:
        """The generator to serve ``cost``: one trained for it; for a per-cell latency table (a
        cell space) without one, the space's newest shared generator (with ``shared``), else its
        FLOPs generator; else one trained for the same cost name on the same space. Raises with
        the training command when none fits."""
        path = self.find(cost)
        if path is None and cost.name == "latency" and getattr(cost, "tabulated", False):
            from .costs import make_cost

            path = (self.find_shared(cost.space) if shared else None) \
                or self.find(make_cost("flops", cost.space))
        if path is None:
            path = self.find(cost, same_name=True)
        if path is None:
            where = ", ".join(str(d) for d in self.dirs)
            source = "--lut LUT.json" if cost.name == "latency" else f"--cost {cost.name}"
            raise SgnasError(f"no {cost.name} generator for space {cost.space.name} found in "
                             f"{where}; train one with: sgnas train-generator --supernet "
                             f"SUPERNET.pt {source} --data DATA_DIR")
        return path
