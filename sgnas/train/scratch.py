"""Training a standalone network of an architecture from scratch, with a :class:`TrainRecipe`.

The network is ``build_network(space, arch, se, activation, dropout=recipe.dropout)``; it trains on
the whole training split (no held-out part) and is evaluated on the test split after every epoch.
The learning rate follows :meth:`TrainRecipe.lr_at` per step; weight decay spares BN parameters and
biases; an exponential moving average of the weights is kept when ``recipe.ema_decay > 0`` and
evaluated beside the raw weights. ``recipe.batch_size`` is the global batch: under ``torchrun`` each
of the N processes takes ``batch_size / N`` images per step (DDP), and the test split is sharded.

The pieces live by purpose: :class:`~sgnas.train.ema.ModelEma`, :func:`~sgnas.train.optim.make_optimizer`,
:func:`~sgnas.train.augment.cutout`, :func:`~sgnas.evaluation.evaluate.evaluate_network` and the run
folder rules of :mod:`sgnas.train.run` (their names stay importable from here).

Files in ``out_dir`` (rank 0, atomic): ``last.pt`` after every epoch (model, optimizer, EMA,
progress; ``torch.load(weights_only=True)`` reads it), ``model.pt`` when the run is complete (weights plus
architecture, see :func:`load_trained`), ``train_log.jsonl`` (events) and ``run.json`` (settings).
``resume`` continues from ``last.pt`` exactly: the data order and every random draw of an epoch
(augmentation, cutout, dropout) derive from ``(seed, epoch, rank)``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import check_space, load_checkpoint, save_checkpoint
from ..errors import SgnasError
from ..progress import Progress, note
from ..space import Architecture, SearchSpace
from ..evaluation import distributed
from .augment import cutout
from ..evaluation.data import DataConfig, build_datasets, describe, train_loader
from .ema import ModelEma
from ..evaluation.evaluate import evaluate_network
from .loop import mix_seed, steps_per_epoch, to_cpu, wrap_ddp
from .optim import make_optimizer
from .recipes import TrainRecipe
from .run import RunDir, autocast, check_resume
from .trainlog import format_eta

SCRATCH_KIND = "sgnas-scratch"
NETWORK_KIND = "sgnas-network"
LAST = "last.pt"
FINAL = "model.pt"
LOG = "train_log.jsonl"
RUN = "run.json"


@dataclass
class ScratchResult:
    """Summary of a from-scratch run (JSON-able via :meth:`to_dict`)."""

    out_dir: str
    arch: str
    epochs: int
    finished: bool
    test_top1: float
    best_top1: float
    test_top1_ema: float | None
    params: int
    flops: int
    wall_time_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ScratchTrainer:
    """One from-scratch training run; :meth:`run` trains and returns a :class:`ScratchResult`.

    Construction checks the architecture, the data and the output folder before anything is written:
    an existing run in ``out_dir`` is refused unless ``resume`` (continue it; the architecture, the
    network options, the seed and the recipe except ``epochs`` must match) or ``force`` (start
    over).
    """

    def __init__(
        self,
        space: SearchSpace,
        arch: Architecture,
        recipe: TrainRecipe,
        data_cfg: DataConfig,
        out_dir: str | Path,
        resume: bool = False,
        se: bool = False,
        activation: str = "relu6",
        *,
        force: bool = False,
        seed: int = 0,
        device: str = "auto",
        max_steps_per_epoch: int | None = None,
        max_eval_batches: int | None = None,
        amp: bool = False,
        progress: bool = True,
    ):
        from ..network import build_network, count_macs, num_params

        space.validate(arch)
        self.space, self.arch, self.recipe = space, arch, recipe.validate()
        self.se, self.activation, self.seed = se, activation, seed
        self.max_steps_per_epoch = max_steps_per_epoch
        self.max_eval_batches = max_eval_batches
        self.amp, self.progress = amp, progress
        self.out_dir = Path(out_dir)
        self.dist = distributed.current()
        if recipe.batch_size % self.dist.world_size:
            raise SgnasError(f"batch size {recipe.batch_size} is not divisible by the "
                             f"{self.dist.world_size} processes")
        self.local_batch = recipe.batch_size // self.dist.world_size
        style = data_cfg.style if recipe.augment == "auto" else recipe.augment
        self.data_cfg = replace(data_cfg, held_out=0, batch_size=self.local_batch, style=style)

        self.run_dir = RunDir(self.out_dir, (LAST, FINAL, LOG, RUN), (LAST,), SCRATCH_KIND)
        ckpt = self.run_dir.open(resume, force)
        if ckpt is not None:
            self._check_compatible(ckpt)
        self.datasets = build_datasets(self.data_cfg, space)
        self.steps_per_epoch = steps_per_epoch(self.datasets.train, self.local_batch, self.dist,
                                               max_steps_per_epoch)
        self.device = distributed.resolve_device(device, self.dist.local_rank)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = build_network(space, arch, se=se, activation=activation,
                                       dropout=recipe.dropout)
        self.model.to(self.device)
        self.params = num_params(space, arch, se=se, activation=activation)
        self.flops = count_macs(space, arch, se=se)
        self.optimizer = make_optimizer(self.model, recipe)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.ema = ModelEma(self.model, recipe.ema_decay) if recipe.ema_decay > 0 else None
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        if ckpt is not None:
            self._restore(ckpt)
        self.train_model = wrap_ddp(self.model, self.device, self.dist)
        self._resumed = ckpt is not None
        if self.dist.is_main:
            self.run_dir.remove_replaced()

    # ------------------------------------------------------------------ checkpoints
    @property
    def last_path(self) -> Path:
        return self.out_dir / LAST

    @property
    def final_path(self) -> Path:
        return self.out_dir / FINAL

    def _check_compatible(self, data: dict[str, Any]) -> None:
        path = self.last_path
        old_arch = Architecture.from_dict(data["arch"])
        if old_arch != self.arch:
            raise SgnasError(f"cannot resume {path}: it trains {old_arch}, not {self.arch}")
        check_resume(path, [(key, data.get(key), now) for key, now in (
            ("se", self.se), ("activation", self.activation), ("seed", self.seed),
            ("max_steps_per_epoch", self.max_steps_per_epoch), ("world_size", self.dist.world_size))])
        old = TrainRecipe.from_dict(data["recipe"])
        check_resume(path, [(f"recipe {k}", getattr(old, k), getattr(self.recipe, k))
                            for k in old.diff(self.recipe) if k not in ("epochs", "name")])

    def _restore(self, data: dict[str, Any]) -> None:
        if int(data.get("steps_per_epoch", -1)) != self.steps_per_epoch:
            raise SgnasError(f"cannot resume: {data.get('steps_per_epoch')} steps per epoch in the "
                             f"checkpoint, {self.steps_per_epoch} now (data changed?)")
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        if self.ema is not None:
            if data.get("ema") is None:
                raise SgnasError("cannot resume: the checkpoint has no weight EMA")
            self.ema.module.load_state_dict(data["ema"])
            self.ema.updates = int(data["ema_updates"])
        self.epoch = int(data["epoch"])
        self.global_step = int(data["global_step"])
        self.history = list(data.get("history", []))

    def _meta(self) -> dict[str, Any]:
        return {
            "space": self.space.name,
            "space_fingerprint": self.space.fingerprint,
            "arch": self.arch.to_dict(),
            "arch_str": str(self.arch),
            "se": self.se,
            "activation": self.activation,
            "dropout": self.recipe.dropout,
            "num_classes": self.space.num_classes,
            "params": self.params,
            "flops": self.flops,
        }

    def payload(self) -> dict[str, Any]:
        """Checkpoint content of the current state (tensors on CPU)."""
        return {
            **self._meta(),
            "recipe": self.recipe.to_dict(),
            "seed": self.seed,
            "max_steps_per_epoch": self.max_steps_per_epoch,
            "world_size": self.dist.world_size,
            "data": {k: v for k, v in asdict(self.data_cfg).items()},
            "model": to_cpu(self.model.state_dict()),
            "optimizer": to_cpu(self.optimizer.state_dict()),
            "ema": to_cpu(self.ema.module.state_dict()) if self.ema is not None else None,
            "ema_updates": self.ema.updates if self.ema is not None else 0,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "history": self.history,
            "versions": {"torch": str(torch.__version__)},
        }

    def _save_final(self) -> None:
        last = self.history[-1] if self.history else {}
        save_checkpoint(self.final_path, {
            **self._meta(),
            "model": to_cpu(self.model.state_dict()),
            "ema": to_cpu(self.ema.module.state_dict()) if self.ema is not None else None,
            "epochs": self.epoch,
            "test_top1": last.get("test_top1"),
            "test_top1_ema": last.get("test_top1_ema"),
            "recipe": self.recipe.to_dict(),
        }, NETWORK_KIND)

    # ------------------------------------------------------------------------ training
    def _autocast(self):
        return autocast(self.device, self.amp, cuda_only=True)

    def _train_epoch(self, epoch: int, bar: Progress) -> dict[str, Any]:
        recipe = self.recipe
        loader = train_loader(self.datasets.train, self.local_batch, seed=self.seed, epoch=epoch,
                              workers=self.data_cfg.workers, pin_memory=self.device.type == "cuda")
        total_steps = recipe.epochs * self.steps_per_epoch
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen = 0
        t0 = time.perf_counter()
        self.train_model.train()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix_seed(self.seed, epoch, self.dist.rank))
            batches = iter(loader)
            for i in range(self.steps_per_epoch):
                x, y = next(batches)
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                if recipe.cutout:
                    x = cutout(x, recipe.cutout)
                lr = recipe.lr_at(epoch + i / self.steps_per_epoch)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                with self._autocast():
                    logits = self.train_model(x)
                    loss = self.criterion(logits.float(), y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if recipe.grad_clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), recipe.grad_clip)
                self.optimizer.step()
                if self.ema is not None:
                    self.ema.update(self.model)
                self.global_step += 1
                loss_sum += loss.detach() * y.numel()
                correct += (logits.detach().argmax(1) == y).sum()
                seen += y.numel()
                if (i + 1) % 10 == 0 or i + 1 == self.steps_per_epoch:
                    elapsed = time.perf_counter() - t0
                    eta = elapsed / (i + 1) * (total_steps - self.global_step)
                    bar.update(0, loss=f"{float(loss.detach()):.3f}", lr=f"{lr:.4g}",
                               eta_all=format_eta(eta))
                bar.update(1)
        seconds = time.perf_counter() - t0
        sums = torch.stack([loss_sum.float(), correct.float(),
                            torch.tensor(float(seen), device=self.device)])
        if self.dist.distributed:
            import torch.distributed as dist

            dist.all_reduce(sums)
        loss_total, correct_total, seen_total = sums.tolist()
        return {
            "lr": recipe.lr_at(epoch + 1 - 1 / self.steps_per_epoch),
            "train_loss": loss_total / max(seen_total, 1),
            "train_top1": correct_total / max(seen_total, 1),
            "time_s": seconds,
            "images_per_s": seen_total / max(seconds, 1e-9),
        }

    def evaluate(self) -> dict[str, Any]:
        """Test-split accuracy of the raw weights (and of the EMA weights when kept)."""
        bs = self.data_cfg.eval_batch_size or self.local_batch
        kwargs = dict(batch_size=bs, device=self.device, workers=self.data_cfg.workers,
                      max_batches=self.max_eval_batches)
        raw = evaluate_network(self.model, self.datasets.test, **kwargs)
        out: dict[str, Any] = {"test_top1": raw["top1"], "test_top5": raw["top5"]}
        if self.ema is not None:
            ema = evaluate_network(self.ema.module, self.datasets.test, **kwargs)
            out.update(test_top1_ema=ema["top1"], test_top5_ema=ema["top5"])
        return out

    def run(self, stop_after: int | None = None) -> ScratchResult:
        """Train to ``recipe.epochs`` (or at most ``stop_after`` more epochs in this call)."""
        from ..fileio import atomic_write_json

        start_time = time.perf_counter()
        main = self.dist.is_main
        log = self.run_dir.log(LOG, enabled=main)
        if main:
            atomic_write_json(self.out_dir / RUN, {
                **self._meta(), "recipe": self.recipe.to_dict(), "seed": self.seed,
                "data": asdict(self.data_cfg), "dataset": describe(self.datasets),
                "steps_per_epoch": self.steps_per_epoch, "world_size": self.dist.world_size,
                "device": str(self.device),
            })
            log.write("start", epoch=self.epoch, global_step=self.global_step,
                      steps_per_epoch=self.steps_per_epoch, arch=str(self.arch),
                      params=self.params, flops=self.flops, device=str(self.device))
        epochs = self.recipe.epochs
        stop = epochs if stop_after is None else min(epochs, self.epoch + stop_after)
        bar = Progress(epochs * self.steps_per_epoch, "train", enabled=self.progress and main,
                       initial=self.epoch * self.steps_per_epoch)
        try:
            while self.epoch < stop:
                stats = self._train_epoch(self.epoch, bar)
                stats.update(self.evaluate())
                record = {"epoch": self.epoch, "global_step": self.global_step, **stats}
                self.epoch += 1
                self.history.append(record)
                if main:
                    save_checkpoint(self.last_path, self.payload(), SCRATCH_KIND)
                    if self.epoch == epochs:
                        self._save_final()
                    log.write("epoch", **record)
                    if self.progress:
                        note(self._epoch_line(record))
        except KeyboardInterrupt:
            log.write("interrupted", epoch=self.epoch, global_step=self.global_step)
            raise
        finally:
            bar.close()
            log.close()
        if self.epoch == epochs and not self.final_path.exists() and main:
            self._save_final()
        distributed.barrier()
        return self.result(time.perf_counter() - start_time)

    def _epoch_line(self, r: dict[str, Any]) -> str:
        line = (f"epoch {r['epoch'] + 1}/{self.recipe.epochs}  loss {r['train_loss']:.4f}  "
                f"test top1 {100 * r['test_top1']:.2f}%")
        if "test_top1_ema" in r:
            line += f"  ema {100 * r['test_top1_ema']:.2f}%"
        return line

    def result(self, wall_time_s: float = 0.0) -> ScratchResult:
        last = self.history[-1] if self.history else {}
        tops = [h["test_top1"] for h in self.history if h.get("test_top1") == h.get("test_top1")]
        return ScratchResult(
            out_dir=str(self.out_dir),
            arch=str(self.arch),
            epochs=self.epoch,
            finished=self.epoch >= self.recipe.epochs,
            test_top1=float(last.get("test_top1", float("nan"))),
            best_top1=max(tops) if tops else float("nan"),
            test_top1_ema=last.get("test_top1_ema"),
            params=self.params,
            flops=self.flops,
            wall_time_s=wall_time_s,
        )


def train_from_scratch(
    space: SearchSpace,
    arch: Architecture,
    recipe: TrainRecipe,
    data_cfg: DataConfig,
    out_dir: str | Path,
    resume: bool = False,
    se: bool = False,
    activation: str = "relu6",
    **options: Any,
) -> ScratchResult:
    """Train ``build_network(space, arch, se, activation)`` from scratch with ``recipe``.

    ``options``: ``force``, ``seed``, ``device``, ``max_steps_per_epoch``, ``max_eval_batches``,
    ``amp``, ``progress`` (see :class:`ScratchTrainer`) and ``stop_after`` (epochs in this call).
    """
    stop_after = options.pop("stop_after", None)
    trainer = ScratchTrainer(space, arch, recipe, data_cfg, out_dir, resume, se, activation,
                             **options)
    return trainer.run(stop_after)


def load_trained(path: str | Path, ema: bool = True, map_location: Any = "cpu"):
    """Load ``model.pt`` (or ``last.pt``) as ``(network in eval mode, metadata)``; with ``ema`` the
    EMA weights are used when the run kept them."""
    from ..network import build_network

    data = load_checkpoint(path)
    if data["kind"] not in (NETWORK_KIND, SCRATCH_KIND):
        raise SgnasError(f"{path} is a {data['kind']!r} checkpoint, not a trained network")
    space = check_space(data, path)
    arch = space.validate(Architecture.from_dict(data["arch"]))
    net = build_network(space, arch, se=bool(data["se"]), activation=data["activation"],
                        dropout=float(data.get("dropout", 0.0)))
    state = data["ema"] if ema and data.get("ema") is not None else data["model"]
    net.load_state_dict(state)
    meta = {k: v for k, v in data.items() if k not in ("model", "ema", "optimizer")}
    device = map_location if isinstance(map_location, (str, torch.device)) else "cpu"
    return net.to(device).eval(), meta


__all__ = [
    "ModelEma",
    "ScratchResult",
    "ScratchTrainer",
    "evaluate_network",
    "load_trained",
    "make_optimizer",
    "train_from_scratch",
]
