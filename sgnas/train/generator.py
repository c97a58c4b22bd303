"""Training the architecture generator against a frozen supernet (SGNAS Algorithm 1).

For each batch of the held-out split: sample normalized targets ``C`` uniformly in the trained range,
take the nearest random priors ``B``, ``alpha = G(C, B)``, relax ``alpha`` with Gumbel-softmax at
temperature ``tau`` (annealed ``tau0 * tau_decay ** epoch``), forward the supernet with the relaxed
sub-block weights of the first target, and minimize ``CE + lambda * L_C`` over the generator only.

Choices made here:

* The supernet is frozen (``requires_grad`` off) and in eval mode, as in the authors' code: BN uses
  the running statistics of supernet training (the shadow BNs mixed by the distribution of the
  expansion rate). They are not recalibrated for the generator's soft architectures.
* ``L_C`` is computed on normalized costs (``[0, 1]`` over the cost range), for the same relaxed
  sample ``m`` that weights the supernet (Eq. 9 of the paper uses ``m``): the exact expected cost
  under ``m``'s per-sub-block distributions. Because ``m`` is a random draw, minimizing the squared
  error also shrinks the spread of the cost, which makes the argmax architecture meet the target.
  ``cost_on="softmax"`` uses ``softmax(alpha)`` instead.
* ``L_C = w * (cost - C)^2`` with ``w = overshoot_weight`` above ``C + dead_band``, 1 below
  ``C - dead_band`` and 0 inside the band (as the authors' ``cal_hc_loss``).
* The supernet takes one architecture per forward, so cross-entropy uses the first of the step's
  targets; ``cost_samples - 1`` further targets only enter ``L_C`` (cheap: no supernet forward).

After each epoch the generator is evaluated on ``eval_targets`` targets evenly spaced over the
trained range (argmax architectures, exact costs): Kendall tau and Pearson correlation with the
targets and the mean/max relative error, optionally the inherited accuracy of the middle target's
architecture. Every epoch is appended to a JSON-lines log and the checkpoint is rewritten atomically,
so ``resume=True`` continues from the last finished epoch. The checkpoint's ``wall_time_s`` is the
training wall time so far (prior pool, epochs and their evaluation; summed over resumed runs).
"""

from __future__ import annotations

import hashlib
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
    ArchitectureGenerator,
    GeneratorBundle,
    GeneratorConfig,
    bundle_from_checkpoint,
    load_generator,
    make_prior_pool,
    read_checkpoint,
    save_generator,
)
from ..metrics import kendall_tau, pearson, relative_errors

__all__ = [
    "GeneratorLoaders",
    "GeneratorTrainConfig",
    "GeneratorTrainResult",
    "evaluate_generator",
    "gumbel_softmax",
    "kendall_tau",
    "load_generator",
    "supernet_identity",
    "train_generator",
]

COST_ON = ("sample", "softmax")


@dataclass
class GeneratorTrainConfig:
    """Hyper-parameters of generator training. ``target_range`` is normalized (fractions of the
    cost range); ``dead_band`` too."""

    epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    tau0: float = 5.0
    tau_decay: float = 0.95
    cost_weight: float = 10.0
    overshoot_weight: float = 1.2
    dead_band: float = 0.005
    cost_samples: int = 4
    cost_on: str = "sample"
    batches_per_epoch: int | None = None
    target_range: tuple[float, float] = (0.0, 1.0)
    eval_targets: int = 10
    eval_accuracy_batches: int = 0
    bn_calibration_batches: int = 0
    prior_search_steps: int = 400
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        lo, hi = (float(x) for x in self.target_range)
        self.target_range = (lo, hi)
        if not 0.0 <= lo < hi <= 1.0:
            raise SgnasError(f"target range must satisfy 0 <= low < high <= 1, got {lo}, {hi}")
        if self.epochs < 1:
            raise SgnasError(f"epochs must be at least 1, got {self.epochs}")
        if self.cost_on not in COST_ON:
            raise SgnasError(f"cost_on must be one of {', '.join(COST_ON)}, got {self.cost_on!r}")
        if self.cost_samples < 1:
            raise SgnasError(f"cost_samples must be at least 1, got {self.cost_samples}")
        if self.batches_per_epoch is not None and self.batches_per_epoch < 1:
            raise SgnasError(f"batches per epoch must be at least 1, got {self.batches_per_epoch}")
        if self.eval_targets < 2:
            raise SgnasError(f"eval_targets must be at least 2, got {self.eval_targets}")
        if self.tau0 <= 0 or not 0 < self.tau_decay <= 1:
            raise SgnasError("tau0 must be positive and tau_decay in (0, 1]")
        if self.lr <= 0 or self.cost_weight < 0 or self.overshoot_weight < 0 or self.dead_band < 0:
            raise SgnasError("lr must be positive; cost_weight, overshoot_weight, dead_band >= 0")

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorTrainConfig":
        names = cls.__dataclass_fields__
        return cls(**{k: (tuple(v) if k == "target_range" else v) for k, v in d.items() if k in names})

    def tau(self, epoch: int) -> float:
        """Gumbel-softmax temperature of ``epoch`` (0-based)."""
        return self.tau0 * self.tau_decay**epoch


@dataclass
class GeneratorLoaders:
    """Data for generator training: ``search`` yields ``(x, y)`` batches of the held-out split
    (re-iterated every epoch); ``eval`` (default ``search``) scores inherited accuracy; ``calib``
    (training split) recalibrates BN for that score when ``bn_calibration_batches`` > 0."""

    search: Iterable
    eval: Iterable | None = None
    calib: Iterable | None = None


@dataclass
class GeneratorTrainResult:
    """The trained generator, the per-epoch history and where the checkpoint was written."""

    bundle: GeneratorBundle
    history: list[dict] = field(default_factory=list)
    path: Path | None = None


# ----------------------------------------------------------------------------- pieces
def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """Soft Gumbel-softmax over the last dim with noise from ``generator`` (a CPU generator)."""
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float32)
    u = u.clamp_(torch.finfo(torch.float32).tiny, 1.0 - 1e-7).to(logits.device, logits.dtype)
    gumbels = -torch.log(-torch.log(u))
    return torch.softmax((logits + gumbels) / tau, dim=-1)


def cost_loss(
    cost_norm: torch.Tensor,
    target_norm: torch.Tensor,
    overshoot_weight: float,
    dead_band: float,
) -> torch.Tensor:
    """Per-target ``w * (cost - target)^2`` (see the module docstring), shape of the inputs."""
    diff = cost_norm - target_norm
    over = diff > dead_band
    under = diff < -dead_band
    w = over.to(diff.dtype) * overshoot_weight + under.to(diff.dtype)
    return w * diff.square()


def eval_targets(cfg: GeneratorTrainConfig) -> np.ndarray:
    """Normalized evaluation targets: ``eval_targets`` points evenly spaced inside the range."""
    lo, hi = cfg.target_range
    return lo + (hi - lo) * (np.arange(cfg.eval_targets) + 0.5) / cfg.eval_targets


def evaluate_generator(bundle: GeneratorBundle, cost, targets_norm: Sequence[float]) -> dict:
    """Generate for normalized targets and compare exact costs with the targets.

    Returns targets and generated costs (cost units), the architectures (strings), Kendall tau,
    Pearson r, mean/max relative error in percent and the mean absolute normalized error.
    """
    targets_norm = [float(t) for t in targets_norm]
    archs = bundle.architectures(targets_norm)
    targets = np.array([float(cost.denormalize(t)) for t in targets_norm])
    generated = np.array([cost.exact(a) for a in archs])
    rel = np.abs(relative_errors(generated, targets)) * 100.0
    gen_norm = np.array([float(cost.normalize(g)) for g in generated])
    return {
        "targets": targets.tolist(),
        "generated": generated.tolist(),
        "archs": [str(a) for a in archs],
        "kendall_tau": kendall_tau(targets, generated),
        "pearson": pearson(targets, generated),
        "mean_pct_error": float(rel.mean()),
        "max_pct_error": float(rel.max()),
        "mean_abs_norm_error": float(np.abs(gen_norm - np.asarray(targets_norm)).mean()),
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


def _inherited_accuracy(supernet, arch, loaders: GeneratorLoaders, cfg: GeneratorTrainConfig):
    """Top-1 of ``arch`` on a few eval batches; BN buffers are restored afterwards."""
    from .evaluate import evaluate_arch, inherited_accuracy

    eval_loader = loaders.eval if loaders.eval is not None else loaders.search
    saved = [b.detach().clone() for b in supernet.buffers()]
    try:
        if cfg.bn_calibration_batches > 0 and loaders.calib is not None:
            return inherited_accuracy(supernet, arch, loaders.calib, eval_loader,
                                      cfg.bn_calibration_batches, cfg.eval_accuracy_batches,
                                      seed=cfg.seed)
        return evaluate_arch(supernet, arch, eval_loader, max_batches=cfg.eval_accuracy_batches)
    finally:
        with torch.no_grad():
            for b, s in zip(supernet.buffers(), saved):
                b.copy_(s)
        supernet.eval()


# ------------------------------------------------------------------------------ training
def train_generator(
    supernet: torch.nn.Module,
    cost,
    loaders: GeneratorLoaders,
    cfg: GeneratorTrainConfig,
    out_path: str | os.PathLike,
    gen_cfg: GeneratorConfig | None = None,
    supernet_info: dict | None = None,
    resume: bool = False,
    log_path: str | os.PathLike | None = None,
) -> GeneratorTrainResult:
    """Train a generator for ``cost`` against the frozen ``supernet`` (Algorithm 1).

    The supernet is moved to ``cfg.device`` and put in eval mode; its parameters' ``requires_grad``
    flags are restored on return.

    Writes the checkpoint to ``out_path`` after every epoch and appends per-epoch records to
    ``log_path`` (default ``out_path`` with suffix ``.jsonl``). With ``resume`` and an existing
    ``out_path``, training continues after the checkpoint's last epoch (its generator config, priors
    and optimizer state are used; a different cost or supernet is an error). Without ``resume`` an
    existing ``out_path`` is an error.
    """
    from .distributed import resolve_device
    from .trainlog import JsonlLog, Progress

    t_run = time.perf_counter()
    out_path = Path(out_path)
    log_path = Path(log_path) if log_path is not None else out_path.with_suffix(".jsonl")
    space = cost.space
    if supernet.space.fingerprint != space.fingerprint:
        raise SpaceMismatchError(
            f"supernet is for space {supernet.space.name!r} ({supernet.space.fingerprint}), cost for "
            f"{space.name!r} ({space.fingerprint})"
        )
    supernet_info = dict(supernet_info or {})
    device = resolve_device(cfg.device)
    rng = np.random.default_rng(cfg.seed)
    tgen = torch.Generator().manual_seed(cfg.seed)

    history: list[dict] = []
    start_epoch = 0
    wall_before = 0.0
    opt_state = None
    if out_path.exists() and not resume:
        raise SgnasError(f"{out_path} exists; pass --resume to continue it or choose another --out")
    if resume and out_path.exists():
        ckpt = read_checkpoint(out_path)
        bundle = bundle_from_checkpoint(ckpt, str(out_path))
        bundle.check_cost(cost)
        old_sha = ckpt.get("meta", {}).get("supernet", {}).get("sha256")
        if old_sha and supernet_info.get("sha256") and old_sha != supernet_info["sha256"]:
            raise SgnasError(
                f"{out_path} was trained against another supernet (sha256 {old_sha[:12]}, given "
                f"{supernet_info['sha256'][:12]})"
            )
        cfg = GeneratorTrainConfig.from_dict({**ckpt.get("train_config", {}),
                                              "epochs": cfg.epochs, "device": cfg.device,
                                              "progress": cfg.progress})
        start_epoch = int(ckpt["epoch"]) + 1
        wall_before = float(ckpt.get("wall_time_s", 0.0))
        history = list(ckpt.get("history", []))
        opt_state = ckpt.get("optimizer")
        rng_state = ckpt.get("rng", {})
        if "numpy" in rng_state:
            rng.bit_generator.state = rng_state["numpy"]
        if "torch" in rng_state:
            tgen.set_state(rng_state["torch"])
    else:
        gen_cfg = gen_cfg or GeneratorConfig()
        priors = make_prior_pool(space, cost, gen_cfg.num_priors, rng,
                                 steps=cfg.prior_search_steps, target_range=cfg.target_range)
        generator = ArchitectureGenerator(space, gen_cfg, generator=tgen)
        meta = {"supernet": supernet_info}
        if getattr(cost, "lut_fingerprint", None) is not None:
            meta["lut_fingerprint"] = cost.lut_fingerprint
        bundle = GeneratorBundle(space, generator, priors, cost.describe(), cfg.target_range, meta)

    generator = bundle.generator.to(device)
    requires_grad = [p.requires_grad for p in supernet.parameters()]
    supernet.to(device).eval()
    supernet.requires_grad_(False)
    optimizer = torch.optim.Adam(generator.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if opt_state is not None:
        optimizer.load_state_dict(opt_state)
    priors_onehot = bundle.priors.one_hot().to(device)
    lo, hi = cfg.target_range

    log = JsonlLog(log_path, append=start_epoch > 0)
    if start_epoch > 0:
        log.write("resume", epoch=start_epoch)
    else:
        log.write("start", space=space.name, cost=cost.describe(), train_config=_plain_cfg(cfg),
                  generator_config=asdict(generator.cfg), priors=[
                      {"arch": str(a), "level": float(v)}
                      for a, v in zip(bundle.priors.architectures(space), bundle.priors.levels)])
    try:
        for epoch in range(start_epoch, cfg.epochs):
            tau = cfg.tau(epoch)
            generator.train()
            t0 = time.perf_counter()
            total = cfg.batches_per_epoch
            if total is None:
                try:
                    total = len(loaders.search)  # type: ignore[arg-type]
                except TypeError:
                    total = 0
            bar = Progress(total, f"generator {epoch + 1}/{cfg.epochs}", enabled=cfg.progress)
            sums = {"ce": 0.0, "cost_loss": 0.0, "loss": 0.0, "cost_error": 0.0}
            steps = 0
            for batch in loaders.search:
                if cfg.batches_per_epoch is not None and steps >= cfg.batches_per_epoch:
                    break
                x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
                targets = torch.as_tensor(rng.uniform(lo, hi, size=cfg.cost_samples),
                                          dtype=torch.float32, device=device)
                prior = priors_onehot[bundle.priors.nearest(targets).to(device)]
                logits = generator(targets, prior)
                sample = gumbel_softmax(logits, tau, tgen)
                ce = F.cross_entropy(supernet.forward_weighted(x, sample[0]), y)
                probs = sample if cfg.cost_on == "sample" else torch.softmax(logits, dim=-1)
                c_norm = cost.normalize(cost.expected(probs))
                lc = cost_loss(c_norm, targets, cfg.overshoot_weight, cfg.dead_band).mean()
                loss = ce + cfg.cost_weight * lc
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
                ce_v, lc_v = ce.item(), lc.item()
                sums["ce"] += ce_v
                sums["cost_loss"] += lc_v
                sums["loss"] += loss.item()
                sums["cost_error"] += (c_norm.detach() - targets).abs().mean().item()
                bar.update(1, ce=f"{ce_v:.3f}", lc=f"{lc_v:.4f}")
            bar.close()
            if steps == 0:
                raise SgnasError("the search loader yielded no batches (is the held-out split empty?)")
            train_s = time.perf_counter() - t0
            generator.eval()
            metrics = evaluate_generator(bundle, cost, eval_targets(cfg))
            if cfg.eval_accuracy_batches > 0:
                arch = _parse_arch(space, metrics["archs"][len(metrics["archs"]) // 2])
                metrics["inherited_top1"] = _inherited_accuracy(supernet, arch, loaders, cfg)
            record = {
                "epoch": epoch,
                "tau": tau,
                "steps": steps,
                **{k: v / steps for k, v in sums.items()},
                **metrics,
                "train_s": round(train_s, 3),
            }
            history.append(record)
            log.write("epoch", **record)
            save_generator(
                out_path,
                bundle,
                train_config=_plain_cfg(cfg),
                epoch=epoch,
                history=history,
                optimizer=optimizer.state_dict(),
                rng={"numpy": rng.bit_generator.state, "torch": tgen.get_state()},
                wall_time_s=round(wall_before + time.perf_counter() - t_run, 3),
            )
            if cfg.progress:
                _print_epoch(record, cost.unit)
        log.write("done", path=str(out_path), epochs=cfg.epochs)
    finally:
        log.close()
        for p, flag in zip(supernet.parameters(), requires_grad):
            p.requires_grad_(flag)
    generator.eval()
    return GeneratorTrainResult(bundle, history, out_path)


def _plain_cfg(cfg: GeneratorTrainConfig) -> dict:
    d = asdict(cfg)
    d["target_range"] = list(d["target_range"])
    return d


def _parse_arch(space, text: str):
    from ..space import Architecture

    return space.validate(Architecture.parse(text))


def _print_epoch(record: dict, unit: str) -> None:
    import sys

    print(
        f"epoch {record['epoch']}: ce {record['ce']:.3f} cost-loss {record['cost_loss']:.4f} "
        f"kendall {record['kendall_tau']:.3f} pearson {record['pearson']:.3f} "
        f"error mean {record['mean_pct_error']:.2f}% max {record['max_pct_error']:.2f}%"
        + (f" top1 {100 * record['inherited_top1']:.2f}%" if "inherited_top1" in record else ""),
        file=sys.stderr,
    )
