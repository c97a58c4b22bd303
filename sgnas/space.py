"""The unified search space: macro structures, per-layer configurations, architectures.

A layer of the unified supernet has ``max_expansion`` (6) sub-blocks; each is a depthwise conv with
kernel 3, 5 or 7, or *skip*. Up to channel order a layer's choice is the multiset of its non-skip
kernels, 2 to 6 of them: 80 configurations per layer. An :class:`Architecture` stores, per layer, the
sorted kernel sizes, which is its one canonical form::

    {"space": "imagenet", "layers": [[3, 5, 7], [3, 3], ...]}     # JSON form
    imagenet:357-33-...                                             # string form

Everything random takes a ``numpy.random.Generator`` from the caller.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Callable, ClassVar, Iterable, Sequence

import numpy as np

from .errors import ArchitectureError, SgnasError
from .registry import Registry
from .space_protocol import ProfilingPlan

KERNELS: tuple[int, ...] = (3, 5, 7)
#: Per-sub-block choice order used by one-hot encodings and the generator: k3, k5, k7, skip.
CHOICES: tuple[int, ...] = (3, 5, 7, 0)
SKIP_INDEX = 3
Config = tuple[int, ...]


@dataclass(frozen=True)
class LayerSpec:
    """One searchable layer: input/output channels, stride and input resolution (square)."""

    c_in: int
    c_out: int
    stride: int
    in_size: int

    @property
    def out_size(self) -> int:
        return (self.in_size + self.stride - 1) // self.stride

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.c_in == self.c_out

    @property
    def shape_key(self) -> str:
        """Identifies the layer's shape; layers with equal shape keys have identical latency tables."""
        return f"ub_i{self.c_in}_o{self.c_out}_s{self.stride}_r{self.in_size}"

    def key(self, config: Config) -> str:
        """LUT key of this layer with ``config`` (sorted kernel sizes), e.g. ``ub_i32_o32_s1_r56_k357``."""
        return f"{self.shape_key}_k{''.join(str(k) for k in config)}"


@dataclass(frozen=True)
class SearchSpace:
    """A unified search space: fixed stem and head around ``len(layers)`` unified blocks.

    Implements :class:`sgnas.space_protocol.Space`: one decision per layer over :attr:`configs`.
    """

    #: Registry key of its networks, supernets and costs (:mod:`sgnas.space_protocol`).
    family: ClassVar[str] = "unified"

    name: str
    input_size: int
    num_classes: int
    layers: tuple[LayerSpec, ...]
    stem_channels: int = 32
    stem_stride: int = 2
    first_block_channels: int = 16
    head_channels: int = 1280
    kernels: tuple[int, ...] = KERNELS
    max_expansion: int = 6
    min_expansion: int = 2
    description: str = field(default="", compare=False)

    # ----------------------------------------------------------------- structure
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def stem_size(self) -> int:
        """Spatial size after the stem conv (the fixed first block keeps it)."""
        return (self.input_size + self.stem_stride - 1) // self.stem_stride

    @property
    def final_size(self) -> int:
        return self.layers[-1].out_size if self.layers else self.stem_size

    @property
    def stem_key(self) -> str:
        """LUT key of the fixed part before the searchable layers (stem conv + first block)."""
        return (
            f"stem_r{self.input_size}_s{self.stem_stride}_c{self.stem_channels}"
            f"_o{self.first_block_channels}"
        )

    @property
    def head_key(self) -> str:
        """LUT key of the fixed part after the searchable layers (1x1 conv, pool, classifier)."""
        c_in = self.layers[-1].c_out if self.layers else self.first_block_channels
        return f"head_r{self.final_size}_i{c_in}_c{self.head_channels}_n{self.num_classes}"

    @cached_property
    def configs(self) -> tuple[Config, ...]:
        """All layer configurations: sorted kernel multisets of size min..max expansion (80)."""
        out: list[Config] = []
        for e in range(self.min_expansion, self.max_expansion + 1):
            out.extend(itertools.combinations_with_replacement(sorted(self.kernels), e))
        return tuple(out)

    @cached_property
    def config_index(self) -> dict[Config, int]:
        return {c: i for i, c in enumerate(self.configs)}

    def layer_keys(self) -> list[list[str]]:
        """LUT keys per layer, in :attr:`configs` order."""
        return [[layer.key(c) for c in self.configs] for layer in self.layers]

    def all_keys(self) -> list[str]:
        """Every distinct LUT key of the space (stem, head and each distinct layer config)."""
        keys = [self.stem_key]
        seen = set(keys)
        for row in self.layer_keys():
            for k in row:
                if k not in seen:
                    seen.add(k)
                    keys.append(k)
        keys.append(self.head_key)
        return keys

    # ---------------------------------------------------------------- identity
    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("description")
        d["layers"] = [asdict(layer) for layer in self.layers]
        return d

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the space's definition; LUTs and checkpoints record it."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # --------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator) -> "Architecture":
        """Uniform single-path sample (SPOS): per layer e uniform, then each kernel uniform."""
        return self.arch_from_choices(self.sample_choices(rng))

    def sample_layer(self, rng: np.random.Generator) -> Config:
        """One layer's configuration the SPOS way: expansion e uniform, then each kernel uniform
        (returned sorted). The one layer sampler: :meth:`sample`, :meth:`sample_choices`, the
        evolutionary search's mutation and the generator's priors all draw through it."""
        e = int(rng.integers(self.min_expansion, self.max_expansion + 1))
        kernels = sorted(self.kernels)
        return tuple(sorted(kernels[int(i)] for i in rng.integers(0, len(kernels), size=e)))

    def layer_choices(self, config: Config) -> np.ndarray:
        """Canonical forced-sampling row of ``config``: its sorted kernels in sub-blocks
        ``0..e-1`` (indices into :data:`CHOICES`), skips after."""
        row = np.full(self.max_expansion, SKIP_INDEX, dtype=np.int64)
        row[: len(config)] = [CHOICES.index(k) for k in sorted(config)]
        return row

    def sample_choices(self, rng: np.random.Generator, forced_sampling: bool = True) -> np.ndarray:
        """Per-sub-block choice indices into :data:`CHOICES`, shape ``(L, max_expansion)``.

        With forced sampling each row is the canonical form of :meth:`sample_layer` (sorted kernels
        in sub-blocks ``0..e-1``, skips at the highest indices); without it the ``e`` kernels are
        placed at random positions.
        """
        L, m = self.num_layers, self.max_expansion
        if forced_sampling:
            return np.stack([self.layer_choices(self.sample_layer(rng)) for _ in range(L)])
        out = np.full((L, m), SKIP_INDEX, dtype=np.int64)
        kernels = sorted(self.kernels)
        for layer in range(L):
            e = int(rng.integers(self.min_expansion, self.max_expansion + 1))
            pos = np.sort(rng.choice(m, size=e, replace=False))
            out[layer, pos] = [CHOICES.index(kernels[int(i)])
                               for i in rng.integers(0, len(kernels), size=e)]
        return out

    # ------------------------------------------------------------ encodings
    def choices(self, arch: "Architecture") -> np.ndarray:
        """Forced-sampling sub-block assignment of ``arch``: sub-block i gets the i-th sorted kernel."""
        self.validate(arch)
        out = np.full((self.num_layers, self.max_expansion), SKIP_INDEX, dtype=np.int64)
        for layer, config in enumerate(arch.layers):
            for i, k in enumerate(config):
                out[layer, i] = CHOICES.index(k)
        return out

    def one_hot(self, arch: "Architecture") -> np.ndarray:
        """One-hot encoding, shape ``(L, max_expansion, len(CHOICES))``."""
        return np.eye(len(CHOICES), dtype=np.float32)[self.choices(arch)]

    def arch_from_choices(self, choices: np.ndarray | Sequence[Sequence[int]]) -> "Architecture":
        """Architecture from per-sub-block choice indices (skips dropped, kernels sorted)."""
        layers = [
            tuple(sorted(CHOICES[int(c)] for c in row if int(c) != SKIP_INDEX)) for row in choices
        ]
        arch = Architecture(self.name, tuple(layers))
        self.validate(arch)
        return arch

    # ------------------------------------------------------ the Space protocol
    def decisions(self) -> tuple[int, int]:
        """``(L, len(configs))``: one decision per layer over its configurations."""
        return self.num_layers, len(self.configs)

    def candidate_mask(self) -> np.ndarray:
        """Every configuration is allowed in every layer."""
        return np.ones(self.decisions(), dtype=bool)

    def arch_from_indices(self, indices: Sequence[int]) -> "Architecture":
        """The architecture with configuration ``configs[indices[l]]`` in layer ``l``."""
        configs = self.configs
        idx = np.asarray(indices).reshape(-1)
        if len(idx) != self.num_layers or not all(0 <= int(i) < len(configs) for i in idx):
            raise ArchitectureError(f"space {self.name!r} needs {self.num_layers} configuration "
                                    f"indices in 0..{len(configs) - 1}, got {idx.tolist()}")
        return self.validate(Architecture(self.name, tuple(configs[int(i)] for i in idx)))

    def indices_of(self, arch: "Architecture") -> np.ndarray:
        """Configuration index of each layer (inverse of :meth:`arch_from_indices`)."""
        self.validate(arch)
        index = self.config_index
        return np.array([index[c] for c in arch.layers], dtype=np.int64)

    def parse(self, text: str) -> "Architecture":
        """An architecture of this space from its string form ``space:357-33-...`` or JSON text."""
        text = text.strip()
        arch = Architecture.from_json(text) if text.startswith("{") else Architecture.parse(text)
        return self.validate(arch)

    def lut_keys(self, arch: "Architecture") -> list[str]:
        """Stem, head and each layer's key: their entries sum to the LUT prediction of ``arch``."""
        self.validate(arch)
        return [self.stem_key, self.head_key] + [
            layer.key(config) for layer, config in zip(self.layers, arch.layers)]

    def profiling_plan(self) -> ProfilingPlan:
        """Each distinct stem, layer-configuration and head key measured as its own graph."""
        return ProfilingPlan("layers", tuple(self.all_keys()))

    # ------------------------------------------------------------ validation
    def validate(self, arch: "Architecture") -> "Architecture":
        """Raise :class:`ArchitectureError` naming the layer and the rule broken; return ``arch``."""
        if not isinstance(arch, Architecture):
            raise ArchitectureError(f"expected an architecture of space {self.name!r}, got "
                                    f"{type(arch).__name__}")
        if arch.space != self.name:
            raise ArchitectureError(
                f"architecture is for space {arch.space!r}, expected {self.name!r}"
            )
        if len(arch.layers) != self.num_layers:
            raise ArchitectureError(
                f"architecture has {len(arch.layers)} layers, space {self.name!r} has "
                f"{self.num_layers}"
            )
        allowed = set(self.kernels)
        for i, config in enumerate(arch.layers):
            bad = [k for k in config if k not in allowed]
            if bad:
                raise ArchitectureError(
                    f"layer {i}: kernel {bad[0]} not in {{{', '.join(map(str, self.kernels))}}}"
                )
            if not self.min_expansion <= len(config) <= self.max_expansion:
                raise ArchitectureError(
                    f"layer {i}: {len(config)} sub-blocks, must be {self.min_expansion} to "
                    f"{self.max_expansion}"
                )
        return arch


@dataclass(frozen=True)
class Architecture:
    """A sub-network of a unified space: per layer, the sorted kernel sizes of its non-skip sub-blocks.

    The constructor canonicalizes (sorts each layer); use :meth:`SearchSpace.validate` for the rules.
    """

    space: str
    layers: tuple[Config, ...]

    def __post_init__(self) -> None:
        try:
            layers = tuple(tuple(sorted(int(k) for k in layer)) for layer in self.layers)
        except (TypeError, ValueError) as exc:
            raise ArchitectureError(f"layers must be lists of kernel sizes ({exc})") from exc
        object.__setattr__(self, "layers", layers)

    @property
    def expansions(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.layers)

    # JSON form
    def to_dict(self) -> dict:
        return {"space": self.space, "layers": [list(c) for c in self.layers]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "Architecture":
        if not isinstance(d, dict) or "space" not in d or "layers" not in d:
            raise ArchitectureError('architecture JSON needs the keys "space" and "layers"')
        if not isinstance(d["layers"], list) or not all(isinstance(x, list) for x in d["layers"]):
            raise ArchitectureError('"layers" must be a list of lists of kernel sizes')
        return cls(str(d["space"]), tuple(tuple(x) for x in d["layers"]))

    @classmethod
    def from_json(cls, text: str) -> "Architecture":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ArchitectureError(f"architecture is not valid JSON ({exc.msg})") from exc

    # String form: "imagenet:357-33-5577"
    def __str__(self) -> str:
        return f"{self.space}:" + "-".join("".join(str(k) for k in c) for c in self.layers)

    @classmethod
    def parse(cls, text: str) -> "Architecture":
        """Parse the string form ``space:357-33-...``."""
        space, sep, body = text.strip().partition(":")
        if not sep or not space or not body:
            raise ArchitectureError(f"cannot parse architecture string {text!r} (want space:357-33-...)")
        layers = []
        for i, part in enumerate(body.split("-")):
            if not part.isdigit():
                raise ArchitectureError(f"layer {i}: {part!r} is not a string of kernel digits")
            layers.append(tuple(int(ch) for ch in part))
        return cls(space, tuple(layers))


# ----------------------------------------------------------------------- macros
def _macro(
    name: str,
    input_size: int,
    num_classes: int,
    stem_stride: int,
    channels: Iterable[int],
    strides: Iterable[int],
    first_block_channels: int = 16,
    stem_channels: int = 32,
    head_channels: int = 1280,
    description: str = "",
) -> SearchSpace:
    size = (input_size + stem_stride - 1) // stem_stride
    c_in = first_block_channels
    layers = []
    for c_out, s in zip(channels, strides):
        spec = LayerSpec(c_in, c_out, s, size)
        layers.append(spec)
        c_in, size = c_out, spec.out_size
    return SearchSpace(
        name=name,
        input_size=input_size,
        num_classes=num_classes,
        layers=tuple(layers),
        stem_channels=stem_channels,
        stem_stride=stem_stride,
        first_block_channels=first_block_channels,
        head_channels=head_channels,
        description=description,
    )


_IMAGENET_CHANNELS = (32, 32, 40, 40, 40, 40, 80, 80, 80, 80, 96, 96, 96, 96, 192, 192, 192, 192, 320)
_IMAGENET_STRIDES = tuple(2 if i in (0, 2, 6, 14) else 1 for i in range(19))


def imagenet_space() -> SearchSpace:
    """The ImageNet macro of SGNAS/FairNAS: 19 unified layers, 224 px input, 1000 classes."""
    return _macro("imagenet", 224, 1000, 2, _IMAGENET_CHANNELS, _IMAGENET_STRIDES,
                  description="SGNAS ImageNet macro, 224x224, 80^19 architectures")


def cifar10_space() -> SearchSpace:
    """The CIFAR-10 variant: the ImageNet macro with stem and layer 0 at stride 1, 32 px input."""
    strides = (1,) + _IMAGENET_STRIDES[1:]
    return _macro("cifar10", 32, 10, 1, _IMAGENET_CHANNELS, strides,
                  description="SGNAS macro for CIFAR-10, 32x32, 80^19 architectures")


def tiny_space() -> SearchSpace:
    """A 4-layer space with few channels, for tests."""
    return _macro("tiny", 16, 10, 1, (16, 16, 24, 24), (2, 1, 2, 1), first_block_channels=8,
                  stem_channels=8, head_channels=32, description="4-layer test space, 16x16")


#: Search spaces by name: factories returning a :class:`SearchSpace`. Further spaces register
#: themselves in a module of :mod:`sgnas.spaces` (imported on the first lookup of an unknown name).
SPACES: Registry[Callable[[], SearchSpace]] = Registry("search space", discover="sgnas.spaces")
SPACES.register("imagenet", imagenet_space)
SPACES.register("cifar10", cifar10_space)
SPACES.register("tiny", tiny_space)


def get_space(name: str) -> SearchSpace:
    """Look up a registered space by name (built once, then cached)."""
    if name not in _SPACE_CACHE:
        _SPACE_CACHE[name] = SPACES.get(name)()
    return _SPACE_CACHE[name]


_SPACE_CACHE: dict[str, SearchSpace] = {}


def load_architecture(source: str) -> Architecture:
    """Load an architecture from a JSON file path, a JSON string or the string form, and validate it."""
    import os

    text = source
    if os.path.exists(source):
        try:
            with open(source) as fh:
                text = fh.read()
        except OSError as exc:
            raise SgnasError(f"cannot read architecture file {source}: {exc.strerror}") from exc
    elif source.endswith(".json"):
        raise SgnasError(f"architecture file not found: {source}")
    text = text.strip()
    arch = Architecture.from_json(text) if text.startswith("{") else Architecture.parse(text)
    return get_space(arch.space).validate(arch)
