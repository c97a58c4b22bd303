"""Accuracy signals: one registered interface for everything that scores architectures.

``get_signal(name, **options).score(archs) -> np.ndarray`` (higher is better) for NB201 cells and
unified-space architectures alike. Registered names: ``supernet`` (inherited accuracy),
``table`` (scores from a CSV), ``flops``, ``params``, the zero-cost proxies ``synflow``,
``naswot``, ``jacob_cov``, ``snip``, ``grad_norm``, and ``ensemble`` (rank average of named
members). :func:`nb201_table` gives a signal over all NB201 cells as a ``(5,)*6`` table.
Modules: :mod:`.base` (interface, registry), :mod:`.proxies` / :mod:`.compute` / :mod:`.cells`
(zero-cost proxies and NB201 functional classes), :mod:`.cache` (per-architecture score caches),
one module per signal family, :mod:`.nb201` (tables). Building signals from a data folder or a
supernet checkpoint: :mod:`sgnas.search.signals`.
"""

from __future__ import annotations

from .base import SIGNALS, Signal, get_signal, signal_names
from .nb201 import nb201_table
from .proxies import PROXIES

__all__ = ["PROXIES", "SIGNALS", "Signal", "get_signal", "nb201_table", "signal_names"]
