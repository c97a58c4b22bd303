"""Zero-shot device transfer of the shared NB201 generator, against ground truth (one JSON line).

Leave-one-family-out over the devices of NAS-Bench-201's ``latency.csv``: for each held-out family
(a GPU, a Xeon, a phone by default) the shared device-conditioned generator is trained on every
other device column, then serves each held-out device from its LUT alone. At 5 latency targets
spread over each held-out device's interval (p1..p99 of its table) every method decodes exactly
over all 15,625 cells (window ``[T (1 - eps), T]``), and the decoded cell's ground-truth CIFAR-10
test accuracy (``cifar10_test_acc`` of ``nb201.csv``) is compared with the oracle (best accuracy
among cells with latency <= T on that device). Methods, all the same network and training budget:

* ``shared``: the shared generator (device embedding from the 50 reference cells of the LUT);
* ``per_device``: a generator trained on the held-out device alone (no device input);
* ``shared_no_device``: the shared generator trained with its device input removed;
* ``flops``: a FLOPs generator, exact decoding on the device's table.

The curve: regret of ``shared`` when the new device measured only ``n`` of the reference cells,
the rest imputed by a ridge regression fit on the training devices (shift-invariant: log
latencies centred on the measured cells' mean).

Usage::

    OMP_NUM_THREADS=1 python scripts/bench_zero_shot.py --supernet SUPERNET.pt \\
        --data ../shared/data/cifar10-jpg --cache-dir CACHE [--bench ../shared/data/nasbench201]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FOLDS = {
    "gpu": ["titan_rtx_1_ms", "titan_rtx_32_ms", "titan_rtx_256_ms"],
    "xeon": ["gold_6226_ms", "gold_6240_ms"],
    "phone": ["pixel2_ms", "pixel3_ms"],
}
METHODS = ("shared", "per_device", "shared_no_device", "flops")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default=None, help="folder with nb201.csv and latency.csv")
    p.add_argument("--supernet", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--folds", nargs="+", default=list(FOLDS), choices=list(FOLDS))
    p.add_argument("--steps", type=int, default=120, help="training steps of every generator")
    p.add_argument("--images", type=int, default=64, help="held-out images of the accuracy term")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--references", type=int, default=50)
    p.add_argument("--ref-counts", type=int, nargs="+", default=[5, 10, 20, 50])
    p.add_argument("--targets", type=int, default=5)
    p.add_argument("--eps", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def oracle_regret(acc: np.ndarray, lat: np.ndarray, target: float, cell_code: int) -> dict:
    """Ground truth of one decoded cell: its accuracy, the oracle's (best accuracy among cells
    with latency <= target), the regret and whether the constraint holds."""
    ok = lat <= target
    best = float(acc[ok].max())
    got = float(acc[cell_code])
    return {"acc": got, "oracle": best, "regret": best - got,
            "met": bool(lat[cell_code] <= target)}


def impute_features(train_log: np.ndarray, device_log: np.ndarray, measured: np.ndarray,
                    alpha: float = 1e-2) -> np.ndarray:
    """The full reference embedding of a device that measured only ``measured`` reference cells:
    the other log latencies predicted by ridge regression on the training devices, all centred
    on the measured cells' mean (so the device's absolute speed drops out)."""
    from sgnas.shared_generator import device_features

    rest = np.setdiff1d(np.arange(train_log.shape[1]), measured)
    if len(rest) == 0:
        return device_features(np.exp(device_log))
    mu = train_log[:, measured].mean(axis=1, keepdims=True)
    x, y = train_log[:, measured] - mu, train_log[:, rest] - mu
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - xm, y - ym
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(len(measured)), xc.T @ yc)
    d_mu = device_log[measured].mean()
    full = np.empty_like(device_log)
    full[measured] = device_log[measured]
    full[rest] = (device_log[measured] - d_mu - xm) @ w + ym + d_mu
    return device_features(np.exp(full))


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from sgnas.costs import CellTableCost, make_cost
    from sgnas.generator import GeneratorConfig, target_interval
    from sgnas.nb201.bench import GROUND_TRUTH, LATENCY, bench_file, default_dir, read_cell_table
    from sgnas.nb201.space import NB201Space
    from sgnas.shared_generator import choose_references, device_features
    from sgnas.evaluation.checkpoint import load_supernet
    from sgnas.train.shared_generator import (
        SharedTrainConfig,
        held_out_batches,
        train_shared_generator,
    )
    from sgnas.nb201.groundtruth import latency_columns

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    folder = args.bench or default_dir()
    space = NB201Space()
    lat_path = bench_file(LATENCY, folder)
    columns = latency_columns(lat_path)
    lat_table = read_cell_table(lat_path, columns)
    tables = {c: lat_table.by_code(c) for c in columns}
    acc = read_cell_table(bench_file(GROUND_TRUTH, folder), ["cifar10_test_acc"]).by_code(
        "cifar10_test_acc").reshape(-1)
    costs = {c: CellTableCost(space, t, "latency", "ms", fingerprint=c) for c, t in tables.items()}
    refs = choose_references(space, args.references)
    ref_idx = tuple(np.stack([space.indices_of(r) for r in refs], axis=1))
    ref_log = {c: np.log(np.maximum(t[ref_idx], 1e-6)) for c, t in tables.items()}
    supernet, meta = load_supernet(args.supernet, map_location="cpu")
    batches = held_out_batches(meta, args.data, args.batch_size, args.images, args.cache_dir,
                               args.seed)
    gen_cfg = GeneratorConfig(num_priors=8)
    train_s: dict[str, float] = {}

    def train(cost_list, device_input, name):
        t0 = time.perf_counter()
        cfg = SharedTrainConfig(steps=args.steps, num_refs=len(refs), device_input=device_input,
                                seed=args.seed)
        b = train_shared_generator(supernet, cost_list, batches, cfg, references=refs,
                                   gen_cfg=gen_cfg)
        train_s[name] = round(time.perf_counter() - t0, 1)
        print(f"trained {name} ({len(cost_list)} tables) in {train_s[name]} s", file=sys.stderr)
        return b

    flops_gen = train([make_cost("flops", space)], False, "flops")
    zeros = np.zeros(len(refs))
    devices, curve_rows = [], []
    for fold in args.folds:
        held = [c for c in FOLDS[fold] if c in tables]
        rest = [c for c in columns if c not in held]
        shared = train([costs[c] for c in rest], True, f"shared-{fold}")
        no_dev = train([costs[c] for c in rest], False, f"shared_no_device-{fold}")
        train_log = np.stack([ref_log[c] for c in rest])
        for col in held:
            per_dev = train([costs[col]], False, f"per_device-{col}")
            cost, lat = costs[col], costs[col].values()
            lo, hi = target_interval(cost)
            targets = lo + (hi - lo) * (np.arange(args.targets) + 0.5) / args.targets
            feats = device_features(np.exp(ref_log[col]))
            bundles = {"shared": (shared, feats), "per_device": (per_dev, zeros),
                       "shared_no_device": (no_dev, zeros), "flops": (flops_gen, zeros)}
            row: dict = {"fold": fold, "device": col.removesuffix("_ms"),
                         "targets_ms": [round(float(t), 4) for t in targets]}
            for name, (b, f) in bundles.items():
                res = [oracle_regret(acc, lat, float(t),
                                     b.decode(float(t), cost, args.eps, features=f)[0].code)
                       for t in targets]
                row[name] = {"regret": [round(r["regret"], 3) for r in res],
                             "mean_regret": float(np.mean([r["regret"] for r in res])),
                             "met": float(np.mean([r["met"] for r in res])),
                             "acc": [round(r["acc"], 2) for r in res]}
            row["oracle_acc"] = [round(oracle_regret(acc, lat, float(t), 0)["oracle"], 2)
                                 for t in targets]
            for n in args.ref_counts:
                measured = np.unique(np.rint(np.linspace(0, len(refs) - 1, min(n, len(refs))))
                                     .astype(int))
                f = impute_features(train_log, ref_log[col], measured)
                res = [oracle_regret(acc, lat, float(t),
                                     shared.decode(float(t), cost, args.eps, features=f)[0].code)
                       for t in targets]
                curve_rows.append((n, float(np.mean([r["regret"] for r in res]))))
            devices.append(row)
    summary = {m: {"mean_regret": round(float(np.mean([d[m]["mean_regret"] for d in devices])), 3),
                   "constraint_met": float(np.mean([d[m]["met"] for d in devices]))}
               for m in METHODS}
    curve = {str(n): round(float(np.mean([r for k, r in curve_rows if k == n])), 3)
             for n in args.ref_counts}
    out = {
        "bench": "zero_shot_nb201", "folds": {f: FOLDS[f] for f in args.folds},
        "training_devices_per_fold": {f: len(columns) - len(FOLDS[f]) for f in args.folds},
        "summary": summary, "regret_vs_reference_cells": curve, "devices": devices,
        "config": {"steps": args.steps, "images": args.images, "batch_size": args.batch_size,
                   "references": len(refs), "targets": args.targets, "eps": args.eps,
                   "seed": args.seed, "accuracy": "cifar10_test_acc",
                   "supernet": str(args.supernet)},
        "train_s": train_s, "wall_s": round(time.perf_counter() - t_start, 1),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
