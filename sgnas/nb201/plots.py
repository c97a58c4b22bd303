"""Figures of NB201 searches against ground truth (matplotlib, imported lazily).

:func:`plot_fronts`: one panel per cost (FLOPs or a device's latency), every cell as a grey dot
(cost vs ground-truth accuracy), the oracle front (the best accuracy reachable at each cost), and the
cells the methods found (the paper's Fig. 5). :func:`plot_device_study`: the cross-deployment regret
matrix of :func:`~sgnas.nb201.device_study.device_study`.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

from ..errors import require
from ..fileio import atomic_write_with
from .groundtruth import CIFAR10_TEST, GroundTruth

MARKERS = {"generator": ("*", "tab:red"), "random": ("o", "tab:blue"),
           "evolution": ("^", "tab:green"), "device oracle": ("*", "tab:red"),
           "other devices' oracles": ("s", "tab:orange")}


def oracle_front(cost: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cells no cheaper cell beats: costs ascending, accuracy strictly increasing."""
    c, a = np.asarray(cost).ravel(), np.asarray(accuracy).ravel()
    order = np.lexsort((-a, c))
    best = np.maximum.accumulate(a[order])
    keep = np.r_[True, best[1:] > best[:-1]]
    return c[order][keep], best[keep]


def _pyplot():
    mpl = require("matplotlib", "tools")
    mpl.use("Agg")
    return require("matplotlib.pyplot", "tools")


def _save(fig, path: str | os.PathLike) -> None:
    atomic_write_with(path, lambda fh: fig.savefig(fh, format=str(path).rsplit(".", 1)[-1], dpi=110))


def plot_fronts(gt: GroundTruth, panels: Sequence[str], found: dict[str, list[dict[str, Any]]],
                path: str | os.PathLike, column: str = CIFAR10_TEST, ncols: int = 3,
                ylim: tuple[float, float] | None = None) -> None:
    """Write a grid of cost-vs-accuracy panels; ``found[panel]`` lists ``{"cost", "accuracy",
    "method", "target"}`` points (targets drawn as dotted vertical lines). The accuracy axis
    spans 80-95% (lower when a found point is lower) unless ``ylim`` is given."""
    plt = _pyplot()
    if ylim is None:
        lowest = min((p["accuracy"] for pts in found.values() for p in pts), default=80.0)
        ylim = (min(80.0, math.floor(lowest) - 1.0), 95.0)
    acc = gt.acc(column)
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, name in zip(axes.ravel(), panels):
        cost = gt.cost_table(name)
        ax.scatter(cost.ravel(), acc.ravel(), s=1, c="0.78", rasterized=True, label="all cells")
        fx, fy = oracle_front(cost, acc)
        ax.step(fx, fy, where="post", c="k", lw=1, label="oracle front")
        pts = found.get(name, [])
        for t in sorted({p["target"] for p in pts}):
            ax.axvline(t, c="0.5", ls=":", lw=0.7)
        for method, (marker, color) in MARKERS.items():
            sel = [p for p in pts if p["method"] == method]
            if sel:
                ax.scatter([p["cost"] for p in sel], [p["accuracy"] for p in sel], marker=marker,
                           s=30, c=color, edgecolors="k", linewidths=0.4, label=method, zorder=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(gt.cost_unit(name), fontsize=8)
        ax.set_ylabel(f"{column} (%)", fontsize=8)
        ax.set_ylim(*ylim)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_device_study(study: dict[str, Any], path: str | os.PathLike) -> None:
    """Heatmap of regret (row: device whose oracle cell is deployed; column: target device);
    cells exceeding the target's budget are hatched and marked with their latency ratio."""
    plt = _pyplot()
    devs = study["devices"]
    reg = np.array([[study["regret"][a][b] for b in devs] for a in devs])
    vio = np.array([[study["violates"][a][b] for b in devs] for a in devs])
    ratio = np.array([[study["latency_ratio"][a][b] for b in devs] for a in devs])
    shown = np.where(vio, np.nan, reg)
    fig, ax = plt.subplots(figsize=(1.1 * len(devs) + 2.5, 0.9 * len(devs) + 1.5))
    im = ax.imshow(shown, cmap="Reds", vmin=0, vmax=max(1.0, float(np.nanmax(shown))))
    for i in range(len(devs)):
        for j in range(len(devs)):
            text = f"over\nx{ratio[i, j]:.3f}" if vio[i, j] else f"{reg[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="tab:blue" if vio[i, j] else "k")
    ax.set_xticks(range(len(devs)), devs, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(devs)), devs, fontsize=8)
    ax.set_xlabel("deployed on (its own budget)")
    ax.set_ylabel("oracle cell of")
    ax.set_title(f"regret ({study['column']}, points) at each device's p{round(100 * study['quantile'])}"
                 f" latency;\n'over': budget exceeded (latency / budget)", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


__all__ = ["oracle_front", "plot_device_study", "plot_fronts"]
