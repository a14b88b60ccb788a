"""Pretrained backbones: timm's ImageNet weights (a download) or a local file in timm's layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from effdet_graph.cli import main
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.io.checkpoint import read_checkpoint
from effdet_graph.model.backbone import create_backbone
from graphspec import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NAME = "mobilenetv3_small_050"
TRAIN = [
    "train", "--spec", "bifpn", "--phi", "0", "--backbone", NAME, "--image-size", "128", "--set", "width=16",
    "--set", "repeats=1", "--batch-size", "4", "--steps", "1", "--bn-images", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """The weights of a (randomly initialised) timm classifier, as timm saves them: .pth and .safetensors,
    and a file of another architecture."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(7)
    state = timm.create_model(NAME).state_dict()
    torch.save(state, folder / f"{NAME}.pth")
    save_file(state, folder / f"{NAME}.safetensors")
    torch.save(timm.create_model("resnet18").state_dict(), folder / "resnet18.pth")
    return {
        "pth": folder / f"{NAME}.pth",
        "safetensors": folder / f"{NAME}.safetensors",
        "other": folder / "resnet18.pth",
    }


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_a_weights_file_in_timms_layout_is_loaded_into_the_feature_extractor(weights, kind):
    source = torch.load(weights["pth"], weights_only=True)
    backbone = create_backbone(NAME, [3, 4, 5], weights[kind])
    loaded = backbone.state_dict()
    assert len(loaded) > 100
    for key, value in loaded.items():
        assert torch.equal(value, source[key]), key


def test_another_backbones_weights_are_refused_in_one_line(weights):
    with pytest.raises(InputError, match=rf"resnet18.pth: these weights are not for backbone '{NAME}' \(size mismatch"):
        create_backbone(NAME, [3, 4, 5], weights["other"])
    with pytest.raises(InputError, match="backbone weights file not found"):
        create_backbone(NAME, [3, 4, 5], weights["pth"].with_name("missing.pth"))


def test_train_starts_from_the_file_and_refuses_a_wrong_one(weights, tmp_path, capsys):
    data = tmp_path / "data"
    make_dataset(data, images=6, seed=0, image_size=128)
    out = tmp_path / "run"
    assert (
        main([*TRAIN, "--data", str(data), "--out", str(out), "--backbone-weights", str(weights["safetensors"])]) == 0
    )
    assert read_checkpoint(out / "last.pt")["args"]["backbone_weights"] == str(weights["safetensors"])
    capsys.readouterr()

    wrong = tmp_path / "wrong"
    assert main([*TRAIN, "--data", str(data), "--out", str(wrong), "--backbone-weights", str(weights["other"])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "these weights are not for backbone" in err and "Traceback" not in err
    assert not wrong.exists()


def test_pretrained_backbone_offline_says_what_to_do(tmp_path):
    data = tmp_path / "data"
    make_dataset(data, images=6, seed=0, image_size=128)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "effdet_graph.cli", *TRAIN, "--data", str(data), "--out", str(tmp_path / "run"),
         "--pretrained-backbone"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--pretrained-backbone" in lines[0] and "--backbone-weights FILE" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--backbone-weights", "--freeze-backbone"])
def test_compare_takes_backbone_weights_and_freezing_only_with_training(weights, capsys, flag):
    assert main(["compare", "fpn", flag, *([str(weights["pth"])] if flag == "--backbone-weights" else [])]) == 2
    assert "add --train-steps N" in capsys.readouterr().err
