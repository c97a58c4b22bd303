"""``sgnas train-generator``: train the architecture generator against a trained supernet, or
with ``--signal NAME`` on another accuracy signal (``sgnas score --list``; see
:mod:`sgnas.train.reward`)."""

from __future__ import annotations

import argparse

from .common import add_data_arguments

NAME = "train-generator"
HELP = "train the architecture generator for a cost (FLOPs, params or a device LUT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..train.configs import RELAXATIONS
    from ..train.configs import GeneratorTrainConfig as D  # option defaults: the config's

    parser.add_argument("--supernet", required=True, metavar="CKPT", help="trained supernet checkpoint")
    cost = parser.add_mutually_exclusive_group(required=True)
    cost.add_argument("--lut", metavar="LUT", help="latency LUT of the target device (latency cost)")
    cost.add_argument("--cost", metavar="NAME",
                      help="a registered cost instead of latency (sgnas.costs.COSTS, e.g. flops, params)")
    add_data_arguments(parser, data_help="image data (ImageFolder root or CIFAR-10 folder); the "
                                         "held-out part of its training split trains the generator")
    parser.add_argument("--held-out", type=float, default=None, metavar="F",
                        help="held-out part of the training split, fraction < 1 or image count "
                             "(default: the supernet's, so the generator sees unseen images)")
    parser.add_argument("--data-seed", type=int, default=None,
                        help="seed of the train/held-out split (default: the supernet's)")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="decoded-image cache of the data (as train-supernet's --cache-dir)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--val-images", type=int, default=512, metavar="N",
                        help="held-out images kept out of training for the best-checkpoint "
                             "criterion (default 512)")
    parser.add_argument("--epochs", type=int, default=D.epochs, help="default %(default)s")
    parser.add_argument("--batches-per-epoch", type=int, default=None, metavar="K",
                        help="at most K batches per epoch (default: the whole held-out split)")
    parser.add_argument("--lr", type=float, default=D.lr, help="Adam learning rate (default %(default)s)")
    parser.add_argument("--lambda", dest="cost_weight", type=float, default=D.cost_weight,
                        help="weight of the relative cost loss (default %(default)s)")
    parser.add_argument("--overshoot-weight", type=float, default=D.overshoot_weight,
                        help="weight of cost above the target relative to below (default %(default)s)")
    parser.add_argument("--tau0", type=float, default=D.tau0,
                        help="initial Gumbel-softmax temperature (default %(default)s)")
    parser.add_argument("--tau-decay", type=float, default=D.tau_decay,
                        help="temperature factor per epoch (default %(default)s)")
    parser.add_argument("--cost-samples", type=int, default=D.cost_samples,
                        help="targets per step in the cost loss (the first also drives the supernet)")
    parser.add_argument("--relaxation", choices=RELAXATIONS, default=D.relaxation,
                        help="path: gate the sampled sub-network (default, cheap); weighted: the "
                             "supernet's weighted forward, every candidate gets a gradient")
    parser.add_argument("--signal", default="supernet", metavar="NAME",
                        help="accuracy signal the generator learns from: supernet (default: the "
                             "supernet's CE), flops, params (exact expectation), a zero-cost proxy "
                             "(synflow, naswot, jacob_cov, snip, grad_norm: on a fixed minibatch "
                             "of --data), table:FILE or ensemble:A+B (REINFORCE with a moving "
                             "baseline)")
    parser.add_argument("--signal-samples", type=int, default=D.signal_samples, metavar="N",
                        help="architectures sampled and scored per step (REINFORCE signals; "
                             "default %(default)s)")
    parser.add_argument("--signal-weight", type=float, default=D.signal_weight, metavar="W",
                        help="weight of a non-supernet signal's term (default %(default)s)")
    parser.add_argument("--signal-batch", type=int, default=64, metavar="N",
                        help="images of the proxies' minibatch (class-balanced, drawn from "
                             "--seed; default %(default)s)")
    parser.add_argument("--num-priors", type=int, default=8, help="random priors in the pool")
    parser.add_argument("--interval", type=float, nargs=2, default=None, metavar=("C_L", "C_H"),
                        help="target interval in cost units (default: p1..p99 of the cost of "
                             "forced-sampling architectures)")
    parser.add_argument("--eval-targets", type=int, default=D.eval_targets,
                        help="targets of the per-epoch held-out criterion and tracking sweep")
    parser.add_argument("--eval-batches", type=int, default=D.eval_batches,
                        help="held-out batches per target in the criterion")
    parser.add_argument("--seed", type=int, default=D.seed)
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="run directory: last.pt, best.pt, log.jsonl "
                             "(default runs/generator-<space>-<cost>-<fingerprint>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out (its settings are kept; --epochs sets the "
                             "new total)")
    parser.add_argument("--force", action="store_true",
                        help="start over in --out, replacing the run there")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    import torch
    from torch.utils.data import Subset

    from ..costs import COSTS, make_cost
    from ..errors import SgnasError
    from ..generator import GeneratorConfig, default_generator_name
    from ..lut import load_lut
    from ..evaluation.checkpoint import load_supernet
    from ..evaluation.data import build_datasets, supernet_data_config
    from ..evaluation.distributed import resolve_device
    from ..train.generator import (
        GeneratorLoaders,
        GeneratorTrainConfig,
        supernet_identity,
        train_generator,
    )
    from ..train.reward import EXACT, SUPERNET, check_signal

    if args.cost is not None:
        COSTS.get(args.cost)  # an unknown name fails before anything is loaded
    signal_name = check_signal(args.signal)
    device = resolve_device(args.device)
    supernet, meta = load_supernet(args.supernet, map_location=device)
    space = supernet.space
    lut = load_lut(args.lut, space=space) if args.lut else None
    cost = make_cost("latency" if lut is not None else args.cost, space, lut=lut)

    interval = None
    if args.interval is not None:
        lo, hi = args.interval
        c_lo, c_hi = cost.range()
        if not (c_lo <= lo < hi <= c_hi):
            raise SgnasError(f"--interval {lo:g} {hi:g} must be increasing and inside the cost "
                             f"range {c_lo:.4g} to {c_hi:.4g} {cost.unit}")
        interval = (float(lo), float(hi))

    cfg = GeneratorTrainConfig(
        epochs=args.epochs, lr=args.lr, tau0=args.tau0, tau_decay=args.tau_decay,
        cost_weight=args.cost_weight, overshoot_weight=args.overshoot_weight,
        cost_samples=args.cost_samples, relaxation=args.relaxation,
        signal_samples=args.signal_samples, signal_weight=args.signal_weight,
        batches_per_epoch=args.batches_per_epoch,
        interval=interval, eval_targets=args.eval_targets, eval_batches=args.eval_batches,
        seed=args.seed, device=str(device), progress=not args.no_progress)
    data_cfg = supernet_data_config(meta, args.data, format=args.data_format,
                                    batch_size=args.batch_size, workers=args.workers,
                                    download=args.download, held_out=args.held_out,
                                    seed=args.data_seed, cache_dir=args.cache_dir)
    datasets = build_datasets(data_cfg, space)
    if len(datasets.held_out) < args.batch_size:
        raise SgnasError(
            f"the held-out split has {len(datasets.held_out)} images, fewer than one batch of "
            f"{args.batch_size}; raise --held-out or lower --batch-size"
        )
    n_val = min(args.val_images, len(datasets.held_out) // 4)
    order = np.random.default_rng(args.seed).permutation(len(datasets.held_out))
    train_part = Subset(datasets.held_out, np.sort(order[n_val:]).tolist())
    val_part = Subset(datasets.held_out, order[:n_val].tolist())  # random order, fixed
    pin = device.type == "cuda"
    search = torch.utils.data.DataLoader(
        train_part, batch_size=args.batch_size, shuffle=True, drop_last=True,
        num_workers=args.workers, pin_memory=pin,
        generator=torch.Generator().manual_seed(args.seed))
    val = torch.utils.data.DataLoader(
        val_part, batch_size=args.batch_size, shuffle=False, num_workers=args.workers,
    ) if n_val > 0 else None
    signal: object = signal_name
    if signal_name not in (SUPERNET, *EXACT):
        from ..search.signals import make_signal

        # a supernet member of an ensemble scores with sgnas score's budget (4 + 8 batches)
        signal = make_signal(signal_name, data=args.data, checkpoint=args.supernet, space=space,
                             batch_size=args.signal_batch, seed=args.seed, device=str(device),
                             calib_batches=4, eval_batches=8)
    out = Path(args.out) if args.out else Path("runs") / (
        "generator-" + default_generator_name(space, cost).removesuffix(".pt"))
    result = train_generator(
        supernet, cost, GeneratorLoaders(search=search, val=val), cfg, out,
        gen_cfg=GeneratorConfig(num_priors=args.num_priors),
        supernet_info=supernet_identity(args.supernet, meta), resume=args.resume,
        force=args.force, signal=signal)
    last = result.history[-1] if result.history else {}
    print(f"generator for {cost.name} ({cost.fingerprint}), signal {signal_name}, in {out}: "
          f"last.pt, best.pt; ship best.pt as generators/{default_generator_name(space, cost)}")
    if last:
        print(f"last epoch: argmax error mean {last['mean_pct_error']:.2f}% max "
              f"{last['max_pct_error']:.2f}%, Kendall tau {last['kendall_tau']:.3f}"
              + (f", held-out CE {last['val_ce_mean']:.3f}" if "val_ce_mean" in last else "")
              + (f", decoded mean {signal_name} {last['val_signal_mean']:.4g}"
                 if "val_signal_mean" in last else ""))
    return 0
