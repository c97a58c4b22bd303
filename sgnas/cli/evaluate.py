"""``sgnas evaluate``: inherited top-1 of sub-networks of a trained supernet (BN recalibrated)."""

from __future__ import annotations

import argparse
import json
import sys

from .common import add_data_arguments

NAME = "evaluate"
HELP = "Inherited top-1 of supernet sub-networks after BN recalibration (given or random ones)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--supernet", required=True, metavar="CKPT", help="supernet checkpoint")
    add_data_arguments(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", action="append", metavar="ARCH",
                       help="architecture: JSON file, JSON text or space:357-33-... (repeatable)")
    which.add_argument("--random", type=int, metavar="N", help="N uniformly sampled architectures")
    parser.add_argument("--split", default="test", choices=("test", "held-out"),
                        help="evaluation split (default test)")
    parser.add_argument("--calib-batches", type=int, default=20,
                        help="training batches for BN recalibration (default 20)")
    parser.add_argument("--max-batches", type=int, default=None,
                        help="evaluate on a fixed random subset of this many batches of the split")
    parser.add_argument("--batch-size", type=int, default=128, help="default 128")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of --random sampling and of the calibration images")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import SgnasError
    from ..space import load_architecture
    from ..evaluation.checkpoint import load_supernet
    from ..evaluation.data import build_datasets, calibration_loader, eval_loader, supernet_data_config
    from ..evaluation.distributed import resolve_device
    from ..evaluation.evaluate import sample_eval, summarize

    if args.random is not None and args.random < 1:
        raise SgnasError(f"--random needs at least 1 architecture, got {args.random}")
    if args.calib_batches < 0:
        raise SgnasError(f"--calib-batches must be 0 or more, got {args.calib_batches}")
    device = resolve_device(args.device)
    model, meta = load_supernet(args.supernet, map_location="cpu")
    model.to(device)
    space = model.space
    archs = [load_architecture(a) for a in args.arch] if args.arch else None
    for arch in archs or []:
        space.validate(arch)
    data_cfg = supernet_data_config(meta, args.data, format=args.data_format,
                                    batch_size=args.batch_size, workers=args.workers,
                                    download=args.download)
    datasets = build_datasets(data_cfg, space)
    pin = device.type == "cuda"
    calib = calibration_loader(datasets.train, args.batch_size, args.calib_batches, seed=args.seed,
                               workers=args.workers, pin_memory=pin)
    target = datasets.test if args.split == "test" else datasets.held_out
    if len(target) == 0:
        raise SgnasError(f"the {args.split} split is empty")
    if args.max_batches is not None and args.max_batches * args.batch_size < len(target):
        # Image folders are ordered by class: score a fixed random subset, not the first batches.
        from torch.utils.data import Subset

        pick = np.random.default_rng(args.seed).permutation(len(target))
        target = Subset(target, sorted(pick[: args.max_batches * args.batch_size].tolist()))
    loader = eval_loader(target, args.batch_size, workers=args.workers, pin_memory=pin)
    rng = np.random.default_rng(args.seed)
    results = sample_eval(model, space, args.random or 0, rng, calib, loader,
                          calib_batches=args.calib_batches,
                          seed=args.seed, archs=archs,
                          progress=not args.json and sys.stderr.isatty())
    summary = summarize([t for _, t in results])
    if args.json:
        print(json.dumps({
            "supernet": str(args.supernet),
            "space": space.name,
            "split": args.split,
            "calib_batches": args.calib_batches,
            "images": len(target),
            "results": [{"arch": str(a), "top1": t} for a, t in results],
            "summary": summary,
        }))
        return 0
    for arch, top1 in results:
        print(f"{100 * top1:6.2f}%  {arch}")
    print(f"mean {100 * summary['mean']:.2f}%  std {100 * summary['std']:.2f}%  "
          f"min {100 * summary['min']:.2f}%  max {100 * summary['max']:.2f}%  "
          f"over {summary['n']} architecture(s) on {args.split}")
    return 0
