"""``sgnas search``: the SPOS baselines (evolutionary or random search) under one constraint."""

from __future__ import annotations

import argparse
import sys

from .common import add_data_arguments, positive_int, positive_number, refuse_overwrite

NAME = "search"
HELP = "search a trained supernet for the best architecture under a constraint (evolution/random)"

#: flag dest -> cost name
TARGETS = {"latency_ms": "latency", "flops_m": "flops", "params_m": "params"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", choices=("evolution", "random"), default="evolution",
                        help="SPOS evolutionary search (default) or random search")
    targets = parser.add_mutually_exclusive_group(required=True)
    targets.add_argument("--latency-ms", type=positive_number, metavar="MS",
                         help="latency constraint in milliseconds (needs --lut)")
    targets.add_argument("--flops-m", type=positive_number, metavar="M",
                         help="FLOPs constraint in millions of multiply-adds")
    targets.add_argument("--params-m", type=positive_number, metavar="M",
                         help="parameter constraint in millions")
    parser.add_argument("--lut", metavar="LUT", help="latency LUT of the target device")
    parser.add_argument("--supernet", required=True, metavar="CKPT",
                        help="trained supernet checkpoint")
    add_data_arguments(parser)
    parser.add_argument("--split", choices=("held-out", "test"), default="held-out",
                        help="split that scores candidates (default: the supernet's held-out part)")
    parser.add_argument("--calib-batches", type=int, default=20,
                        help="training batches for each candidate's BN recalibration (default 20)")
    parser.add_argument("--eval-batches", type=positive_int, default=None, metavar="N",
                        help="score each candidate on at most N batches (default: the whole split)")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="default 128")
    evo = parser.add_argument_group("evolution (--strategy evolution)")
    evo.add_argument("--population", type=positive_int, default=50, help="default 50")
    evo.add_argument("--generations", type=positive_int, default=20, help="default 20")
    evo.add_argument("--top-k", type=positive_int, default=10, help="parents kept (default 10)")
    evo.add_argument("--mutants", type=int, default=25, help="mutants per generation (default 25)")
    evo.add_argument("--crossovers", type=int, default=25,
                     help="crossovers per generation (default 25)")
    evo.add_argument("--mutation-prob", type=float, default=0.1,
                     help="per-layer mutation probability (default 0.1)")
    rnd = parser.add_argument_group("random search (--strategy random)")
    rnd.add_argument("--candidates", type=positive_int, default=1000,
                     help="architectures evaluated (default 1000)")
    parser.add_argument("--max-tries", type=positive_int, default=10_000,
                        help="uniform samples per wanted candidate before giving up "
                             "(default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search and calibration")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--out", metavar="PATH", help="write the result (JSON) to PATH")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _target(args: argparse.Namespace) -> tuple[str, float]:
    for dest, cost_name in TARGETS.items():
        value = getattr(args, dest, None)
        if value is not None:
            return cost_name, float(value)
    raise AssertionError("argparse requires one target flag")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ..costs import make_cost
    from ..errors import SgnasError
    from ..search import EvolutionConfig, check_target, evolution_search
    from ..search.evaluator import evaluator_from_data
    from ..search import random_search
    from ..evaluation.checkpoint import load_supernet
    from ..evaluation.distributed import resolve_device
    from ..progress import Progress

    cost_name, target = _target(args)
    if cost_name == "latency" and not args.lut:
        raise SgnasError("--latency-ms needs the device's LUT: --lut lut/<device>.json")
    if args.calib_batches < 0:
        raise SgnasError(f"--calib-batches must be 0 or more, got {args.calib_batches}")
    evo_cfg = EvolutionConfig(
        population=args.population, top_k=args.top_k, generations=args.generations,
        mutants=args.mutants, crossovers=args.crossovers, mutation_prob=args.mutation_prob,
        max_sample_tries=args.max_tries,
    ).validate()
    out = Path(args.out) if args.out else None
    refuse_overwrite([out] if out is not None else [], args.force)

    model, meta = load_supernet(args.supernet, map_location="cpu")
    space = model.space
    lut = None
    if args.lut:
        from ..lut import load_lut

        lut = load_lut(args.lut, space)
    from ..margin import cell_margin, guard_cost  # predicted LUT: search on per-cell upper bounds
    cost = guard_cost(make_cost(cost_name, space, lut=lut))
    check_target(cost, target)

    device = resolve_device(args.device)
    model.to(device)
    evaluator, _ = evaluator_from_data(
        model, meta, args.data, split=args.split, data_format=args.data_format,
        batch_size=args.batch_size, calib_batches=args.calib_batches,
        eval_batches=args.eval_batches, seed=args.seed, workers=args.workers,
        download=args.download, device=device)

    total = (args.candidates if args.strategy == "random"
             else evo_cfg.population * evo_cfg.generations)
    bar = Progress(total, args.strategy, enabled=not args.no_progress and sys.stderr.isatty())
    best = [float("-inf")]

    def evaluate(arch):
        acc = evaluator(arch)
        best[0] = max(best[0], acc)
        bar.update(1, best=f"{100 * best[0]:.2f}%")
        return acc

    rng = np.random.default_rng(args.seed)
    try:
        if args.strategy == "random":
            result = random_search(space, cost, evaluate, target, n=args.candidates, rng=rng,
                                   max_tries=args.max_tries)
        else:
            result = evolution_search(space, cost, evaluate, target, evo_cfg, rng)
    finally:
        bar.close()
    result.meta.update({
        "supernet": str(args.supernet),
        "split": args.split,
        "calib_batches": args.calib_batches,
        "eval_batches": args.eval_batches,
        "seed": args.seed,
        "cost": cost.describe(),
        "evaluator": evaluator.stats(),
    })
    if (margin := cell_margin(cost, result.best, target)) is not None:
        result.meta["margin"] = margin.to_dict()
        print(margin.describe(), file=sys.stderr)
    if out is not None:
        result.save(out)
    if args.json:
        print(result.to_json(indent=None))
    else:
        print(result.summary())
        if out is not None:
            print(f"result:       {out}")
    return 0
