"""A new device from k measured cells, against NAS-Bench-201 ground truth (one JSON line).

Leave whole hardware generations out in turn (groups defined from ``latency.csv``'s 23 device
columns): all Turing GPUs (``2080ti_*``, ``titan_rtx_*``), all Xeons (``gold_*``, ``silver_*``),
all phones (``pixel*``, ``essential_ph_*``, ``samsung_*``). For each group the latency basis
(:func:`sgnas.lut_predict.build_basis`) is built from the *other* devices only; each held-out
device then measures only ``k`` cells (``--design``: half spread over FLOPs and half D-optimal
for the basis, all D-optimal, or one random cell per FLOPs stratum; ``--seeds`` draws of which
cells) and its whole table is predicted from them
(:func:`sgnas.lut_predict.predict_table`). Reported per k, mean over held-out devices:

* Spearman of the predicted table against the device's true table (all cells; connected cells);
* the predictor's cross-validated error (stored in a predicted LUT) beside its true error;
* at the p10/p25/p50/p75/p90 targets of the true table (connected cells): the signal-driven
  pick -- the connected cell of highest ``--score`` whose upper bound ``predicted + z u``
  meets T (the per-cell margin of :mod:`sgnas.margin`; of tied cells the lowest bound) -- its
  true constraint satisfaction and its regret against the oracle (best connected cell with true
  latency <= T, ``cifar10_test_acc``), beside the same pick on the full measured table (tie:
  lowest latency), the same pick without the margin, a uniform pick in the decoding window
  ``[0.99 T, T]`` of the bounds (and of the full table), the largest feasible connected cell
  by FLOPs on the full table (a tie counts as the mean over the tie, the search-quality
  protocol) and the oracle. Disconnected cells are never chosen.
* ``verify`` (``--verify M``): what a deployment engineer does next -- pick without a margin,
  measure the pick, and if it misses, add it to the measured cells, predict again and re-pick
  (at most M extra measurements per target; then the margin pick).

Usage::

    python scripts/bench_zero_shot.py [--bench ../shared/data/nasbench201] [--ks 10 20 50]
        [--seeds 3] [--design mixed] [--score flops|table:SCORES.csv] [--confidence 0.99]

numpy only; a few minutes on one CPU core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgnas.errors import SgnasError  # noqa: E402
from sgnas.lut_predict import build_basis, design_cells, predict_table  # noqa: E402
from sgnas.margin import DEFAULT_CONFIDENCE, guarded  # noqa: E402
from sgnas.metrics import spearman  # noqa: E402

GROUPS = {"turing": ("2080ti_", "titan_rtx_"), "xeon": ("gold_", "silver_"),
          "phone": ("pixel", "essential_ph", "samsung_")}
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
WINDOW = 0.01


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default=None, help="folder with nb201.csv and latency.csv")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--design", choices=["mixed", "dopt", "spread"], default="mixed",
                   help="which cells a new device measures: mixed (default, "
                        "sgnas.lut_predict.design_cells: half spread over FLOPs, half D-optimal), "
                        "dopt (all D-optimal) or spread (one random cell per FLOPs stratum)")
    p.add_argument("--score", default="flops",
                   help="signal of the pick: flops, or table:PATH[:COLUMN] (a CSV arch_str,score; "
                        "COLUMN: another column than score)")
    p.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE)
    p.add_argument("--groups", nargs="+", default=list(GROUPS), choices=list(GROUPS))
    p.add_argument("--per-device", action="store_true", help="add per-device rows to the JSON")
    p.add_argument("--verify", type=int, default=3, metavar="M",
                   help="also report the pick that measures its choice and re-predicts, at most M "
                        "extra measurements per target (0: off)")
    return p.parse_args(argv)


def load(bench: str | None, score: str):
    from sgnas.nb201.bench import GROUND_TRUTH, LATENCY, bench_file, read_cell_table
    from sgnas.nb201.cost import flops_table
    from sgnas.nb201.groundtruth import CIFAR10_TEST, connected_mask, latency_devices

    devices = latency_devices(bench)
    lat_t = read_cell_table(bench_file(LATENCY, bench), [d + "_ms" for d in devices])
    codes = lat_t.codes()
    lat = {}
    for d in devices:
        col = np.empty(len(codes))
        col[codes] = lat_t.columns[d + "_ms"]
        lat[d] = col
    gt = read_cell_table(bench_file(GROUND_TRUTH, bench), [CIFAR10_TEST])
    acc = np.empty(len(codes))
    acc[gt.codes()] = gt.columns[CIFAR10_TEST]
    flops = flops_table().reshape(-1)
    if score == "flops":
        sc = flops
    elif score.startswith("table:"):
        spec, column = score[len("table:"):], "score"
        if ":" in spec and not Path(spec).is_file():
            spec, column = spec.rsplit(":", 1)
        t = read_cell_table(spec, [column])
        sc = t.by_code(column).reshape(-1)
    else:
        raise SgnasError(f"--score {score!r}: want flops or table:PATH[:COLUMN]")
    return lat, acc, flops, sc, connected_mask().reshape(-1)


def groups_of(devices) -> dict[str, list[str]]:
    out = {g: [d for d in devices if d.startswith(prefixes)] for g, prefixes in GROUPS.items()}
    for g, members in out.items():
        if not members:
            raise SgnasError(f"no device of group {g} in latency.csv")
    return out


def spread_cells(flops: np.ndarray, conn: np.ndarray, k: int, seed: int) -> np.ndarray:
    """One random connected cell per FLOPs stratum (k strata)."""
    rng = np.random.default_rng(seed)
    cells = np.flatnonzero(conn)
    order = cells[np.lexsort((rng.random(len(cells)), flops[cells]))]
    edges = np.linspace(0, len(order), k + 1).astype(int)
    return np.array([order[rng.integers(edges[i], edges[i + 1])] for i in range(k)])


def top_pick(mask: np.ndarray, score: np.ndarray, tie: np.ndarray | None = None) -> np.ndarray:
    """The cells of ``mask`` with the highest score: all of a tie, or with ``tie`` the one of
    them with the lowest ``tie`` value (the search's rule: the safest of equals)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return idx
    s = score[idx]
    idx = idx[s == s.max()]
    return idx if tie is None else idx[[int(np.argmin(tie[idx]))]]


def judge(picks: np.ndarray, truth: np.ndarray, acc: np.ndarray, target: float,
          oracle: float) -> tuple[float, float]:
    """(share of the picks whose true latency meets the target, mean regret); an empty pick
    (nothing predicted feasible) counts as a miss with the regret of the worst connected cell."""
    if picks.size == 0:
        return 0.0, float("nan")
    return float(np.mean(truth[picks] <= target)), float(oracle - acc[picks].mean())


def verify_pick(basis, cells, truth, conn, score, target, confidence, budget):
    """The deployment engineer's loop: pick on the predicted table without a margin, measure the
    pick; if it misses the target, add it to the measured cells, predict again and re-pick, at
    most ``budget`` measurements; then (if still unmeasured or missing) the margin pick of the
    last prediction. Returns (pick, measurements spent)."""
    cells = list(cells)
    pred = predict_table(basis, cells, truth[cells])
    for spent in range(budget + 1):
        p = pred.latency_ms
        pick = top_pick(conn & (p <= target), score, p)
        if pick.size and pick[0] in cells:  # measured, so within the target
            return pick, spent
        if pick.size == 0 or spent == budget:
            break
        cells.append(int(pick[0]))
        if truth[pick[0]] <= target:
            return pick, spent + 1
        pred = predict_table(basis, cells, truth[cells])
    bound = guarded(pred.latency_ms, pred.uncertainty_ms, confidence)
    return top_pick(conn & (bound <= target), score, bound), budget


def run(args) -> dict:
    t0 = time.perf_counter()
    lat, acc, flops, score, conn = load(args.bench, args.score)
    groups = {g: m for g, m in groups_of(list(lat)).items() if g in args.groups}
    rows, dev_rows = [], []
    for g, held in groups.items():
        basis = build_basis({d: t for d, t in lat.items() if d not in held},
                            source="bench: devices outside " + g)
        for dev in held:
            truth = lat[dev]
            targets = np.quantile(truth[conn], QUANTILES, method="lower")
            full = {}
            for q, t in zip(QUANTILES, targets):
                feas = conn & (truth <= t)
                oracle = float(acc[feas].max())
                win = feas & (truth >= (1 - WINDOW) * t)
                full[q] = {"oracle": oracle,
                           "full": judge(top_pick(feas, score, truth), truth, acc, t, oracle),
                           "full_tie_mean": judge(top_pick(feas, score), truth, acc, t, oracle),
                           "largest_flops": judge(top_pick(feas, flops), truth, acc, t, oracle),
                           "uniform_full": judge(np.flatnonzero(win), truth, acc, t, oracle)}
            for k in args.ks:
                for seed in range(args.seeds):
                    cells = (spread_cells(flops, conn, k, seed) if args.design == "spread" else
                             design_cells(basis, k, seed, mask=conn,
                                          spread=flops if args.design == "mixed" else None))
                    pred = predict_table(basis, cells, truth[cells])
                    p = pred.latency_ms
                    other = conn.copy()  # error on the connected cells not measured
                    other[cells] = False
                    rel = np.abs(p[other] - truth[other]) / truth[other]
                    row = {"group": g, "device": dev, "k": k, "seed": seed,
                           "spearman": spearman(p, truth),
                           "spearman_connected": spearman(p[conn], truth[conn]),
                           "cv_rmse_rel": pred.cv["rmse_rel"],
                           "true_rmse_rel": float(np.sqrt(np.mean(rel ** 2))),
                           "true_mape": float(100 * rel.mean()),
                           "covered_2sigma": float(np.mean(np.abs(p[other] - truth[other])
                                                           <= 2 * pred.uncertainty_ms[other])),
                           "rank": pred.rank, "targets": []}
                    bound = guarded(p, pred.uncertainty_ms, args.confidence)
                    for q, t in zip(QUANTILES, targets):
                        f = full[q]
                        cand = conn & (bound <= t)
                        win = cand & (bound >= (1 - WINDOW) * t)
                        pick = top_pick(cand, score, bound)
                        row["targets"].append({
                            "q": q, "target_ms": float(t),
                            "margin_ms": float(bound[pick[0]] - p[pick[0]]) if pick.size else None,
                            "pred": judge(pick, truth, acc, t, f["oracle"]),
                            "pred_tie_mean": judge(top_pick(cand, score), truth, acc, t,
                                                   f["oracle"]),
                            "pred_no_margin": judge(top_pick(conn & (p <= t), score, p), truth,
                                                    acc, t, f["oracle"]),
                            "uniform_pred": judge(np.flatnonzero(win), truth, acc, t,
                                                  f["oracle"]),
                            **{name: f[name] for name in ("full", "full_tie_mean",
                                                          "largest_flops", "uniform_full")},
                            "oracle_acc": f["oracle"]})
                        if args.verify:
                            vp, spent = verify_pick(basis, cells, truth, conn, score, t,
                                                    args.confidence, args.verify)
                            row["targets"][-1]["verify"] = judge(vp, truth, acc, t, f["oracle"])
                            row["targets"][-1]["verify_measurements"] = spent
                    rows.append(row)
    return summarise(rows, args, time.perf_counter() - t0)


def _mean(values) -> float | None:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else None


def summarise(rows: list[dict], args, seconds: float) -> dict:
    methods = ("pred", "pred_tie_mean", "pred_no_margin", "uniform_pred", "full", "full_tie_mean",
               "largest_flops", "uniform_full") + (("verify",) if args.verify else ())
    out: dict = {"bench": "zero_shot", "design": args.design, "score": args.score,
                 "confidence": args.confidence, "seeds": args.seeds, "quantiles": list(QUANTILES),
                 "groups": {g: sorted({r["device"] for r in rows if r["group"] == g})
                            for g in args.groups}, "by_k": {}}
    for k in args.ks:
        rk = [r for r in rows if r["k"] == k]
        devices = sorted({r["device"] for r in rk})
        per_dev = {d: _mean(r["spearman"] for r in rk if r["device"] == d) for d in devices}
        pairs = [t for r in rk for t in r["targets"]]
        s: dict = {
            "spearman_mean": _mean(per_dev.values()),
            "spearman_min_device": min(per_dev.values()),
            "spearman_connected_mean": _mean(r["spearman_connected"] for r in rk),
            "spearman_by_group": {g: _mean(r["spearman"] for r in rk if r["group"] == g)
                                  for g in args.groups},
            "cv_rmse_rel_mean": _mean(r["cv_rmse_rel"] for r in rk),
            "true_rmse_rel_mean": _mean(r["true_rmse_rel"] for r in rk),
            "true_mape_mean": _mean(r["true_mape"] for r in rk),
            "covered_2sigma_mean": _mean(r["covered_2sigma"] for r in rk),
            "margin_rel_mean": _mean(t["margin_ms"] / t["target_ms"] for t in pairs
                                     if t["margin_ms"] is not None),
            "pairs": len(pairs),
            "met": {m: _mean(t[m][0] for t in pairs) for m in methods},
            "met_all_pairs": {m: _mean(float(t[m][0] == 1.0) for t in pairs) for m in methods},
            "regret": {m: _mean(t[m][1] for t in pairs) for m in methods},
            "empty_picks": sum(1 for t in pairs if not np.isfinite(t["pred"][1])),
            "met_by_group": {g: _mean(t["pred"][0] for r in rk if r["group"] == g
                                      for t in r["targets"]) for g in args.groups},
            "oracle_acc_mean": _mean(t["oracle_acc"] for t in pairs),
        }
        if args.verify:
            s["verify_measurements_mean"] = _mean(t["verify_measurements"] for t in pairs)
        r = s["regret"]
        s["regret_gap_pred_minus_full"] = None if r["pred"] is None else r["pred"] - r["full"]
        s["regret_gap_tie_mean"] = (None if r["pred_tie_mean"] is None
                                    else r["pred_tie_mean"] - r["full_tie_mean"])
        if args.per_device:
            s["spearman_by_device"] = per_dev
        out["by_k"][str(k)] = s
    out["seconds"] = round(seconds, 1)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        print(json.dumps(run(args)))
    except SgnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
