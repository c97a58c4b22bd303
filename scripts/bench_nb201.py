#!/usr/bin/env python
"""NAS-Bench-201 against ground truth: searches under FLOPs and 23 devices' latency constraints.

For FLOPs and each device's latency, 5 targets spanning its range (p10/p30/p50/p70/p90 of the cost
over connected cells), plus an unconstrained row, and for each seed, every method picks one cell:
``random`` and ``evolution`` search with the NB201 supernet evaluator (BN recalibrated, top-1 on a
fixed subset of the held-out 25k half: the cifar10-valid protocol) under the same budget of distinct
supernet evaluations; ``generator`` calls ``--generator MODULE:FUNCTION``, a
``generate(table, target) -> Cell`` with ``table`` a ``(5,)*6`` cost array. Each pick is scored
against the benchmark: CIFAR-10 / CIFAR-100 / ImageNet16-120 test accuracy, the oracle under the
same constraint, the regret, whether the constraint holds. Inherited accuracies are cached per cell
for the whole run (and across runs with ``--score-cache``). Prints one JSON line: mean +- std over
seeds of the per-seed means over constraints, per method and per cost.

    python scripts/bench_nb201.py --quick --figures docs/figures      # FLOPs + 2 devices, ~4 min
    python scripts/bench_nb201.py --full --score-cache runs/nb201-scores.json
    python scripts/bench_nb201.py --device-study --figures docs/figures  # ground truth only, seconds
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUICK = {"devices": "gold_6226,raspi4", "evaluations": 10, "eval_images": 128, "calib_batches": 1}
FULL = {"devices": "all", "evaluations": 50, "eval_images": 256, "calib_batches": 2}
MAIN_PANELS = ("flops", "1080ti_1", "titan_rtx_256", "gold_6226", "raspi4", "pixel3", "eyeriss")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the default: " + json.dumps(QUICK))
    mode.add_argument("--full", action="store_true", help=json.dumps(FULL))
    mode.add_argument("--signals", default=None, metavar="LIST",
                      help="the signal protocol (FLOPs + every device x p10/25/50/75/90, exhaustive "
                           "pick, random and evolution on the signal, generators trained on it, the "
                           "baselines): comma-separated NAME (flops, params, path_flops) or "
                           "NAME=CSV[;CSV...] (an arch_str,score table per seed) or "
                           "NAME=ensemble:A+B+C (rank average of earlier signals)")
    mode.add_argument("--device-study", action="store_true",
                      help="ground truth only: oracle cell per device at the same relative budget "
                           "and the cross-deployment regret matrix")
    ap.add_argument("--bench", default=None, help="folder of nb201.csv and latency.csv (default "
                    "$SGNAS_NB201_DIR or ../shared/data/nasbench201)")
    ap.add_argument("--checkpoint", default="supernets/nb201-spos.pt",
                    help="NB201 supernet checkpoint (default: the shipped one)")
    ap.add_argument("--data", default="../shared/data/cifar10-jpg")
    ap.add_argument("--cache-dir", default=None, help="decoded-image cache (as in training)")
    ap.add_argument("--methods", default="random,evolution",
                    help="comma-separated: random, evolution, generator (needs --generator)")
    ap.add_argument("--generator", default=None, metavar="shipped|MODULE:FUNCTION",
                    help="generate(table, target) -> Cell (or its string); shipped: the shipped "
                         "NB201 generators")
    ap.add_argument("--devices", default=None, help="comma-separated latency.csv devices or 'all'")
    ap.add_argument("--no-flops", action="store_true", help="skip the FLOPs targets")
    ap.add_argument("--quantiles", default=None,
                    help="target quantiles (default 0.1,0.3,0.5,0.7,0.9; with --signals the "
                         "protocol's 0.1,0.25,0.5,0.75,0.9)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--evaluations", type=int, default=None,
                    help="distinct supernet evaluations per search (random and evolution alike)")
    ap.add_argument("--generations", type=int, default=2, help="evolution generations")
    ap.add_argument("--eval-images", type=int, default=None, help="held-out images scored per cell")
    ap.add_argument("--calib-batches", type=int, default=None, help="BN recalibration batches")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--score-cache", default=None,
                    help="JSON file of inherited accuracies reused across runs (same settings)")
    ap.add_argument("--out", default=None, help="write every per-pick row (JSON) here")
    ap.add_argument("--figures", default=None, help="write the figures (PNG) into this folder")
    ap.add_argument("--study-devices", default=None,
                    help="devices of --device-study (comma-separated or 'all'; default: a GPU at "
                         "batch 1 and 256, a Xeon, the Raspberry Pi 4, Pixel 3, Eyeriss)")
    ap.add_argument("--study-quantile", type=float, default=0.3)
    ap.add_argument("--progress", action="store_true", help="progress on stderr")
    ap.add_argument("--budget", type=int, default=100,
                    help="--signals: distinct evaluations per random search / evolution")
    ap.add_argument("--generator-signals", default="",
                    help="--signals: comma-separated signals to train NB201 generators on (one per "
                         "cost family and seed) and score against exhaustive search")
    ap.add_argument("--generator-steps", type=int, default=1500)
    ap.add_argument("--shipped", default=None, metavar="DIR",
                    help="--signals: also score the NB201 generators in DIR (FLOPs, per-device, "
                         "shared) against exhaustive search under the signal they learned from "
                         "(which must be among --signals, by the name in their metadata)")
    ap.add_argument("--boot", type=int, default=200, help="bootstrap resamples of tau")
    ap.add_argument("--regret-column", default="cifar10_test_acc",
                    help="--signals: the ground truth regrets are scored on (select signals on "
                         "cifar10_valid_acc, report on cifar10_test_acc)")
    args = ap.parse_args(argv)
    if args.signals and args.devices is None:
        args.devices = "all"
    preset = FULL if args.full else QUICK
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def read_score_table(path: str):
    """A per-cell score CSV (``arch_str`` and a ``score`` column, or one other value column) as a
    ``(5,)*6`` table, read by the signals' table reader (every cell once, finite scores)."""
    import csv

    from sgnas.errors import SgnasError
    from sgnas.signals.nb201 import read_table_csv

    try:
        with open(path, newline="") as fh:
            header = [h.strip() for h in next(csv.reader(fh), [])]
    except OSError as exc:
        raise SgnasError(f"cannot read score table {path}: {exc.strerror}") from None
    cols = ["score"] if "score" in header else [h for h in header if h not in ("index", "arch_str")]
    if len(cols) != 1:
        raise SgnasError(f"{path}: want arch_str and one score column, got {', '.join(header)}")
    return read_table_csv(path, cols[0]).reshape((5,) * 6)


def signal_tables(spec: str, gt) -> dict:
    """``--signals`` → ``{name: [table per seed]}`` (ensembles after their members)."""
    from sgnas.errors import SgnasError
    from sgnas.nb201.cost import params_table, path_flops_table
    from sgnas.search.nb201_quality import rank_average

    builtin = {"flops": gt.flops, "params": params_table(), "path_flops": path_flops_table()}
    out: dict = {}
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        name, sep, source = item.partition("=")
        if not sep:
            if name not in builtin:
                raise SgnasError(f"unknown signal {name!r}; built in: {', '.join(builtin)} "
                                 f"(or NAME=CSV, NAME=ensemble:A+B)")
            out[name] = [builtin[name]]
        elif source.startswith("ensemble:"):
            members = source[len("ensemble:"):].split("+")
            for m in members:
                if m not in out:
                    raise SgnasError(f"ensemble {name}: member {m!r} is not an earlier signal")
            seeds = max(len(out[m]) for m in members)
            out[name] = [rank_average([out[m][min(k, len(out[m]) - 1)] for m in members],
                                      gt.connected) for k in range(seeds)]
        else:
            tables = [read_score_table(path) for path in source.split(";")]
            out[name] = tables
    return out


def generator_regrets_fn(args, gt, targets, acc_column):
    """``generator_regrets(table, seed)`` for :func:`signal_report`: one NB201 generator per cost
    family trained on the signal, decoded (most probable connected cell under each target)."""
    import numpy as np
    import torch

    from sgnas.costs import CellTableCost
    from sgnas.nb201.space import NB201Space
    from sgnas.train.score_generator import ScoreGeneratorConfig, train_score_generator

    space = NB201Space()
    acc = gt.acc(acc_column)
    torch.set_num_threads(args.threads)

    def run(table, seed):
        regrets, signal_gap, dead, holds, agree = [], [], 0, 0, []
        families = list(dict.fromkeys(t.family for t in targets))
        t0 = time.perf_counter()
        for fam in families:
            cost = CellTableCost(space, gt.cost_table(fam), fam, gt.cost_unit(fam))
            bundle = train_score_generator(
                space, cost, table.reshape(-1), "signal",
                ScoreGeneratorConfig(steps=args.generator_steps, seed=seed))
            for t in (t for t in targets if t.family == fam):
                cell, _ = bundle.decode(t.value, cost, eps=None)
                c = gt.cost_table(fam)
                ok = gt.connected & (c <= t.value)
                regrets.append(float(acc[c <= t.value].max() - acc[cell.ops]))
                signal_gap.append(float(table[ok].max() - table[cell.ops]))
                dead += int(not cell.is_connected())
                holds += int(c[cell.ops] <= t.value)
                prior = bundle.priors.select(bundle.normalize(t.value, cost))[0].numpy()
                agree.append(float(np.mean(prior == np.asarray(cell.ops))))
        return {"regrets": regrets, "dead_cells": dead, "constraint_met": holds / len(targets),
                "signal_gap_mean": round(float(np.mean(signal_gap)), 4),
                "exact_signal_optimum": round(float(np.mean(np.asarray(signal_gap) <= 1e-12)), 3),
                "prior_agreement": round(float(np.mean(agree)), 3),
                "train_s": round(time.perf_counter() - t0, 1)}
    return run


def shipped_report(folder, gt, targets, tables, largest, cfg) -> dict:
    """The generators of ``folder`` as ``sgnas-generate`` serves them (a generator trained for the
    cost, else the shared one), each target decoded under its bound, scored against ground truth
    and against exhaustive search under the signal they learned from."""
    import numpy as np

    from sgnas.costs import make_cost
    from sgnas.errors import SgnasError
    from sgnas.generator import find_generator, load_generator
    from sgnas.lut_import import import_cell_lut
    from sgnas.nb201.space import NB201Space
    from sgnas.search.nb201_quality import beats, bootstrap_mean, exhaustive_regret
    from sgnas.shared_generator import find_shared_generator, load_shared

    space = NB201Space()
    acc = gt.acc(cfg.regret_column)
    shared_path = find_shared_generator(space, [folder])
    shared = load_shared(shared_path) if shared_path is not None else None
    regrets, gaps, served, dead, met, signal = [], [], [], 0, 0, None
    for t in targets:
        if t.family == "flops":
            cost = make_cost("flops", space)
        else:
            lut = import_cell_lut(gt.sources["latency"], f"{t.family}_ms", "nb201", t.family)
            cost = make_cost("latency", space, lut)
        path = find_generator(cost, [folder])
        if path is not None:
            bundle, kind = load_generator(path), "own"
        elif shared is not None and cost.name == "latency":
            bundle, kind = shared, ("shared (training device)" if shared.knows(cost.lut)
                                    else "shared (new device)")
        else:
            raise SgnasError(f"no generator in {folder} serves {t.family}")
        name = bundle.meta.get("signal")
        if name not in tables:
            raise SgnasError(f"the generators learned from {name!r}; add it to --signals")
        signal = name
        cell, _ = bundle.decode(t.value, cost, eps=None)
        table = tables[name][0]
        c = gt.cost_table(t.family)
        regrets.append(float(acc[c <= t.value].max() - acc[cell.ops]))
        gaps.append(regrets[-1] - exhaustive_regret(table, acc, c, t.value, gt.connected))
        dead += int(not cell.is_connected())
        met += int(c[cell.ops] <= t.value)
        served.append(kind)
    kinds = {k: served.count(k) for k in dict.fromkeys(served)}
    r = np.asarray(regrets)
    return {"folder": str(folder), "signal": signal, **bootstrap_mean(r), **beats(r, largest),
            "gap_to_exhaustive": bootstrap_mean(gaps), "dead_cells": dead,
            "constraint_met": met / len(targets), "served_by": kinds}


def signals_main(args) -> dict:
    """The signal protocol: every signal's rank quality and regrets beside the baselines."""
    import numpy as np

    from sgnas.nb201.groundtruth import ACCURACY_COLUMNS, GroundTruth, latency_devices
    from sgnas.search.nb201_quality import (PROTOCOL_QUANTILES, ProtocolConfig, bootstrap_mean,
                                            exhaustive_regret, protocol_targets, signal_report,
                                            window_regret)

    devices = (latency_devices(args.bench) if args.devices in (None, "all")
               else [d for d in args.devices.split(",") if d])
    gt = GroundTruth.load(args.bench, ACCURACY_COLUMNS, devices)
    quantiles = (PROTOCOL_QUANTILES if args.quantiles is None
                 else tuple(float(q) for q in args.quantiles.split(",")))
    families = ([] if args.no_flops else ["flops"]) + devices
    targets = protocol_targets(gt, families, quantiles)
    cfg = ProtocolConfig(quantiles=quantiles, budget=args.budget, boot=args.boot,
                         regret_column=args.regret_column)
    acc = gt.acc(cfg.regret_column)

    def over(fn):
        return np.array([fn(gt.cost_table(t.family), t.value) for t in targets])

    largest = over(lambda c, T: exhaustive_regret(gt.flops, acc, c, T, gt.connected))
    baselines = {
        "largest_feasible_flops": bootstrap_mean(largest),
        "window_uniform": bootstrap_mean(over(lambda c, T: window_regret(acc, c, T))),
        "window_best_by_ground_truth": bootstrap_mean(
            over(lambda c, T: window_regret(acc, c, T, best=True))),
        "oracle": 0.0,
    }
    tables = signal_tables(args.signals, gt)
    trained = {s.strip() for s in args.generator_signals.split(",") if s.strip()}
    signals = {}
    for name, seeds in tables.items():
        gen = (generator_regrets_fn(args, gt, targets, cfg.regret_column) if name in trained
               else None)
        signals[name] = signal_report(seeds, gt, targets, largest, cfg, gen)
        if args.progress:
            print(f"{name}: exhaustive {signals[name]['exhaustive']}", file=sys.stderr, flush=True)
    shipped = (shipped_report(args.shipped, gt, targets, tables, largest, cfg)
               if args.shipped else None)
    return {"mode": "signals", "families": len(families), "targets": len(targets),
            **({"shipped": shipped} if shipped is not None else {}),
            "quantiles": list(quantiles), "regret_column": cfg.regret_column,
            "tau_column": cfg.tau_column, "budget": cfg.budget, "baselines": baselines,
            "signals": signals}


def shipped_cell(table, target: float, name: str | None = None):
    """The ``--generator shipped`` hook: the shipped NB201 generators, the FLOPs generator for
    ``name == "flops"``, else the shared latency generator (device-conditioned through the table's
    reference cells); exact decoding either way. A target above the table's interval (the
    benchmark's unconstrained row) is served at the interval's top, which still meets it."""
    from sgnas.costs import CellTableCost
    from sgnas.errors import SgnasError
    from sgnas.generator import default_generator_dirs, target_interval
    from sgnas.generator_catalog import GeneratorCatalog
    from sgnas.shared_generator import generate_cell
    from sgnas.space import get_space

    import numpy as np

    space = get_space("nb201")
    cost = CellTableCost(space, np.asarray(table, dtype=np.float64), "latency", "ms")
    target = min(float(target), target_interval(cost)[1])
    dirs = default_generator_dirs()
    if name == "flops":
        found = sorted(p for d in dirs for p in Path(d).glob("nb201-flops-*.pt"))
        if not found:
            raise SgnasError("no shipped NB201 FLOPs generator (generators/nb201-flops-*.pt)")
        path = found[-1]
    else:
        shared = GeneratorCatalog(dirs).find_shared(space)
        if shared is None:
            raise SgnasError("no shipped NB201 shared generator (generators/nb201-shared-*.pt)")
        path = shared
    return generate_cell(_loaded(str(path)), cost, target, space=space)


@functools.lru_cache(maxsize=8)
def _loaded(path: str):
    """A generator checkpoint loaded once per process (shared or per-cost)."""
    from sgnas.generator_catalog import load_generator_file

    return load_generator_file(path)


def load_generator(spec: str):
    """``shipped`` (:func:`shipped_cell`) or ``module:function`` -> the callable."""
    from sgnas.errors import SgnasError

    if spec == "shipped":
        return shipped_cell
    module, sep, name = spec.partition(":")
    if not sep:
        raise SgnasError(f"--generator {spec!r}: want shipped or MODULE:FUNCTION")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise SgnasError(f"--generator {spec!r}: {exc}") from None


def build_supernet_evaluator(args):
    """The supernet's :class:`InheritedAccuracy` on a fixed held-out subset, and its settings."""
    import torch

    from sgnas.nb201.space import NUM_CELLS
    from sgnas.search import build_evaluator
    from sgnas.search.nb201_bench import load_nb201_supernet

    torch.set_num_threads(args.threads)
    model, meta, data = load_nb201_supernet(args.checkpoint, args.data, args.batch_size,
                                            args.cache_dir)
    batches = max(1, args.eval_images // args.batch_size)
    ev = build_evaluator(model, data.train, data.held_out, batch_size=args.batch_size,
                         calib_batches=args.calib_batches, eval_batches=batches, seed=0)
    ev.cache_size = NUM_CELLS
    st = os.stat(args.checkpoint)
    settings = {"checkpoint": str(args.checkpoint), "checkpoint_bytes": st.st_size,
                "checkpoint_mtime": int(st.st_mtime), "global_step": meta.get("global_step"),
                "eval_images": len(ev.eval_loader.dataset), "calib_batches": args.calib_batches,
                "batch_size": args.batch_size, "seed": 0}
    return ev, settings


def load_score_cache(path, settings, evaluator):
    from sgnas.errors import SgnasError
    from sgnas.nb201.space import Cell

    if not path or not os.path.exists(path):
        return
    try:
        with open(path) as fh:
            blob = json.load(fh)
        if blob["settings"] != settings:
            raise SgnasError(f"score cache {path} was made with other evaluator settings "
                             f"({blob['settings']}); use another --score-cache")
        evaluator.preload({Cell.parse(a): v for a, v in blob["scores"].items()})
        # the time those scores cost, so a search's time stays measured when they are reused
        evaluator.time_s += float(blob.get("eval_time_s", 0.0))
        evaluator.evaluations += int(blob.get("evaluations", 0))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SgnasError(f"cannot read score cache {path}: {exc}") from None


def constraints(gt, families, quantiles):
    """``(family, quantile, Constraint)`` for every cost family and target."""
    from sgnas.nb201.constraint import CellCost, Constraint
    from sgnas.nb201.groundtruth import spread_targets

    out = []
    for fam in families:
        cost = CellCost(gt.cost_table(fam), fam, gt.cost_unit(fam))
        for q, t in zip(quantiles, spread_targets(cost.table, quantiles)):
            out.append((fam, q, Constraint(cost, t)))
    return out


def run(args, gt, evaluator, generate, methods, families, quantiles):
    """Every (constraint, seed, method) pick scored against ground truth, as rows."""
    from sgnas.nb201.constraint import CellCost
    from sgnas.search.nb201_bench import SearchBudget, score_pick, search_pick

    budget = SearchBudget(args.evaluations, args.generations)
    free = CellCost(gt.flops, "flops", "MFLOPs")
    jobs = [(fam, q, c) for fam, q, c in constraints(gt, families, quantiles)]
    jobs.append(("unconstrained", None, None))
    rows = []
    t0 = time.perf_counter()
    for k, (fam, q, con) in enumerate(jobs):
        for seed in range(args.seeds):
            for method in methods:
                cost, target = (free, free.range()[1]) if con is None else (con.cost, con.max_value)
                pick = search_pick(method, cost, target, evaluator, budget, seed, generate=generate)
                row = {"family": fam, "quantile": q, "target": None if con is None else target,
                       "seed": seed, "method": method, "evaluations": pick.evaluations,
                       "wall_s": pick.seconds, **score_pick(gt, con, pick.cell)}
                if con is None:
                    row["cost"] = free.exact(pick.cell)
                rows.append(row)
        if args.progress:
            n_eval = evaluator.evaluations if evaluator is not None else 0
            print(f"{k + 1}/{len(jobs)} constraints, {n_eval} supernet evaluations, "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    per_eval = evaluator.stats()["seconds_per_evaluation"] if evaluator is not None else 0.0
    for r in rows:  # search time: its own distinct evaluations at the measured cost of one
        r["seconds"] = r["wall_s"] if r["method"] == "generator" else r["evaluations"] * per_eval
    return rows


def figures(args, gt, rows, families):
    from sgnas.nb201.plots import plot_fronts

    folder = Path(args.figures)
    pts: dict[str, list] = {}
    for r in rows:
        if r["family"] != "unconstrained":
            pts.setdefault(r["family"], []).append({"cost": r["cost"], "accuracy": r["cifar10"],
                                                    "method": r["method"], "target": r["target"]})
    out = {}
    main = [p for p in MAIN_PANELS if p in families]
    path = folder / "nb201_fronts.png"
    plot_fronts(gt, main, pts, path, ncols=min(3, len(main)))
    out["fronts"] = str(path)
    rest = [f for f in families if f not in main]
    if rest:
        path = folder / "nb201_fronts_all.png"
        plot_fronts(gt, rest, pts, path, ncols=4)
        out["fronts_all"] = str(path)
    return out


def device_study_main(args, gt):
    from sgnas.nb201.device_study import STUDY_DEVICES, device_study

    devices = (gt.devices if args.study_devices == "all" else
               args.study_devices.split(",") if args.study_devices else list(STUDY_DEVICES))
    study = device_study(gt, devices, args.study_quantile)
    if args.figures:
        from sgnas.nb201.plots import plot_device_study, plot_fronts

        path = Path(args.figures) / "nb201_device_study.png"
        plot_device_study(study, path)
        study["figure"] = str(path)
        pts = {d: [{"cost": study["oracle"][d]["latency_ms"], "accuracy": study["oracle"][d]["accuracy"],
                    "method": "device oracle", "target": study["budget"][d]}] for d in devices}
        # other devices' oracle cells on each device, to show what deploying them costs
        for b in devices:
            for a in devices:
                if a != b:
                    cell_lat = study["latency_ratio"][a][b] * study["budget"][b]
                    pts[b].append({"cost": cell_lat, "accuracy": study["oracle"][a]["accuracy"],
                                   "method": "other devices' oracles",
                                   "target": study["budget"][b]})
        path = Path(args.figures) / "nb201_device_oracles.png"
        plot_fronts(gt, devices, pts, path, ncols=3, ylim=(88.0, 95.0))
        study["figure_fronts"] = str(path)
    return study


def main(argv=None) -> int:
    from sgnas.errors import SgnasError
    from sgnas.fileio import atomic_write_json, json_safe
    from sgnas.nb201.groundtruth import ACCURACY_COLUMNS, GroundTruth, latency_devices
    from sgnas.search.nb201_bench import METHODS, summarise

    args = parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.signals:
            result = signals_main(args)
            result["seconds"] = round(time.perf_counter() - t0, 1)
            print(json.dumps(json_safe(result)))
            return 0
        if args.device_study:
            study = args.study_devices
            gt = GroundTruth.load(args.bench, ACCURACY_COLUMNS,
                                  study.split(",") if study and study != "all" else None)
            result = device_study_main(args, gt)
            result["seconds"] = round(time.perf_counter() - t0, 1)
            print(json.dumps(json_safe(result)))
            return 0
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        for m in methods:
            if m not in METHODS:
                raise SgnasError(f"unknown method {m!r}; known: {', '.join(METHODS)}")
        generate = load_generator(args.generator) if args.generator else None
        if "generator" in methods and generate is None:
            raise SgnasError("--methods generator needs --generator MODULE:FUNCTION")
        quantiles = [float(q) for q in (args.quantiles or "0.1,0.3,0.5,0.7,0.9").split(",")]
        devices = (latency_devices(args.bench) if args.devices == "all"
                   else [d for d in args.devices.split(",") if d])
        gt = GroundTruth.load(args.bench, ACCURACY_COLUMNS, devices)
        families = ([] if args.no_flops else ["flops"]) + devices
        if not families:
            raise SgnasError("nothing to benchmark: no devices and --no-flops")
        needs_supernet = any(m in ("random", "evolution") for m in methods)
        evaluator, settings = build_supernet_evaluator(args) if needs_supernet else (None, {})
        if evaluator is not None:
            load_score_cache(args.score_cache, settings, evaluator)
        preloaded = len(evaluator.cached()) if evaluator is not None else 0
        before = evaluator.stats() if evaluator is not None else {}
        rows = run(args, gt, evaluator, generate, methods, families, quantiles)
    except SgnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if evaluator is not None and args.score_cache:
        scores = {str(c): v for c, v in evaluator.cached().items()}
        atomic_write_json(args.score_cache, {"settings": settings, "eval_time_s": evaluator.time_s,
                                             "evaluations": evaluator.evaluations,
                                             "scores": scores}, indent=None)
    constrained = [r for r in rows if r["family"] != "unconstrained"]
    result = {
        "mode": "full" if args.full else "quick",
        "methods": methods, "families": families, "quantiles": quantiles, "seeds": args.seeds,
        "evaluations_per_search": args.evaluations, "evolution_generations": args.generations,
        "evaluator": {**settings, **(evaluator.stats() if evaluator is not None else {}),
                      "preloaded_scores": preloaded,
                      "preloaded_evaluations": before.get("evaluations", 0)},
        "summary": summarise(constrained),
        "unconstrained": summarise([r for r in rows if r["family"] == "unconstrained"]),
        "per_family": summarise(constrained, ("family", "method")),
        "oracle_unconstrained_cifar10": max(r["cifar10_oracle"] for r in rows),
    }
    if args.figures:
        result["figures"] = figures(args, gt, rows, families)
    if args.out:
        atomic_write_json(args.out, json_safe({**result, "rows": rows}))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(json_safe(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
