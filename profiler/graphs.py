"""ONNX graphs of LUT entries and whole networks, built directly with ``onnx.helper``.

Exporting 880 blocks with the dynamo exporter takes ~18 minutes; building the (simple) inference
graphs here takes milliseconds. A graph is the deployed block with every BatchNorm folded into the
conv before it, with ReLU6 as ``Clip(0, 6)``:

* layer block: ``Conv1x1 + Clip`` → ``Split`` into e groups of C_in channels → per group a depthwise
  ``Conv(k, stride) + Clip`` → ``Concat`` → ``Conv1x1`` (→ ``Add`` of the input when residual);
* stem: ``Conv3x3(stride) + Clip`` → the fixed first block of expansion 1 (depthwise
  ``Conv3x3 + Clip`` → ``Conv1x1``, no residual);
* head: ``Conv1x1 + Clip`` → ``GlobalAveragePool`` → ``Flatten`` → ``Gemm``.

Weights are taken from the torch modules of :mod:`sgnas.blocks` (randomized with a seeded
generator: values do not matter for latency), so :func:`check_against_torch` can verify a graph
against its module. Whole networks (:func:`network_graph`) are stitched from the same pieces, so an
end-to-end measurement runs exactly the ops the LUT sums.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from sgnas.errors import SgnasError, require
from sgnas.space import Architecture, Config, LayerSpec, SearchSpace

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


# --------------------------------------------------------------------- LUT keys
@dataclass(frozen=True)
class KeySpec:
    """What a LUT key stands for: ``kind`` is ``"stem"``, ``"head"`` or ``"layer"``."""

    key: str
    kind: str
    layer: LayerSpec | None = None
    config: Config | None = None


def key_specs(space: SearchSpace) -> dict[str, KeySpec]:
    """Every distinct LUT key of ``space`` (in :meth:`SearchSpace.all_keys` order) and what it is."""
    out = {space.stem_key: KeySpec(space.stem_key, "stem")}
    for layer in space.layers:
        for config in space.configs:
            k = layer.key(config)
            out.setdefault(k, KeySpec(k, "layer", layer, config))
    out[space.head_key] = KeySpec(space.head_key, "head")
    return out


def input_shape(space: SearchSpace, spec: KeySpec, batch_size: int) -> tuple[int, ...]:
    """Input tensor shape (NCHW) of a LUT entry."""
    if spec.kind == "stem":
        return (batch_size, 3, space.input_size, space.input_size)
    if spec.kind == "head":
        c_in = space.layers[-1].c_out if space.layers else space.first_block_channels
        return (batch_size, c_in, space.final_size, space.final_size)
    assert spec.layer is not None
    return (batch_size, spec.layer.c_in, spec.layer.in_size, spec.layer.in_size)


def output_shape(space: SearchSpace, spec: KeySpec, batch_size: int) -> tuple[int, ...]:
    """Output tensor shape of a LUT entry."""
    if spec.kind == "stem":
        return (batch_size, space.first_block_channels, space.stem_size, space.stem_size)
    if spec.kind == "head":
        return (batch_size, space.num_classes)
    assert spec.layer is not None
    return (batch_size, spec.layer.c_out, spec.layer.out_size, spec.layer.out_size)


# --------------------------------------------------------------- torch modules
def randomize_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Fill weights and BN statistics with well-scaled random values from ``generator``; eval mode."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (1.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                if m.weight is not None:
                    m.weight.copy_(0.5 + torch.rand(n, generator=generator))
                    m.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                if m.running_mean is not None:
                    m.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                    m.running_var.copy_(0.5 + torch.rand(n, generator=generator))
    return module.eval()


def key_module(space: SearchSpace, spec: KeySpec, seed: int = 0) -> nn.Module:
    """The torch module of a LUT entry (deployed block, stem or head), randomized, in eval mode."""
    from sgnas import blocks

    if spec.kind == "stem":
        module = blocks.build_stem(space)
    elif spec.kind == "head":
        module = blocks.build_head(space)
    else:
        module = blocks.build_layer_block(spec.layer, spec.config)
    return randomize_(module, torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ conv + BN
@dataclass
class _Folded:
    weight: np.ndarray
    bias: np.ndarray
    stride: int
    padding: int
    groups: int

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[-1])


def _fold(conv: nn.Conv2d, bn: nn.modules.batchnorm._BatchNorm | None) -> _Folded:
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    if bn is not None:
        scale = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(b)
        shift = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(b)
        inv = scale / torch.sqrt(bn.running_var.detach().double() + bn.eps)
        w = w * inv.reshape(-1, 1, 1, 1)
        b = shift + (b - bn.running_mean.detach().double()) * inv
    pad = conv.padding
    if isinstance(pad, str) or pad[0] != pad[1] or conv.stride[0] != conv.stride[1]:
        raise SgnasError(f"unsupported conv in block graph: padding={pad}, stride={conv.stride}")
    return _Folded(w.float().numpy(), b.float().numpy(), int(conv.stride[0]), int(pad[0]), int(conv.groups))


def _convs(module: nn.Module) -> tuple[list[_Folded], list[nn.Linear]]:
    """Folded convs of ``module`` in registration order; each BN is paired with the first
    preceding unpaired conv of matching width (works for ``conv, bn`` and ``[convs], [bns]`` layouts)."""
    pending: list[tuple[nn.Conv2d, list]] = []
    order: list[tuple[nn.Conv2d, list]] = []
    linears: list[nn.Linear] = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            item = (m, [])
            pending.append(item)
            order.append(item)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            for i, (conv, slot) in enumerate(pending):
                if conv.out_channels == m.num_features:
                    slot.append(m)
                    pending.pop(i)
                    break
        elif isinstance(m, nn.Linear):
            linears.append(m)
    return [_fold(conv, slot[0] if slot else None) for conv, slot in order], linears


# --------------------------------------------------------------- graph builder
class GraphBuilder:
    """Accumulates ONNX nodes and initializers; ``dtype`` is ``"fp32"`` or ``"fp16"``."""

    def __init__(self, dtype: str = "fp32") -> None:
        if dtype not in ("fp32", "fp16"):
            raise SgnasError(f"unsupported graph precision {dtype!r} (fp32 or fp16)")
        self.dtype = dtype
        self.np_dtype = np.float16 if dtype == "fp16" else np.float32
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0
        self._clip: tuple[str, str] | None = None

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, array: np.ndarray, prefix: str, cast: bool = True) -> str:
        numpy_helper = require("onnx.numpy_helper", "tools")

        name = self.name(prefix)
        arr = np.ascontiguousarray(array.astype(self.np_dtype) if cast else array)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, inputs: Sequence[str], n_out: int = 1, **attrs) -> list[str]:
        helper = require("onnx.helper", "tools")

        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=self.name(op), **attrs))
        return outs

    def conv(self, x: str, f: _Folded) -> str:
        k = f.kernel
        w = self.const(f.weight, "w")
        b = self.const(f.bias, "b")
        return self.node(
            "Conv", [x, w, b], kernel_shape=[k, k], strides=[f.stride] * 2, pads=[f.padding] * 4,
            group=f.groups,
        )[0]

    def relu6(self, x: str) -> str:
        if self._clip is None:
            self._clip = (self.const(np.array(0.0), "zero"), self.const(np.array(6.0), "six"))
        return self.node("Clip", [x, *self._clip])[0]

    def model(
        self, input_name: str, in_shape: Sequence[int], output: str, out_shape: Sequence[int]
    ):
        """Finish the graph: ``input_name`` of ``in_shape`` in, ``output`` of ``out_shape`` out."""
        onnx = require("onnx", "tools")
        TensorProto, helper = onnx.TensorProto, onnx.helper

        elem = TensorProto.FLOAT16 if self.dtype == "fp16" else TensorProto.FLOAT
        self.nodes.append(helper.make_node("Identity", [output], [OUTPUT_NAME], name="out"))
        graph = helper.make_graph(
            self.nodes,
            "sgnas",
            [helper.make_tensor_value_info(input_name, elem, list(in_shape))],
            [helper.make_tensor_value_info(OUTPUT_NAME, elem, list(out_shape))],
            self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sgnas"
        )
        model.ir_version = 8
        return model


def _emit_layer(g: GraphBuilder, x: str, module: nn.Module, layer: LayerSpec, config: Config) -> str:
    convs, _ = _convs(module)
    e = len(config)
    if len(convs) != e + 2:
        raise SgnasError(
            f"block {layer.key(config)}: expected {e + 2} convs (expand, {e} depthwise, project), "
            f"found {len(convs)}"
        )
    expand, dws, project = convs[0], convs[1:-1], convs[-1]
    h = g.relu6(g.conv(x, expand))
    sizes = g.const(np.full(e, layer.c_in, dtype=np.int64), "split", cast=False)
    groups = g.node("Split", [h, sizes], n_out=e, axis=1) if e > 1 else [h]
    outs = [g.relu6(g.conv(gi, dw)) for gi, dw in zip(groups, dws)]
    h = g.node("Concat", outs, axis=1)[0] if e > 1 else outs[0]
    y = g.conv(h, project)
    if layer.residual:
        y = g.node("Add", [y, x])[0]
    return y


def _emit_stem(g: GraphBuilder, x: str, module: nn.Module) -> str:
    convs, _ = _convs(module)
    if len(convs) < 2:
        raise SgnasError(f"stem: expected a conv and the first block's convs, found {len(convs)}")
    h = g.relu6(g.conv(x, convs[0]))
    for f in convs[1:-1]:
        h = g.relu6(g.conv(h, f))
    return g.conv(h, convs[-1])


def _emit_head(g: GraphBuilder, x: str, module: nn.Module) -> str:
    convs, linears = _convs(module)
    if len(linears) != 1:
        raise SgnasError(f"head: expected one linear classifier, found {len(linears)}")
    h = x
    for f in convs:
        h = g.relu6(g.conv(h, f))
    h = g.node("GlobalAveragePool", [h])[0]
    h = g.node("Flatten", [h], axis=1)[0]
    fc = linears[0]
    w = g.const(fc.weight.detach().numpy(), "fc_w")
    b = g.const(
        fc.bias.detach().numpy() if fc.bias is not None else np.zeros(fc.out_features), "fc_b"
    )
    return g.node("Gemm", [h, w, b], transB=1)[0]


# -------------------------------------------------------------------- public
@dataclass
class KeyGraph:
    """A LUT entry ready to measure: its torch module, ONNX model(s) and input shape."""

    spec: KeySpec
    module: nn.Module
    model: object  # onnx.ModelProto
    input_shape: tuple[int, ...]
    model_fp16: object | None = None


def module_graph(
    space: SearchSpace, spec: KeySpec, module: nn.Module, batch_size: int, dtype: str = "fp32"
):
    """ONNX model of ``module`` standing for the LUT entry ``spec``."""
    g = GraphBuilder(dtype)
    if spec.kind == "stem":
        y = _emit_stem(g, INPUT_NAME, module)
    elif spec.kind == "head":
        y = _emit_head(g, INPUT_NAME, module)
    else:
        y = _emit_layer(g, INPUT_NAME, module, spec.layer, spec.config)
    return g.model(
        INPUT_NAME, input_shape(space, spec, batch_size), y, output_shape(space, spec, batch_size)
    )


def key_graph(
    space: SearchSpace,
    spec: KeySpec,
    batch_size: int = 1,
    seed: int = 0,
    fp16: bool = False,
) -> KeyGraph:
    """Build the torch module and ONNX graph (and its fp16 twin if ``fp16``) of one LUT entry."""
    module = key_module(space, spec, seed)
    model = module_graph(space, spec, module, batch_size)
    model16 = module_graph(space, spec, module, batch_size, "fp16") if fp16 else None
    return KeyGraph(spec, module, model, input_shape(space, spec, batch_size), model16)


def network_modules(space: SearchSpace, arch: Architecture, seed: int = 0) -> nn.Sequential:
    """The whole network of ``arch`` as a sequence of the same per-entry modules the LUT measures."""
    space.validate(arch)
    specs = key_specs(space)
    parts = [key_module(space, specs[space.stem_key], seed)]
    for i, (layer, config) in enumerate(zip(space.layers, arch.layers)):
        parts.append(key_module(space, specs[layer.key(config)], seed + 1 + i))
    parts.append(key_module(space, specs[space.head_key], seed + 1 + space.num_layers))
    return nn.Sequential(*parts).eval()


def network_graph(
    space: SearchSpace,
    arch: Architecture,
    batch_size: int = 1,
    seed: int = 0,
    dtype: str = "fp32",
    modules: nn.Sequential | None = None,
):
    """ONNX model of the whole network of ``arch``, stitched from the LUT's stem, block and head graphs.

    Returns ``(modules, model)``; ``modules`` is the torch network it was built from.
    """
    modules = modules if modules is not None else network_modules(space, arch, seed)
    g = GraphBuilder(dtype)
    h = _emit_stem(g, INPUT_NAME, modules[0])
    for module, layer, config in zip(modules[1:-1], space.layers, arch.layers):
        h = _emit_layer(g, h, module, layer, config)
    y = _emit_head(g, h, modules[-1])
    shape = (batch_size, 3, space.input_size, space.input_size)
    return modules, g.model(INPUT_NAME, shape, y, (batch_size, space.num_classes))


def check_against_torch(
    module: nn.Module,
    model,
    input_shape: Sequence[int],
    seed: int = 0,
    atol: float = 1e-4,
) -> float:
    """Run ``model`` with the ONNX reference evaluator and ``module`` in torch on the same random input.

    Raises :class:`SgnasError` if the largest absolute difference exceeds ``atol`` (relative to the
    output's scale when that exceeds 1); returns the difference. The reference evaluator implements
    the ONNX specification, so the check is independent of the runtime that measures the graph.
    """
    ReferenceEvaluator = require("onnx.reference", "tools").ReferenceEvaluator

    x = np.random.default_rng(seed).standard_normal(tuple(input_shape)).astype(np.float32)
    with torch.no_grad():
        ref = module.eval()(torch.from_numpy(x)).numpy()
    got = ReferenceEvaluator(model).run(None, {INPUT_NAME: x})[0]
    if got.shape != ref.shape:
        raise SgnasError(f"ONNX graph output shape {got.shape} differs from torch {ref.shape}")
    diff = float(np.max(np.abs(got.astype(np.float64) - ref)))
    scale = max(1.0, float(np.max(np.abs(ref))))
    if not diff <= atol * scale:
        raise SgnasError(
            f"ONNX graph differs from its torch module: max abs diff {diff:.3g} > {atol * scale:.3g}"
        )
    return diff


def save_model(model, path: str | os.PathLike) -> Path:
    """Write ``model`` as a single ONNX file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path
