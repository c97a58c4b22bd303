"""Single-path one-shot (SPOS) training of the unified supernet, on one process or under torch DDP.

Every step takes one batch and accumulates the gradients of ``paths_per_step`` paths sampled
uniformly (per layer: expansion rate, then kernels; forced sampling by default), each path's loss
divided by the number of paths, then takes one SGD step; the learning rate follows a linear warm-up
and a per-step cosine decay. Parameters that no sampled path used keep no gradient, so SGD leaves
them (and their momentum) untouched. Weight decay is not applied to BN parameters and biases.

Under ``torchrun`` the model is wrapped in ``DistributedDataParallel`` (``find_unused_parameters``:
each path uses a different subset of the weights); all ranks draw the same paths from a path RNG
seeded with ``seed`` alone, each rank reads its own shard of every batch, and the gradients of the
accumulated paths are all-reduced once per step. ``DataConfig.batch_size`` is per process.

Checkpoints (rank 0, atomic) go to ``out_dir/last.pt`` after each epoch, every
``save_every_steps`` steps and on ``KeyboardInterrupt``; the finished run writes
``out_dir/supernet.pt`` and removes ``last.pt``. A checkpoint holds model, optimizer, schedule,
progress and RNG states, so ``resume`` continues the run exactly: the data order and the
augmentation draws of an epoch derive from ``(seed, epoch)``, the path RNG state is stored. (A resume
inside an epoch is exact with ``workers=0`` or with ``DataConfig.device_augment``; with loader
workers augmenting, the augmentation of the rest of that epoch is drawn afresh.) Events go to
``out_dir/train_log.jsonl``; each epoch's line splits its time into waiting for the loader
(``wait_s``), moving the batch to the device and augmenting it there (``input_s``) and the
training step (``step_s``: forward, backward, optimizer; CUDA synchronized), with the step's own
``step_images_per_s`` beside the end-to-end ``images_per_s``.
"""

from __future__ import annotations

import hashlib
import math
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SgnasError
from ..progress import Progress
from ..space import SearchSpace, get_space
from ..evaluation import distributed
from ..evaluation.checkpoint import SUPERNET_KIND, save_checkpoint
from ..evaluation.data import DataConfig, Datasets, build_datasets, describe, train_loader
from .configs import SupernetTrainConfig  # noqa: F401 (re-exported)
from .loop import mix_seed, param_groups, steps_per_epoch, to_cpu, wrap_ddp
from .run import RunDir, autocast, check_resume
from .trainlog import format_eta

LAST = "last.pt"
FINAL = "supernet.pt"
LOG = "train_log.jsonl"
AUGMENT_STREAM = 0xA06  # keeps the device augmentation's seeds apart from the loader's

#: Settings that must match when a run is resumed (they shape the schedule or the sampled paths).
RESUME_FIELDS = ("space", "epochs", "lr", "momentum", "weight_decay", "nesterov", "label_smoothing",
                 "paths_per_step", "forced_sampling", "warmup_epochs", "seed",
                 "max_steps_per_epoch")
RESUME_DATA_FIELDS = ("batch_size", "held_out", "seed", "image_size", "style", "balanced")


def cosine_lr(step: int, total_steps: int, base_lr: float, warmup_steps: int = 0) -> float:
    """Linear warm-up over ``warmup_steps`` then cosine decay to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * t))


def state_hash(model: nn.Module, buffers: bool = True) -> str:
    """SHA-256 (16 hex digits) of all parameters (and buffers), to compare replicas and runs."""
    h = hashlib.sha256()
    items = model.state_dict().items() if buffers else model.named_parameters()
    for name, t in items:
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def build_supernet(space: SearchSpace, forced_sampling: bool, seed: int) -> nn.Module:
    """A freshly initialized supernet of ``space`` (:func:`sgnas.supernet.new_supernet`), its init
    drawn from ``seed``."""
    from ..supernet import new_supernet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return new_supernet(space, forced_sampling)


def checkpoint_paths(out_dir: str | Path) -> tuple[Path, Path]:
    """``(last.pt, supernet.pt)`` in ``out_dir``."""
    out = Path(out_dir)
    return out / LAST, out / FINAL


class SupernetTrainer:
    """One SPOS training run; :meth:`run` trains and returns the final checkpoint's path.

    Construction checks the data and the output folder before anything is written: an existing
    checkpoint in ``out_dir`` is refused unless ``resume`` (continue it) or ``force`` (start over).
    """

    def __init__(
        self,
        cfg: SupernetTrainConfig,
        data_cfg: DataConfig,
        out_dir: str | Path,
        resume: bool = False,
        force: bool = False,
    ):
        self.dist = distributed.current()
        self.space = get_space(cfg.space)
        self.out_dir = Path(out_dir)
        self.last_path, self.final_path = checkpoint_paths(self.out_dir)
        self.data_cfg = data_cfg
        self.cfg = cfg.resolved(self.space, data_cfg.batch_size * self.dist.world_size)

        self.run_dir = RunDir(self.out_dir, (LAST, FINAL), (LAST, FINAL), SUPERNET_KIND)
        ckpt = self.run_dir.open(resume, force)
        if ckpt is not None:
            self._check_compatible(ckpt, self.run_dir.resumed_from)
        self.datasets: Datasets = build_datasets(data_cfg, self.space)
        self.steps_per_epoch = steps_per_epoch(self.datasets.train, data_cfg.batch_size, self.dist,
                                               self.cfg.max_steps_per_epoch)
        self.total_steps = self.steps_per_epoch * self.cfg.epochs
        self.warmup_steps = int(round(self.cfg.warmup_epochs * self.steps_per_epoch))

        self.device = distributed.resolve_device(self.cfg.device, self.dist.local_rank)
        self.model = build_supernet(self.space, self.cfg.forced_sampling, self.cfg.seed)
        self.model.to(self.device)
        if self.cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            param_groups(self.model, self.cfg.weight_decay), lr=self.cfg.lr,
            momentum=self.cfg.momentum, nesterov=self.cfg.nesterov and self.cfg.momentum > 0,
        )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing)
        self.path_rng = np.random.default_rng(self.cfg.seed)
        self.epoch = 0
        self.batch_in_epoch = 0
        self.global_step = 0
        self.finished = False
        self._torch_rng: torch.Tensor | None = None
        self._snapshot: tuple[dict, torch.Tensor] | None = None
        if ckpt is not None:
            self._restore(ckpt)
        self.ddp_model = wrap_ddp(self.model, self.device, self.dist, find_unused_parameters=True)
        self.log = self.run_dir.log(LOG, enabled=self.dist.is_main)

    # ------------------------------------------------------------------ checkpoints
    def _check_compatible(self, data: dict[str, Any], path: Path) -> None:
        old_cfg, old_data = data.get("config", {}), data.get("data", {})
        new_cfg, new_data = asdict(self.cfg), asdict(self.data_cfg)
        check_resume(path, [(key, old_cfg.get(key), new_cfg.get(key)) for key in RESUME_FIELDS])
        check_resume(path, [(f"data {key}", old_data.get(key), new_data.get(key))
                            for key in RESUME_DATA_FIELDS])
        check_resume(path, [("world_size", data.get("world_size"), self.dist.world_size)])

    def _restore(self, data: dict[str, Any]) -> None:
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.epoch = int(data["epoch"])
        self.batch_in_epoch = int(data["batch_in_epoch"])
        self.global_step = int(data["global_step"])
        self.finished = bool(data.get("finished", False))
        self.path_rng.bit_generator.state = data["rng"]["path"]
        self._torch_rng = data["rng"]["torch"]
        if int(data.get("steps_per_epoch", -1)) != self.steps_per_epoch:
            raise SgnasError(f"cannot resume: {data.get('steps_per_epoch')} steps per epoch in the "
                             f"checkpoint, {self.steps_per_epoch} now (data changed?)")

    def payload(self, interrupted: bool = False) -> dict[str, Any]:
        """The checkpoint content of the current state (model and optimizer on CPU)."""
        path_state, torch_state = (self._snapshot if self._snapshot is not None
                                   else (self.path_rng.bit_generator.state, torch.get_rng_state()))
        return {
            "space": self.space.name,
            "space_fingerprint": self.space.fingerprint,
            "forced_sampling": self.cfg.forced_sampling,
            "config": asdict(self.cfg),
            "data": asdict(self.data_cfg),
            "dataset": describe(self.datasets),
            "model": to_cpu(self.model.state_dict()),
            "optimizer": to_cpu(self.optimizer.state_dict()),
            "scheduler": {"name": "cosine", "base_lr": self.cfg.lr, "warmup_steps": self.warmup_steps,
                          "total_steps": self.total_steps, "step": self.global_step},
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.dist.world_size,
            "rng": {"path": dict(path_state), "torch": torch_state.clone()},
            "finished": self.finished,
            "interrupted": interrupted,
            "num_classes": self.space.num_classes,
            "versions": {"torch": str(torch.__version__), "sgnas": _sgnas_version()},
        }

    def _take_snapshot(self) -> None:
        """Remember the RNG states from which the next batch of the epoch will be drawn."""
        self._snapshot = (self.path_rng.bit_generator.state, torch.get_rng_state())

    def save(self, path: Path, interrupted: bool = False) -> None:
        """Write a checkpoint of the current state to ``path`` (rank 0 only)."""
        if self.dist.is_main:
            save_checkpoint(path, self.payload(interrupted), SUPERNET_KIND)

    # ------------------------------------------------------------------------ training
    def lr_at(self, step: int) -> float:
        return cosine_lr(step, self.total_steps, self.cfg.lr, self.warmup_steps)

    def _autocast(self):
        return autocast(self.device, self.cfg.amp)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """One optimizer step over ``paths_per_step`` sampled paths; ``(mean loss, last top-1)``."""
        lr = self.lr_at(self.global_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        n = self.cfg.paths_per_step
        total = torch.zeros((), device=x.device)
        correct = torch.zeros((), device=x.device)
        for p in range(n):
            choices = self.space.sample_choices(self.path_rng, self.cfg.forced_sampling)
            sync = p == n - 1 or self.ddp_model is self.model
            with (nullcontext() if sync else self.ddp_model.no_sync()):
                with self._autocast():
                    logits = self.ddp_model(x, choices)
                    loss = self.criterion(logits.float(), y) / n
                loss.backward()
            total += loss.detach().float()
            if p == n - 1:
                correct = (logits.detach().argmax(1) == y).sum()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        return float(total), int(correct) / max(1, y.numel())

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        cfg, data_cfg = self.cfg, self.data_cfg
        start = self.batch_in_epoch
        loader = train_loader(self.datasets.train, data_cfg.batch_size, seed=data_cfg.seed,
                              epoch=epoch, start_batch=start, workers=data_cfg.workers,
                              pin_memory=self.device.type == "cuda")
        bar = Progress(self.steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}",
                       enabled=cfg.progress and self.dist.is_main, initial=start)
        memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        world_batch = data_cfg.batch_size * self.dist.world_size
        window_loss = window_acc = 0.0
        window_n = 0
        epoch_loss = 0.0
        epoch_n = 0
        wait_s = input_s = step_s = 0.0
        augment = self.datasets.device_augment
        cuda = self.device.type == "cuda"
        t_epoch = t_window = time.perf_counter()
        self.model.train()
        try:
            with torch.random.fork_rng(devices=[]):
                if start == 0 or self._torch_rng is None:
                    torch.manual_seed(mix_seed(cfg.seed, epoch, self.dist.rank))
                else:
                    torch.set_rng_state(self._torch_rng)
                batches = iter(loader)
                self._take_snapshot()
                for b in range(start, self.steps_per_epoch):
                    t0 = time.perf_counter()
                    x, y = next(batches)
                    t1 = time.perf_counter()
                    x = x.to(self.device, non_blocking=True)
                    if augment is not None:
                        x = augment(x, mix_seed(data_cfg.seed, epoch, self.dist.rank, b, AUGMENT_STREAM))
                    x = x.contiguous(memory_format=memory_format)
                    y = y.to(self.device, non_blocking=True)
                    if cuda:
                        torch.cuda.synchronize(self.device)
                    t2 = time.perf_counter()
                    loss, acc = self.train_step(x, y)  # its float() results synchronize
                    t3 = time.perf_counter()
                    wait_s += t1 - t0
                    input_s += t2 - t1
                    step_s += t3 - t2
                    self.global_step += 1
                    self.batch_in_epoch = b + 1
                    self._take_snapshot()
                    window_loss += loss
                    window_acc += acc
                    window_n += 1
                    epoch_loss += loss
                    epoch_n += 1
                    done = self.global_step
                    if cfg.log_every and (done % cfg.log_every == 0 or b + 1 == self.steps_per_epoch):
                        now = time.perf_counter()
                        rate = window_n * world_batch / max(now - t_window, 1e-9)
                        eta = (self.total_steps - done) * world_batch / rate
                        self.log.write("step", epoch=epoch, step=b + 1, global_step=done,
                                       loss=window_loss / window_n, top1=window_acc / window_n,
                                       lr=self.lr_at(done - 1), images_per_s=rate,
                                       eta_s=eta)
                        bar.update(0, loss=f"{window_loss / window_n:.3f}",
                                   lr=f"{self.lr_at(done - 1):.4f}", eta_all=format_eta(eta))
                        window_loss = window_acc = 0.0
                        window_n = 0
                        t_window = now
                    bar.update(1)
                    if cfg.save_every_steps and done % cfg.save_every_steps == 0 \
                            and b + 1 < self.steps_per_epoch:
                        self.save(self.last_path)
        finally:
            bar.close()
        self._snapshot = None
        seconds = time.perf_counter() - t_epoch
        images = epoch_n * world_batch
        return {"loss": epoch_loss / max(1, epoch_n), "steps": epoch_n, "time_s": seconds,
                "images_per_s": images / max(seconds, 1e-9),
                "wait_s": wait_s, "input_s": input_s, "step_s": step_s,
                "step_images_per_s": images / max(step_s, 1e-9),
                "augment_on": "device" if augment is not None else "loader"}

    def run(self, stop_after: int | None = None) -> Path:
        """Train to ``cfg.epochs`` (or for at most ``stop_after`` more epochs in this call) and
        return the path of the latest checkpoint (``supernet.pt`` once finished)."""
        if self.finished:
            self.log.close()
            return self.final_path
        if self.dist.is_main:
            self.log.write("start", resumed_at_epoch=self.epoch, resumed_at_step=self.global_step,
                           world_size=self.dist.world_size, device=str(self.device),
                           steps_per_epoch=self.steps_per_epoch, config=asdict(self.cfg),
                           data=describe(self.datasets))
        stop = self.cfg.epochs if stop_after is None else min(self.cfg.epochs, self.epoch + stop_after)
        try:
            while self.epoch < stop:
                stats = self._train_epoch(self.epoch)
                self.epoch += 1
                self.batch_in_epoch = 0
                self._torch_rng = None
                hashes = distributed.all_gather_object(state_hash(self.model, buffers=False))
                self.log.write("epoch", epoch=self.epoch - 1, global_step=self.global_step,
                               param_hashes=hashes, **stats)
                if self.epoch == self.cfg.epochs:
                    self.finished = True
                    self.save(self.final_path)
                    if self.dist.is_main and self.last_path.exists():
                        self.last_path.unlink()
                else:
                    self.save(self.last_path)
        except KeyboardInterrupt:
            self.save(self.last_path, interrupted=True)
            self.log.write("interrupted", epoch=self.epoch, global_step=self.global_step)
            raise
        finally:
            self.log.close()
        distributed.barrier()
        return self.final_path if self.finished else self.last_path


def train_supernet(
    cfg: SupernetTrainConfig,
    data_cfg: DataConfig,
    out_dir: str | Path,
    resume: bool = False,
    force: bool = False,
    stop_after: int | None = None,
) -> Path:
    """Train a unified supernet with SPOS (see the module docstring); returns the checkpoint path.

    Runs distributed when a ``torch.distributed`` process group is initialized.
    """
    return SupernetTrainer(cfg, data_cfg, out_dir, resume=resume, force=force).run(stop_after)


def _sgnas_version() -> str:
    from .. import __version__

    return __version__
