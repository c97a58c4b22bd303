"""Registers the NAS-Bench-201 cell space (:mod:`sgnas.nb201`) and its supernet as ``nb201``."""

from __future__ import annotations

from ..space import SPACES
from ..supernet import SUPERNETS


def _nb201_space():
    from ..nb201.space import nb201_space

    return nb201_space()


def _nb201_supernet(space, forced_sampling: bool = True):
    from ..nb201.supernet import NB201Supernet

    return NB201Supernet(space)


SPACES.register("nb201", _nb201_space)
SUPERNETS.register("nb201", _nb201_supernet)
