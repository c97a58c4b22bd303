"""Benchmark of a trained latency generator against the SPOS evolutionary search, as one JSON line.

Progress goes to stderr; the one JSON line on stdout holds the configuration, every figure, machine
information and the date.

1. **Target tracking**: ``--targets`` (default 20) latency targets evenly spaced strictly inside the
   generator's trained range (5% to 95%), one forward pass each (timed); the achieved latency is the
   LUT's calibrated prediction (``cost.exact``). Kendall tau and Pearson r between target and
   achieved, mean/max |error| in percent, share within +-5%.
2. **Measured** (``--measure``): every generated network timed end to end on this host with the
   LUT's device backend (as ``sgnas generate --measure``): Kendall tau (target, measured), mean/max
   |error| in percent, share within +-5% / +-10% of the target.
3. **Search cost for N = ``--cost-targets`` (10) targets**: the generator's training wall time (from
   its checkpoint) plus N timed forward passes, against N evolutionary searches, extrapolated from
   the ``--evolution-targets`` (3) runs actually made (at 25/50/75% of the range for 3). The supernet,
   trained once for both, is not counted.
4. **Inherited accuracy at the evolution targets**: the generator's architecture and the
   evolution's best, scored by the same evaluator (same calibration and evaluation batches, BN
   recalibration), and their difference.

Usage::

    python scripts/bench_generator.py --supernet runs/supernet/supernet.pt \\
        --generator generators/cifar10-latency-XXXX.pt --lut lut/cpu-cifar10.json \\
        --data ../shared/data/cifar10-jpg --measure
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--supernet", required=True, metavar="CKPT", help="trained supernet checkpoint")
    p.add_argument("--generator", required=True, metavar="CKPT", help="trained latency generator")
    p.add_argument("--lut", required=True, metavar="LUT", help="the LUT the generator was trained on")
    p.add_argument("--data", required=True, metavar="DIR", help="the supernet's image data")
    p.add_argument("--data-format", default="auto", choices=("auto", "imagefolder", "cifar10"))
    p.add_argument("--targets", type=int, default=20, help="targets for tau/error (default 20)")
    p.add_argument("--measure", action=argparse.BooleanOptionalAction, default=False,
                   help="also time every generated network on this host (default off)")
    p.add_argument("--force-host", action="store_true",
                   help="with --measure, measure even if this host's GPU differs from the LUT's")
    p.add_argument("--cost-targets", type=int, default=10,
                   help="N of the search-cost comparison (default 10)")
    p.add_argument("--evolution-targets", type=int, default=3,
                   help="evolutionary searches actually run (default 3)")
    evo = p.add_argument_group("evolution (defaults as in SPOS)")
    evo.add_argument("--population", type=int, default=50)
    evo.add_argument("--generations", type=int, default=20)
    evo.add_argument("--mutants", type=int, default=25)
    evo.add_argument("--crossovers", type=int, default=25)
    evo.add_argument("--top-k", type=int, default=10)
    evo.add_argument("--mutation-prob", type=float, default=0.1)
    p.add_argument("--calib-batches", type=int, default=20,
                   help="training batches of BN recalibration per architecture (default 20)")
    p.add_argument("--eval-batches", type=int, default=None,
                   help="held-out batches scoring each architecture (default: the whole split)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2, help="data loader processes (default 2)")
    p.add_argument("--device", default="auto", help="device of the supernet: auto, cpu, cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in ("targets", "cost_targets", "evolution_targets", "batch_size"):
        if getattr(args, name) < (2 if name == "targets" else 1):
            p.error(f"--{name.replace('_', '-')} is too small: {getattr(args, name)}")
    if args.calib_batches < 0 or (args.eval_batches is not None and args.eval_batches < 1):
        p.error("--calib-batches must be 0 or more and --eval-batches at least 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def tracking_metrics(targets, values, within=(5.0,)) -> dict:
    """Kendall tau, Pearson r and |error| statistics (percent of the target) of ``values``."""
    from sgnas import metrics

    out = {
        "kendall_tau": metrics.kendall_tau(targets, values),
        "pearson": metrics.pearson(targets, values),
        "mean_abs_error_pct": 100.0 * metrics.mape(values, targets),
        "max_abs_error_pct": 100.0 * metrics.max_abs_error(values, targets),
        "bias_pct": 100.0 * metrics.bias(values, targets),
    }
    for w in within:
        out[f"within_{w:g}pct"] = metrics.share_within(values, targets, w)
    return out


def generator_train_time(ckpt: dict) -> tuple[float | None, str | None]:
    """Training wall time (s) of a generator checkpoint and where it was read from."""
    if "wall_time_s" in ckpt:
        return float(ckpt["wall_time_s"]), "checkpoint wall_time_s"
    history = ckpt.get("history") or []
    if history and all("train_s" in h for h in history):
        return (float(sum(h["train_s"] for h in history)),
                "sum of per-epoch train_s (excludes per-epoch evaluation and the prior pool)")
    return None, None


def held_out_evaluator(model, meta: dict, args, device):
    """The :class:`~sgnas.search.InheritedAccuracy` scoring both methods, set up as ``sgnas search``
    does: BN recalibration on a fixed subset of the training split, top-1 on the held-out split."""
    from sgnas.errors import SgnasError
    from sgnas.search import build_evaluator
    from sgnas.train.data import build_datasets, supernet_data_config

    data_cfg = supernet_data_config(meta, args.data, format=args.data_format,
                                    batch_size=args.batch_size, workers=args.workers)
    datasets = build_datasets(data_cfg, model.space)
    if len(datasets.held_out) == 0:
        raise SgnasError("the supernet was trained without a held-out split; nothing to score on")
    evaluator = build_evaluator(
        model, datasets.train, datasets.held_out, batch_size=args.batch_size,
        calib_batches=args.calib_batches, eval_batches=args.eval_batches, seed=args.seed,
        workers=args.workers, pin_memory=device.type == "cuda",
    )
    scored = len(evaluator.eval_loader.dataset)
    return evaluator, {"held_out_images": scored, "train_images": len(datasets.train)}


def machine_info(device) -> dict:
    """CPU model, torch version, intra-op threads and the GPU name when ``device`` is CUDA."""
    import platform

    import torch

    from profiler.environment import cpu_model

    return {
        "cpu_model": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from sgnas.cli.generate import measure_archs
    from sgnas.costs import make_cost
    from sgnas.generator import load_generator, read_checkpoint
    from sgnas.lut import load_lut
    from sgnas.search import EvolutionConfig, evolution_search
    from sgnas.train.checkpoint import load_supernet
    from sgnas.train.distributed import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    evo_cfg = EvolutionConfig(
        population=args.population, top_k=args.top_k, generations=args.generations,
        mutants=args.mutants, crossovers=args.crossovers, mutation_prob=args.mutation_prob,
    ).validate()
    model, meta = load_supernet(args.supernet, map_location="cpu")
    space = model.space
    lut = load_lut(args.lut, space)
    cost = make_cost("latency", space, lut=lut)
    bundle = load_generator(args.generator, cost)
    ckpt = read_checkpoint(args.generator)
    lo, hi = bundle.allowed_range(cost)

    # (a) target tracking in LUT terms
    fractions = 0.05 + 0.9 * np.arange(args.targets) / (args.targets - 1)
    targets = [float(lo + f * (hi - lo)) for f in fractions]
    archs, forward_s = [], []
    for t in targets:
        start = time.perf_counter()
        archs.append(bundle.generate([t], cost)[0])
        forward_s.append(time.perf_counter() - start)
    achieved = [float(cost.exact(a)) for a in archs]
    tracking = {
        "targets_ms": targets,
        "achieved_ms": achieved,
        "archs": [str(a) for a in archs],
        "forward_ms": [1000.0 * s for s in forward_s],
        "forward_ms_median": 1000.0 * float(np.median(forward_s)),
        **tracking_metrics(targets, achieved, within=(5.0,)),
    }
    log(f"tracking: kendall {tracking['kendall_tau']:.3f}, "
        f"mean |error| {tracking['mean_abs_error_pct']:.2f}%")

    # (b) measured end to end on the LUT's device
    measured = None
    if args.measure:
        log(f"measuring {len(archs)} networks on {lut.device_name}")
        measured_ms = measure_archs(space, lut, archs, force=args.force_host)
        measured = {
            "device": lut.device_name,
            "measured_ms": measured_ms,
            **tracking_metrics(targets, measured_ms, within=(5.0, 10.0)),
            "kendall_tau_achieved_measured": tracking_metrics(achieved, measured_ms)["kendall_tau"],
        }

    # (c) search cost: generator (train once + N forward passes) against N evolutionary searches
    train_s, train_source = generator_train_time(ckpt)
    n = args.cost_targets
    cost_targets = [float(lo + f * (hi - lo)) for f in (np.arange(n) + 0.5) / n]
    start = time.perf_counter()
    for t in cost_targets:
        bundle.generate([t], cost)
    forward_n_s = time.perf_counter() - start

    device = resolve_device(args.device)
    model.to(device)
    evaluator, data_info = held_out_evaluator(model, meta, args, device)
    k = args.evolution_targets
    evo_targets = [float(lo + (i + 1) / (k + 1) * (hi - lo)) for i in range(k)]
    runs = []
    for i, target in enumerate(evo_targets):
        evaluator.clear()  # no scores carried over from an earlier run
        before = evaluator.stats()
        log(f"evolution {i + 1}/{k}: target {target:.4g} ms")
        start = time.perf_counter()
        result = evolution_search(space, cost, evaluator, target, evo_cfg,
                                  np.random.default_rng([args.seed, i]))
        wall = time.perf_counter() - start
        after = evaluator.stats()
        gen_arch = bundle.generate([target], cost)[0]
        gen_acc = evaluator(gen_arch)  # the same evaluator: identical calibration and batches
        gen_cost = float(cost.exact(gen_arch))
        runs.append({
            "target_ms": target,
            "wall_s": wall,
            "evaluations": after["evaluations"] - before["evaluations"],
            "eval_time_s": after["eval_time_s"] - before["eval_time_s"],
            "evolution_arch": str(result.best),
            "evolution_ms": float(result.best_cost),
            "evolution_accuracy": float(result.best_accuracy),
            "generator_arch": str(gen_arch),
            "generator_ms": gen_cost,
            "generator_meets_constraint": gen_cost <= target,
            "generator_accuracy": float(gen_acc),
            "accuracy_difference": float(gen_acc) - float(result.best_accuracy),
        })
        log(f"  {wall:.1f} s; top-1 evolution {100 * result.best_accuracy:.2f}%, "
            f"generator {100 * gen_acc:.2f}%")
    evo_mean = float(np.mean([r["wall_s"] for r in runs]))
    gen_total = (train_s if train_s is not None else float("nan")) + forward_n_s
    search_cost = {
        "n_targets": n,
        "generator_train_s": train_s,
        "generator_train_s_source": train_source,
        f"generator_forward_{n}_s": forward_n_s,
        f"generator_cost_{n}_s": gen_total,
        "evolution_runs": len(runs),
        "evolution_run_s": [r["wall_s"] for r in runs],
        "evolution_mean_run_s": evo_mean,
        f"evolution_cost_{n}_s_extrapolated": n * evo_mean,
        "ratio_generator_to_evolution": gen_total / (n * evo_mean),
        "note": f"evolution cost = {n} x mean of {len(runs)} measured runs; the supernet's "
                "training, shared by both, is not counted",
    }
    accuracy = {
        "targets_ms": evo_targets,
        "runs": runs,
        "mean_accuracy_difference": float(np.mean([r["accuracy_difference"] for r in runs])),
        "evaluator": {"calib_batches": args.calib_batches, "eval_batches": args.eval_batches,
                      "batch_size": args.batch_size, "bn_recalibration": args.calib_batches > 0,
                      "split": "held-out", **data_info, **evaluator.stats()},
    }
    return {
        "bench": "generator",
        "config": dict(vars(args)),
        "evolution_config": evo_cfg.to_dict(),
        "space": space.name,
        "lut": {"path": str(args.lut), "device": lut.device_name, "fingerprint": lut.fingerprint,
                "calibrated": lut.calibration is not None},
        "generator": {"path": str(args.generator), "range_ms": [lo, hi],
                      "target_range": list(bundle.target_range),
                      "epochs": int(ckpt.get("epoch", -1)) + 1},
        "tracking": tracking,
        "measured": measured,
        "search_cost": search_cost,
        "accuracy": accuracy,
        "machine": machine_info(device),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: list[str] | None = None) -> int:
    from sgnas.errors import SgnasError
    from sgnas.fileio import json_safe

    args = parse_args(argv)
    try:
        record = run(args)
    except SgnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(json_safe(record)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
