"""Argument types and groups shared by the subcommands."""

from __future__ import annotations

import argparse

import pytest

from sgnas.cli.common import (
    add_data_arguments,
    add_resume_arguments,
    positive_int,
    positive_number,
    refuse_overwrite,
)
from sgnas.errors import SgnasError


def test_positive_types():
    assert positive_int("3") == 3 and positive_number("0.5") == 0.5
    for bad in ("0", "-1", "1.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)
    for bad in ("0", "-2", "nan", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_number(bad)


def test_data_and_resume_arguments():
    parser = argparse.ArgumentParser()
    add_data_arguments(parser, data_help="where the images are")
    add_resume_arguments(parser)
    args = parser.parse_args(["--data", "d", "--resume"])
    assert (args.data, args.data_format, args.download, args.workers, args.device) == \
        ("d", "auto", False, 2, "auto")
    assert args.resume and not args.force
    assert "where the images are" in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "d", "--resume", "--force"])


def test_refuse_overwrite_names_the_first_existing_file(tmp_path):
    present = tmp_path / "b.json"
    present.write_text("{}")
    refuse_overwrite([tmp_path / "a.json"], force=False)
    refuse_overwrite([present], force=True)
    with pytest.raises(SgnasError, match="b.json exists; pass --force"):
        refuse_overwrite([tmp_path / "a.json", present], force=False)
