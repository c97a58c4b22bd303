"""A synthetic cost and score over the tiny space, with a known optimum."""

from __future__ import annotations

import pytest

from sgnas.space import Architecture, get_space


class KernelCost:
    """Cost = sum of squared kernel sizes over all layers (additive per layer, integer)."""

    name = "ksq"
    unit = "u"
    fingerprint = "synthetic"

    def __init__(self, space):
        self.space = space

    def exact(self, arch: Architecture) -> float:
        self.space.validate(arch)
        return float(sum(k * k for config in arch.layers for k in config))

    def range(self) -> tuple[float, float]:
        lo = min(kernel * kernel for kernel in self.space.kernels) * self.space.min_expansion
        hi = max(kernel * kernel for kernel in self.space.kernels) * self.space.max_expansion
        return float(lo * self.space.num_layers), float(hi * self.space.num_layers)


def score(arch: Architecture) -> float:
    """Number of 7-kernels minus a small penalty per other kernel."""
    flat = [k for config in arch.layers for k in config]
    return flat.count(7) - 0.01 * (len(flat) - flat.count(7))


def optimum(space, target: float) -> float:
    """Best score under ``KernelCost <= target`` by a knapsack over the per-layer configurations."""
    best = {0: 0.0}
    for _ in space.layers:
        nxt: dict[int, float] = {}
        for spent, value in best.items():
            for config in space.configs:
                c = spent + sum(k * k for k in config)
                if c <= target:
                    v = value + score(Architecture(space.name, (config,)))
                    if v > nxt.get(c, float("-inf")):
                        nxt[c] = v
        best = nxt
    return max(best.values())


@pytest.fixture
def tiny():
    return get_space("tiny")


@pytest.fixture
def kernel_cost(tiny):
    return KernelCost(tiny)


@pytest.fixture
def synthetic():
    return score, optimum
