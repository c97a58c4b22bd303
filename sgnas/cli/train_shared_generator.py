"""``sgnas train-shared-generator``: one device-conditioned generator over many device tables."""

from __future__ import annotations

import argparse

NAME = "train-shared-generator"
HELP = "train one generator over many devices' per-cell latency tables (cell spaces, e.g. nb201)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..train.configs import SharedTrainConfig as D  # option defaults: the config's

    parser.add_argument("--supernet", required=True, metavar="CKPT", help="trained supernet checkpoint")
    parser.add_argument("--lut", action="append", default=[], metavar="LUT",
                        help="per-cell LUT of a training device (repeatable)")
    parser.add_argument("--csv", metavar="FILE",
                        help="also every *_ms column of a per-cell latency CSV (e.g. latency.csv)")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="COLUMN",
                        help="CSV columns left out of training (held-out devices)")
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="image data; the supernet's held-out split feeds the accuracy term")
    parser.add_argument("--cache-dir", default=None, metavar="DIR", help="decoded-image cache")
    parser.add_argument("--images", type=int, default=512, help="held-out images used (default 512)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=D.steps, help="default %(default)s")
    parser.add_argument("--references", type=int, default=D.num_refs,
                        help="reference cells (<= 50, default %(default)s)")
    parser.add_argument("--no-device-input", action="store_true",
                        help="train without the device input (a baseline)")
    parser.add_argument("--seed", type=int, default=D.seed)
    parser.add_argument("--out", required=True, metavar="PATH", help="checkpoint to write")
    parser.add_argument("--force", action="store_true", help="overwrite --out")


def run(args: argparse.Namespace) -> int:
    import sys

    from ..costs import make_cost
    from ..errors import SgnasError
    from ..evaluation.checkpoint import load_supernet
    from ..lut import load_lut
    from ..lut_import import import_cell_lut
    from ..nb201.groundtruth import latency_columns
    from ..train.generator import supernet_identity
    from ..train.shared_generator import (
        SharedTrainConfig,
        held_out_batches,
        train_shared_generator,
    )
    from .common import refuse_overwrite

    refuse_overwrite([args.out], args.force)
    supernet, meta = load_supernet(args.supernet, map_location="cpu")
    space = supernet.space
    if not space.profiling_plan().per_architecture:
        raise SgnasError(f"a shared generator needs a cell space with per-cell tables; the "
                         f"supernet is for {space.name!r}")
    luts = [load_lut(p, space=space) for p in args.lut]
    if args.csv:
        luts += [import_cell_lut(args.csv, col, space.name, col.removesuffix("_ms"))
                 for col in latency_columns(args.csv, args.exclude)]
    if len(luts) < 2:
        raise SgnasError("give at least two training devices (--lut, --csv)")
    costs = [make_cost("latency", space, lut=lut) for lut in luts]
    batches = held_out_batches(meta, args.data, args.batch_size, args.images, args.cache_dir)
    cfg = SharedTrainConfig(steps=args.steps, num_refs=args.references,
                            device_input=not args.no_device_input, seed=args.seed)
    bundle = train_shared_generator(
        supernet, costs, batches, cfg, out=args.out,
        supernet_info=supernet_identity(args.supernet, meta),
        log=lambda line: print(line, file=sys.stderr))
    print(f"shared generator over {len(costs)} devices ({', '.join(d['name'] for d in bundle.devices)})"
          f" with {len(bundle.references)} reference cells: {args.out}")
    return 0
