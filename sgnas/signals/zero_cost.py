"""Zero-cost proxy signals (``synflow``, ``naswot``, ``jacob_cov``, ``snip``, ``grad_norm``).

Each is computed at initialization on one minibatch of the user's data (``data``: a tensor of
images, an ``(images, labels)`` pair, or a loader whose first batch is taken; ``batch_size`` images
are used; without labels, labels are drawn from ``seed``), with a network initialized from ``seed``
(the same for every architecture; see :mod:`sgnas.signals.compute` and :mod:`sgnas.signals.proxies`
for the definitions). Scores are cached per architecture on disk (:mod:`sgnas.signals.cache`, under
``cache_dir``, default :func:`~sgnas.signals.cache.default_dir`; ``cache_dir=False`` keeps nothing),
keyed by the space and its fingerprint, a hash of the minibatch, the batch size and the seed.

:func:`score_proxies` computes several proxies in one pass (they share the forward pass) and fills
all their caches; a signal's ``score`` is that for its one proxy.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import SgnasError
from .base import SIGNALS, Signal, arch_key, as_archs, is_degenerate, resolve_space
from .cache import ScoreCache, default_dir
from .proxies import PROXIES, check_names

#: Bumped when a proxy's definition changes (part of every cache key).
PROXY_VERSION = 1
#: Architectures scored between two cache appends.
CHUNK = 64


def minibatch(data: Any, batch_size: int, num_classes: int, seed: int = 0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)``: the first ``batch_size`` images of ``data`` (see the module
    docstring) as float32 CPU tensors, labels int64."""
    y = None
    if isinstance(data, torch.Tensor):
        x = data
    elif isinstance(data, (tuple, list)) and len(data) >= 1 and isinstance(data[0], torch.Tensor):
        x = data[0]
        y = data[1] if len(data) > 1 and isinstance(data[1], torch.Tensor) else None
    elif data is None:
        raise SgnasError("a zero-cost proxy needs data: a minibatch tensor, (images, labels) or "
                         "a loader")
    else:
        try:
            first = next(iter(data))
        except StopIteration:
            raise SgnasError("the data loader yields no batch") from None
        except TypeError:
            raise SgnasError(f"cannot take a minibatch from {type(data).__name__}") from None
        return minibatch(first, batch_size, num_classes, seed)
    if x.dim() != 4:
        raise SgnasError(f"images must be a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    x = x[:batch_size].detach().float().cpu().contiguous()
    if y is None:
        y = torch.randint(0, num_classes, (x.shape[0],),
                          generator=torch.Generator().manual_seed(seed))
    y = y[: x.shape[0]].detach().long().cpu()
    if y.shape[0] != x.shape[0]:
        raise SgnasError(f"{x.shape[0]} images but {y.shape[0]} labels")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise SgnasError(f"labels must be in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}")
    return x, y


def data_hash(x: torch.Tensor, y: torch.Tensor) -> str:
    """Short hash of a minibatch (its bytes), part of the cache key."""
    h = hashlib.sha256()
    h.update(str(tuple(x.shape)).encode())
    h.update(x.numpy().tobytes())
    h.update(y.numpy().tobytes())
    return h.hexdigest()[:16]


def cache_key(name: str, space: Any, x: torch.Tensor, y: torch.Tensor, seed: int) -> dict:
    """The cache key of proxy ``name`` on ``space`` with minibatch ``(x, y)`` and ``seed``."""
    return {"signal": name, "version": PROXY_VERSION, "space": space.name,
            "fingerprint": space.fingerprint, "data": data_hash(x, y),
            "batch_size": int(x.shape[0]), "image_shape": list(x.shape[1:]), "seed": int(seed)}


def proxy_caches(names: Sequence[str], space: Any, x: torch.Tensor, y: torch.Tensor, seed: int,
                 cache_dir: Any) -> dict[str, ScoreCache | None]:
    if cache_dir is False:
        return {n: None for n in names}
    d = default_dir() if cache_dir is None else cache_dir
    return {n: ScoreCache(d, n, cache_key(n, space, x, y, seed)) for n in names}


def score_proxies(names: Sequence[str], archs: Sequence[Any], data: Any, *, space: Any = None,
                  batch_size: int = 64, seed: int = 0, device: str = "cpu",
                  cache_dir: Any = None, progress: Any = None,
                  chunk: int = CHUNK, prepare: bool = True) -> dict[str, np.ndarray]:
    """``{proxy: scores of archs}``: cached scores read, the rest computed (in chunks of
    ``chunk`` architectures, each appended to the caches as it finishes) and returned in the
    order of ``archs``. ``progress``: ``True`` for a bar on stderr, or ``progress(done, total)``
    called after each chunk. ``prepare=False`` leaves the cache files as they are (several
    processes appending to caches one process prepared)."""
    from .compute import make_scorer

    names = check_names(names)
    space = resolve_space(space, archs)
    archs = as_archs(space, archs)
    x, y = minibatch(data, batch_size, space.num_classes, seed)
    caches = proxy_caches(names, space, x, y, seed, cache_dir)
    if prepare:
        for c in caches.values():
            if c is not None:
                c.prepare()
    keys = [arch_key(a) for a in archs]
    known = {n: (c.load() if c is not None else {}) for n, c in caches.items()}
    out = {n: np.full(len(archs), np.nan) for n in names}
    todo: list[int] = []
    for i, k in enumerate(keys):
        if all(k in known[n] for n in names):
            for n in names:
                out[n][i] = known[n][k]
        elif is_degenerate(space, archs[i]):
            for n in names:
                out[n][i] = -math.inf
        else:
            todo.append(i)
    pending = set(todo)
    dead = [i for i in range(len(archs)) if i not in pending and np.isneginf(out[names[0]][i])]
    for n, c in caches.items():  # degenerate ones are recorded too (the cache covers every arch)
        if c is not None and dead:
            c.append((keys[i], -math.inf) for i in dead if keys[i] not in known[n])
    if todo:
        scorer = make_scorer(space, names, x, y, seed, device)
        todo_archs = [archs[i] for i in todo]
        order = _class_order(space, todo_archs)
        done = 0
        bar = None
        if progress is True:
            from ..progress import Progress

            bar = Progress(len(order), "+".join(names), unit="arch")
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            res = scorer.score([todo_archs[j] for j in part])
            for n in names:
                for j, v in zip(part, res[n]):
                    out[n][todo[j]] = v
                if caches[n] is not None:
                    caches[n].append((keys[todo[j]], float(v)) for j, v in zip(part, res[n]))
            done += len(part)
            if bar is not None:
                bar.update(len(part))
            elif callable(progress):
                progress(done, len(order))
        if bar is not None:
            bar.close()
    return out


def _class_order(space: Any, archs: Sequence[Any]) -> list[int]:
    """Positions of ``archs`` with the members of one NB201 functional class next to each other
    (so a chunk scores each class once); the identity order elsewhere."""
    from ..nb201.space import NB201Space

    if not isinstance(space, NB201Space):
        return list(range(len(archs)))
    from .cells import canonical_form

    forms = [canonical_form(a) for a in archs]
    first: dict[str, int] = {}
    for i, f in enumerate(forms):
        first.setdefault(f, i)
    return sorted(range(len(archs)), key=lambda i: (first[forms[i]], i))


class ProxySignal(Signal):
    """One zero-cost proxy as a signal (options as :func:`score_proxies`)."""

    def __init__(self, name: str, data: Any = None, *, space: Any = None, batch_size: int = 64,
                 seed: int = 0, device: str = "cpu", cache_dir: Any = None,
                 progress: Any = None) -> None:
        check_names([name])
        if data is None:
            raise SgnasError(f"signal {name!r} needs data=: a minibatch tensor, (images, labels) "
                             "or a loader (on the command line: --data DIR)")
        self.name = name
        self.data = data
        self.space = space
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.device = device
        self.cache_dir = cache_dir
        self.progress = progress

    def score(self, archs: Sequence[Any]) -> np.ndarray:
        return score_proxies([self.name], archs, self.data, space=self.space,
                             batch_size=self.batch_size, seed=self.seed, device=self.device,
                             cache_dir=self.cache_dir, progress=self.progress)[self.name]

    def describe(self) -> dict[str, Any]:
        return {"signal": self.name, "batch_size": self.batch_size, "seed": self.seed,
                "device": str(self.device)}


def _factory(name: str) -> Callable[..., ProxySignal]:
    def make(data: Any = None, *, space: Any = None, batch_size: int = 64, seed: int = 0,
             device: str = "cpu", cache_dir: Any = None, progress: Any = None) -> ProxySignal:
        return ProxySignal(name, data, space=space, batch_size=batch_size, seed=seed,
                           device=device, cache_dir=cache_dir, progress=progress)

    make.__doc__ = f"The {name} zero-cost proxy (see sgnas.signals.proxies)."
    return make


for _name in PROXIES:
    SIGNALS.register(_name, _factory(_name))

__all__ = ["CHUNK", "PROXY_VERSION", "ProxySignal", "cache_key", "data_hash", "minibatch",
           "proxy_caches", "score_proxies"]
