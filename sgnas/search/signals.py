"""Signals built from a data folder or a supernet checkpoint (the parts that need the training
code): a proxy's minibatch from images on disk, and the ``supernet`` signal's evaluator.

:func:`load_minibatch` takes ``batch_size`` training images (class-balanced, drawn from ``seed``,
evaluation transforms: no augmentation) through :mod:`sgnas.evaluation.data`, so the same folder,
size and seed give the same minibatch, hence the same cache key. :func:`make_signal` is
:func:`sgnas.signals.get_signal` with ``data`` allowed to be a folder and ``checkpoint`` building the
supernet evaluator.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import SgnasError


def load_minibatch(root: str | os.PathLike, batch_size: int = 64, seed: int = 0,
                   space: Any = None, image_size: int | None = None,
                   format: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)``: ``batch_size`` class-balanced training images of ``root`` (an
    ImageFolder tree or CIFAR-10 pickles), drawn from ``seed``, with evaluation transforms."""
    from ..evaluation.data import DataConfig, build_datasets

    if batch_size < 1:
        raise SgnasError(f"batch size must be at least 1, got {batch_size}")
    cfg = DataConfig(root=str(root), format=format, image_size=image_size, batch_size=batch_size,
                     workers=0, held_out=batch_size, balanced=True, seed=seed)
    datasets = build_datasets(cfg, space)
    items = [datasets.held_out[i] for i in range(len(datasets.held_out))]
    x = torch.stack([it[0] for it in items])
    y = torch.tensor([int(it[1]) for it in items], dtype=torch.long)
    return x, y


def supernet_evaluator(checkpoint: str | os.PathLike, data: str | os.PathLike, *,
                       batch_size: int = 128, calib_batches: int = 20,
                       eval_batches: int | None = None, seed: int = 0, device: str = "cpu",
                       split: str = "held-out") -> Any:
    """The :class:`~sgnas.search.evaluator.InheritedAccuracy` of a supernet checkpoint on the
    split it was trained with (as ``sgnas search`` scores)."""
    from ..evaluation.checkpoint import load_supernet
    from .evaluator import evaluator_from_data

    model, meta = load_supernet(str(checkpoint))
    dev = torch.device(device)
    model.to(dev)
    evaluator, _ = evaluator_from_data(model, meta, str(data), split=split, batch_size=batch_size,
                                       calib_batches=calib_batches, eval_batches=eval_batches,
                                       seed=seed, device=dev)
    return evaluator


def make_signal(name: str, *, data: Any = None, checkpoint: str | os.PathLike | None = None,
                space: Any = None, batch_size: int = 64, seed: int = 0, device: str = "cpu",
                eval_batches: int | None = None, calib_batches: int = 20, **options: Any):
    """:func:`sgnas.signals.get_signal` where ``data`` may be a folder of images (the proxies get
    a minibatch of it, the supernet evaluator its splits) and ``checkpoint`` names a supernet
    (its evaluator scores ``supernet``, also as an ensemble member)."""
    from ..signals import get_signal
    from ..signals.base import SIGNALS, split_name
    from ..signals.ensemble import _accepted
    from ..signals.proxies import PROXIES

    base, arg = split_name(name)
    SIGNALS.get(base)  # an unknown name fails first, listing the known ones
    members = [split_name(m)[0] for m in (arg or "").split("+")] if base == "ensemble" else [base]
    if base == "ensemble" and not arg:
        from ..signals.ensemble import DEFAULT_MEMBERS

        members = list(DEFAULT_MEMBERS)
    opts: dict[str, Any] = dict(options, batch_size=batch_size, seed=seed, device=device)
    if space is not None:
        opts["space"] = space
    folder = data if isinstance(data, (str, os.PathLike)) else None
    if "supernet" in members:
        if checkpoint is None:
            raise SgnasError("signal 'supernet' needs a trained supernet (--checkpoint FILE)")
        if folder is None:
            raise SgnasError("signal 'supernet' needs the supernet's image folder (--data DIR)")
        opts["evaluator"] = supernet_evaluator(checkpoint, folder, calib_batches=calib_batches,
                                               eval_batches=eval_batches, seed=seed, device=device)
    if folder is not None and any(m in PROXIES for m in members):
        from ..space import get_space

        sp = get_space(space) if isinstance(space, str) else space
        data = load_minibatch(folder, batch_size, seed, sp)
    opts["data"] = data if folder is None or any(m in PROXIES for m in members) else None
    if base == "ensemble":
        return get_signal(name, **opts)
    return get_signal(name, **_accepted(SIGNALS.get(base), opts))


def select_archs(space: Any, cells: str | int = "all", archs_file: str | os.PathLike | None = None,
                 seed: int = 0) -> list[Any]:
    """The architectures to score: those listed in ``archs_file`` (one string per line), every
    NB201 cell (``cells="all"``), or ``cells`` distinct ones sampled from ``seed``."""
    import numpy as np

    from ..nb201.space import NB201Space, all_cells
    from ..signals.base import as_archs

    if archs_file is not None:
        path = os.fspath(archs_file)
        if not os.path.isfile(path):
            raise SgnasError(f"architecture list not found: {path}")
        with open(path) as fh:
            lines = [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]
        if not lines:
            raise SgnasError(f"{path} lists no architectures")
        try:
            return as_archs(space, lines)
        except SgnasError as exc:
            raise SgnasError(f"{path}: {exc}") from None
    if str(cells) == "all":
        if not isinstance(space, NB201Space):
            raise SgnasError(f"--cells all enumerates NB201 only; space {space.name!r} needs "
                             f"--cells N or --archs FILE")
        return list(all_cells())
    try:
        n = int(cells)
    except ValueError:
        raise SgnasError(f"--cells must be 'all' or a number, got {cells!r}") from None
    if n < 1:
        raise SgnasError(f"--cells must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    if isinstance(space, NB201Space):
        codes = rng.permutation(space.num_cells)[:n]
        from ..nb201.space import Cell

        return [Cell.from_code(int(c)) for c in codes]
    out, seen = [], set()
    for _ in range(50 * n):
        a = space.sample(rng)
        if str(a) not in seen:
            seen.add(str(a))
            out.append(a)
        if len(out) == n:
            break
    return out


def score_to_csv(signal: str, out: str | os.PathLike, *, space: Any = "nb201",
                 cells: str | int = "all", archs_file: str | os.PathLike | None = None,
                 data: Any = None, checkpoint: str | os.PathLike | None = None,
                 column: str | None = None, batch_size: int = 64, seed: int = 0,
                 device: str = "cpu", threads: int | None = None, cache_dir: Any = None,
                 force: bool = False, progress: bool = True, calib_batches: int = 4,
                 eval_batches: int | None = 8) -> dict[str, Any]:
    """Score the selected architectures (:func:`select_archs`) with ``signal`` and write
    ``arch_str,score`` to ``out`` (see :func:`sgnas.signals.table.write_scores`); returns a
    summary. Nothing is written when anything fails; an existing ``out`` is refused unless
    ``force``."""
    import time

    import numpy as np

    from ..signals.base import SIGNALS, split_name
    from ..signals.table import write_scores
    from ..space import get_space

    SIGNALS.get(split_name(signal)[0])
    if os.path.exists(out) and not force:
        raise SgnasError(f"{out} exists; pass --force to overwrite")
    if threads:
        torch.set_num_threads(int(threads))
    sp = get_space(space) if isinstance(space, str) else space
    archs = select_archs(sp, cells, archs_file, seed)
    t0 = time.perf_counter()
    options: dict[str, Any] = {"cache_dir": cache_dir, "progress": progress}
    if column is not None:
        options["column"] = column
    if calib_batches < 0:
        raise SgnasError(f"calibration batches must be 0 or more, got {calib_batches}")
    sig = make_signal(signal, data=data, checkpoint=checkpoint, space=sp, batch_size=batch_size,
                      seed=seed, device=device, calib_batches=calib_batches,
                      eval_batches=eval_batches, **options)
    scores = np.asarray(sig.score(archs), dtype=np.float64)
    seconds = time.perf_counter() - t0
    write_scores(out, archs, scores, force=force)
    live = np.isfinite(scores)
    best = int(np.argmax(np.where(live, scores, -np.inf))) if live.any() else 0
    return {"out": str(out), "signal": signal, "space": sp.name, "archs": len(archs),
            "dead": int((~live).sum()), "seconds": round(seconds, 2),
            "best_arch": str(archs[best]), "best_score": float(scores[best]),
            "settings": sig.describe()}


__all__ = ["load_minibatch", "make_signal", "score_to_csv", "select_archs", "supernet_evaluator"]
