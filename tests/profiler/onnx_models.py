"""Small ONNX models and a quick CPU descriptor for tests of latency checks."""

from pathlib import Path

import numpy as np


def conv_onnx(path, channels=4, batch="N", size=8):
    """One 3x3 convolution from 3 to ``channels`` channels on a ``batch``x3x``size``x``size`` input
    (``batch="N"``: dynamic); more channels, more work."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((channels, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(model.SerializeToString())
    return Path(path)


def relu_onnx(path):
    """A single ReLU on a 1x3x8x8 input."""
    from onnx import TensorProto, helper, save

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return Path(path)


def fast_device(tmp_path, name="cpu", threads=1):
    """The YAML path of a CPU descriptor with a short protocol, for real measurements in tests."""
    import yaml

    data = {"name": name, "description": "test", "kind": "cpu", "backend": "onnxruntime",
            "precision": "fp32", "batch_size": 1, "threads": threads, "pin_threads": False,
            "protocol": {"warmup_ms": 2, "warmup_min_iters": 2, "rounds": 3, "min_iters_per_round": 5,
                         "min_round_ms": 2, "remeasure": 0}}
    path = Path(tmp_path) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
