"""``sgnas score``: score architectures with an accuracy signal and write ``arch_str,score``.

::

    sgnas score --list
    sgnas score --signal naswot --space nb201 --cells all --data ../shared/data/cifar10-jpg \\
        --out scores.csv
    sgnas score --signal ensemble:flops+naswot+synflow --space nb201 --cells 200 --data DIR --out s.csv
    sgnas score --signal supernet --space nb201 --checkpoint supernets/nb201-spos.pt --data DIR ...
"""

from __future__ import annotations

import argparse
import json

from .common import positive_int

NAME = "score"
HELP = "Score architectures with an accuracy signal (supernet, table, flops, zero-cost proxies, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="list the signals and exit")
    parser.add_argument("--signal", metavar="NAME",
                        help="signal name, e.g. naswot, flops, table:FILE, ensemble:flops+naswot")
    parser.add_argument("--space", default="nb201", help="search space (default nb201)")
    parser.add_argument("--cells", default="all", metavar="all|N",
                        help="all architectures (NB201), or N sampled from --seed (default all)")
    parser.add_argument("--archs", metavar="FILE",
                        help="score the architectures listed in FILE (one string per line) instead")
    parser.add_argument("--data", metavar="DIR", help="image folder: the proxies' minibatch, the "
                        "supernet's evaluation data")
    parser.add_argument("--checkpoint", metavar="FILE", help="trained supernet (signal supernet)")
    parser.add_argument("--column", help="score column of a table: signal's CSV")
    parser.add_argument("--calib-batches", type=int, default=4,
                        help="supernet: BN recalibration batches of 128 (default 4)")
    parser.add_argument("--eval-batches", type=positive_int, default=8, metavar="N",
                        help="supernet: score on a fixed random N batches of 128 held-out images "
                             "(default 8)")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="proxies' minibatch size (default 64)")
    parser.add_argument("--seed", type=int, default=0,
                        help="initialization, minibatch and sampling seed (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="per-architecture score cache (default $SGNAS_SIGNAL_CACHE or "
                             ".sgnas_cache/signals)")
    parser.add_argument("--out", metavar="CSV", help="write arch_str,score here")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")


def run(args: argparse.Namespace) -> int:
    from ..errors import SgnasError
    from ..signals import signal_names

    if args.list:
        from ..signals.ensemble import DEFAULT_MEMBERS

        names = signal_names()
        print(json.dumps({"signals": names, "ensemble_default": list(DEFAULT_MEMBERS)})
              if args.json else "\n".join(names))
        return 0
    if not args.signal:
        raise SgnasError("give --signal NAME (or --list)")
    if not args.out:
        raise SgnasError("give --out FILE (the arch_str,score table to write)")
    from ..search.signals import score_to_csv

    summary = score_to_csv(
        args.signal, args.out, space=args.space, cells=args.cells, archs_file=args.archs,
        data=args.data, checkpoint=args.checkpoint, column=args.column,
        batch_size=args.batch_size, seed=args.seed, device=args.device, threads=args.threads,
        cache_dir=args.cache_dir, force=args.force, calib_batches=args.calib_batches,
        eval_batches=args.eval_batches)
    print(json.dumps(summary) if args.json else
          f"{args.out}: {summary['archs']} architectures of {summary['space']} scored by "
          f"{summary['signal']} in {summary['seconds']} s "
          f"(best {summary['best_arch']}: {summary['best_score']:.6g})")
    return 0
