"""Argument types and argument groups shared by several subcommands (not a subcommand itself)."""

from __future__ import annotations

import argparse
import math
import os
from typing import Iterable


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def add_data_arguments(parser: argparse.ArgumentParser, data_help: str | None = None) -> None:
    """Data location and loading: ``--data``, ``--data-format``, ``--download``, ``--workers``,
    ``--device``."""
    parser.add_argument("--data", required=True, metavar="DIR",
                        help=data_help or "ImageFolder root with train/ and test/ (or val/), "
                                          "or a CIFAR-10 root")
    parser.add_argument("--data-format", default="auto", choices=("auto", "imagefolder", "cifar10"),
                        help="auto: CIFAR-10 pickles if DIR/cifar-10-batches-py exists (default)")
    parser.add_argument("--download", action="store_true",
                        help="download CIFAR-10 into DIR (with --data-format cifar10)")
    parser.add_argument("--workers", type=int, default=2, help="data loader processes (default 2)")
    parser.add_argument("--device", default="auto",
                        help="auto (cuda:LOCAL_RANK if available, else cpu), cpu, cuda, cuda:N")


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    """``--resume`` (continue the run in ``--out``) or ``--force`` (start over), not both."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in --out")
    group.add_argument("--force", action="store_true", help="start over, replacing --out's run")


def refuse_overwrite(paths: Iterable[str | os.PathLike], force: bool) -> None:
    """Raise :class:`~sgnas.errors.SgnasError` naming the first of ``paths`` that exists, unless
    ``force``."""
    from ..errors import SgnasError

    if force:
        return
    for path in paths:
        if os.path.exists(path):
            raise SgnasError(f"{path} exists; pass --force to overwrite")


def warn_lut(lut) -> None:
    """Print the LUT's trustworthiness warnings (:func:`sgnas.lut.lut_warnings`), one line each,
    to stderr."""
    import sys

    from ..lut import lut_warnings

    for line in lut_warnings(lut):
        print(f"warning: {line}", file=sys.stderr)
