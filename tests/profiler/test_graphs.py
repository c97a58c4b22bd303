import numpy as np
import onnx
import pytest
import torch

from profiler import graphs
from sgnas.errors import SgnasError
from sgnas.space import get_space

SPACE = get_space("tiny")


def spec_of(key):
    return graphs.key_specs(SPACE)[key]


def test_key_specs_cover_all_keys_in_order():
    specs = graphs.key_specs(SPACE)
    assert list(specs) == SPACE.all_keys()
    assert specs[SPACE.stem_key].kind == "stem" and specs[SPACE.head_key].kind == "head"
    layer = SPACE.layers[1]
    s = specs[layer.key((3, 5, 7))]
    assert (s.kind, s.layer, s.config) == ("layer", layer, (3, 5, 7))


@pytest.mark.parametrize(
    "key",
    [SPACE.stem_key, SPACE.head_key, SPACE.layers[0].key((3, 7)), SPACE.layers[1].key((3, 5, 5, 7, 7, 7))],
)
def test_graph_matches_torch(key):
    kg = graphs.key_graph(SPACE, spec_of(key), batch_size=2, seed=1)
    onnx.checker.check_model(kg.model, full_check=True)
    diff = graphs.check_against_torch(kg.module, kg.model, kg.input_shape)
    assert diff < 1e-4
    assert kg.input_shape[0] == 2


def test_layer_graph_structure():
    layer = SPACE.layers[1]  # residual layer
    kg = graphs.key_graph(SPACE, spec_of(layer.key((3, 5, 7))), seed=0)
    ops = [n.op_type for n in kg.model.graph.node]
    assert ops.count("Conv") == 5 and ops.count("Clip") == 4
    assert "Split" in ops and "Concat" in ops and "Add" in ops
    assert "BatchNormalization" not in ops
    depthwise = [n for n in kg.model.graph.node if n.op_type == "Conv"][1:4]
    kernels = [next(a.ints[0] for a in n.attribute if a.name == "kernel_shape") for n in depthwise]
    assert kernels == [3, 5, 7]


def test_wrong_graph_is_detected():
    kg = graphs.key_graph(SPACE, spec_of(SPACE.layers[0].key((3, 5))), seed=0)
    init = kg.model.graph.initializer[0]
    w = onnx.numpy_helper.to_array(init).copy()
    w.flat[0] += 0.5
    init.CopyFrom(onnx.numpy_helper.from_array(w, init.name))
    with pytest.raises(SgnasError, match="differs from its torch module"):
        graphs.check_against_torch(kg.module, kg.model, kg.input_shape)


def test_weights_are_seeded():
    spec = spec_of(SPACE.layers[2].key((5, 7)))
    a = graphs.key_graph(SPACE, spec, seed=3).model.SerializeToString()
    b = graphs.key_graph(SPACE, spec, seed=3).model.SerializeToString()
    c = graphs.key_graph(SPACE, spec, seed=4).model.SerializeToString()
    assert a == b and a != c


def test_fp16_graph_is_half_precision():
    kg = graphs.key_graph(SPACE, spec_of(SPACE.layers[3].key((3, 3))), fp16=True)
    f16 = onnx.TensorProto.FLOAT16
    assert kg.model_fp16.graph.input[0].type.tensor_type.elem_type == f16
    assert kg.model_fp16.graph.output[0].type.tensor_type.elem_type == f16
    floats = [t for t in kg.model_fp16.graph.initializer if t.data_type != onnx.TensorProto.INT64]
    assert floats and all(t.data_type == f16 for t in floats)
    onnx.checker.check_model(kg.model_fp16)


def test_network_graph_matches_torch_and_lut_pieces():
    arch = SPACE.sample(np.random.default_rng(0))
    modules, model = graphs.network_graph(SPACE, arch, batch_size=1, seed=0)
    assert len(modules) == SPACE.num_layers + 2
    assert graphs.check_against_torch(modules, model, (1, 3, 16, 16)) < 1e-4
    # the network's convs are exactly the convs of the LUT entries it sums
    n_conv = sum(n.op_type == "Conv" for n in model.graph.node)
    assert n_conv == 3 + sum(len(c) + 2 for c in arch.layers) + 1
    assert model.graph.output[0].type.tensor_type.shape.dim[1].dim_value == SPACE.num_classes


def test_randomize_sets_eval_and_bn_stats():
    module = graphs.key_module(SPACE, spec_of(SPACE.stem_key), seed=0)
    assert not module.training
    bns = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not torch.allclose(b.running_var, torch.ones_like(b.running_var)) for b in bns)
