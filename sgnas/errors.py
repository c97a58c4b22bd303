"""User-facing errors: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations


class SgnasError(Exception):
    """A problem with the user's input or environment (bad file, wrong device, missing runtime).

    The CLI prints ``error: <message>`` and exits with :attr:`exit_code`, without a traceback.
    """

    exit_code = 2


class ArchitectureError(SgnasError, ValueError):
    """An architecture that breaks a rule of its search space."""


class SpaceMismatchError(SgnasError):
    """A file (LUT, checkpoint) made for another search space."""


class MissingDependencyError(SgnasError, ImportError):
    """An optional runtime is not installed; the message names the extra to install."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first non-blank line of ``str(exc)`` (at most ``limit`` characters), or the exception's
    type name when its message is empty: how an underlying failure is named in a one-line error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if limit is None else text[:limit]


def require(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install 'sgnas[extra]'``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised through fakes in tests
        raise MissingDependencyError(
            f"{module} is not installed: pip install 'sgnas[{extra}]' ({exc})"
        ) from exc
