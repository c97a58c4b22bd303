"""``sgnas train``: train the standalone network of an architecture from scratch with a recipe."""

from __future__ import annotations

import argparse
import sys

from .common import add_data_arguments, add_resume_arguments, positive_int

NAME = "train"
HELP = "train an architecture's standalone network from scratch (recipe: cifar, imagenet or a file)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", required=True, metavar="PATH|STRING",
                        help="architecture: JSON file, JSON text or space:357-33-...")
    add_data_arguments(parser)
    parser.add_argument("--recipe", default="auto", metavar="NAME|PATH",
                        help="cifar, imagenet, or a YAML/JSON recipe file (may name a 'base'); "
                             "default: cifar for spaces of <= 64 px, else imagenet")
    parser.add_argument("--se", action="store_true", help="squeeze-and-excitation in every block")
    parser.add_argument("--hswish", action="store_true", help="h-swish instead of ReLU6")
    parser.add_argument("--epochs", type=positive_int, default=None, help="override the recipe")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="global batch (over all processes); the learning rate scales with it")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate, used as given (no batch scaling)")
    parser.add_argument("--max-steps-per-epoch", type=positive_int, default=None, metavar="K",
                        help="cap each epoch at K steps (budgeted runs)")
    parser.add_argument("--eval-batches", type=positive_int, default=None, metavar="N",
                        help="evaluate on at most N test batches per epoch")
    parser.add_argument("--stop-after", type=positive_int, default=None, metavar="N",
                        help="train at most N epochs in this call (continue later with --resume)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of weights, data order, augmentation")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    parser.add_argument("--out", default="runs/train", metavar="DIR",
                        help="output folder: last.pt, model.pt, train_log.jsonl, run.json "
                             "(default runs/train)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_resume_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import json

    from ..space import get_space
    from .common import load_arch
    from ..evaluation import distributed
    from ..evaluation.data import DataConfig
    from ..train.recipes import load_recipe
    from ..train.scratch import train_from_scratch

    arch = load_arch(args.arch)
    space = get_space(arch.space)
    source = args.recipe
    if source == "auto":
        source = "cifar" if space.input_size <= 64 else "imagenet"
    recipe = load_recipe(source)
    batch = args.batch_size or recipe.batch_size
    recipe = recipe.override(epochs=args.epochs, batch_size=batch)
    if args.lr is not None:
        recipe = recipe.override(lr=args.lr, lr_batch=batch)
    data_cfg = DataConfig(root=args.data, format=args.data_format, workers=args.workers,
                          download=args.download)
    with distributed.process_group(args.device) as info:
        result = train_from_scratch(
            space, arch, recipe, data_cfg, args.out, resume=args.resume, se=args.se,
            activation="hswish" if args.hswish else "relu6", force=args.force, seed=args.seed,
            device=args.device, max_steps_per_epoch=args.max_steps_per_epoch,
            max_eval_batches=args.eval_batches, amp=args.amp, stop_after=args.stop_after,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
        if info.is_main:
            print(json.dumps(result.to_dict()) if args.json else _summary(result))
    return 0


def _summary(result) -> str:
    state = "finished" if result.finished else "stopped"
    lines = [
        f"architecture: {result.arch}",
        f"epochs:       {result.epochs} ({state})",
        f"test top-1:   {100 * result.test_top1:.2f}% (best {100 * result.best_top1:.2f}%)",
    ]
    if result.test_top1_ema is not None:
        lines.append(f"EMA top-1:    {100 * result.test_top1_ema:.2f}%")
    lines += [
        f"params:       {result.params / 1e6:.3f} M, FLOPs {result.flops / 1e6:.1f} M",
        f"output:       {result.out_dir}",
    ]
    return "\n".join(lines)
