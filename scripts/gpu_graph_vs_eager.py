"""CUDA-graph vs eager latency of one whole network on a torch GPU device.

    python scripts/gpu_graph_vs_eager.py --device h200-torch [--space cifar10] [--arch ARCH]

The network (default: the space's reference network) runs through the torch CUDA runner twice, with
and without CUDA graphs, measured with the device's protocol. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", required=True, help="a torch GPU descriptor (name or YAML path)")
    ap.add_argument("--space", default="cifar10")
    ap.add_argument("--arch", help="architecture string or JSON (default: the reference network)")
    args = ap.parse_args(argv)

    from profiler import graphs
    from profiler.backends.base import ModelSpec, make_runner
    from profiler.devices import check_host, load_device
    from profiler.interleave import reference_architecture
    from profiler.protocol import measure
    from sgnas.errors import SgnasError
    from sgnas.space import get_space, load_architecture

    try:
        device = load_device(args.device)
        if device.kind != "gpu" or device.backend != "torch":
            raise SgnasError(f"device {device.name} is not a torch GPU device")
        check_host(device)
        space = get_space(args.space)
        arch = load_architecture(args.arch) if args.arch else reference_architecture(space)
        modules = graphs.network_modules(space, arch, seed=0)
        spec = ModelSpec(None, (device.batch_size, 3, space.input_size, space.input_size), "net",
                         torch_factory=lambda: copy.deepcopy(modules))
        out = {"device": device.name, "space": space.name, "arch": str(arch),
               "batch_size": device.batch_size, "precision": device.precision}
        for mode, graphs_on in (("graph", True), ("eager", False)):
            with make_runner(dataclasses.replace(device, cuda_graphs=graphs_on), spec) as runner:
                m = measure(runner, device.protocol)
                out[f"{mode}_ms"] = m.median_ms
                out[f"{mode}_spread"] = m.spread
                if graphs_on:
                    out["cuda_graph_used"] = bool(runner.info.get("cuda_graph"))
        out["eager_over_graph"] = out["eager_ms"] / out["graph_ms"]
    except SgnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
