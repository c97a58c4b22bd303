"""Registers the NAS-Bench-201 cell space (:mod:`sgnas.nb201`) as ``nb201``, and its network and
supernet under its family ``nb201``."""

from __future__ import annotations

from ..network import NETWORKS
from ..space import SPACES
from ..supernet import SUPERNETS


def _nb201_space():
    from ..nb201.space import nb201_space

    return nb201_space()


def _nb201_network(space, arch):
    from ..nb201.network import NB201Network

    return NB201Network(space, arch)


def _nb201_supernet(space, forced_sampling: bool = True):
    from ..nb201.supernet import NB201Supernet

    return NB201Supernet(space)


SPACES.register("nb201", _nb201_space)
NETWORKS.register("nb201", _nb201_network)
SUPERNETS.register("nb201", _nb201_supernet)
