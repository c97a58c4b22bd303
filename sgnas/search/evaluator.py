"""Inherited accuracy as a cached ``arch -> float`` callable for the search baselines."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

from ..space import Architecture


class InheritedAccuracy:
    """Score an architecture with the supernet's weights: BN recalibration, then top-1 (fraction).

    Wraps :func:`sgnas.evaluation.evaluate.inherited_accuracy` with fixed loaders and batch counts.
    Scores are kept in an LRU cache keyed by the architecture (``cache_size`` entries, 0 disables it), so a
    revisited candidate costs nothing. ``calls``, ``evaluations`` (cache misses), ``cache_hits`` and
    ``time_s`` (time spent evaluating) count the work done. ``score`` replaces the scoring function
    (``score(arch) -> float``), e.g. with a synthetic one.
    """

    def __init__(
        self,
        model: Any = None,
        calib_loader: Iterable | None = None,
        eval_loader: Iterable | None = None,
        calib_batches: int = 20,
        eval_batches: int | None = None,
        seed: int | None = 0,
        cache_size: int = 4096,
        score: Callable[[Architecture], float] | None = None,
    ) -> None:
        if score is None and (model is None or calib_loader is None or eval_loader is None):
            raise ValueError("InheritedAccuracy needs a model and both loaders, or a score")
        self.model = model
        self.calib_loader = calib_loader
        self.eval_loader = eval_loader
        self.calib_batches = calib_batches
        self.eval_batches = eval_batches
        self.seed = seed
        self.cache_size = cache_size
        self._score = score
        self._cache: OrderedDict[Architecture, float] = OrderedDict()
        self.calls = 0
        self.evaluations = 0
        self.cache_hits = 0
        self.time_s = 0.0

    def __call__(self, arch: Architecture) -> float:
        self.calls += 1
        if arch in self._cache:
            self.cache_hits += 1
            self._cache.move_to_end(arch)
            return self._cache[arch]
        start = time.perf_counter()
        value = float(self._evaluate(arch))
        self.time_s += time.perf_counter() - start
        self.evaluations += 1
        if self.cache_size > 0:
            self._cache[arch] = value
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return value

    def _evaluate(self, arch: Architecture) -> float:
        if self._score is not None:
            return self._score(arch)
        from ..evaluation.evaluate import inherited_accuracy

        return inherited_accuracy(
            self.model,
            arch,
            self.calib_loader,
            self.eval_loader,
            calib_batches=self.calib_batches,
            eval_batches=self.eval_batches,
            seed=self.seed,
        )

    def stats(self) -> dict[str, Any]:
        """Counters as a JSON-able dict."""
        return {
            "calls": self.calls,
            "evaluations": self.evaluations,
            "cache_hits": self.cache_hits,
            "eval_time_s": self.time_s,
            "seconds_per_evaluation": self.time_s / self.evaluations if self.evaluations else 0.0,
        }

    def cached(self) -> dict[Architecture, float]:
        """The scores currently cached, oldest first."""
        return dict(self._cache)

    def preload(self, scores: dict[Architecture, float]) -> None:
        """Put known scores (e.g. from an earlier run with the same evaluator) into the cache."""
        for arch, value in scores.items():
            self._cache[arch] = float(value)

    def clear(self) -> None:
        """Empty the cache (counters are kept)."""
        self._cache.clear()


def build_evaluator(
    model: Any,
    train_set: Any,
    eval_set: Any,
    *,
    batch_size: int = 128,
    calib_batches: int = 20,
    eval_batches: int | None = None,
    seed: int = 0,
    workers: int = 0,
    pin_memory: bool = False,
) -> InheritedAccuracy:
    """The :class:`InheritedAccuracy` of ``model`` scoring on ``eval_set`` (as ``sgnas search`` does).

    BN is recalibrated on ``calib_batches`` batches of a fixed random subset of ``train_set``. With
    ``eval_batches``, candidates are scored on a fixed random subset of that many batches of
    ``eval_set`` (drawn from ``seed``): splits are ordered by class, so their first batches are not a
    sample. ``len(evaluator.eval_loader.dataset)`` is the number of images scored.
    """
    import numpy as np
    from torch.utils.data import Subset

    from ..evaluation.data import calibration_loader, eval_loader

    if eval_batches is not None and eval_batches * batch_size < len(eval_set):
        pick = np.random.default_rng(seed).permutation(len(eval_set))
        eval_set = Subset(eval_set, np.sort(pick[: eval_batches * batch_size]).tolist())
        eval_batches = None
    return InheritedAccuracy(
        model,
        calibration_loader(train_set, batch_size, calib_batches, seed=seed, workers=workers,
                           pin_memory=pin_memory),
        eval_loader(eval_set, batch_size, workers=workers, pin_memory=pin_memory),
        calib_batches=calib_batches, eval_batches=eval_batches, seed=seed,
    )


def evaluator_from_data(
    model: Any,
    meta: dict,
    data: str,
    *,
    split: str = "held-out",
    data_format: str = "auto",
    batch_size: int = 128,
    calib_batches: int = 20,
    eval_batches: int | None = None,
    seed: int = 0,
    workers: int = 0,
    download: bool = False,
    device: Any = None,
) -> tuple[InheritedAccuracy, Any]:
    """The evaluator ``sgnas search`` uses, from a supernet's data: BN recalibrated on the training
    split, top-1 on ``split`` (``held-out`` or ``test``). Returns ``(evaluator, datasets)``."""
    from ..errors import SgnasError
    from ..evaluation.data import build_datasets, supernet_data_config

    data_cfg = supernet_data_config(meta, data, format=data_format, batch_size=batch_size,
                                    workers=workers, download=download)
    datasets = build_datasets(data_cfg, model.space)
    chosen = datasets.held_out if split == "held-out" else datasets.test
    if len(chosen) == 0:
        raise SgnasError(f"the {split} split is empty (the supernet was trained without a "
                         "held-out part); use the test split or retrain with --held-out")
    pin = getattr(device, "type", "cpu") == "cuda"
    evaluator = build_evaluator(model, datasets.train, chosen, batch_size=batch_size,
                                calib_batches=calib_batches, eval_batches=eval_batches, seed=seed,
                                workers=workers, pin_memory=pin)
    return evaluator, datasets


def per_image_correct(model: Any, arch: Architecture, calib_loader: Iterable, eval_loader: Iterable,
                      calib_batches: int, seed: int = 0) -> "Any":
    """Per-image correctness (bool array) of ``arch`` after BN recalibration, for bootstraps."""
    import numpy as np
    import torch

    from ..evaluation.evaluate import recalibrate_bn

    recalibrate_bn(model, arch, calib_loader, batches=calib_batches, seed=seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for x, y, *_ in eval_loader:
                out.append((model(x.to(device), arch).argmax(1).cpu() == y).numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)
