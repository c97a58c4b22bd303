"""Training-run scaffolding shared by the trainers (supernet, from scratch, generator).

:class:`RunDir` owns a run's output folder: it refuses to overwrite an earlier run unless ``force``,
finds and loads the checkpoint to ``resume`` (checking its kind and search space), and removes the
replaced files once the new run has passed its checks. :func:`check_resume` compares the settings a
resumed run must keep; :func:`autocast` is the mixed-precision context; :meth:`RunDir.log` opens
the run's JSON-lines log (rank 0 only). Progress bars: :mod:`sgnas.progress`.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any, ContextManager, Iterable, Sequence

import torch

from ..checkpoint import check_space, load_checkpoint
from ..errors import SgnasError
from .trainlog import JsonlLog


class RunDir:
    """The output folder ``path`` of one run, owning ``files`` (names inside it).

    ``checkpoints`` are the names a run resumes from, in order of preference; ``kind`` is their
    checkpoint kind. :meth:`open` applies the refuse / resume / force rule.
    """

    def __init__(self, path: str | Path, files: Sequence[str], checkpoints: Sequence[str],
                 kind: str) -> None:
        self.path = Path(path)
        self.files = tuple(files)
        self.checkpoints = tuple(checkpoints)
        self.kind = kind
        self.replaced: list[Path] = []
        self.resumed_from: Path | None = None

    def file(self, name: str) -> Path:
        """``path / name``."""
        return self.path / name

    def existing(self) -> list[Path]:
        """The files of this run that exist now."""
        return [p for p in (self.file(n) for n in self.files) if p.exists()]

    def open(self, resume: bool, force: bool) -> dict[str, Any] | None:
        """The checkpoint dict to resume from (``resume``), or ``None`` for a fresh run.

        A fresh run over existing files is an error unless ``force`` (the files are then listed in
        :attr:`replaced`, for :meth:`remove_replaced` once the new run passed its checks); resuming
        without a checkpoint is an error; a checkpoint of another kind or space definition too.
        """
        if resume:
            found = [p for p in (self.file(n) for n in self.checkpoints) if p.exists()]
            if not found:
                raise SgnasError(f"nothing to resume: no {' or '.join(self.checkpoints)} in "
                                 f"{self.path}")
            data = load_checkpoint(found[0], self.kind)
            check_space(data, found[0])
            self.resumed_from = found[0]
            return data
        existing = self.existing()
        if existing and not force:
            raise SgnasError(
                f"{existing[0]} exists; pass --resume to continue that run or --force to start over"
            )
        self.replaced = existing
        return None

    def remove_replaced(self) -> None:
        """Delete the files of the run a forced start replaces."""
        for p in self.replaced:
            p.unlink(missing_ok=True)
        self.replaced = []

    def log(self, name: str, enabled: bool = True) -> JsonlLog:
        """The run's JSON-lines log ``name`` (appended to when resuming)."""
        return JsonlLog(self.file(name), enabled=enabled, append=self.resumed_from is not None)


def check_resume(path: str | Path, settings: Iterable[tuple[str, Any, Any]]) -> None:
    """Raise :class:`SgnasError` at the first ``(name, recorded, now)`` whose values differ."""
    for name, old, new in settings:
        if old != new:
            raise SgnasError(f"cannot resume {path}: {name} was {old!r}, now {new!r}")


def autocast(device: torch.device, enabled: bool, cuda_only: bool = False) -> ContextManager[Any]:
    """bfloat16 autocast on ``device`` when ``enabled`` (and, with ``cuda_only``, on CUDA only)."""
    if not enabled or (cuda_only and device.type != "cuda"):
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


__all__ = ["RunDir", "autocast", "check_resume"]
