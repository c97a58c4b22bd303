"""Where do whole networks differ from the sum of their LUT blocks? Measure the candidate causes.

For ``--networks`` networks spread over the LUT's range (``calibration_networks``), on the LUT's
device (ONNX Runtime CPU backends):

* ``network_ms``: the whole network, timed against the LUT's reference, in the LUT's reference state;
  ``sum_ms``: the LUT's raw sum of its blocks (stem, layers, head);
* per-call overhead: a one-``Add`` graph timed the same way; the block sum pays it once per block,
  the network once, so the sum over-counts ``(blocks - 1) x overhead``;
* weight cache state: every block of the network timed warm (consecutive inferences, as the LUT
  measures it) and cold (the CPU caches flushed by writing ``--flush-mb`` MB before each inference);
  ``sum(cold - warm)`` bounds what cold weights add inside a network;
* layout conversions: ONNX Runtime's optimized graph of each block and of the network, counting the
  NCHWc ``ReorderInput``/``ReorderOutput`` nodes (in blocks: at every block's edges; in a network:
  only where the layout must change).

    python scripts/bench_block_sum.py --lut lut/cpu-cifar10.json --networks 4

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lut", required=True)
    p.add_argument("--networks", type=int, default=4)
    p.add_argument("--cold-iters", type=int, default=15)
    p.add_argument("--flush-mb", type=float, default=32.0)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def add_graph(path: Path):
    """A one-``Add`` graph on a 1x1 tensor: what one call costs beyond its compute."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1, 1], [1.0])
    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "add", [x], [y], [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def reorders(runner, spec, folder: Path) -> int:
    """NCHWc reorder nodes in ONNX Runtime's optimized graph of ``spec``."""
    import onnx
    import onnxruntime as ort

    so = runner.session_options(None)
    out = folder / f"opt-{spec.onnx_path.stem}.onnx"
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(spec.onnx_path), so, providers=["CPUExecutionProvider"])
    model = onnx.load(str(out), load_external_data=False)
    return sum(n.op_type in ("ReorderInput", "ReorderOutput") for n in model.graph.node)


def warm_cold(runner, iters: int, flush: np.ndarray) -> tuple[float, float]:
    """Median latency of consecutive inferences and of inferences after a cache flush."""
    runner.time_iterations(5)
    warm = float(np.median(runner.time_iterations(max(iters, 10))))
    cold = []
    for _ in range(iters):
        flush[:] += 1.0  # touch every byte: evicts the weights from every cache level
        cold.append(float(runner.time_iterations(1)[0]))
    return warm, float(np.median(cold))


def main(argv=None) -> int:
    args = parse_args(argv)
    from profiler.backends.base import ModelSpec, make_runner
    from profiler.calibration_set import calibration_networks
    from profiler.measure import Measurer, lut_device, lut_reference
    from sgnas.lut import load_lut
    from sgnas.space import get_space

    lut = load_lut(args.lut)
    space = get_space(lut.space)
    device = lut_device(lut)
    reference, state_ms = lut_reference(lut)
    archs = calibration_networks(space, lut, args.networks, np.random.default_rng(args.seed))
    flush = np.zeros(int(args.flush_mb * 2**20 / 4), dtype=np.float32)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-block-sum-") as tmp, \
            Measurer(device, space, reference=reference, state_ms=state_ms,
                     seed=int(lut.build.get("seed", 0))) as m:
        folder = Path(tmp)
        add = ModelSpec(add_graph(folder / "add.onnx"), (1, 1), name="add")
        overhead = m.measure(add, "entry")
        for arch in archs:
            net_spec = m.builder.network(arch, "net")
            net = m.measure(net_spec, "network")
            keys = [space.stem_key] + [l.key(c) for l, c in zip(space.layers, arch.layers)] \
                + [space.head_key]
            warm_sum = cold_sum = 0.0
            block_reorders = 0
            for key in keys:
                spec = m.builder.entry(key)
                with make_runner(device, spec) as r:
                    w, c = warm_cold(r, args.cold_iters, flush)
                    block_reorders += reorders(r, spec, folder)
                warm_sum, cold_sum = warm_sum + w, cold_sum + c
            with make_runner(device, net_spec) as r:
                net_warm, net_cold = warm_cold(r, max(3, args.cold_iters // 3), flush)
                net_reorders = reorders(r, net_spec, folder)
            raw = lut.raw_ms(arch, space)
            rows.append({
                "arch": str(arch), "sum_ms": raw, "network_ms": net.median_ms,
                "gap_ms": net.median_ms - raw, "gap_rel": net.median_ms / raw - 1,
                "blocks": len(keys),
                "call_overhead_surplus_ms": (len(keys) - 1) * overhead.median_ms,
                "blocks_warm_ms": warm_sum, "blocks_cold_ms": cold_sum,
                "cold_minus_warm_ms": cold_sum - warm_sum,
                "network_alone_warm_ms": net_warm, "network_alone_cold_ms": net_cold,
                "reorders_in_blocks": block_reorders, "reorders_in_network": net_reorders,
            })
    print(json.dumps({
        "bench": "block_sum", "lut": args.lut, "space": space.name, "device": device.name,
        "normalized": reference is not None, "call_overhead_ms": overhead.median_ms,
        "networks": rows, "load": os.getloadavg(), "wall_s": round(time.perf_counter() - started, 1),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
