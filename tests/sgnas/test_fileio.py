"""Strict JSON of values that may hold non-finite floats."""

from __future__ import annotations

import json

import pytest

from sgnas.errors import SgnasError

from sgnas.fileio import atomic_write_json, json_safe


def test_json_safe_nulls_non_finite_floats_at_any_depth(tmp_path):
    value = {"a": float("nan"), "b": [1.0, float("inf"), (2, float("-inf"))], "c": {"d": 0.5, "e": "x"}}
    safe = json_safe(value)
    assert safe == {"a": None, "b": [1.0, None, [2, None]], "c": {"d": 0.5, "e": "x"}}
    atomic_write_json(tmp_path / "v.json", safe)
    text = (tmp_path / "v.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == safe


def test_finite_float_names_the_field_on_one_line():
    from sgnas.fileio import finite_float

    assert finite_float(" 2.5 ", "t.csv line 2") == 2.5
    for bad in ("nan", "inf", "-inf", "abc", ""):
        with pytest.raises(SgnasError) as exc:
            finite_float(bad, "t.csv line 3 (cell)", column="dev_ms")
        assert str(exc.value) == f"t.csv line 3 (cell): value {bad!r} in column 'dev_ms' is not a finite number"
    with pytest.raises(SgnasError, match=r"^t.csv line 4: score 'x' is not a finite number$"):
        finite_float("x", "t.csv line 4", what="score")
