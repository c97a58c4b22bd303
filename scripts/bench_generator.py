"""Generator vs evolution vs random search at the same targets, as one JSON line.

Progress goes to stderr; the one JSON line on stdout holds the configuration, every figure, machine
information and the date.

* **Splits.** Evolution and random search select on a fixed subset of the supernet's held-out split
  (``--select-images``). Every final architecture (generator, evolution, random) is then re-scored
  on the test split, which none of them selected on (``--final-images``), after BN recalibration on
  ``--calib-images`` (>= 2,000 by default) training images. Top-1 carries a bootstrap 95% interval
  over the final images, and each method's difference to evolution a paired bootstrap interval.
* **Generator.** Exact decoding: the most probable architecture with cost in [T (1 - eps), T].
* **Search cost.** Evolution's wall time per target (``--population``/``--generations``: SPOS uses
  50 and 20) and the generator's: training wall time (checkpoint) + decoding time per target; the
  10-target cost is built from the measured per-target times.
* **Tracking.** ``--tracking-targets`` (8) targets spanning [C_L, C_H]: LUT-terms error of the
  decoded architectures, Kendall tau (target, cost); ``--measure`` also times each network on this
  host with the LUT's backend (measured error; meaningful only on an idle host).
* **Accuracy signal.** ``--signal-archs`` (30) random architectures: the generator's training signal
  (CE with batch-statistics BN on held-out batches) against recalibrated top-1 on the test images;
  Kendall tau of (-CE, top-1).

Usage::

    python scripts/bench_generator.py --supernet supernets/cifar10-spos.pt \\
        --generator generators/cifar10-latency-XXXX.pt --lut lut/cpu-cifar10.json \\
        --data ../shared/data/cifar10-jpg
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--supernet", required=True, metavar="CKPT")
    p.add_argument("--generator", required=True, metavar="CKPT", help="trained generator")
    p.add_argument("--lut", default=None, metavar="LUT", help="LUT of a latency generator")
    p.add_argument("--data", required=True, metavar="DIR", help="the supernet's image data")
    p.add_argument("--data-format", default="auto", choices=("auto", "imagefolder", "cifar10"))
    p.add_argument("--targets", type=int, default=1,
                   help="accuracy-comparison targets (default 1; 0 skips the comparison)")
    p.add_argument("--eps", type=float, default=0.01, help="decoding window (default 0.01)")
    p.add_argument("--random-samples", type=int, default=4, help="random search candidates")
    evo = p.add_argument_group("evolution (SPOS: population 50, generations 20)")
    evo.add_argument("--population", type=int, default=4)
    evo.add_argument("--generations", type=int, default=2)
    evo.add_argument("--mutants", type=int, default=None, help="default population / 2")
    evo.add_argument("--crossovers", type=int, default=None, help="default population / 2")
    evo.add_argument("--top-k", type=int, default=None, help="default population / 5 (>= 2)")
    evo.add_argument("--mutation-prob", type=float, default=0.1)
    p.add_argument("--select-images", type=int, default=200, help="held-out images of selection")
    p.add_argument("--select-calib-images", type=int, default=200,
                   help="training images of BN recalibration during selection")
    p.add_argument("--final-images", type=int, default=1000, help="test images of final scoring")
    p.add_argument("--calib-images", type=int, default=2000,
                   help="training images of BN recalibration for final scoring (default 2000)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--tracking-targets", type=int, default=8)
    p.add_argument("--measure", action="store_true", help="time the tracking networks here")
    p.add_argument("--force-host", action="store_true")
    p.add_argument("--signal-archs", type=int, default=30, help="0 skips the signal check")
    p.add_argument("--signal-calib-images", type=int, default=200)
    p.add_argument("--signal-images", type=int, default=200,
                   help="test images of the signal check's top-1")
    p.add_argument("--signal-batches", type=int, default=2, help="held-out batches of the CE")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.targets < 0 or args.tracking_targets < 2 or args.bootstrap < 100:
        p.error("--targets >= 0, --tracking-targets >= 2 and --bootstrap >= 100 are needed")
    pop = args.population
    args.mutants = args.mutants if args.mutants is not None else max(1, pop // 2)
    args.crossovers = args.crossovers if args.crossovers is not None else max(1, pop // 2)
    args.top_k = args.top_k if args.top_k is not None else max(2, pop // 5)
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bootstrap(correct, rng, n: int) -> dict:
    """Top-1 with a bootstrap 95% interval over images."""
    import numpy as np

    c = np.asarray(correct, dtype=np.float64)
    idx = rng.integers(0, len(c), size=(n, len(c)))
    means = c[idx].mean(axis=1)
    return {"top1": float(c.mean()), "ci95": [float(np.percentile(means, 2.5)),
                                             float(np.percentile(means, 97.5))]}


def paired_difference(a, b, rng, n: int) -> dict:
    """Mean of ``a - b`` (per-image correctness) with a paired bootstrap 95% interval."""
    import numpy as np

    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    idx = rng.integers(0, len(d), size=(n, len(d)))
    means = d[idx].mean(axis=1)
    return {"difference": float(d.mean()), "ci95": [float(np.percentile(means, 2.5)),
                                                   float(np.percentile(means, 97.5))]}


def subset(dataset, count: int, seed: int):
    import numpy as np
    from torch.utils.data import Subset

    pick = np.random.default_rng(seed).permutation(len(dataset))[: min(count, len(dataset))]
    return Subset(dataset, pick.tolist())  # random order: class-ordered splits get mixed


def loader(dataset, batch_size: int, workers: int):
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)


def machine_info(device) -> dict:
    import platform

    import torch

    from profiler.environment import cpu_model

    return {"cpu_model": cpu_model(), "threads": torch.get_num_threads(),
            "torch": str(torch.__version__), "python": platform.python_version(),
            "device": str(device)}


def run(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from sgnas.costs import make_cost
    from sgnas.errors import SgnasError
    from sgnas.generator import load_generator, read_checkpoint
    from sgnas.search import EvolutionConfig, evolution_search, random_search
    from sgnas.search.evaluator import InheritedAccuracy, per_image_correct
    from sgnas.evaluation.checkpoint import load_supernet
    from sgnas.evaluation.data import build_datasets, supernet_data_config
    from sgnas.evaluation.distributed import resolve_device
    from sgnas.metrics import kendall_tau

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    evo_cfg = EvolutionConfig(population=args.population, top_k=args.top_k,
                              generations=args.generations, mutants=args.mutants,
                              crossovers=args.crossovers,
                              mutation_prob=args.mutation_prob).validate()
    device = resolve_device(args.device)
    model, meta = load_supernet(args.supernet, map_location=device)
    space = model.space
    ckpt = read_checkpoint(args.generator)
    lut = None
    if ckpt["cost"]["name"] == "latency":
        if not args.lut:
            raise SgnasError("a latency generator needs --lut")
        from sgnas.lut import load_lut

        lut = load_lut(args.lut, space)
    cost = make_cost(ckpt["cost"]["name"], space, lut=lut)
    bundle = load_generator(args.generator, cost)
    lo, hi = bundle.interval_for(cost)  # the interval on this LUT's numbers
    unit = cost.unit

    data_cfg = supernet_data_config(meta, args.data, format=args.data_format,
                                    batch_size=args.batch_size, workers=args.workers)
    ds = build_datasets(data_cfg, space)
    if len(ds.held_out) == 0 or len(ds.test) == 0:
        raise SgnasError("the benchmark needs the supernet's held-out split and a test split")
    bs = args.batch_size
    select_calib = loader(subset(ds.train, args.select_calib_images, args.seed), bs, args.workers)
    select_eval = loader(subset(ds.held_out, args.select_images, args.seed), bs, args.workers)
    final_calib = loader(subset(ds.train, args.calib_images, args.seed + 1), bs, args.workers)
    final_eval = loader(subset(ds.test, args.final_images, args.seed + 1), bs, args.workers)
    selector = InheritedAccuracy(model, select_calib, select_eval,
                                 calib_batches=-(-args.select_calib_images // bs), seed=args.seed)
    calib_batches = -(-args.calib_images // bs)

    def final(arch):
        return per_image_correct(model, arch, final_calib, final_eval, calib_batches, args.seed)

    # --- tracking over [C_L, C_H] (LUT terms; measured with --measure)
    t_targets = [float(lo + f * (hi - lo)) for f in np.linspace(0.0, 1.0, args.tracking_targets)]
    t_archs, decode_s = [], []
    for t in t_targets:
        start = time.perf_counter()
        t_archs.append(bundle.decode(t, cost, args.eps)[0])
        decode_s.append(time.perf_counter() - start)
    achieved = [cost.exact(a) for a in t_archs]
    err = [(a - t) / t * 100.0 for a, t in zip(achieved, t_targets)]
    tracking = {"targets": t_targets, "achieved": achieved, "archs": [str(a) for a in t_archs],
                "error_pct": err, "within_eps": float(np.mean(
                    [t * (1 - args.eps) - 1e-9 <= a <= t + 1e-9
                     for a, t in zip(achieved, t_targets)])),
                "kendall_tau": kendall_tau(t_targets, achieved),
                "decode_s_median": float(np.median(decode_s))}
    if args.measure:
        from sgnas.search.generation import measure_archs

        ms = measure_archs(space, lut, t_archs, force=args.force_host)
        m_err = [(m - t) / t * 100.0 for m, t in zip(ms, t_targets)]
        tracking["measured"] = {"ms": ms, "error_pct": m_err, "kendall_tau": kendall_tau(t_targets, ms),
                                "within_5pct": float(np.mean(np.abs(m_err) <= 5.0))}
    log(f"tracking: within eps {tracking['within_eps']:.2f}, tau {tracking['kendall_tau']:.3f}")

    # --- generator vs evolution vs random at the same targets
    targets = [float(lo + (i + 1) / (args.targets + 1) * (hi - lo)) for i in range(args.targets)]
    runs = []
    for i, target in enumerate(targets):
        row: dict = {"target": target}
        start = time.perf_counter()
        g_arch, dec = bundle.decode(target, cost, args.eps)
        row["generator"] = {"arch": str(g_arch), "cost": cost.exact(g_arch),
                            "search_s": time.perf_counter() - start,
                            "logprob_given_up": dec.logprob_given_up}
        selector.clear()
        start = time.perf_counter()
        evo = evolution_search(space, cost, selector, target, evo_cfg,
                               np.random.default_rng([args.seed, i]))
        row["evolution"] = {"arch": str(evo.best), "cost": float(evo.best_cost),
                            "selection_top1": float(evo.best_accuracy),
                            "search_s": time.perf_counter() - start}
        selector.clear()
        start = time.perf_counter()
        rnd = random_search(space, cost, selector, target, n=args.random_samples,
                            rng=np.random.default_rng([args.seed, 100 + i]))
        row["random"] = {"arch": str(rnd.best), "cost": float(rnd.best_cost),
                         "selection_top1": float(rnd.best_accuracy),
                         "search_s": time.perf_counter() - start}
        correct = {"generator": final(g_arch), "evolution": final(evo.best),
                   "random": final(rnd.best)}
        for name, c in correct.items():
            row[name].update(bootstrap(c, rng, args.bootstrap))
        for name in ("generator", "random"):
            row[name]["minus_evolution"] = paired_difference(correct[name], correct["evolution"],
                                                             rng, args.bootstrap)
        g, e = row["generator"], row["evolution"]
        row["generator_within_evolution_ci"] = e["ci95"][0] <= g["top1"] <= e["ci95"][1]
        runs.append(row)
        log(f"target {target:.4g} {unit}: final top-1 generator {100 * g['top1']:.2f}%, evolution "
            f"{100 * e['top1']:.2f}%, random {100 * row['random']['top1']:.2f}%")

    train_s = float(ckpt.get("wall_time_s", float("nan")))
    search_cost = None
    if runs:
        evo_s = float(np.mean([r["evolution"]["search_s"] for r in runs]))
        gen_s = float(np.mean([r["generator"]["search_s"] for r in runs]))
        search_cost = {
            "evolution_config": evo_cfg.to_dict(),
            "spos_settings": args.population == 50 and args.generations == 20,
            "evolution_s_per_target": evo_s, "generator_train_s": train_s,
            "generator_s_per_target": gen_s,
            "evolution_10_targets_s": 10 * evo_s, "generator_10_targets_s": train_s + 10 * gen_s,
            "ratio_10_targets": (train_s + 10 * gen_s) / (10 * evo_s),
            "note": "10-target costs from the measured per-target times; the shared supernet is not "
                    "counted",
        }

    signal = None
    if args.signal_archs > 0:
        import torch.nn.functional as F

        s_calib = loader(subset(ds.train, args.signal_calib_images, args.seed + 2), bs, args.workers)
        s_eval = loader(subset(ds.test, args.signal_images, args.seed + 2), bs, args.workers)
        s_val = list(zip(range(args.signal_batches),
                         loader(subset(ds.held_out, args.signal_batches * 32, args.seed + 3),
                                32, args.workers)))
        s_rng = np.random.default_rng(args.seed + 4)
        ces, tops = [], []
        for k in range(args.signal_archs):
            arch = space.sample(s_rng)
            model.train()  # the generator's signal: batch-statistics BN
            with torch.no_grad():
                ces.append(float(np.mean([F.cross_entropy(model(x.to(device), arch),
                                                          y.to(device)).item()
                                          for _, (x, y, *_) in s_val])))
            tops.append(float(per_image_correct(model, arch, s_calib, s_eval,
                                                -(-args.signal_calib_images // bs),
                                                args.seed).mean()))
        model.eval()
        signal = {"archs": args.signal_archs, "ce": ces, "top1": tops,
                  "kendall_tau_negce_top1": kendall_tau([-c for c in ces], tops)}
        log(f"signal: Kendall tau(-CE, top-1) {signal['kendall_tau_negce_top1']:.3f}")

    return {
        "bench": "generator", "config": dict(vars(args)), "space": space.name,
        "cost": cost.describe(), "interval": [lo, hi],
        "data": {"select_images": len(select_eval.dataset), "final_images": len(final_eval.dataset),
                 "calib_images": len(final_calib.dataset), "final_split": "test",
                 "select_split": "held-out"},
        "tracking": tracking, "comparison": runs, "search_cost": search_cost, "signal": signal,
        "machine": machine_info(device), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
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
