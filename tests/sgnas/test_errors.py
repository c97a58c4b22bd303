"""One-line naming of an underlying failure, and the one JSON reader."""

from __future__ import annotations

import pytest

from sgnas.errors import SgnasError, first_line
from sgnas.fileio import read_json


def test_first_line_takes_the_first_non_blank_line():
    assert first_line(RuntimeError("\n  \n  cuda failed  \n  at frame 3")) == "cuda failed"
    assert first_line(RuntimeError("abcdef"), limit=3) == "abc"


@pytest.mark.parametrize("exc", [RuntimeError(""), KeyError(), ValueError("  \n ")])
def test_first_line_of_an_empty_message_is_the_type_name(exc):
    assert first_line(exc) == type(exc).__name__


def test_read_json_names_the_file_and_the_problem(tmp_path):
    good = tmp_path / "a.json"
    good.write_text('{"x": 1}')
    assert read_json(good, "LUT") == {"x": 1}
    with pytest.raises(SgnasError, match=f"LUT {tmp_path / 'b.json'} not found"):
        read_json(tmp_path / "b.json", "LUT")
    with pytest.raises(SgnasError, match="record it first"):
        read_json(tmp_path / "b.json", "baseline", missing="record it first")
    bad = tmp_path / "c.json"
    bad.write_text('{"x": ')
    with pytest.raises(SgnasError, match=f"baseline {bad} is corrupt or truncated"):
        read_json(bad, "baseline")
    binary = tmp_path / "d.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SgnasError, match="corrupt or truncated"):
        read_json(binary, "LUT")
