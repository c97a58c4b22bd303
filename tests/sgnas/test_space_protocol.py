"""Both search spaces implement the one Space protocol, and the registries keyed by family."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sgnas.costs import COSTS, make_cost
from sgnas.errors import ArchitectureError, SgnasError
from sgnas.nb201.network import NB201Network
from sgnas.nb201.network import count_flops as nb201_flops
from sgnas.nb201.space import Cell, NB201Space
from sgnas.nb201.supernet import NB201Supernet
from sgnas.network import SubNetwork, count_flops, count_macs, network_of
from sgnas.space import Architecture, get_space
from sgnas.space_protocol import Space
from sgnas.supernet import UnifiedSupernet, new_supernet

SPACES = [get_space("tiny"), NB201Space()]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
def test_space_conforms_and_round_trips(space):
    assert isinstance(space, Space)
    d, k = space.decisions()
    mask = space.candidate_mask()
    assert mask.shape == (d, k) and mask.dtype == bool
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = space.sample(rng)
        idx = space.indices_of(arch)
        assert idx.shape == (d,) and idx.dtype == np.int64
        assert mask[np.arange(d), idx].all()
        assert space.arch_from_indices(idx) == arch
        assert space.validate(arch) is arch
        assert space.parse(str(arch)) == arch
        assert space.parse(arch.to_json()) == arch
        assert set(space.lut_keys(arch)) <= set(space.all_keys())


def test_validate_rejects_the_other_spaces_architecture():
    tiny, nb = SPACES
    with pytest.raises(ArchitectureError, match="expected an architecture of space 'tiny'"):
        tiny.validate(nb.sample(np.random.default_rng(0)))
    with pytest.raises(ArchitectureError, match="expected an NB201 cell"):
        nb.validate(tiny.sample(np.random.default_rng(0)))
    with pytest.raises(ArchitectureError, match="configuration indices"):
        tiny.arch_from_indices([0, 1, 2, 999])


def test_profiling_plans():
    tiny, nb = SPACES
    layers, cells = tiny.profiling_plan(), nb.profiling_plan()
    assert layers.kind == "layers" and not layers.per_architecture
    assert list(layers.keys) == tiny.all_keys()
    assert cells.kind == "cells" and cells.per_architecture and len(cells.keys) == 5 ** 6


def test_lut_keys_are_stem_head_and_layers():
    tiny = SPACES[0]
    arch = Architecture("tiny", ((3, 5), (7, 7, 7), (3, 3), (5, 5, 5, 5, 5, 5)))
    keys = tiny.lut_keys(arch)
    assert keys[:2] == [tiny.stem_key, tiny.head_key]
    assert keys[2:] == [layer.key(c) for layer, c in zip(tiny.layers, arch.layers)]
    assert SPACES[1].lut_keys(Cell((1, 2, 3, 4, 0, 1))) == [str(Cell((1, 2, 3, 4, 0, 1)))]


def test_supernet_and_network_follow_the_family():
    tiny, nb = SPACES
    assert isinstance(new_supernet(tiny), UnifiedSupernet)
    # an NB201Space made directly (not through get_space) gets its own supernet
    assert isinstance(new_supernet(NB201Space()), NB201Supernet)
    cell = Cell((3, 3, 3, 3, 3, 3))
    assert isinstance(network_of(nb, cell), NB201Network)
    assert isinstance(network_of(tiny, tiny.sample(np.random.default_rng(1))), SubNetwork)


def test_unknown_family_is_an_error_not_a_unified_supernet():
    @dataclasses.dataclass(frozen=True)
    class Odd(NB201Space):
        family = "odd"  # type: ignore[misc]

    with pytest.raises(SgnasError, match="unknown supernet 'odd'"):
        new_supernet(Odd())
    with pytest.raises(SgnasError, match="not defined for space"):
        make_cost("flops", Odd())


def test_flops_in_millions_for_both_spaces():
    tiny, nb = SPACES
    arch = tiny.sample(np.random.default_rng(2))
    assert count_flops(tiny, arch) == count_macs(tiny, arch) / 1e6
    assert make_cost("flops", tiny).exact(arch) == pytest.approx(count_flops(tiny, arch), rel=1e-12)
    cell = Cell((4, 3, 2, 1, 0, 3))
    assert make_cost("flops", nb).exact(cell) == pytest.approx(nb201_flops(nb, cell), rel=1e-12)
    assert make_cost("flops", tiny).unit == make_cost("flops", nb).unit == "MFLOPs"


def test_cost_names_come_from_the_registry():
    assert COSTS.names()[:3] == ["flops", "params", "latency"]
    with pytest.raises(SgnasError, match="latency cost needs a LUT"):
        make_cost("latency", SPACES[1])
