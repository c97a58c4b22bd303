"""One strict loader from parsed mappings (YAML, JSON, checkpoint dicts) to typed dataclasses.

:func:`load_dataclass` checks every value against the field's annotation: ``bool`` (true/false
only), ``int`` (an integral float is accepted), ``float`` (ints, and strings like ``"1e-3"`` that
YAML reads as text), ``str``, ``X | None``, ``tuple[X, ...]`` / ``tuple[X, Y]`` and ``list[X]``
(from lists), ``dict[str, X]``, nested dataclasses (field names in errors get a ``parent.`` prefix)
and ``Any``. An unknown key is an error that names it and the known ones; a missing required field
is an error naming it. Every error is a :class:`~sgnas.errors.SgnasError` prefixed with ``where``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import SgnasError

T = TypeVar("T")

_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


class ConfigError(SgnasError):
    """A mapping that does not fit its dataclass (unknown or missing field, wrong type)."""


def _describe(tp: Any) -> str:
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _fail(where: str, name: str, tp: Any, value: Any, suffix: str = "") -> ConfigError:
    return ConfigError(f"{where}: field {name!r} must be {_describe(tp)}{suffix}, got {value!r}")


def _coerce(value: Any, tp: Any, name: str, where: str, label: str) -> Any:
    if tp is Any or tp is object:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return _coerce(value, a, name, where, label)
            except ConfigError as exc:
                errors.append(exc)
        if len(inner) == 1 and inner[0] in _NAMES:
            suffix = " or null" if type(None) in args else ""
            raise _fail(where, name, inner[0], value, suffix) from None
        raise errors[0]
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return load_dataclass(tp, value, where=where, label=label, prefix=f"{name}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: field {name!r} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{name}[{i}]", where, label) for i, v in enumerate(value))
        if args:
            if len(value) != len(args):
                raise ConfigError(f"{where}: field {name!r} must have {len(args)} items, got {value!r}")
            return tuple(_coerce(v, a, f"{name}[{i}]", where, label)
                         for i, (v, a) in enumerate(zip(value, args)))
        return tuple(value)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: field {name!r} must be a list, got {value!r}")
        item = args[0] if args else Any
        return [_coerce(v, item, f"{name}[{i}]", where, label) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: field {name!r} must be a mapping, got {value!r}")
        if len(args) == 2:
            return {_coerce(k, args[0], name, where, label): _coerce(v, args[1], f"{name}.{k}", where, label)
                    for k, v in value.items()}
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(where, name, tp, value)
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(where, name, tp, value)
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise _fail(where, name, tp, value) from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _fail(where, name, tp, value)
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _fail(where, name, tp, value)
    return value  # an annotation this loader does not check (e.g. Literal, Callable)


def load_dataclass(cls: type[T], data: Any, where: str = "config", label: str = "field",
                   prefix: str = "") -> T:
    """Build ``cls`` (a dataclass) from the mapping ``data``, strictly (see the module docstring).

    ``where`` names the source in errors (a file, ``"protocol"``); ``label`` is the word for a key
    in the unknown-key error (``"recipe field"``); ``prefix`` is prepended to field names (nested).
    Fields with ``init=False`` are not read.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    names = [f.name for f in known]
    unknown = sorted(set(data) - set(names), key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown {label} {prefix + str(unknown[0])!r}; "
                          f"known: {', '.join(sorted(names))}")
    kwargs = {}
    for f in known:
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing field {prefix + f.name!r}")
            continue
        kwargs[f.name] = _coerce(data[f.name], hints[f.name], prefix + f.name, where, label)
    try:
        return cls(**kwargs)
    except SgnasError as exc:
        msg = str(exc)
        raise type(exc)(msg if msg.startswith(where) else f"{where}: {msg}") from None


__all__ = ["ConfigError", "load_dataclass"]
