#!/usr/bin/env python
"""Ranking quality of an NB201 supernet: Kendall tau of inherited vs ground-truth accuracy.

Samples ``--cells`` distinct cells uniformly (seeded), scores each with the supernet's weights after
BN recalibration (``--calib-batches`` training batches of the supernet's own training split, with
training augmentation) on a fixed subset of ``--eval-images`` images of the held-out half (the
``cifar10-valid`` split the benchmark scores on), and compares with ``cifar10_valid_acc`` of
``nb201.csv``. Prints one JSON line.

    python scripts/eval_nb201_supernet.py --checkpoint supernets/nb201-spos.pt \\
        --data ../shared/data/cifar10-jpg --cache-dir runs/cache
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main(argv=None) -> int:
    from sgnas.errors import SgnasError
    from sgnas.nb201.bench import GROUND_TRUTH, bench_file, default_dir, read_cell_table
    from sgnas.nb201.supernet import sample_cells
    from sgnas.search.nb201_bench import load_nb201_supernet
    from sgnas.evaluation.data import calibration_loader
    from sgnas.evaluation.evaluate import evaluate_arch, recalibrate_bn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", default="../shared/data/cifar10-jpg")
    ap.add_argument("--bench", default=None,
                    help="folder holding nb201.csv (default $SGNAS_NB201_DIR or ../shared/data/nasbench201)")
    ap.add_argument("--cache-dir", default=None, help="decoded-image cache (as in training)")
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--calib-batches", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--eval-images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device to score on (cpu, cuda)")
    ap.add_argument("--out", default=None, help="also write per-cell results (JSON) here")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop scoring new cells after this many seconds (the JSON line says how "
                         "many were scored)")
    ap.add_argument("--progress-every", type=int, default=0, metavar="K",
                    help="report progress on stderr every K cells (0: never)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        table = read_cell_table(bench_file(GROUND_TRUTH, args.bench or default_dir()), ["cifar10_valid_acc"])
        truth = dict(zip(table.codes().tolist(), table.columns["cifar10_valid_acc"].tolist()))
        model, meta, data = load_nb201_supernet(args.checkpoint, args.data, args.batch_size,
                                                args.cache_dir)
    except SgnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model.to(args.device)
    rng = np.random.default_rng(args.seed)
    n_eval = min(args.eval_images, len(data.held_out))
    idx = np.sort(rng.permutation(len(data.held_out))[:n_eval])
    held = torch.utils.data.Subset(data.held_out, idx.tolist())
    eval_batches = [b for b in torch.utils.data.DataLoader(held, batch_size=250)]
    calib = [b for b in calibration_loader(data.train, args.batch_size, args.calib_batches,
                                           seed=args.seed)]
    cells = sample_cells(model.space, args.cells, rng)
    rows = []
    for cell in cells:
        if args.max_seconds is not None and time.perf_counter() - t0 > args.max_seconds:
            break
        recalibrate_bn(model, cell, calib, batches=args.calib_batches, seed=args.seed)
        acc = evaluate_arch(model, cell, eval_batches)
        rows.append({"arch": str(cell), "inherited": 100 * acc, "truth": truth[cell.code],
                     "connected": cell.is_connected()})
        if args.progress_every and len(rows) % args.progress_every == 0:
            print(f"{len(rows)}/{len(cells)} cells, {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)
    from scipy.stats import kendalltau, spearmanr

    inh = np.array([r["inherited"] for r in rows])
    gt = np.array([r["truth"] for r in rows])
    conn = np.array([r["connected"] for r in rows])
    result = {
        "checkpoint": str(args.checkpoint),
        "epoch": meta.get("epoch"), "global_step": meta.get("global_step"),
        "finished": bool(meta.get("finished")),
        "cells": len(rows), "cells_requested": args.cells, "connected_cells": int(conn.sum()),
        "kendall_tau": float(kendalltau(inh, gt)[0]),
        "kendall_tau_connected": float(kendalltau(inh[conn], gt[conn])[0]),
        "spearman": float(spearmanr(inh, gt)[0]),
        "mean_inherited": float(inh.mean()), "max_inherited": float(inh.max()),
        "eval_images": n_eval, "calib_batches": args.calib_batches,
        "batch_size": args.batch_size, "ground_truth": "cifar10_valid_acc", "seed": args.seed,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.out:
        from sgnas.fileio import atomic_write_json

        atomic_write_json(args.out, {**result, "rows": rows})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
