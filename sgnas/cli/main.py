"""The ``sgnas`` command line: a thin shell over the public API, one module per subcommand.

Each subcommand module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``
and imports nothing beyond numpy/torch at module level, so ``sgnas --help`` works with the core
dependencies alone.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from ..errors import SgnasError

#: Subcommand modules under ``sgnas.cli``, in the order ``--help`` lists them.
COMMANDS = (
    "export",
    "train_supernet",
    "evaluate",
    "profile",
    "cost",
    "lut",
    "train_generator",
    "train_shared_generator",
    "generate",
    "search",
    "score",
    "train",
    "check",
)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``error: ...`` naming the command and where its
    usage is (``--help``), exit code 2, without the usage block."""

    def error(self, message: str) -> NoReturn:
        first = message.strip().splitlines()[0] if message.strip() else "bad arguments"
        self.exit(2, f"error: {self.prog}: {first} (see {self.prog} --help)\n")


def _load(name: str):
    return importlib.import_module(f"sgnas.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="sgnas",
        description="Hardware-aware latency profiling and one-shot NAS by generating architectures.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = _load(name)
        except ModuleNotFoundError as exc:
            if exc.name == f"sgnas.cli.{name}":
                continue  # subcommand not available in this build
            raise
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Entry point of ``sgnas``; returns the process exit code (argument errors exit 2 with one
    line)."""
    parser = build_parser()
    if prog is not None:  # sgnas-profile / sgnas-generate: errors name the command as typed
        parser.prog = prog
        for action in parser._subparsers._group_actions if parser._subparsers else ():
            for name, sub in getattr(action, "choices", {}).items():
                if prog.endswith("-" + name):
                    sub.prog = prog
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return int(args._run(args) or 0)
    except SgnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _single(command: str, argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return main([command, *argv], prog=f"sgnas-{command}")


def profile_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sgnas-profile`` (same as ``sgnas profile``)."""
    return _single("profile", argv)


def generate_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sgnas-generate`` (same as ``sgnas generate``)."""
    return _single("generate", argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
