"""``sgnas train-supernet``: SPOS training of the unified supernet (DDP under ``torchrun``)."""

from __future__ import annotations

import argparse
import sys

from .common import add_data_arguments, add_resume_arguments

NAME = "train-supernet"
HELP = "Train the unified supernet with single-path one-shot sampling (torch DDP under torchrun)."


def number(text: str) -> float:
    """A held-out size: a fraction below 1 or a whole number of images."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or (value >= 1 and value != int(value)):
        raise argparse.ArgumentTypeError(f"want a fraction below 1 or a whole count, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..train.configs import SupernetTrainConfig as D  # option defaults: the config's

    parser.add_argument("--space", default=D.space, help="search space (default %(default)s)")
    add_data_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: supernet.pt, last.pt while running, train_log.jsonl")
    parser.add_argument("--epochs", type=int, default=D.epochs,
                        help="training epochs (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="images per step and process (default 128)")
    parser.add_argument("--max-steps-per-epoch", type=int, default=None, metavar="K",
                        help="cap each epoch at K steps (budgeted runs)")
    parser.add_argument("--paths-per-step", type=int, default=D.paths_per_step,
                        help="sampled paths whose gradients each step accumulates "
                             "(default %(default)s)")
    parser.add_argument("--held-out", type=number, default=0.1, metavar="N",
                        help="training images held out for the generator: fraction < 1 or count "
                             "(default 0.1)")
    parser.add_argument("--balanced-split", action="store_true",
                        help="hold out the same share of every class")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="decode the images once into uint8 tensors cached in DIR and augment "
                             "tensors (CIFAR-style augmentation)")
    parser.add_argument("--gpu-augment", action="store_true",
                        help="with --cache-dir: load uint8 batches and pad, crop, flip and "
                             "normalize them on the training device (relieves the loader)")
    parser.add_argument("--seed", type=int, default=D.seed, help="seed of paths, data order, split")
    parser.add_argument("--lr", type=float, default=None,
                        help="initial learning rate (default 0.1 x batch/128 for small images, "
                             "0.045 x batch/256 for ImageNet-size ones; batch over all processes)")
    parser.add_argument("--weight-decay", type=float, default=None,
                        help="default 5e-4 for small images, 4e-5 for ImageNet-size ones")
    parser.add_argument("--momentum", type=float, default=D.momentum)
    parser.add_argument("--no-nesterov", action="store_true", help="plain momentum")
    parser.add_argument("--label-smoothing", type=float, default=D.label_smoothing)
    parser.add_argument("--grad-clip", type=float, default=D.grad_clip, metavar="NORM",
                        help="clip the global gradient norm of each step to NORM (0: off)")
    parser.add_argument("--warmup-epochs", type=float, default=D.warmup_epochs)
    parser.add_argument("--no-forced-sampling", action="store_true",
                        help="place skips anywhere instead of at the highest sub-block indices")
    parser.add_argument("--image-size", type=int, default=None, help="default: the space's input")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--log-every", type=int, default=D.log_every, help="steps between log lines")
    parser.add_argument("--save-every-steps", type=int, default=None,
                        help="also checkpoint every N steps inside an epoch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_resume_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..evaluation import distributed
    from ..evaluation.data import DataConfig
    from ..train.supernet import SupernetTrainConfig, train_supernet

    cfg = SupernetTrainConfig(
        space=args.space,
        epochs=args.epochs,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        nesterov=not args.no_nesterov,
        label_smoothing=args.label_smoothing,
        grad_clip=args.grad_clip,
        paths_per_step=args.paths_per_step,
        forced_sampling=not args.no_forced_sampling,
        warmup_epochs=args.warmup_epochs,
        seed=args.seed,
        max_steps_per_epoch=args.max_steps_per_epoch,
        amp=args.amp,
        channels_last=args.channels_last,
        device=args.device,
        log_every=args.log_every,
        save_every_steps=args.save_every_steps,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    data_cfg = DataConfig(
        root=args.data,
        format=args.data_format,
        image_size=args.image_size,
        batch_size=args.batch_size,
        workers=args.workers,
        held_out=args.held_out,
        seed=args.seed,
        download=args.download,
        balanced=args.balanced_split,
        cache_dir=args.cache_dir,
        device_augment=args.gpu_augment,
    )
    with distributed.process_group(args.device) as info:
        path = train_supernet(cfg, data_cfg, args.out, resume=args.resume, force=args.force)
        if info.is_main:
            print(path)
    return 0
