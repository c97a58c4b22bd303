#!/usr/bin/env python
"""Zero-cost proxy tables for NAS-Bench-201 cells (all 15,625 by default), resumable and parallel.

Every requested proxy is computed from one seeded skeleton network per worker on one minibatch
(``--batch-size`` class-balanced CIFAR-10 training images drawn from ``--seed``, or random tensors
with ``--random-data``); cells are reduced to functional classes (5,424 live classes among the
15,625 cells, 341 dead cells) and each class is scored once (see sgnas.signals.compute). The work
is split over ``--workers`` processes by class, heaviest first; every worker appends its finished
chunks to the per-proxy score caches under ``OUT/cache`` (the cache key holds the space, a hash of
the minibatch, the batch size and the seed), so an interrupted run continues where it stopped when
started again with the same arguments.

Writes, under ``OUT``: ``<proxy>.csv`` per proxy (``arch_str,score``, one row per cell, dead cells
at a finite floor below every live cell; loadable with ``sgnas.signals.nb201_table(name,
csv=...)`` or as the signal ``table:OUT/<proxy>.csv``) and/or (``--format wide|both``)
``nb201_proxies.csv`` with a column per proxy (``nb201_table(name, csv=...)`` reads the column
``name``; ``table:FILE --column name``), ``minibatch.pt`` (the images and labels),
``summary.json``. Prints one JSON line.

    python scripts/nb201_proxies.py --data ../shared/data/cifar10-jpg --out runs/proxies \\
        --proxies all --workers 2 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _worker(rank: int, cells: list[str], names: list[str], batch_path: str, seed: int,
            device: str, threads: int, cache_dir: str, chunk: int) -> None:
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    from sgnas.signals.zero_cost import score_proxies

    x, y = torch.load(batch_path)
    score_proxies(names, cells, (x, y), space="nb201", batch_size=int(x.shape[0]), seed=seed,
                  device=device, cache_dir=cache_dir, chunk=chunk, prepare=False)


def _shards(cells, workers: int) -> list[list[str]]:
    """Cells split over ``workers`` by functional class, longest work first onto the least loaded
    worker (work of a class ~ its network's FLOPs + a fixed cost)."""
    from sgnas.nb201.network import count_flops
    from sgnas.nb201.space import NB201Space
    from sgnas.signals.cells import canonical_form

    space = NB201Space()
    groups: dict[str, list] = {}
    for c in cells:
        groups.setdefault(canonical_form(c), []).append(c)
    work = sorted(groups.values(), key=lambda g: -count_flops(space, g[0]))
    load = [0.0] * workers
    out: list[list[str]] = [[] for _ in range(workers)]
    for g in work:
        k = int(np.argmin(load))
        out[k].extend(str(c) for c in g)
        load[k] += count_flops(space, g[0]) + 30.0
    return out


def ranking(files: dict[str, str], cells, bench: str, boot: int = 1000, seed: int = 0) -> dict:
    """Kendall tau (connected cells) of each proxy, FLOPs and the rank-average ensembles against
    cifar10_valid_acc, with a bootstrap 95% interval over the cells."""
    from sgnas.metrics import kendall_tau
    from sgnas.nb201.bench import GROUND_TRUTH, bench_file, read_cell_table
    from sgnas.signals import get_signal
    from sgnas.signals.base import ranks
    from sgnas.signals.nb201 import read_table_csv

    gt = read_cell_table(bench_file(GROUND_TRUTH, bench), ["cifar10_valid_acc"])
    truth = np.empty(15625)
    truth[gt.codes()] = gt.columns["cifar10_valid_acc"]
    live = [c for c in cells if c.is_connected()]
    codes = np.array([c.code for c in live])
    y = truth[codes]
    cols = {n: _read(path, n)[codes] for n, path in files.items() if n != "wide"}
    cols["flops"] = get_signal("flops").score(live)
    for members in (("flops", "naswot", "synflow"), ("naswot", "synflow"),
                    ("flops", "naswot"), ("flops", "synflow", "naswot", "jacob_cov", "snip",
                                          "grad_norm")):
        if all(m in cols for m in members):
            cols["ensemble:" + "+".join(members)] = np.mean([ranks(cols[m]) for m in members], 0)
    rng = np.random.default_rng(seed)
    idx = [rng.integers(0, len(y), len(y)) for _ in range(boot)]
    out = {}
    for name, v in cols.items():
        b = np.array([kendall_tau(v[i], y[i]) for i in idx])
        out[name] = {"tau": round(kendall_tau(v, y), 4),
                     "ci95": [round(float(np.nanpercentile(b, 2.5)), 4),
                              round(float(np.nanpercentile(b, 97.5)), 4)]}
    return {"ground_truth": "cifar10_valid_acc", "connected_cells": int(len(live)),
            "kendall_tau": out}


def _read(path: str, column: str) -> np.ndarray:
    """Scores by cell code of a (possibly partial) table: ``column`` of a wide file, else its
    ``score`` column; NaN where absent."""
    import csv

    from sgnas.nb201.space import Cell

    out = np.full(15625, np.nan)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        key = column if column in (reader.fieldnames or []) else "score"
        for row in reader:
            out[Cell.parse(row["arch_str"]).code] = float(row[key])
    return out


def _write_wide(path: Path, cells, columns: dict[str, np.ndarray]) -> None:
    """``arch_str`` and one column per proxy (dead cells at each column's finite floor), written
    atomically."""
    import csv
    import io

    from sgnas.fileio import atomic_write_bytes
    from sgnas.signals.nb201 import finite_dead

    cols = {n: finite_dead(v) for n, v in columns.items()}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["arch_str", *cols])
    for i, c in enumerate(cells):
        w.writerow([str(c), *(repr(float(v[i])) for v in cols.values())])
    atomic_write_bytes(path, buf.getvalue().encode())


def main(argv=None) -> int:
    from sgnas.errors import SgnasError
    from sgnas.nb201.space import Cell, NB201Space, all_cells
    from sgnas.signals.cells import representatives
    from sgnas.signals.proxies import PROXIES, check_names
    from sgnas.signals.zero_cost import data_hash, minibatch, proxy_caches

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/cifar10-jpg", help="CIFAR-10 image folder")
    ap.add_argument("--minibatch", default=None, metavar="FILE",
                    help="use the (images, labels) saved in FILE (a minibatch.pt this script "
                         "wrote) instead of --data")
    ap.add_argument("--random-data", action="store_true",
                    help="random images and labels from --seed instead of --data (smoke tests)")
    ap.add_argument("--out", required=True, help="output folder (caches, CSVs, summary)")
    ap.add_argument("--proxies", default="all", help=f"comma list or 'all' ({','.join(PROXIES)})")
    ap.add_argument("--cells", default="all", help="'all' or N cells sampled from --cells-seed")
    ap.add_argument("--cells-seed", type=int, default=0)
    ap.add_argument("--sample", choices=("cells", "classes"), default="cells",
                    help="with --cells N: N uniform cells, or the representatives of N uniform "
                         "functional classes (to time a run: all cells cost about 5424/N times "
                         "as much)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0, help="initialization and minibatch seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (workers share the GPU)")
    ap.add_argument("--chunk", type=int, default=32, help="cells per cache append")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop the workers after this long (finished chunks are kept; rerun to "
                         "continue)")
    ap.add_argument("--cache-dir", default=None, help="score caches (default OUT/cache)")
    ap.add_argument("--format", choices=("per-proxy", "wide", "both"), default="per-proxy",
                    help="OUT/<proxy>.csv (arch_str,score) per proxy, one OUT/nb201_proxies.csv "
                         "with a column per proxy, or both (default per-proxy)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--bench", default=None, metavar="DIR",
                    help="folder of nb201.csv: add Kendall tau against cifar10_valid_acc "
                         "(connected cells among those scored, bootstrap 95%% interval)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = Path(args.out)
    try:
        names = list(PROXIES) if args.proxies == "all" else check_names(
            [n.strip() for n in args.proxies.split(",") if n.strip()])
        space = NB201Space()
        if args.cells == "all":
            cells = list(all_cells())
        else:
            n = int(args.cells)
            rng = np.random.default_rng(args.cells_seed)
            if args.sample == "classes":
                reps_all, _ = representatives(list(all_cells()))
                cells = [reps_all[int(i)] for i in rng.permutation(len(reps_all))[:n]]
            else:
                codes = rng.permutation(space.num_cells)[:n]
                cells = [Cell.from_code(int(c)) for c in codes]
        out.mkdir(parents=True, exist_ok=True)
        batch_path = out / "minibatch.pt"
        if args.minibatch:
            if not os.path.isfile(args.minibatch):
                raise SgnasError(f"minibatch file not found: {args.minibatch}")
            data = tuple(torch.load(args.minibatch))
        elif args.random_data:
            g = torch.Generator().manual_seed(args.seed)
            data = (torch.randn(args.batch_size, 3, 32, 32, generator=g),
                    torch.randint(0, 10, (args.batch_size,), generator=g))
        else:
            from sgnas.search.signals import load_minibatch

            data = load_minibatch(args.data, args.batch_size, args.seed, space)
        x, y = minibatch(data, args.batch_size, space.num_classes, args.seed)
        torch.save((x, y), batch_path)
        cache_dir = Path(args.cache_dir) if args.cache_dir else out / "cache"
        caches = proxy_caches(names, space, x, y, args.seed, cache_dir)
        for c in caches.values():
            c.prepare()
        done = [set(c.load()) for c in caches.values()]
        todo = [c for c in cells if not all(str(c) in d for d in done)]
    except (SgnasError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reps, _ = representatives(todo)
    t_setup = time.perf_counter() - t0
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))  # the workers' numpy / BLAS threads
    import resource

    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = max(1, min(args.workers, len(reps) or 1))
    procs = []
    if todo:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        for rank, shard in enumerate(_shards(todo, workers)):
            if not shard:
                continue
            p = ctx.Process(target=_worker, args=(rank, shard, names, str(batch_path), args.seed,
                                                  args.device, args.threads, str(cache_dir),
                                                  args.chunk))
            p.start()
            procs.append(p)
    t_start = time.perf_counter()
    first = next(iter(caches.values()))
    base_done = len(cells) - len(todo)
    stopped = False
    while any(p.is_alive() for p in procs):
        time.sleep(2.0)
        elapsed = time.perf_counter() - t_start
        if not args.quiet:
            now = sum(1 for k in first.load() if k in {str(c) for c in todo})
            eta = (len(todo) - now) * elapsed / now if now else float("nan")
            print(f"{base_done + now}/{len(cells)} cells, {elapsed:.0f} s, ETA {eta:.0f} s",
                  file=sys.stderr, flush=True)
        if args.max_seconds is not None and time.perf_counter() - t0 > args.max_seconds:
            for p in procs:
                p.terminate()
            stopped = True
            break
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None) and not stopped]
    compute_s = time.perf_counter() - t_start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu_s = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    from sgnas.signals.table import write_scores

    scores = {n: c.load() for n, c in caches.items()}
    have = [c for c in cells if all(str(c) in scores[n] for n in names)]
    complete = len(have) == len(cells)
    files: dict[str, str] = {}
    if complete:
        columns = {n: np.array([scores[n][str(c)] for c in cells]) for n in names}
        if args.format in ("per-proxy", "both"):
            for n in names:
                path = out / f"{n}.csv"
                write_scores(path, cells, columns[n], force=True)
                files[n] = str(path)
        if args.format in ("wide", "both"):
            path = out / "nb201_proxies.csv"
            _write_wide(path, cells, columns)
            files = {n: files.get(n, str(path)) for n in names}
            files["wide"] = str(path)
    result = {
        "ok": complete and not failed, "cells": len(cells), "scored": len(have),
        "computed_now": len(have) - base_done, "classes_computed_now": len(reps),
        "proxies": names, "batch_size": int(x.shape[0]), "seed": args.seed,
        "data": ("random" if args.random_data else args.minibatch or str(args.data)),
        "data_sha": data_hash(x, y), "device": args.device,
        "workers": workers, "threads_per_worker": args.threads, "setup_s": round(t_setup, 1),
        "compute_s": round(compute_s, 1), "workers_cpu_s": round(workers_cpu_s, 1), "wall_s": round(time.perf_counter() - t0, 1),
        "stopped_at_max_seconds": stopped, "worker_failures": failed, "files": files,
        "cache_dir": str(cache_dir), "load_avg": list(os.getloadavg()),
        "sample": args.sample if args.cells != "all" else "all",
    }
    if complete and args.bench:
        try:
            result["ranking"] = ranking(files, cells, args.bench)
        except SgnasError as exc:
            result["ranking"] = {"error": str(exc)}
    from sgnas.fileio import atomic_write_json

    atomic_write_json(out / "summary.json", result)
    print(json.dumps(result))
    return 0 if result["ok"] or stopped else 1


if __name__ == "__main__":
    sys.exit(main())
