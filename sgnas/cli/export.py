"""``sgnas export``: the deployable network of an architecture as a single verified ONNX file."""

from __future__ import annotations

import argparse
import os

NAME = "export"
HELP = "export the network of an architecture to ONNX (fresh weights or copied from a supernet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", required=True,
                        help="architecture: JSON file, JSON text or string form (imagenet:357-33-...)")
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--se", action="store_true", help="add squeeze-and-excitation to every block")
    parser.add_argument("--hswish", action="store_true", help="use h-swish instead of ReLU6")
    parser.add_argument("--batch", type=int, default=1, help="static batch size (default 1)")
    parser.add_argument("--checkpoint", default=None,
                        help="supernet checkpoint whose weights the network inherits "
                             "(SE layers, which the supernet lacks, stay freshly initialized)")
    parser.add_argument("--half", action="store_true", help="export in fp16 (for GPU runtimes)")
    parser.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                        help="torch exporter: dynamo (default, needs onnxscript) or the faster, "
                             "deprecated torchscript one")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the fresh weights and of the verification input (default 0)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the comparison with torch through ONNX Runtime")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import SgnasError, SpaceMismatchError
    from ..export import export_onnx
    from ..network import build_network, count_flops, count_params
    from ..space import get_space
    from .common import load_arch

    if os.path.exists(args.out) and not args.force:
        raise SgnasError(f"{args.out} exists; pass --force to overwrite it")
    if args.batch < 1:
        raise SgnasError(f"--batch must be at least 1, got {args.batch}")
    arch = load_arch(args.arch)
    space = get_space(arch.space)
    activation = "hswish" if args.hswish else "relu6"
    if args.checkpoint:
        from ..evaluation.checkpoint import load_supernet

        supernet, _ = load_supernet(args.checkpoint)
        if supernet.space.fingerprint != space.fingerprint:
            raise SpaceMismatchError(
                f"checkpoint {args.checkpoint} is a supernet of space {supernet.space.name!r}, "
                f"the architecture is for {space.name!r}"
            )
        net = supernet.export_subnet(
            arch, se=args.se, activation=activation,
            generator=torch.Generator().manual_seed(args.seed),
        )
    else:
        gen = torch.Generator().manual_seed(args.seed)
        net = build_network(space, arch, se=args.se, activation=activation, generator=gen)
    result = export_onnx(
        net,
        (args.batch, 3, space.input_size, space.input_size),
        args.out,
        verify=not args.no_verify,
        opset=args.opset,
        dynamo=args.exporter == "dynamo",
        half=args.half,
        generator=torch.Generator().manual_seed(args.seed),
    )
    flops = count_flops(space, arch, se=args.se)
    params = count_params(space, arch, se=args.se)
    check = (
        f"max abs diff vs torch {result.max_abs_diff:.2g}" if result.verified else "not verified"
    )
    print(
        f"wrote {result.path} ({arch}, {flops:.1f} M multiply-adds, {params:.2f} M params, "
        f"{result.exporter} opset {result.opset}, {check})"
    )
    return 0
