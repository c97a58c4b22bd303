"""``sgnas train-generator``: train the architecture generator against a trained supernet."""

from __future__ import annotations

import argparse

from .common import add_data_arguments

NAME = "train-generator"
HELP = "train the architecture generator for a cost (FLOPs, params or a device LUT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--supernet", required=True, metavar="CKPT", help="trained supernet checkpoint")
    cost = parser.add_mutually_exclusive_group(required=True)
    cost.add_argument("--lut", metavar="LUT", help="latency LUT of the target device (latency cost)")
    cost.add_argument("--cost", choices=("flops", "params"), help="analytic cost instead of latency")
    add_data_arguments(parser, data_help="image data (ImageFolder root or CIFAR-10 folder); the "
                                         "held-out part of its training split trains the generator")
    parser.add_argument("--held-out", type=float, default=None, metavar="F",
                        help="held-out part of the training split, fraction < 1 or image count "
                             "(default: the supernet's, so the generator sees unseen images)")
    parser.add_argument("--data-seed", type=int, default=None,
                        help="seed of the train/held-out split (default: the supernet's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batches-per-epoch", type=int, default=None, metavar="K",
                        help="at most K batches per epoch (default: the whole held-out split)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--lambda", dest="cost_weight", type=float, default=10.0,
                        help="weight of the cost loss on normalized cost (default 10)")
    parser.add_argument("--tau0", type=float, default=5.0, help="initial Gumbel-softmax temperature")
    parser.add_argument("--tau-decay", type=float, default=0.95, help="temperature factor per epoch")
    parser.add_argument("--dead-band", type=float, default=0.005,
                        help="cost error ignored, as a fraction of the cost range")
    parser.add_argument("--cost-samples", type=int, default=4,
                        help="targets per step in the cost loss (the first also drives the supernet)")
    parser.add_argument("--num-priors", type=int, default=8, help="random priors in the pool")
    parser.add_argument("--target-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="constraint interval in cost units (default: the whole cost range)")
    parser.add_argument("--eval-targets", type=int, default=10,
                        help="targets swept after each epoch for Kendall tau / Pearson / error")
    parser.add_argument("--eval-accuracy-batches", type=int, default=0, metavar="N",
                        help="score the middle target's architecture on N held-out batches per epoch")
    parser.add_argument("--bn-calibration-batches", type=int, default=0, metavar="N",
                        help="recalibrate BN on N training batches before that score")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, metavar="PATH",
                        help="checkpoint path (default generators/<space>-<cost>-<fingerprint>.pt)")
    parser.add_argument("--log", default=None, metavar="PATH", help="JSON-lines log (default: OUT.jsonl)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the checkpoint at --out (its settings are kept; --epochs "
                             "sets the new total)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from ..costs import make_cost
    from ..errors import SgnasError
    from ..generator import GeneratorConfig, default_generator_name
    from ..lut import load_lut
    from ..train.checkpoint import load_supernet
    from ..train.data import build_datasets, calibration_loader, eval_loader, supernet_data_config
    from ..train.distributed import resolve_device
    from ..train.generator import (
        GeneratorLoaders,
        GeneratorTrainConfig,
        supernet_identity,
        train_generator,
    )

    device = resolve_device(args.device)
    supernet, meta = load_supernet(args.supernet, map_location=device)
    space = supernet.space
    lut = load_lut(args.lut, space=space) if args.lut else None
    cost = make_cost("latency" if lut is not None else args.cost, space, lut=lut)

    target_range = (0.0, 1.0)
    if args.target_range is not None:
        lo, hi = args.target_range
        c_lo, c_hi = cost.range()
        if not (c_lo <= lo < hi <= c_hi):
            raise SgnasError(
                f"--target-range {lo:g} {hi:g} must be increasing and inside the cost range "
                f"{c_lo:.4g} to {c_hi:.4g} {cost.unit}"
            )
        target_range = (float(cost.normalize(lo)), float(cost.normalize(hi)))

    cfg = GeneratorTrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        tau0=args.tau0,
        tau_decay=args.tau_decay,
        cost_weight=args.cost_weight,
        dead_band=args.dead_band,
        cost_samples=args.cost_samples,
        batches_per_epoch=args.batches_per_epoch,
        target_range=target_range,
        eval_targets=args.eval_targets,
        eval_accuracy_batches=args.eval_accuracy_batches,
        bn_calibration_batches=args.bn_calibration_batches,
        seed=args.seed,
        device=str(device),
        progress=not args.no_progress,
    )
    data_cfg = supernet_data_config(meta, args.data, format=args.data_format,
                                    batch_size=args.batch_size, workers=args.workers,
                                    download=args.download, held_out=args.held_out,
                                    seed=args.data_seed)
    datasets = build_datasets(data_cfg, space)
    if len(datasets.held_out) < args.batch_size:
        raise SgnasError(
            f"the held-out split has {len(datasets.held_out)} images, fewer than one batch of "
            f"{args.batch_size}; raise --held-out or lower --batch-size"
        )
    pin = device.type == "cuda"
    search = torch.utils.data.DataLoader(
        datasets.held_out, batch_size=args.batch_size, shuffle=True, drop_last=True,
        num_workers=args.workers, pin_memory=pin,
        generator=torch.Generator().manual_seed(args.seed),
    )
    loaders = GeneratorLoaders(
        search=search,
        eval=eval_loader(datasets.held_out, data_cfg.eval_batch, workers=args.workers, pin_memory=pin),
        calib=calibration_loader(datasets.train, args.batch_size, max(1, args.bn_calibration_batches),
                                 seed=args.seed, workers=args.workers, pin_memory=pin)
        if args.bn_calibration_batches > 0 else None,
    )
    out = Path(args.out) if args.out else Path("generators") / default_generator_name(space, cost)
    result = train_generator(
        supernet,
        cost,
        loaders,
        cfg,
        out,
        gen_cfg=GeneratorConfig(num_priors=args.num_priors),
        supernet_info=supernet_identity(args.supernet, meta),
        resume=args.resume,
        log_path=args.log,
    )
    last = result.history[-1] if result.history else {}
    print(f"generator for {cost.name} ({cost.fingerprint}) written to {out}")
    if last:
        print(
            f"last epoch: Kendall tau {last['kendall_tau']:.3f}, Pearson {last['pearson']:.3f}, "
            f"error mean {last['mean_pct_error']:.2f}% max {last['max_pct_error']:.2f}%"
        )
    return 0
