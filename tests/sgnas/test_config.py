"""The strict mapping -> dataclass loader."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sgnas.config import ConfigError, load_dataclass
from sgnas.errors import SgnasError


@dataclass(frozen=True)
class Inner:
    rounds: int = 3
    scale: float = 1.0


@dataclass
class Outer:
    name: str
    shape: tuple[int, ...] = (1, 2)
    pair: tuple[int, str] | None = None
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    flag: bool = False
    limit: int | None = None


def test_nested_optionals_and_tuples():
    o = load_dataclass(Outer, {"name": "a", "shape": [3, 4, 5], "pair": [1, "x"],
                               "inner": {"rounds": 7.0, "scale": "1e-3"}, "limit": None})
    assert o.shape == (3, 4, 5) and o.pair == (1, "x") and o.limit is None
    assert o.inner == Inner(rounds=7, scale=0.001)
    assert isinstance(o.inner.rounds, int)
    assert load_dataclass(Outer, {"name": "b"}).inner == Inner()


@pytest.mark.parametrize("data, match", [
    ({"name": "a", "nmae": 1}, r"src: unknown field 'nmae'; known: flag, inner, limit, name, pair"),
    ({"name": "a", "inner": {"roundz": 1}}, r"unknown field 'inner\.roundz'; known: rounds, scale"),
    ({}, r"missing field 'name'"),
    ({"name": "a", "flag": "yes"}, r"'flag' must be true or false"),
    ({"name": "a", "inner": {"rounds": 1.5}}, r"'inner\.rounds' must be an integer"),
    ({"name": "a", "limit": "many"}, r"'limit' must be an integer or null"),
    ({"name": "a", "pair": [1]}, r"'pair' must have 2 items"),
    ({"name": "a", "shape": 3}, r"'shape' must be a list"),
    ([1, 2], r"expected a mapping"),
])
def test_errors_name_the_field(data, match):
    with pytest.raises(ConfigError, match=match) as info:
        load_dataclass(Outer, data, where="src")
    assert isinstance(info.value, SgnasError)


def test_label_words_the_unknown_key():
    with pytest.raises(SgnasError, match="unknown recipe field 'x'"):
        load_dataclass(Inner, {"x": 1}, where="recipe", label="recipe field")
