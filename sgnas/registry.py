"""A small name → object registry (search spaces, measuring backends).

Entries register themselves (``REG.register(name, obj)`` or ``@REG.register(name)``) in the module
that defines them; a registry made with ``discover="some.package"`` imports every module of that
package the first time it is asked for a name it does not hold or for its list of names, so a new
entry is a new module there, not an edit of a closed table. Registering a name twice is an error,
and an unknown name is an :class:`~sgnas.errors.SgnasError` listing the known ones.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable, Generic, Iterator, TypeVar, overload

from .errors import SgnasError

T = TypeVar("T")


class UnknownNameError(SgnasError, KeyError):
    """A name no entry of the registry holds."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Named entries of one ``kind`` (the word used in errors, e.g. ``"search space"``)."""

    def __init__(self, kind: str, discover: str | None = None) -> None:
        self.kind = kind
        self.discover = discover
        self._entries: dict[str, T] = {}
        self._discovered = discover is None

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None) -> Any:
        """Add ``obj`` under ``name`` (returns it); without ``obj``, a decorator doing that."""
        if obj is None:
            return lambda o: self.register(name, o)
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj
        return obj

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.discover)  # type: ignore[arg-type]
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)

    def get(self, name: str) -> T:
        """The entry ``name``; :class:`UnknownNameError` (an :class:`SgnasError`) listing the
        known names otherwise."""
        if name not in self._entries:
            self._discover()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or '(none)'}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        self._discover()
        return list(self._entries)

    def unregister(self, name: str) -> T:
        """Remove and return the entry ``name`` (tests, plugins replacing an entry)."""
        return self._entries.pop(name)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self._discover()
        return name in self._entries

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"


__all__ = ["Registry", "UnknownNameError"]
