"""Training one device-conditioned generator over many devices' per-cell tables.

Each step draws ``cost_samples`` (device, normalized target) pairs: a device of the training set
uniformly, a target uniformly in its own interval ``[C_L, C_H]`` (p1..p99 of its table). The
generator sees the target's position in the interval, the nearest prior and the device's
embedding (:func:`sgnas.shared_generator.device_features` of its reference cells). The cost loss
is the relative error of the exact expected latency on that device's table (a contraction over
all cells, :meth:`~sgnas.costs.CellTableCost.expected_probs`), weighted ``overshoot_weight`` above
the target; the accuracy signal is the frozen supernet's cross-entropy on the first pair's
straight-through hard Gumbel cell (gated single path, batch-statistics BN; BN buffers restored
afterwards). With one device and ``device_input=False`` this is a per-device generator of the
same network and budget.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import asdict
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SgnasError
from ..generator import GeneratorConfig, make_prior_pool, target_interval
from ..shared_generator import (
    DeviceConditionedGenerator,
    SharedBundle,
    choose_references,
    device_features,
    save_shared,
)
from .configs import SharedTrainConfig  # noqa: F401 (re-exported)
from .generator import accuracy_forward, cost_loss, st_gumbel


def _device_entry(cost) -> dict:
    lut = getattr(cost, "lut", None)
    return {"name": lut.device_name if lut is not None else cost.name,
            "lut_fingerprint": cost.fingerprint}


def train_shared_generator(supernet, costs: Sequence, batches: Iterable | None,
                           cfg: SharedTrainConfig, references: Sequence | None = None,
                           features: np.ndarray | None = None, out: str | os.PathLike | None = None,
                           gen_cfg: GeneratorConfig | None = None, supernet_info: dict | None = None,
                           log=None) -> SharedBundle:
    """Train a :class:`~sgnas.shared_generator.SharedBundle` on ``costs`` (per-cell
    :class:`~sgnas.costs.CellTableCost` s of one space; latency ones need their ``lut``).

    ``batches`` yields ``(x, y)`` for the accuracy term (``None`` or ``ce_weight=0``: cost only);
    ``features`` overrides the per-device embeddings ``(len(costs), R)`` (default: from each
    cost's table at ``references``). Writes ``out`` when given."""
    if not costs:
        raise SgnasError("train_shared_generator needs at least one device table")
    space = costs[0].space
    if any(c.space.fingerprint != space.fingerprint for c in costs) or \
            supernet.space.fingerprint != space.fingerprint:
        raise SgnasError("the device tables and the supernet must be of one space")
    rng = np.random.default_rng(cfg.seed)
    tgen = torch.Generator().manual_seed(cfg.seed)
    refs = list(references) if references is not None else choose_references(space, cfg.num_refs)
    ref_idx = tuple(np.stack([space.indices_of(c) for c in refs], axis=1))
    if features is None:
        features = device_features(np.stack([c.table[ref_idx] for c in costs]))
    feats = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    intervals = np.array([target_interval(c) for c in costs])
    tables = torch.as_tensor(np.stack([c.values() for c in costs]), dtype=torch.float32)

    from ..costs import make_cost

    flops = make_cost("flops", space)
    gen_cfg = gen_cfg or GeneratorConfig()
    priors = make_prior_pool(space, flops, gen_cfg.num_priors, rng, target_interval(flops))
    gen = DeviceConditionedGenerator(space, gen_cfg, len(refs), cfg.device_input, generator=tgen)
    opt = torch.optim.Adam(gen.parameters(), lr=cfg.lr)
    saved = [b.detach().clone() for b in supernet.buffers()]
    flags = [p.requires_grad for p in supernet.parameters()]
    supernet.requires_grad_(False)
    supernet.train()
    stream = itertools.cycle(batches) if batches is not None and cfg.ce_weight > 0 else None
    t0 = time.perf_counter()
    history = []
    try:
        for step in range(cfg.steps):
            dev = rng.integers(len(costs), size=cfg.cost_samples)
            c = torch.as_tensor(rng.uniform(0.0, 1.0, size=cfg.cost_samples), dtype=torch.float32)
            lo = torch.as_tensor(intervals[dev, 0], dtype=torch.float32)
            hi = torch.as_tensor(intervals[dev, 1], dtype=torch.float32)
            targets = lo + c * (hi - lo)
            logits = gen(c, priors.select(c), feats[dev])
            p = torch.softmax(logits, dim=-1)
            full = torch.einsum("za,zb,zc,zd,ze,zf->zabcdef", *p.unbind(1)).reshape(len(dev), -1)
            expected = (full * tables[dev]).sum(dim=1)
            lc = cost_loss(expected, targets, cfg.overshoot_weight).mean()
            loss = cfg.cost_weight * lc
            ce = torch.zeros(())
            if stream is not None:
                x, y = next(stream)[:2]
                onehot = st_gumbel(logits[0], cfg.tau(step), tgen)
                ce = F.cross_entropy(accuracy_forward(supernet, x, onehot, None), y)
                loss = loss + cfg.ce_weight * ce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            rel = ((expected.detach() - targets) / targets).abs().mean().item()
            history.append((ce.item(), lc.item(), rel))
            if log is not None and (step + 1) % max(cfg.steps // 10, 1) == 0:
                h = np.mean(history[-max(cfg.steps // 10, 1):], axis=0)
                log(f"step {step + 1}/{cfg.steps}: ce {h[0]:.3f} cost-loss {h[1]:.4f} "
                    f"expected-cost error {100 * h[2]:.1f}% ({time.perf_counter() - t0:.0f} s)")
    finally:
        with torch.no_grad():
            for b, s in zip(supernet.buffers(), saved):
                b.copy_(s)
        for prm, flag in zip(supernet.parameters(), flags):
            prm.requires_grad_(flag)
        supernet.eval()
    gen.eval()
    bundle = SharedBundle(space, gen, priors, refs, [_device_entry(c) for c in costs],
                          {"supernet": dict(supernet_info or {}), "train_config": asdict(cfg),
                           "wall_time_s": round(time.perf_counter() - t0, 1)})
    if out is not None:
        save_shared(out, bundle)
        bundle.path = str(out)
    return bundle


def held_out_batches(meta: dict, data: str, batch_size: int = 16, images: int = 512,
                     cache_dir: str | None = None, seed: int = 0) -> list:
    """``images`` images of the supernet's held-out split (its checkpoint metadata reproduces the
    split), as a list of ``(x, y)`` batches of ``batch_size``."""
    from ..evaluation.data import build_datasets, supernet_data_config

    from ..space import get_space

    cfg = supernet_data_config(meta, data, batch_size=batch_size, workers=0, cache_dir=cache_dir)
    held = build_datasets(cfg, get_space(meta.get("space", "nb201"))).held_out
    if len(held) < batch_size:
        raise SgnasError(f"the held-out split has {len(held)} images, fewer than one batch")
    order = np.random.default_rng(seed).permutation(len(held))[:images]
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(held, order.tolist()),
                                         batch_size=batch_size, shuffle=False, drop_last=True)
    return [(x, y) for x, y, *_ in loader]
