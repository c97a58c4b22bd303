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

**Another accuracy signal** (``signal=``: any name of :mod:`sgnas.signals`, or a
:class:`~sgnas.signals.Signal`; default ``supernet``, the CE above, unchanged) replaces the CE term
by ``signal_weight`` times the term of :mod:`sgnas.train.reward`: for ``flops`` / ``params``, which
are additive over decisions, minus their exact expected value under the generator's distribution
(a cost table gives it, differentiably); for the others (zero-cost proxies, ``table:FILE``,
ensembles ranked against a fixed reference pool), which are neither differentiable in the logits
nor additive over layers, REINFORCE on architectures sampled from the first ``signal_samples``
targets' distributions, with the reward standardized by an exponential moving baseline
(unbiased, one score per sample, scores cached per architecture).
A proxy scores on a fixed minibatch (``signal_options["data"]``, else the first batch of
``loaders.search``). The held-out criterion is then the mean signal score of the decoded
architectures, and the checkpoint's ``meta["signal"]`` records the signal.

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
from .reward import SUPERNET, check_signal, make_objective
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
                 resume: bool = False, force: bool = False, signal: Any = None,
                 signal_options: dict | None = None) -> None:
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
        self.signal = signal
        self.signal_name = check_signal(signal)  # an unknown name fails before any work
        self.signal_options = dict(signal_options or {})
        self.objective: Any = None
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
            meta = {"supernet": self.supernet_info, "signal": {"name": self.signal_name}}
            if getattr(self.cost, "lut_fingerprint", None) is not None:
                meta["lut_fingerprint"] = self.cost.lut_fingerprint
            self.bundle = GeneratorBundle(self.space, generator, priors, self.cost.describe(),
                                          interval, meta)
        self.generator = self.bundle.generator.to(self.device)
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.cfg.lr,
                                          weight_decay=self.cfg.weight_decay)
        if opt_state is not None:
            self.optimizer.load_state_dict(opt_state)
        self.objective = self._make_objective()
        if self.objective is not None:
            self.bundle.meta["signal"] = self.objective.describe()
            if ckpt is not None:
                self.objective.load_state_dict(ckpt.get("signal_state", {}))
        # a supernet with its own gated path (a cell space) takes the per-decision one-hot as is
        self.subblocks = (None if hasattr(self.supernet, "forward_gated")
                          else canonical_subblocks(self.space).to(self.device))
        self.priors = torch.as_tensor(self.bundle.priors.choices, device=self.device)

    def _make_objective(self):
        from ..signals.base import split_name
        from ..signals.proxies import PROXIES

        data = None
        base, arg = split_name(self.signal_name)
        members = ([split_name(m)[0] for m in arg.split("+")] if base == "ensemble" and arg
                   else [base])
        if base == "ensemble" and not arg:
            from ..signals.ensemble import DEFAULT_MEMBERS

            members = list(DEFAULT_MEMBERS)
        if (isinstance(self.signal, str) and any(m in PROXIES for m in members)
                and "data" not in self.signal_options):
            from ..signals.zero_cost import minibatch

            data = minibatch(self.loaders.search, self.signal_options.get("batch_size", 64),
                             self.space.num_classes, self.cfg.seed)
        return make_objective(self.signal, self.space, samples=self.cfg.signal_samples,
                              momentum=self.cfg.baseline_momentum, data=data,
                              options=self.signal_options, seed=self.cfg.seed)

    def _load_last(self, ckpt: dict) -> dict | None:
        self.bundle = bundle_from_checkpoint(ckpt, str(self.last_path))
        self.bundle.check_cost(self.cost)
        old_signal = ckpt.get("meta", {}).get("signal", {}).get("name", SUPERNET)
        if old_signal != self.signal_name:
            raise SgnasError(f"{self.last_path} was trained on signal {old_signal!r}, not "
                             f"{self.signal_name!r}")
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
        if self.objective is None:
            onehot = st_gumbel(logits[0], tau, self.tgen)  # (D, K), one-hot forward
            acc = F.cross_entropy(accuracy_forward(self.supernet, x, onehot, self.subblocks,
                                                  cfg.relaxation), y)
            scalars, key = {"ce": acc.item()}, "ce"
        else:
            acc, scalars = self.objective.loss(logits, self.tgen)
            acc = cfg.signal_weight * acc
            scalars, key = {"signal_loss": acc.item(), **scalars}, "signal"
        expected = self.expected_cost(logits)
        lc = cost_loss(expected, targets, cfg.overshoot_weight).mean()
        params = [p for p in self.generator.parameters() if p.requires_grad]
        g_ce = torch.autograd.grad(acc, params, retain_graph=True, allow_unused=True)
        g_lc = torch.autograd.grad(cfg.cost_weight * lc, params, allow_unused=True)
        self.optimizer.zero_grad(set_to_none=True)
        for p, a, b in zip(params, g_ce, g_lc):
            parts = [g for g in (a, b) if g is not None]
            p.grad = sum(parts) if parts else None
        self.optimizer.step()
        rel = ((expected.detach() - targets) / targets).abs().mean()
        return {**scalars, "cost_loss": lc.item(), f"grad_norm_{key}": _grad_norm(g_ce),
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
            first = ("ce", out["ce"]) if "ce" in out else ("reward", out["reward"])
            bar.update(1, **{first[0]: f"{first[1]:.4g}"}, lc=f"{out['cost_loss']:.4f}")
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
        if self.objective is not None:
            decoded_archs = [self.bundle.decode(float(t), self.cost, cfg.eps)[0] for t in targets]
            scores = self.objective.score(decoded_archs)
            out.update(decoded_archs=[str(a) for a in decoded_archs], val_signal=scores.tolist(),
                       val_signal_mean=float(np.mean(scores)))
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
        if "val_signal_mean" in record:  # higher is better
            score = -record["val_signal_mean"]
        else:
            score = record.get("val_ce_mean", record.get("mean_pct_error", float("inf")))
        improved = score < self.best_score
        if improved:
            self.best_score = score
        state = dict(
            train_config=_plain_cfg(self.cfg), epoch=epoch, history=self.history,
            best_score=self.best_score, optimizer=self.optimizer.state_dict(),
            rng={"numpy": self.rng.bit_generator.state, "torch": self.tgen.get_state()},
            wall_time_s=round(self.wall_before + time.perf_counter() - self._t_run, 3))
        if self.objective is not None:
            state["signal_state"] = self.objective.state_dict()
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

    acc = (f"ce {record['ce']:.3f} |g_ce| {record['grad_norm_ce']:.3g}" if "ce" in record else
           f"reward {record['reward']:.4g} |g_signal| {record['grad_norm_signal']:.3g}")
    text = (f"epoch {record['epoch']}: {acc} cost-loss {record['cost_loss']:.4f} "
            f"|g_cost| {record['grad_norm_cost']:.3g} "
            f"argmax error mean {record['mean_pct_error']:.2f}% max {record['max_pct_error']:.2f}%"
            f" tau {record['kendall_tau']:.3f}")
    if "val_signal_mean" in record:
        text += f" val-signal {record['val_signal_mean']:.4g}"
    if "val_ce_mean" in record:
        text += f" val-ce {record['val_ce_mean']:.3f}"
    if record.get("best") and ("val_ce_mean" in record or "val_signal_mean" in record):
        text += " (best)"
    print(text, file=sys.stderr)
