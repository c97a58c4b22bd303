"""Cost models of the unified space: FLOPs, parameters and LUT latency.

Every cost here is a per-layer table over the layer configurations (the 80 kernel multisets) plus a
fixed part (stem and head), so one class, :class:`TableCost`, serves all of them:

* ``exact(arch)`` sums the table entries of an architecture's configurations;
* ``expected(probs)`` is the exact expected cost when each sub-block draws its choice independently
  from ``probs`` (``(..., L, max_expansion, 4)`` over :data:`~sgnas.space.CHOICES` = k3, k5, k7,
  skip). The probability of each configuration (kernel multiset) is computed by a dynamic program
  over the sub-blocks whose states are the kernel counts so far (84 states for 6 sub-blocks and 3
  kernels), so ``E = fixed + sum_l sum_c P_l(c) * table[l, c]`` is exact and differentiable in
  ``probs``. Draws with fewer than ``min_expansion`` kernels are not architectures; the expectation
  is conditioned on a valid draw (each layer's configuration probabilities are renormalized). With
  forced sampling the generator never skips sub-blocks ``0 .. min_expansion - 1``, so every draw is
  valid and the renormalization divides by one.

A LUT may carry a calibration, an increasing linear map from the LUT sum to measured end-to-end
latency. It is applied after the sum, so the expectation stays exact; normalized costs
(:meth:`Cost.normalize`) do not depend on it.

A cell space (NAS-Bench-201) has no additivity to rely on: :class:`CellTableCost` holds the cost of
every cell (a ``(5,)*6`` table: FLOPs, params, a device's measured latency per cell) and its
expectation under independent per-edge op distributions is the exact einsum of
:func:`sgnas.nb201.cost.expected_cost`. Both kinds share the generator-facing view
:meth:`Cost.of_indices` (cost of one candidate-index vector) and :meth:`Cost.expected_probs`
(exact expectation under per-decision candidate probabilities ``(..., D, K)``).

Costs are looked up by name in :data:`COSTS` (the one list of cost names), each entry holding one
factory per space family (:attr:`sgnas.space_protocol.Space.family`); :func:`make_cost` picks the
factory of the space's family. Units are shared across families (MFLOPs, Mparams, ms).

``fingerprint`` names the cost model a generator is trained for: for FLOPs and params a hash of the
space and the tables; for latency the LUT's fingerprint, which identifies the latency model (space
and device settings) and not the measured numbers (see :mod:`sgnas.lut`).
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .errors import SgnasError
from .registry import Registry
from .space import CHOICES, SKIP_INDEX, Architecture, SearchSpace
from .space_protocol import Space


class ConfigDistribution:
    """Exact distribution over a space's layer configurations under per-sub-block probabilities.

    Build once per space; :meth:`__call__` maps ``probs`` of shape ``(..., L, max_expansion,
    len(CHOICES))`` to ``(..., L, len(space.configs))`` configuration probabilities (unnormalized:
    draws with too few kernels are left out).
    """

    def __init__(self, space: SearchSpace) -> None:
        kernels = [CHOICES.index(k) for k in space.kernels]
        if sorted(kernels) != list(range(len(kernels))) or SKIP_INDEX != len(kernels):
            raise SgnasError(f"space {space.name!r}: kernels {space.kernels} do not match {CHOICES}")
        self.space = space
        k, m = len(kernels), space.max_expansion
        states = [s for s in itertools.product(range(m + 1), repeat=k) if sum(s) <= m]
        index = {s: i for i, s in enumerate(states)}
        num = len(states)
        # src[j, t]: the state that reaches state t by adding one kernel j (num = padding zero).
        src = np.full((k, num), num, dtype=np.int64)
        for t, state in enumerate(states):
            for j in range(k):
                if state[j] > 0:
                    prev = list(state)
                    prev[j] -= 1
                    src[j, t] = index[tuple(prev)]
        config_states = []
        for config in space.configs:
            counts = tuple(sum(1 for x in config if x == CHOICES[j]) for j in range(k))
            config_states.append(index[counts])
        self.num_states = num
        self._src = torch.from_numpy(src)
        self._config_states = torch.tensor(config_states, dtype=torch.int64)
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _indices(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._on_device:
            self._on_device[device] = (self._src.to(device), self._config_states.to(device))
        return self._on_device[device]

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        space = self.space
        m, k = space.max_expansion, SKIP_INDEX
        if probs.shape[-3:] != (space.num_layers, m, len(CHOICES)):
            raise SgnasError(
                f"probs must have shape (..., {space.num_layers}, {m}, {len(CHOICES)}), "
                f"got {tuple(probs.shape)}"
            )
        lead = probs.shape[:-2]
        p = probs.reshape(-1, m, len(CHOICES))
        n = p.shape[0]
        src, config_states = self._indices(p.device)
        state = p.new_zeros(n, self.num_states)
        state[:, 0] = 1.0
        zero = p.new_zeros(n, 1)
        for i in range(m):
            padded = torch.cat([state, zero], dim=1)
            shifted = padded[:, src]  # (n, k, num_states)
            state = torch.einsum("nks,nk->ns", shifted, p[:, i, :k]) + p[:, i, k, None] * state
        out = state[:, config_states]
        return out.reshape(*lead, len(space.configs))


def _linear_calibration(calibration: Any) -> tuple[float, float]:
    """``(slope, intercept)`` of a calibration: ``None``, a pair, an object with ``slope`` and
    ``intercept``, or an object with a linear ``apply(raw)``."""
    if calibration is None:
        return 1.0, 0.0
    if isinstance(calibration, (tuple, list)) and len(calibration) == 2:
        slope, intercept = (float(x) for x in calibration)
    elif hasattr(calibration, "slope") and hasattr(calibration, "intercept"):
        slope, intercept = float(calibration.slope), float(calibration.intercept)
    elif hasattr(calibration, "apply"):
        intercept = float(calibration.apply(0.0))
        slope = float(calibration.apply(1.0)) - intercept
        probe = float(calibration.apply(10.0))
        if not np.isclose(probe, 10.0 * slope + intercept, rtol=1e-6, atol=1e-9):
            raise SgnasError("the LUT calibration is not linear; costs need a linear calibration")
    else:
        raise SgnasError(f"unsupported calibration {type(calibration).__name__}")
    if not np.isfinite(slope) or not np.isfinite(intercept) or slope <= 0:
        raise SgnasError(f"calibration slope must be a positive number, got {slope}")
    return slope, intercept


class Cost:
    """Interface of a cost model: ``name``, ``unit``, ``fingerprint``, ``space`` and the methods below."""

    name: str
    unit: str
    fingerprint: str
    space: SearchSpace

    def exact(self, arch: Architecture, calibrated: bool = True) -> float:
        """Cost of one architecture."""
        raise NotImplementedError

    def expected(self, probs: torch.Tensor, calibrated: bool = True) -> torch.Tensor:
        """Exact expected cost under per-sub-block probabilities ``(..., L, m, 4)`` → ``(...)``."""
        raise NotImplementedError

    def range(self, calibrated: bool = True) -> tuple[float, float]:
        """(min, max) exact cost over the space."""
        raise NotImplementedError

    def of_indices(self, indices: Sequence[int]) -> float:
        """Calibrated cost of the architecture with candidate ``indices[d]`` at decision ``d``."""
        raise NotImplementedError

    def expected_probs(self, p: torch.Tensor) -> torch.Tensor:
        """Exact expected calibrated cost under per-decision candidate probabilities
        ``(..., D, K)`` → ``(...)`` (differentiable)."""
        raise NotImplementedError

    def normalize(self, value):
        """Map a cost (float, array or tensor) to ``[0, 1]`` over :meth:`range`."""
        lo, hi = self.range()
        return (value - lo) / (hi - lo)

    def denormalize(self, value):
        """Inverse of :meth:`normalize`."""
        lo, hi = self.range()
        return value * (hi - lo) + lo

    def describe(self) -> dict:
        """JSON-able identity of the cost: name, unit, fingerprint, space, range."""
        lo, hi = self.range()
        return {
            "name": self.name,
            "unit": self.unit,
            "fingerprint": self.fingerprint,
            "space": self.space.name,
            "space_fingerprint": self.space.fingerprint,
            "range": [lo, hi],
        }

    def __repr__(self) -> str:
        lo, hi = self.range()
        return f"{type(self).__name__}({self.space.name}, {lo:.4g}..{hi:.4g} {self.unit})"


class TableCost(Cost):
    """A cost given by a per-layer table ``(L, len(space.configs))`` plus a fixed part.

    ``fingerprint`` defaults to a hash of the name, unit, space and table contents; ``calibration``
    (optional) is an increasing linear map applied to the total (see :func:`_linear_calibration`).
    """

    def __init__(
        self,
        space: SearchSpace,
        table: np.ndarray,
        fixed: float,
        name: str,
        unit: str,
        fingerprint: str | None = None,
        calibration: Any = None,
    ) -> None:
        table = np.asarray(table, dtype=np.float64)
        expect = (space.num_layers, len(space.configs))
        if table.shape != expect:
            raise SgnasError(f"{name} table has shape {table.shape}, expected {expect}")
        if not np.all(np.isfinite(table)) or not np.isfinite(fixed):
            raise SgnasError(f"{name} table has missing or non-finite entries")
        self.space = space
        self.table = table
        self.fixed = float(fixed)
        self.name = name
        self.unit = unit
        self.calibration = calibration
        self.slope, self.intercept = _linear_calibration(calibration)
        self.fingerprint = fingerprint or self._content_fingerprint()
        self._raw_range = (
            self.fixed + float(table.min(axis=1).sum()),
            self.fixed + float(table.max(axis=1).sum()),
        )
        self._dist = ConfigDistribution(space)
        self._torch_table: dict[tuple, torch.Tensor] = {}

    def _content_fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(f"{self.name}|{self.unit}|{self.space.fingerprint}|{self.fixed!r}|".encode())
        h.update(np.ascontiguousarray(self.table).tobytes())
        return h.hexdigest()[:16]

    def _calibrate(self, raw, calibrated: bool):
        return raw * self.slope + self.intercept if calibrated else raw

    # ------------------------------------------------------------------ exact
    def exact(self, arch: Architecture, calibrated: bool = True) -> float:
        self.space.validate(arch)
        index = self.space.config_index
        raw = self.fixed + sum(
            float(self.table[i, index[config]]) for i, config in enumerate(arch.layers)
        )
        return float(self._calibrate(raw, calibrated))

    def layer_costs(self, arch: Architecture) -> np.ndarray:
        """Per-layer table entries of ``arch`` (uncalibrated)."""
        index = self.space.config_index
        return np.array([self.table[i, index[c]] for i, c in enumerate(arch.layers)])

    # --------------------------------------------------------------- expected
    def config_probs(self, probs: torch.Tensor) -> torch.Tensor:
        """Per-layer configuration probabilities ``(..., L, len(configs))``, renormalized over valid
        configurations."""
        p = self._dist(probs)
        return p / p.sum(dim=-1, keepdim=True)

    def _table_as(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.dtype, like.device)
        if key not in self._torch_table:
            self._torch_table[key] = torch.as_tensor(self.table, dtype=like.dtype, device=like.device)
        return self._torch_table[key]

    def expected(self, probs: torch.Tensor, calibrated: bool = True) -> torch.Tensor:
        if not torch.is_floating_point(probs):
            probs = probs.float()
        p = self.config_probs(probs)
        raw = self.fixed + (p * self._table_as(p)).sum(dim=(-1, -2))
        return self._calibrate(raw, calibrated)

    def of_indices(self, indices: Sequence[int]) -> float:
        idx = np.asarray(indices, dtype=np.int64)
        raw = self.fixed + float(self.table[np.arange(len(idx)), idx].sum())
        return float(self._calibrate(raw, True))

    def expected_probs(self, p: torch.Tensor) -> torch.Tensor:
        raw = self.fixed + (p * self._table_as(p)).sum(dim=(-1, -2))
        return self._calibrate(raw, True)

    # ------------------------------------------------------------------ range
    def range(self, calibrated: bool = True) -> tuple[float, float]:
        lo, hi = self._raw_range
        return float(self._calibrate(lo, calibrated)), float(self._calibrate(hi, calibrated))

    def min_arch(self) -> Architecture:
        """An architecture of minimal cost."""
        return self._arch_of(self.table.argmin(axis=1))

    def max_arch(self) -> Architecture:
        """An architecture of maximal cost."""
        return self._arch_of(self.table.argmax(axis=1))

    def _arch_of(self, config_indices: Sequence[int]) -> Architecture:
        configs = self.space.configs
        return Architecture(self.space.name, tuple(configs[int(i)] for i in config_indices))


class FlopsCost(TableCost):
    """Multiply-adds of convolutions and the classifier (the authors' convention), in millions."""

    def __init__(self, space: SearchSpace) -> None:
        from . import network

        table = np.asarray(network.layer_flops_table(space), dtype=np.float64) / 1e6
        super().__init__(space, table, float(network.fixed_flops(space)) / 1e6, "flops", "MFLOPs")


class ParamsCost(TableCost):
    """Parameter count of the deployed network, in millions."""

    def __init__(self, space: SearchSpace) -> None:
        from . import network

        table = np.asarray(network.layer_params_table(space), dtype=np.float64) / 1e6
        super().__init__(space, table, float(network.fixed_params(space)) / 1e6, "params", "Mparams")


class LatencyCost(TableCost):
    """Latency in milliseconds from a LUT: per-layer entries plus stem and head, then the LUT's
    calibration (if any)."""

    def __init__(self, lut, space: SearchSpace) -> None:
        table = np.asarray(lut.layer_table(space), dtype=np.float64)
        super().__init__(
            space,
            table,
            float(lut.fixed_ms(space)),
            "latency",
            "ms",
            fingerprint=getattr(lut, "fingerprint", None),
            calibration=getattr(lut, "calibration", None),
        )
        self.lut = lut
        self.lut_fingerprint = getattr(lut, "fingerprint", None)

    def describe(self) -> dict:
        d = super().describe()
        d["lut_fingerprint"] = self.lut_fingerprint
        d["calibration"] = [self.slope, self.intercept]
        return d


class CellTableCost(Cost):
    """A cost given per cell of a cell space (``space.decisions()`` edges x ops): ``table`` has
    one axis per edge (NB201: ``(5,)*6``). Exact for any table, additive or not; a per-cell LUT
    carries no calibration (its entries are whole-network latencies)."""

    tabulated = True

    def __init__(self, space: Any, table: np.ndarray, name: str, unit: str,
                 fingerprint: str | None = None, lut: Any = None) -> None:
        table = np.asarray(table, dtype=np.float64)
        d, k = space.decisions()
        if table.shape != (k,) * d:
            raise SgnasError(f"{name} table has shape {table.shape}, expected {(k,) * d}")
        if not np.all(np.isfinite(table)):
            raise SgnasError(f"{name} table has missing or non-finite entries")
        self.space, self.table, self.name, self.unit, self.lut = space, table, name, unit, lut
        self.label = name
        self.lut_fingerprint = getattr(lut, "fingerprint", None)
        if fingerprint is None:
            h = hashlib.sha256(f"{name}|{unit}|{space.fingerprint}|".encode())
            h.update(np.ascontiguousarray(table).tobytes())
            fingerprint = h.hexdigest()[:16]
        self.fingerprint = fingerprint
        self._torch: dict[tuple, torch.Tensor] = {}

    def values(self) -> np.ndarray:
        """Cost of every cell, in ``space.all_choices()`` order (the table flattened)."""
        return self.table.reshape(-1)

    def exact(self, arch: Any, calibrated: bool = True) -> float:
        space: Any = self.space
        return float(self.table[tuple(space.indices_of(arch))])

    def of_indices(self, indices: Sequence[int]) -> float:
        return float(self.table[tuple(int(i) for i in indices)])

    of = of_indices  # the decoder's name for it (:class:`sgnas.decode.Constraint`)

    def expected_probs(self, p: torch.Tensor) -> torch.Tensor:
        from .nb201.cost import expected_cost

        key = (p.dtype, p.device)
        if key not in self._torch:
            self._torch[key] = torch.as_tensor(self.table, dtype=p.dtype, device=p.device)
        lead = p.shape[:-2]
        out = expected_cost(self._torch[key], p.reshape(-1, *p.shape[-2:]))
        return out.reshape(lead)

    def expected(self, probs: torch.Tensor, calibrated: bool = True) -> torch.Tensor:
        if not torch.is_floating_point(probs):
            probs = probs.float()
        return self.expected_probs(probs)

    def range(self, calibrated: bool = True) -> tuple[float, float]:
        return float(self.table.min()), float(self.table.max())

    def describe(self) -> dict:
        d = super().describe()
        if self.lut_fingerprint is not None:
            d["lut_fingerprint"] = self.lut_fingerprint
            d["device"] = self.lut.device_name
        return d


def _lut_of(name: str, lut: Any) -> Any:
    if lut is None:
        raise SgnasError(f"the {name} cost needs a LUT (--lut lut/<device>.json)")
    return lut


def _cell_cost(name: str, space: Any, lut=None) -> CellTableCost:
    from .nb201 import cost as nb

    if name == "flops":
        return CellTableCost(space, nb.flops_table(space), "flops", "MFLOPs")
    if name == "params":
        return CellTableCost(space, nb.params_table(space), "params", "Mparams")
    return CellTableCost(space, nb.lut_table(lut, space), "latency", "ms",
                         fingerprint=getattr(lut, "fingerprint", None), lut=lut)


#: A cost factory: ``(space, lut) -> Cost`` (``lut`` is ``None`` unless the user gave one).
CostFactory = Callable[[Any, Any], Cost]

#: Cost models by name; each entry maps a space family (:attr:`sgnas.space_protocol.Space.family`)
#: to its factory. A new cost is one ``COSTS.register(name, {family: factory, ...})``; a new
#: family adds its factory to each entry it supports. Units are shared across families (FLOPs in
#: millions of multiply-adds, parameters in millions, latency in ms).
COSTS: Registry[dict[str, CostFactory]] = Registry("cost")
COSTS.register("flops", {"unified": lambda space, lut: FlopsCost(space),
                         "nb201": lambda space, lut: _cell_cost("flops", space)})
COSTS.register("params", {"unified": lambda space, lut: ParamsCost(space),
                          "nb201": lambda space, lut: _cell_cost("params", space)})
COSTS.register("latency", {"unified": lambda space, lut: LatencyCost(_lut_of("latency", lut), space),
                           "nb201": lambda space, lut: _cell_cost("latency", space,
                                                                  _lut_of("latency", lut))})


def cost_names() -> list[str]:
    """Names of the registered costs."""
    return COSTS.names()


def make_cost(name: str, space: Space, lut=None) -> Cost:
    """Cost model ``name`` (a :data:`COSTS` entry: ``"flops"``, ``"params"``, ``"latency"`` with
    ``lut``) of ``space``: a :class:`TableCost` for the unified family, a :class:`CellTableCost`
    for a cell space."""
    factories = COSTS.get(name)
    if space.family not in factories:
        raise SgnasError(f"cost {name!r} is not defined for space {space.name!r} (family "
                         f"{space.family!r}; defined for {', '.join(factories)})")
    return factories[space.family](space, lut)
