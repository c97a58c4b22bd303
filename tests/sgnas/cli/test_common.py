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


@pytest.mark.parametrize("argv, config, fields", [
    (["train-generator", "--supernet", "s.pt", "--data", "d", "--cost", "flops"], "GeneratorTrainConfig",
     {"epochs": "epochs", "lr": "lr", "cost_weight": "cost_weight", "tau0": "tau0",
      "tau_decay": "tau_decay", "cost_samples": "cost_samples", "relaxation": "relaxation",
      "eval_targets": "eval_targets", "eval_batches": "eval_batches", "seed": "seed",
      "overshoot_weight": "overshoot_weight"}),
    (["train-shared-generator", "--supernet", "s.pt", "--data", "d", "--out", "o.pt"],
     "SharedTrainConfig", {"steps": "steps", "references": "num_refs", "seed": "seed"}),
    (["train-supernet", "--data", "d", "--out", "o"], "SupernetTrainConfig",
     {"space": "space", "epochs": "epochs", "paths_per_step": "paths_per_step", "seed": "seed",
      "momentum": "momentum", "label_smoothing": "label_smoothing", "grad_clip": "grad_clip",
      "warmup_epochs": "warmup_epochs", "log_every": "log_every"}),
])
def test_training_option_defaults_are_the_configs(argv, config, fields, monkeypatch):
    """An option's default is read from its training config, not written twice: change the
    config's default and the option follows."""
    import dataclasses

    from sgnas.cli.main import build_parser
    from sgnas.train import configs

    cls = getattr(configs, config)
    args = build_parser().parse_args(argv)
    for dest, field in fields.items():
        assert getattr(args, dest) == getattr(cls(), field), dest
    changed = dataclasses.make_dataclass(config, [(f.name, f.type, dataclasses.field(
        default=(f.default + 1 if f.name == "seed" else f.default))) for f in dataclasses.fields(cls)])
    monkeypatch.setattr(configs, config, changed)
    assert build_parser().parse_args(argv).seed == cls().seed + 1
