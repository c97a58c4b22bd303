"""Strict JSON of values that may hold non-finite floats."""

from __future__ import annotations

import json

from sgnas.fileio import atomic_write_json, json_safe


def test_json_safe_nulls_non_finite_floats_at_any_depth(tmp_path):
    value = {"a": float("nan"), "b": [1.0, float("inf"), (2, float("-inf"))], "c": {"d": 0.5, "e": "x"}}
    safe = json_safe(value)
    assert safe == {"a": None, "b": [1.0, None, [2, None]], "c": {"d": 0.5, "e": "x"}}
    atomic_write_json(tmp_path / "v.json", safe)
    text = (tmp_path / "v.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == safe
