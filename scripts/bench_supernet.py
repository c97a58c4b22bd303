"""Benchmark of the unified supernet, printed as one JSON line (progress on stderr).

Sections (each a function of the parsed arguments returning a dict, merged into the line):
  params      parameter counts of the unified supernet against GreedyNAS-style (13 candidates per
              layer) and FairNAS/ProxylessNAS-style (6 candidates) single-path supernets on the same
              macro (default space: imagenet).
  throughput  SPOS training throughput (images/s) of the unified supernet on synthetic tensors (no
              data loading): per step, ``--paths-per-step`` paths sampled uniformly (forced
              sampling) from a seeded RNG, forward/backward of each, one SGD step with the training
              recipe of ``sgnas.train.supernet`` (parameter groups, Nesterov momentum, label
              smoothing, default learning rate); then inference throughput of one random
              sub-network, along the supernet path and as the exported standalone network; peak
              memory: resident set size peak and, on CUDA, ``torch.cuda.max_memory_allocated``
              (default space: cifar10).

``--space`` applies to every section; without it each section uses its default space (the line's
``space`` is then the sections' common default, or null when they differ).

Usage::

    python scripts/bench_supernet.py                                   # all sections
    python scripts/bench_supernet.py --sections throughput --space cifar10 --batch-size 64 \\
        --steps 10 --warmup 2 --threads 2 --device auto
"""

from __future__ import annotations

import argparse
import json
import sys
import time

#: Space of each section when ``--space`` is not given.
DEFAULT_SPACES = {"params": "imagenet", "throughput": "cifar10"}


def params_section(args: argparse.Namespace) -> dict:
    from sgnas.space import get_space
    from sgnas.supernet import param_ratios

    return {"params": param_ratios(get_space(args.space or DEFAULT_SPACES["params"]))}


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, warmup: int, steps: int, device) -> float:
    """Seconds taken by ``steps`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return time.perf_counter() - start


def resolve_bench_device(name: str):
    """``auto`` → CUDA when available, else CPU; an unavailable CUDA device is an error."""
    import torch

    from sgnas.errors import SgnasError
    from sgnas.evaluation.distributed import resolve_device

    device = resolve_device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SgnasError(f"device {name!r} requested but CUDA is not available")
    return device


def throughput_section(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    from torch import nn

    from sgnas.space import get_space
    from sgnas.train.loop import param_groups
    from sgnas.train.supernet import SupernetTrainConfig, build_supernet

    space = get_space(args.space or DEFAULT_SPACES["throughput"])
    device = resolve_bench_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = SupernetTrainConfig(space=space.name, paths_per_step=args.paths_per_step,
                              seed=args.seed).resolved(space, args.batch_size)
    model = build_supernet(space, cfg.forced_sampling, cfg.seed).to(device)
    optimizer = torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    path_rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    size = space.input_size
    x = torch.randn(args.batch_size, 3, size, size, generator=gen).to(device)
    y = torch.randint(0, space.num_classes, (args.batch_size,), generator=gen).to(device)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        n = cfg.paths_per_step
        for _ in range(n):
            choices = space.sample_choices(path_rng, cfg.forced_sampling)
            loss = criterion(model(x, choices), y) / n
            loss.backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    print(f"throughput: training {args.warmup}+{args.steps} steps on {device}", file=sys.stderr)
    model.train()
    train_s = _timed(train_step, args.warmup, args.steps, device)
    images = args.steps * args.batch_size
    training = {
        "images_per_s": images / train_s,
        "path_images_per_s": images * cfg.paths_per_step / train_s,
        "ms_per_step": 1000.0 * train_s / args.steps,
        "lr": cfg.lr,
    }
    if device.type == "cuda":
        training["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        torch.cuda.reset_peak_memory_stats(device)

    print("throughput: inference", file=sys.stderr)
    arch = space.sample(path_rng)
    model.eval()
    standalone = model.export_subnet(arch).eval()
    inference = {"arch": str(arch)}
    with torch.inference_mode():
        for name, fn in (("supernet_path", lambda: model(x, arch)),
                         ("standalone", lambda: standalone(x))):
            seconds = _timed(fn, args.warmup, args.steps, device)
            inference[f"{name}_images_per_s"] = images / seconds
            inference[f"{name}_ms_per_batch"] = 1000.0 * seconds / args.steps
    if device.type == "cuda":
        inference["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20

    return {"throughput": {
        "space": space.name,
        "data": "synthetic",
        "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda" else None),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "paths_per_step": cfg.paths_per_step,
        "threads": torch.get_num_threads(),
        "training": training,
        "inference": inference,
        "rss_peak_mib": peak_rss_mib(),
    }}


SECTIONS = {"params": params_section, "throughput": throughput_section}


def machine_info() -> dict:
    """CPU model, torch version and intra-op threads of this process."""
    import platform

    import torch

    from profiler.environment import cpu_model

    return {"cpu_model": cpu_model(), "torch": str(torch.__version__),
            "threads": torch.get_num_threads(), "python": platform.python_version()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=None,
                        help="search space of every section (default: params imagenet, "
                             "throughput cifar10)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    parser.add_argument("--batch-size", type=int, default=64, help="throughput batch (default 64)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--paths-per-step", type=int, default=1,
                        help="SPOS paths accumulated per training step (default 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in args.sections.split(","):
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
    for name in ("batch_size", "steps", "paths_per_step"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or (args.threads is not None and args.threads < 1):
        parser.error("--warmup must be 0 or more and --threads at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from sgnas.errors import SgnasError

    args = parse_args(argv)
    sections = args.sections.split(",")
    defaults = {DEFAULT_SPACES[name] for name in sections}
    space = args.space or (defaults.pop() if len(defaults) == 1 else None)
    record: dict = {"bench": "supernet", "space": space}
    try:
        for name in sections:
            record.update(SECTIONS[name](args))
    except SgnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    record["machine"] = machine_info()
    record["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
