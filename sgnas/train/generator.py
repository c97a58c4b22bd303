"""Training the architecture generator against a frozen supernet (SGNAS Algorithm 1).

Each step: draw normalized targets ``c`` uniformly in [0, 1] (the interval [C_L, C_H], by default
the p1..p99 cost of forced-sampling architectures), take the nearest random priors, compute the
generator's candidate logits, and

* **accuracy signal**: draw one architecture from the first target's distribution with a
  straight-through hard Gumbel-softmax (the forward pass is a real canonical sub-network; the
  gradient is the soft relaxation's), map each decision's one-hot candidate to its canonical
  sub-block assignment (sorted kernels in sub-blocks 0..e-1) and run the frozen supernet on it with
  **batch statistics** in BN (``relaxation="path"``: the sampled sub-network with each layer gated
  by its straight-through entry; ``"weighted"``: the supernet's weighted forward) (the stored statistics rank sub-networks wrongly). BN buffers are
  restored when training ends;
* **cost loss**: the exact expected cost of every target's distribution (costs are additive over
  decisions), as a relative error ``r = (E[cost] - T) / T`` with weight ``overshoot_weight`` when
  ``r > 0``: ``L_C = mean(w r^2)``.

``loss = CE + lambda * L_C``; the gradient norms of the two terms are logged per epoch.

After each epoch the generator is scored on held-out batches it never trains on: for
``eval_targets`` targets evenly spread over the interval, the exactly decoded architecture
(:mod:`sgnas.decode`, window ``eps``) is run single-path with batch statistics; the mean CE is the
selection criterion. The argmax architectures' cost tracking (mean/max relative error, Kendall
tau) is logged too. The run directory holds ``last.pt`` (resumable), ``best.pt`` (lowest held-out
CE) and ``log.jsonl``.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SgnasError, SpaceMismatchError
from ..generator import (
    GENERATOR_KIND,
    ArchitectureGenerator,
    GeneratorBundle,
    GeneratorConfig,
    arch_from_indices,
    bundle_from_checkpoint,
    check_generator_version,
    decisions,
    make_prior_pool,
    save_generator,
    target_interval,
)
from ..metrics import kendall_tau
from .configs import RELAXATIONS, GeneratorTrainConfig  # noqa: F401 (re-exported)
from .run import RunDir

#: The files of a generator run directory.
LAST, BEST, LOG = "last.pt", "best.pt", "log.jsonl"

__all__ = [
    "GeneratorLoaders",
    "GeneratorTrainConfig",
    "GeneratorTrainer",
    "GeneratorTrainResult",
    "canonical_subblocks",
    "cost_loss",
    "evaluate_generator",
    "kendall_tau",
    "st_gumbel",
    "supernet_identity",
    "train_generator",
]


#: ``path``: the sampled sub-network only, gated (cheap, CPU); ``weighted``: the supernet's
#: weighted forward of the straight-through one-hot (every candidate gets a gradient; ~3x the cost).


@dataclass
class GeneratorLoaders:
    """``search`` yields the ``(x, y)`` batches the generator trains on (re-iterated every epoch);
    ``val`` the held-out batches of the selection criterion (disjoint from ``search``)."""

    search: Iterable
    val: Iterable | None = None


@dataclass
class GeneratorTrainResult:
    """The trained generator (last epoch), the per-epoch history and the run's files."""

    bundle: GeneratorBundle
    history: list[dict] = field(default_factory=list)
    last: Path | None = None
    best: Path | None = None


# ----------------------------------------------------------------------------- pieces
class _StraightThrough(torch.autograd.Function):
    """Forward the exact ``hard`` tensor, pass the gradient to ``soft``."""

    @staticmethod
    def forward(ctx, soft: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return hard.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad, None


def st_gumbel(logits: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """Straight-through hard Gumbel-softmax over the last dim: an exact one-hot forward, the soft
    relaxation's gradient."""
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float32)
    u = u.clamp_(torch.finfo(torch.float32).tiny, 1.0 - 1e-7).to(logits.device, logits.dtype)
    soft = torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=-1)
    hard = F.one_hot(soft.argmax(dim=-1), soft.shape[-1]).to(soft.dtype)
    return _StraightThrough.apply(soft, hard)


def canonical_subblocks(space) -> torch.Tensor:
    """``(K, max_expansion, 4)``: the canonical one-hot sub-block assignment of each configuration
    (its sorted kernels in sub-blocks 0..e-1, skips after), as the supernet's weighted forward takes."""
    from ..space import Architecture

    out = []
    for config in space.configs:
        arch = Architecture(space.name, (config,) * space.num_layers)
        out.append(space.one_hot(arch)[0])
    return torch.from_numpy(np.stack(out))


def gated_path_forward(supernet, x: torch.Tensor, onehot: torch.Tensor,
                       subblocks: torch.Tensor) -> torch.Tensor:
    """Single-path forward of the architecture ``onehot`` ``(D, K)`` picks, each layer's output
    (its residual branch, for residual layers) scaled by the picked entry (1 forward, so the
    output is the sub-network's): the gradient reaches the picked candidates' logits only."""
    picked = onehot.detach().argmax(dim=-1)
    gates = onehot.gather(1, picked[:, None]).squeeze(1)
    choices = subblocks[picked].argmax(dim=-1).tolist()  # (D, m) canonical sub-block choices
    h = supernet.stem(x)
    for block, row, g in zip(supernet.layers, choices, gates):
        o = block(h, row)
        h = h + g * (o - h) if block.layer.residual else g * o
    return supernet.head(h)


def accuracy_forward(supernet, x: torch.Tensor, onehot: torch.Tensor,
                     subblocks: torch.Tensor | None, relaxation: str = "path") -> torch.Tensor:
    """The supernet's logits for the architecture a straight-through ``onehot`` ``(D, K)`` picks:
    ``path`` the gated single path (:func:`gated_path_forward`, or the supernet's own
    ``forward_gated`` when ``subblocks`` is ``None``), ``weighted`` the weighted forward."""
    if relaxation == "weighted":
        probs = onehot if subblocks is None else torch.einsum("dk,kmc->dmc", onehot, subblocks)
        return supernet.forward_weighted(x, probs)
    if subblocks is None:
        return supernet.forward_gated(x, onehot)
    return gated_path_forward(supernet, x, onehot, subblocks)


def cost_loss(expected: torch.Tensor, target: torch.Tensor, overshoot_weight: float) -> torch.Tensor:
    """Per-target ``w r^2`` with ``r = (expected - target) / target``, ``w = overshoot_weight``
    above the target and 1 below."""
    r = (expected - target) / target
    w = torch.where(r > 0, torch.full_like(r, overshoot_weight), torch.ones_like(r))
    return w * r.square()


def eval_targets(interval: tuple[float, float], n: int) -> np.ndarray:
    """``n`` targets evenly spread inside ``interval`` (cost units)."""
    lo, hi = interval
    return lo + (hi - lo) * (np.arange(n) + 0.5) / n


def evaluate_generator(bundle: GeneratorBundle, cost, targets: Sequence[float]) -> dict:
    """Cost tracking of the argmax architectures at ``targets`` (cost units): generated costs,
    architectures, Kendall tau, mean/max relative error in percent."""
    targets = np.asarray([float(t) for t in targets])
    archs = bundle.argmax(targets, cost)
    generated = np.array([cost.exact(a) for a in archs])
    rel = (generated - targets) / targets * 100.0
    return {
        "targets": targets.tolist(),
        "generated": generated.tolist(),
        "archs": [str(a) for a in archs],
        "kendall_tau": kendall_tau(targets, generated),
        "mean_pct_error": float(np.abs(rel).mean()),
        "max_pct_error": float(np.abs(rel).max()),
        "mean_signed_pct_error": float(rel.mean()),
    }


def supernet_identity(path: str | os.PathLike | None, meta: dict | None = None) -> dict:
    """Identity of a supernet checkpoint for the generator's record: path, SHA-256 of the file,
    space fingerprint and epoch/run id from its metadata when present."""
    info: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        info["path"] = str(path)
        info["sha256"] = h.hexdigest()
    for key in ("space", "space_fingerprint", "epoch", "run_id", "created"):
        value = (meta or {}).get(key)
        if isinstance(value, (str, int, float)):
            info[key] = value
    return info


def _grad_norm(grads: Sequence[torch.Tensor | None]) -> float:
    return float(math.sqrt(sum(float(g.detach().square().sum()) for g in grads if g is not None)))


# ---------------------------------------------------------------------------- the trainer
class GeneratorTrainer:
    """Trains a generator for ``cost`` against a frozen ``supernet`` in run directory ``run_dir``.

    ``run()`` does every epoch; the pieces (``prepare``, ``train_epoch``, ``validate``, ``save``)
    are separate so a shared run scaffolding can drive them.
    """

    def __init__(self, supernet: torch.nn.Module, cost, loaders: GeneratorLoaders,
                 cfg: GeneratorTrainConfig, run_dir: str | os.PathLike,
                 gen_cfg: GeneratorConfig | None = None, supernet_info: dict | None = None,
                 resume: bool = False, force: bool = False) -> None:
        from ..evaluation.distributed import resolve_device

        if supernet.space.fingerprint != cost.space.fingerprint:
            raise SpaceMismatchError(
                f"supernet is for space {supernet.space.name!r} ({supernet.space.fingerprint}), "
                f"cost for {cost.space.name!r} ({cost.space.fingerprint})")
        self.supernet, self.cost, self.loaders, self.cfg = supernet, cost, loaders, cfg
        self.space = cost.space
        self.run_dir = Path(run_dir)
        self.run_files = RunDir(self.run_dir, (LAST, BEST, LOG), (LAST,), GENERATOR_KIND)
        self.gen_cfg = gen_cfg or GeneratorConfig()
        self.supernet_info = dict(supernet_info or {})
        self.resume, self.force = resume, force
        self.device = resolve_device(cfg.device)
        self.history: list[dict] = []
        self.start_epoch = 0
        self.wall_before = 0.0
        self.best_score = float("inf")
        self._t_run = time.perf_counter()

    # ------------------------------------------------------------------ run directory
    @property
    def last_path(self) -> Path:
        return self.run_files.file(LAST)

    @property
    def best_path(self) -> Path:
        return self.run_files.file(BEST)

    def prepare(self) -> None:
        """A new run or, with ``resume``, the state of ``last.pt`` (the refuse / resume / force
        rule of :class:`~sgnas.train.run.RunDir`)."""
        cfg = self.cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.tgen = torch.Generator().manual_seed(cfg.seed)
        opt_state = None
        ckpt = self.run_files.open(self.resume, self.force)
        if ckpt is not None:
            opt_state = self._load_last(check_generator_version(ckpt, self.last_path))
        else:
            interval = cfg.interval or target_interval(self.cost, seed=cfg.seed)
            self.cfg.interval = interval
            priors = make_prior_pool(self.space, self.cost, self.gen_cfg.num_priors, self.rng,
                                     interval, steps=cfg.prior_search_steps)
            generator = ArchitectureGenerator(self.space, self.gen_cfg, generator=self.tgen)
            meta = {"supernet": self.supernet_info}
            if getattr(self.cost, "lut_fingerprint", None) is not None:
                meta["lut_fingerprint"] = self.cost.lut_fingerprint
            self.bundle = GeneratorBundle(self.space, generator, priors, self.cost.describe(),
                                          interval, meta)
        self.generator = self.bundle.generator.to(self.device)
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.cfg.lr,
                                          weight_decay=self.cfg.weight_decay)
        if opt_state is not None:
            self.optimizer.load_state_dict(opt_state)
        # a supernet with its own gated path (a cell space) takes the per-decision one-hot as is
        self.subblocks = (None if hasattr(self.supernet, "forward_gated")
                          else canonical_subblocks(self.space).to(self.device))
        self.priors = torch.as_tensor(self.bundle.priors.choices, device=self.device)

    def _load_last(self, ckpt: dict) -> dict | None:
        self.bundle = bundle_from_checkpoint(ckpt, str(self.last_path))
        self.bundle.check_cost(self.cost)
        old_sha = ckpt.get("meta", {}).get("supernet", {}).get("sha256")
        new_sha = self.supernet_info.get("sha256")
        if old_sha and new_sha and old_sha != new_sha:
            raise SgnasError(f"{self.last_path} was trained against another supernet "
                             f"(sha256 {old_sha[:12]}, given {new_sha[:12]})")
        self.cfg = GeneratorTrainConfig.from_dict({**ckpt.get("train_config", {}),
                                                   "epochs": self.cfg.epochs,
                                                   "device": self.cfg.device,
                                                   "progress": self.cfg.progress})
        self.start_epoch = int(ckpt["epoch"]) + 1
        self.wall_before = float(ckpt.get("wall_time_s", 0.0))
        self.history = list(ckpt.get("history", []))
        self.best_score = float(ckpt.get("best_score", float("inf")))
        rng_state = ckpt.get("rng", {})
        if "numpy" in rng_state:
            self.rng.bit_generator.state = rng_state["numpy"]
        if "torch" in rng_state:
            self.tgen.set_state(rng_state["torch"])
        return ckpt.get("optimizer")

    # ------------------------------------------------------------------------- steps
    def expected_cost(self, logits: torch.Tensor) -> torch.Tensor:
        """Exact expected (calibrated) cost per row of ``logits`` ``(B, D, K)``."""
        return self.cost.expected_probs(torch.softmax(logits, dim=-1))

    def step(self, x: torch.Tensor, y: torch.Tensor, tau: float) -> dict:
        """One optimizer step; returns the step's scalars."""
        cfg, (lo, hi) = self.cfg, self.cfg.interval
        c = torch.as_tensor(self.rng.uniform(0.0, 1.0, size=cfg.cost_samples),
                            dtype=torch.float32, device=self.device)
        targets = lo + c * (hi - lo)
        prior = self.priors[self.bundle.priors.nearest(c.cpu()).to(self.device)]
        logits = self.generator(c, prior)
        onehot = st_gumbel(logits[0], tau, self.tgen)  # (D, K), one-hot forward
        ce = F.cross_entropy(accuracy_forward(self.supernet, x, onehot, self.subblocks,
                                              cfg.relaxation), y)
        expected = self.expected_cost(logits)
        lc = cost_loss(expected, targets, cfg.overshoot_weight).mean()
        params = [p for p in self.generator.parameters() if p.requires_grad]
        g_ce = torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True)
        g_lc = torch.autograd.grad(cfg.cost_weight * lc, params, allow_unused=True)
        self.optimizer.zero_grad(set_to_none=True)
        for p, a, b in zip(params, g_ce, g_lc):
            parts = [g for g in (a, b) if g is not None]
            p.grad = sum(parts) if parts else None
        self.optimizer.step()
        rel = ((expected.detach() - targets) / targets).abs().mean()
        return {"ce": ce.item(), "cost_loss": lc.item(), "grad_norm_ce": _grad_norm(g_ce),
                "grad_norm_cost": _grad_norm(g_lc), "expected_cost_rel_error": rel.item()}

    def train_epoch(self, epoch: int) -> dict:
        """One pass over ``loaders.search`` (at most ``batches_per_epoch``); mean step scalars."""
        from .trainlog import Progress

        cfg = self.cfg
        self.generator.train()
        self.supernet.train()  # BN on batch statistics; parameters are frozen
        total = cfg.batches_per_epoch
        if total is None:
            try:
                total = len(self.loaders.search)  # type: ignore[arg-type]
            except TypeError:
                total = 0
        bar = Progress(total, f"generator {epoch + 1}/{cfg.epochs}", enabled=cfg.progress)
        sums: dict[str, float] = {}
        steps = 0
        for batch in self.loaders.search:
            if cfg.batches_per_epoch is not None and steps >= cfg.batches_per_epoch:
                break
            x, y = batch[0].to(self.device), batch[1].to(self.device)
            out = self.step(x, y, cfg.tau(epoch))
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
            bar.update(1, ce=f"{out['ce']:.3f}", lc=f"{out['cost_loss']:.4f}")
        bar.close()
        if steps == 0:
            raise SgnasError("the search loader yielded no batches (is the held-out split empty?)")
        return {"steps": steps, **{k: v / steps for k, v in sums.items()}}

    @torch.no_grad()
    def validate(self) -> dict:
        """Held-out criterion (mean CE of the decoded architectures, batch-statistics BN) and the
        argmax architectures' cost tracking."""
        cfg = self.cfg
        self.generator.eval()
        targets = eval_targets(cfg.interval, cfg.eval_targets)
        out = evaluate_generator(self.bundle, self.cost, targets)
        if self.loaders.val is None or cfg.eval_batches <= 0:
            return out
        self.supernet.train()
        decoded, ces = [], []
        batches = [b for _, b in zip(range(cfg.eval_batches), self.loaders.val)]
        for t in targets:
            arch, _ = self.bundle.decode(float(t), self.cost, cfg.eps)
            decoded.append(str(arch))
            losses = [F.cross_entropy(self.supernet(x.to(self.device), arch),
                                      y.to(self.device)).item() for x, y, *_ in batches]
            ces.append(float(np.mean(losses)))
        out.update(decoded_archs=decoded, val_ce=ces, val_ce_mean=float(np.mean(ces)))
        return out

    def save(self, epoch: int, record: dict) -> None:
        """``last.pt`` every epoch; ``best.pt`` when the held-out criterion improves."""
        score = record.get("val_ce_mean", record.get("mean_pct_error", float("inf")))
        improved = score < self.best_score
        if improved:
            self.best_score = score
        state = dict(
            train_config=_plain_cfg(self.cfg), epoch=epoch, history=self.history,
            best_score=self.best_score, optimizer=self.optimizer.state_dict(),
            rng={"numpy": self.rng.bit_generator.state, "torch": self.tgen.get_state()},
            wall_time_s=round(self.wall_before + time.perf_counter() - self._t_run, 3))
        save_generator(self.last_path, self.bundle, **state)
        if improved:
            save_generator(self.best_path, self.bundle, **state)
        record["best"] = improved

    # ------------------------------------------------------------------------ the run
    def run(self) -> GeneratorTrainResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self.run_files.remove_replaced()
        saved = [b.detach().clone() for b in self.supernet.buffers()]
        flags = [p.requires_grad for p in self.supernet.parameters()]
        self.supernet.to(self.device).requires_grad_(False)
        log = self.run_files.log(LOG)
        if self.start_epoch > 0:
            log.write("resume", epoch=self.start_epoch)
        else:
            log.write("start", space=self.space.name, cost=self.cost.describe(),
                      interval=list(self.cfg.interval), train_config=_plain_cfg(self.cfg),
                      generator_config=asdict(self.generator.cfg), priors=[
                          {"arch": str(a), "level": float(v)} for a, v in
                          zip(self.bundle.priors.architectures(self.space),
                              self.bundle.priors.levels)])
        try:
            for epoch in range(self.start_epoch, self.cfg.epochs):
                t0 = time.perf_counter()
                record = {"epoch": epoch, "tau": self.cfg.tau(epoch), **self.train_epoch(epoch)}
                record["train_s"] = round(time.perf_counter() - t0, 3)
                record.update(self.validate())
                self.history.append(record)
                self.save(epoch, record)
                log.write("epoch", **record)
                if self.cfg.progress:
                    _print_epoch(record, self.cost.unit)
            log.write("done", path=str(self.run_dir), epochs=self.cfg.epochs)
        finally:
            log.close()
            with torch.no_grad():
                for b, s in zip(self.supernet.buffers(), saved):
                    b.copy_(s)
            for p, flag in zip(self.supernet.parameters(), flags):
                p.requires_grad_(flag)
            self.supernet.eval()
        self.generator.eval()
        return GeneratorTrainResult(self.bundle, self.history, self.last_path,
                                    self.best_path if self.best_path.exists() else None)


def train_generator(supernet, cost, loaders: GeneratorLoaders, cfg: GeneratorTrainConfig,
                    run_dir: str | os.PathLike, **kwargs: Any) -> GeneratorTrainResult:
    """Train a generator (see :class:`GeneratorTrainer`); ``kwargs`` go to its constructor."""
    return GeneratorTrainer(supernet, cost, loaders, cfg, run_dir, **kwargs).run()


def _plain_cfg(cfg: GeneratorTrainConfig) -> dict:
    d = asdict(cfg)
    d["interval"] = list(d["interval"]) if d["interval"] is not None else None
    return d


def _print_epoch(record: dict, unit: str) -> None:
    import sys

    text = (f"epoch {record['epoch']}: ce {record['ce']:.3f} cost-loss {record['cost_loss']:.4f} "
            f"|g_ce| {record['grad_norm_ce']:.3g} |g_cost| {record['grad_norm_cost']:.3g} "
            f"argmax error mean {record['mean_pct_error']:.2f}% max {record['max_pct_error']:.2f}%"
            f" tau {record['kendall_tau']:.3f}")
    if "val_ce_mean" in record:
        text += f" val-ce {record['val_ce_mean']:.3f}" + (" (best)" if record.get("best") else "")
    print(text, file=sys.stderr)
