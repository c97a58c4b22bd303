"""Argument types and argument groups shared by several subcommands (not a subcommand itself)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..fileio import refuse_overwrite  # noqa: F401  (re-exported: one definition, in fileio)


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


#: What ``--arch`` takes, for error messages.
ARCH_FORMS = ('an architecture JSON file or text {"space": ..., "layers": [[3, 5], ...]} or the '
              'string form space:357-33-...')


def read_arch_text(source: str, flag: str = "--arch") -> str:
    """The text of ``--arch``: the file's contents when ``source`` is a file, else ``source``; a
    binary or unreadable file or a folder is one :class:`~sgnas.errors.SgnasError`."""
    from ..errors import SgnasError

    path = Path(source)
    if path.is_dir():
        raise SgnasError(f"{flag} {source}: a folder, expected {ARCH_FORMS}")
    if not path.is_file():
        if source.endswith(".json"):
            raise SgnasError(f"{flag} {source}: architecture file not found")
        return source
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise SgnasError(f"{flag} {source}: a binary file, expected {ARCH_FORMS}") from None
    except OSError as exc:
        raise SgnasError(f"{flag} {source}: cannot read it ({exc.strerror})") from None


def load_arch(source: str, flag: str = "--arch"):
    """The architecture ``source`` names (a JSON file, JSON text or the string form), validated;
    a binary or unreadable file, a file that is not an architecture, or an architecture of a cell
    space (which these commands do not build) is one :class:`~sgnas.errors.SgnasError` naming the
    value and what was expected."""
    from ..errors import SgnasError
    from ..space import Architecture, get_space

    text = read_arch_text(source, flag)
    is_file = Path(source).is_file()
    stripped = text.strip()
    if stripped.startswith("|"):
        raise SgnasError(f"{flag} {source}: an NB201 cell; this command takes {ARCH_FORMS} of the "
                         f"imagenet, cifar10 or tiny space")
    try:
        arch = (Architecture.from_json(stripped) if stripped.startswith("{")
                else Architecture.parse(stripped))
        space = get_space(arch.space)
    except SgnasError as exc:
        if is_file:
            raise SgnasError(f"{flag} {source}: not an architecture file ({exc}); expected "
                             f"{ARCH_FORMS}") from None
        raise
    if space.profiling_plan().per_architecture:
        raise SgnasError(f"{flag} {source}: space {arch.space!r} takes cells "
                         f"(|op~0|+|op~0|op~1|+|op~0|op~1|op~2|); this command takes {ARCH_FORMS} "
                         f"of the imagenet, cifar10 or tiny space")
    try:
        return space.validate(arch)
    except SgnasError as exc:
        raise SgnasError(f"{flag} {source}: {exc}") from None


def lut_arg(text: str) -> Path:
    """``--lut``: a path, or the name of a LUT in the per-user folder or shipped
    (:func:`sgnas.shipped.find_lut`)."""
    from ..shipped import find_lut

    return find_lut(text) or Path(text)


def warn_lut(lut) -> None:
    """Print the LUT's trustworthiness warnings (:func:`sgnas.lut.lut_warnings`), one line each,
    to stderr."""
    import sys

    from ..lut import lut_warnings

    for line in lut_warnings(lut):
        print(f"warning: {line}", file=sys.stderr)
