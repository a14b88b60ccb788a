"""Training options are checked where they are defined (:class:`TrainOptions`), by field name; the
``train`` command takes its defaults from the class and names the flag the user typed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from effdet_graph.cli import main, make_parser
from effdet_graph.cli.train_commands import DEFAULTS, FLAGS, train_options
from effdet_graph.training.options import OptionError, TrainOptions, check_options
from graphspec import InputError

REQUIRED = {"data": Path("d"), "spec": Path("s.yaml"), "phi": 0, "out": Path("o")}


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"lr": 0}, "lr", "lr must be positive, got 0"),
        ({"ema_decay": 1.5}, "ema_decay", "ema_decay must be in [0, 1), got 1.5"),
        ({"batch_size": 0}, "batch_size", "batch_size must be at least 1, got 0"),
        ({"workers": -1}, "workers", "workers must be >= 0, got -1"),
        ({"seed": -3}, "seed", "seed must be >= 0, got -3"),
        ({"data_seed": -1}, "data_seed", "data_seed must be >= 0, got -1"),
        ({"log": "txt"}, "log", "log must be one of csv, tensorboard, got 'txt'"),
        ({"scale_range": (2.0, 1.0)}, "scale_range", "scale_range must be LOW,HIGH with 0 < LOW <= HIGH, got 2.0,1.0"),
        ({"steps": 1, "epochs": 1}, "steps", "give steps or epochs, not both"),
    ],
)
def test_options_name_the_field(changes, field, message):
    with pytest.raises(OptionError) as info:
        TrainOptions(**REQUIRED, **changes)
    assert (str(info.value), info.value.field) == (message, field)
    assert isinstance(info.value, InputError)
    assert info.value.named(lambda name: f"--{name}") == message.replace(field, f"--{field}", 1).replace(
        "or epochs", "or --epochs"
    )


def test_check_options_applies_the_same_rules_to_some_fields():
    check_options({"lr": 0.1, "ema_decay": 0.0, "image_size": None})
    with pytest.raises(OptionError, match=r"^lr must be positive, got -1$"):
        check_options({"lr": -1})
    with pytest.raises(KeyError):
        check_options({"learning_rate": 0.1})


def test_command_defaults_come_from_the_dataclass():
    args = make_parser().parse_args(["train", "--data", "d", "--spec", "bifpn", "--phi", "0"])
    options = train_options(args)
    for field in dataclasses.fields(TrainOptions):
        if field.name in DEFAULTS and field.name != "scale_range":
            assert getattr(args, field.name, DEFAULTS[field.name]) == DEFAULTS[field.name], field.name
    assert options.scale_range == DEFAULTS["scale_range"] and options.lr == TrainOptions.lr
    assert FLAGS["batch_size"] == "--batch-size" and FLAGS["overrides"] == "--set"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "0"], "error: --lr must be positive, got 0.0"),
        (["--ema-decay", "1.5"], "error: --ema-decay must be in [0, 1), got 1.5"),
        (["--scale-range", "2,1"], "error: --scale-range must be LOW,HIGH with 0 < LOW <= HIGH, got 2.0,1.0"),
    ],
)
def test_train_command_names_the_flag(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    code = main(["train", "--data", str(tmp_path), "--spec", "bifpn", "--phi", "0", "--out", str(out), *flags])
    assert (code, capsys.readouterr().err.strip()) == (2, message)
    assert not out.exists()
