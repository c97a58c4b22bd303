"""One generator for many devices of a cell space: G(constraint, prior, device).

The device enters as an embedding computed from its LUT alone: the latencies of a fixed set of
``R`` reference cells (chosen once, :func:`choose_references`, stored in the checkpoint), as
``log latency - mean log latency`` over the references (:func:`device_features`): the device's
relative speed of cell kinds, with its absolute speed removed. No per-device training: a new
device is served as soon as its LUT holds the reference cells.

The constraint is normalized over the device's own target interval (the 1st..99th percentile of
its table over every cell, :func:`~sgnas.generator.target_interval`), so one network covers
devices from 0.01 ms to 100 ms. Decoding is exact over every cell of the device's table
(:func:`~sgnas.generator.decode_tabulated`): the constraint holds whatever the conditioning; the
conditioning buys the quality of the cell picked inside the window.

``device_input=False`` gives the same network with the device input removed (a baseline).
Checkpoints have kind :data:`SHARED_KIND` and live beside the per-cost generators in
``generators/``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from .errors import SgnasError, SpaceMismatchError
from .generator import (
    ArchitectureGenerator,
    GeneratorConfig,
    MetaMembers,
    PriorPool,
    decode_tabulated,
    load_weights,
    target_interval,
)
from .generator_catalog import (
    GENERATOR_LOADERS,
    SHARED_KIND,
    SHARED_VERSION,
    GeneratorCatalog,
    load_generator_file,
)
#: Reference cells of a shared generator by default.
DEFAULT_REFERENCES = 50
_MIN_MS = 1e-6


def choose_references(space, count: int = DEFAULT_REFERENCES, seed: int = 0) -> list:
    """``count`` connected cells spread evenly over FLOPs (ties broken at random, ``seed``)."""
    from .nb201.cost import flops_table

    if not 2 <= count <= 200:
        raise SgnasError(f"reference cells: want 2..200, got {count}")
    rng = np.random.default_rng(seed)
    choices = space.all_choices()
    cells = [space.arch_from_indices(c) for c in choices]
    keep = [i for i, c in enumerate(cells) if c.is_connected()]
    flops = flops_table(space).reshape(-1)[keep]
    order = np.lexsort((rng.random(len(keep)), flops))
    picks = np.unique(np.rint(np.linspace(0, len(keep) - 1, count)).astype(int))
    return [cells[keep[int(order[i])]] for i in picks]


def reference_latencies(lut, references: Sequence, space) -> np.ndarray:
    """Latency (ms) of each reference cell in ``lut``; missing ones are an error naming them."""
    keys = [space.cell_key(c) for c in references]
    missing = [k for k in keys if k not in lut.entries]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise SgnasError(f"LUT {lut.path or lut.device_name} lacks {len(missing)} of the "
                         f"{len(keys)} reference cells of the shared generator: {shown}")
    return np.array([lut.latency_ms(k) for k in keys], dtype=np.float64)


def device_features(latencies: np.ndarray) -> np.ndarray:
    """The device embedding of reference latencies ``(..., R)``: log latency minus its mean."""
    lg = np.log(np.maximum(np.asarray(latencies, dtype=np.float64), _MIN_MS))
    return lg - lg.mean(axis=-1, keepdims=True)


class DeviceConditionedGenerator(ArchitectureGenerator):
    """:class:`~sgnas.generator.ArchitectureGenerator` with a device embedding added to every
    decision's input: ``forward(c_norm, prior, device)`` with ``device`` ``(B, R)``."""

    def __init__(self, space, cfg: GeneratorConfig | None, num_refs: int,
                 device_input: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__(space, cfg, generator)
        ch = self.cfg.channels
        self.num_refs, self.device_input = int(num_refs), bool(device_input)
        self.device = nn.Sequential(nn.Linear(num_refs, ch), nn.ReLU(), nn.Linear(ch, ch))
        for mod in self.device:
            if isinstance(mod, nn.Linear):
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(mod.bias)

    def forward(self, c_norm: torch.Tensor, prior: torch.Tensor,
                device: torch.Tensor | None = None) -> torch.Tensor:
        x = self.features(c_norm, prior)
        if self.device_input:
            if device is None or device.shape[-1] != self.num_refs:
                raise SgnasError(f"the shared generator needs a ({self.num_refs},) device input")
            d = device.to(x.dtype).reshape(-1, self.num_refs).expand(x.shape[0], -1)
            x = x + self.device(d).unsqueeze(2)
        return self.head(x, prior)


@dataclass
class SharedBundle(MetaMembers):
    """A shared generator with its priors, reference cells and the devices it was trained on (a
    :class:`~sgnas.generator_protocol.Generator`)."""

    kind: ClassVar[str] = SHARED_KIND
    has_argmax: ClassVar[bool] = False
    space: Any
    generator: DeviceConditionedGenerator
    priors: PriorPool
    references: list
    devices: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    path: str | None = None

    def knows(self, lut) -> bool:
        """Whether ``lut``'s device was one of the training devices (same LUT fingerprint)."""
        return any(d.get("lut_fingerprint") == lut.fingerprint for d in self.devices)

    def features_of(self, lut) -> np.ndarray:
        """The device embedding of ``lut`` (its reference cells' latencies)."""
        if lut.space_fingerprint != self.space.fingerprint:
            raise SpaceMismatchError(f"LUT {lut.path or lut.device_name} is for space "
                                     f"{lut.space!r}, the shared generator for {self.space.name!r}")
        return device_features(reference_latencies(lut, self.references, self.space))

    def check_space(self, cost) -> None:
        if cost.space.fingerprint != self.space.fingerprint:
            raise SpaceMismatchError(f"cost is for space {cost.space.name!r}, the shared generator "
                                     f"{self.path or ''} for {self.space.name!r}")

    def trained_for(self, cost) -> bool:
        """Whether ``cost`` is the latency table of one of its training devices."""
        lut = getattr(cost, "lut", None)
        return cost.name == "latency" and lut is not None and self.knows(lut)

    def match_note(self, cost) -> str:
        """:meth:`describe_device` of ``cost``'s LUT; a cost other than a per-cell latency table,
        or a LUT without the reference cells, is an error naming it."""
        self.check_space(cost)
        if cost.name != "latency" or not getattr(cost, "tabulated", False):
            raise SgnasError(f"{self.path} is a shared latency generator: give --latency-ms with "
                             f"a per-cell --lut")
        self.features_of(cost.lut)  # a LUT without the reference cells: the error names them
        return self.describe_device(cost.lut)

    def argmax(self, targets: Sequence[float], cost) -> list:
        raise SgnasError("--decode argmax is not available with the shared generator; use "
                         "--decode exact")

    def describe(self, cost) -> dict:
        lut = cost.lut
        return {"shared": {"device": lut.device_name, "new_device": not self.knows(lut),
                           "training_devices": [d["name"] for d in self.devices],
                           "references": len(self.references)}}

    @torch.no_grad()
    def logprobs_norm(self, c_norm: float, features: np.ndarray) -> np.ndarray:
        """Per-decision log-probabilities ``(D, K)`` at normalized target ``c_norm``."""
        gen = self.generator.eval()
        c = torch.tensor([float(c_norm)])
        logits = gen(c, self.priors.select(c), torch.as_tensor(features, dtype=torch.float32))
        return torch.log_softmax(logits[0].double(), dim=-1).numpy()

    def normalize(self, target: float, cost) -> float:
        """Position of ``target`` in the cost's own interval (p1..p99 over every cell)."""
        lo, hi = target_interval(cost)
        if not lo <= target <= hi:
            raise SgnasError(f"target {target:g} {cost.unit} is outside the interval the shared "
                             f"generator covers on this {cost.name} model: {lo:.4g} to "
                             f"{hi:.4g} {cost.unit}")
        return (target - lo) / (hi - lo)

    def decode(self, target: float, cost, eps: float | None = 0.01, extra: Sequence = (),
               features: np.ndarray | None = None):
        """Most probable cell with ``cost`` in ``[target (1 - eps), target]`` (``eps`` None: at
        most ``target``; exact, over every connected cell) for the device of ``cost.lut`` (or the
        embedding ``features``); ``(cell, Decoded)``."""
        from .decode import window

        self.check_space(cost)
        if features is None:
            if getattr(cost, "lut", None) is None:
                raise SgnasError("the shared generator needs a device LUT")
            features = self.features_of(cost.lut)
        logp = self.logprobs_norm(self.normalize(target, cost), features)
        bounds = (-np.inf, float(target)) if eps is None else window(target, eps)
        out = decode_tabulated(self.space, logp, cost, bounds, extra)
        return self.space.arch_from_indices(out.choice), out

    def describe_device(self, lut) -> str:
        """One line: which generator serves ``lut`` and whether the device is new to it."""
        names = ", ".join(d["name"] for d in self.devices)
        status = ("one of its training devices" if self.knows(lut)
                  else "new to it (not among its training devices)")
        return (f"note: shared generator {self.path} (trained on {len(self.devices)} devices: "
                f"{names}) serves device {lut.device_name!r}, {status}; embedding from "
                f"{len(self.references)} reference cells of the LUT")

    def checkpoint(self, **extra: Any) -> dict:
        gen = self.generator
        return {
            "shared_version": SHARED_VERSION, "space": self.space.name,
            "space_fingerprint": self.space.fingerprint,
            "generator_config": asdict(gen.cfg), "num_refs": gen.num_refs,
            "device_input": gen.device_input,
            "state_dict": {k: v.detach().cpu() for k, v in gen.state_dict().items()},
            "priors": self.priors.state(),
            "references": [str(c) for c in self.references],
            "devices": [dict(d) for d in self.devices], "meta": dict(self.meta), **extra,
        }


def save_shared(path: str | os.PathLike, bundle: SharedBundle, **extra: Any) -> Path:
    """Write a shared generator atomically (weights-only checkpoint)."""
    from .checkpoint import save_checkpoint

    return save_checkpoint(path, bundle.checkpoint(**extra), SHARED_KIND)


def load_shared(path: str | os.PathLike) -> SharedBundle:
    """Load a shared generator; another kind, version or space definition is an error."""
    from .checkpoint import check_space, load_checkpoint

    ckpt = load_checkpoint(path, SHARED_KIND)
    if int(ckpt.get("shared_version", 0)) != SHARED_VERSION:
        raise SgnasError(f"{path}: shared generator version {ckpt.get('shared_version')}, this "
                         f"sgnas reads {SHARED_VERSION}")
    space: Any = check_space(ckpt, path)
    if not space.profiling_plan().per_architecture:
        raise SgnasError(f"{path}: a shared generator needs a cell space, got {space.name!r}")
    gen = DeviceConditionedGenerator(space, GeneratorConfig.from_dict(ckpt["generator_config"]),
                                     int(ckpt["num_refs"]), bool(ckpt["device_input"]))
    load_weights(gen, ckpt, f"shared generator {path}")
    return SharedBundle(space, gen, PriorPool.from_state(ckpt["priors"]),
                        [space.parse(s) for s in ckpt["references"]],
                        list(ckpt.get("devices", [])), dict(ckpt.get("meta", {})), str(path))


def find_shared_generator(space, dirs: Sequence[str | os.PathLike]) -> Path | None:
    """:meth:`GeneratorCatalog.find_shared <sgnas.generator_catalog.GeneratorCatalog.find_shared>`
    over ``dirs``."""
    return GeneratorCatalog(dirs).find_shared(space)


def generate_cell(generator, table, target: float, eps: float = 0.01, space=None):
    """The cell a generator picks for ``target`` on a per-cell table — the one call a benchmark
    needs. ``generator``: a :class:`SharedBundle`, a :class:`~sgnas.generator.GeneratorBundle`
    (any cost of the space: the target is placed in the table's own p1..p99 interval) or a path
    to either; ``table``: a ``(5,)*6`` array of the device's latency (ms) per cell, or a
    :class:`~sgnas.costs.CellTableCost`. Exact decoding over every cell: the result's table value
    lies in ``[target (1 - eps), target]`` (or at the highest value below ``target`` when that
    window is empty). A shared generator takes the device embedding from the table's reference
    cells."""
    from .costs import CellTableCost

    if isinstance(generator, (str, os.PathLike)):
        generator = load_generator_file(generator)
    if isinstance(table, CellTableCost):
        cost = table
    else:
        if space is None:
            from .space import get_space

            space = get_space("nb201")
        cost = CellTableCost(space, np.asarray(table, dtype=np.float64), "latency", "ms")
    if isinstance(generator, SharedBundle):
        sp: Any = cost.space
        idx = tuple(np.stack([sp.indices_of(c) for c in generator.references], axis=1))
        cell, _ = generator.decode(float(target), cost, eps,
                                   features=device_features(cost.table[idx]))
        return cell
    cell, _ = generator.decode(float(target), cost, eps)
    return cell


GENERATOR_LOADERS.register(SHARED_KIND, load_shared)
