"""The detector around any spec: per-part costs, MACs against effdet, shapes, CLI report."""

from __future__ import annotations

import json

import pytest
import torch

from effdet_graph.cli import main
from effdet_graph.model.cost import detector_cost, detector_report
from effdet_graph.model.detector import DetectorPredictor, DetectorTrainer, build_detector

PHIS = {0: "d0", 1: "d1", 2: "d2", 3: "d3", 4: "d4", 5: "d5", 6: "d6", 7: "d7", 8: "d7x"}


def _effdet_macs(phi: int) -> int:
    effdet = pytest.importorskip("effdet")
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = effdet.create_model(f"tf_efficientdet_{PHIS[phi]}", pretrained=False, pretrained_backbone=False)
    size = model.config.image_size[0]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.empty(1, 3, size, size, device="meta"))
    return counter.get_total_flops() // 2


def _spec_for(phi: int) -> str:
    return "specs/bifpn_p3p8.yaml" if phi == 8 else "specs/bifpn.yaml"


@pytest.mark.parametrize("phi", [0, 2])
def test_macs_within_one_percent_of_effdet(phi):
    ours = detector_report(_spec_for(phi), phi)["macs"]
    assert abs(ours - _effdet_macs(phi)) / _effdet_macs(phi) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("phi", [1, 3, 4, 5, 6, 7, 8])
def test_macs_within_one_percent_of_effdet_all_phis(phi):
    ours = detector_report(_spec_for(phi), phi)["macs"]
    assert abs(ours - _effdet_macs(phi)) / _effdet_macs(phi) < 0.01


def test_d0_matches_the_paper():
    report = detector_report("specs/bifpn.yaml", 0)
    assert report["params"] == 3_880_067  # paper Table 2: 3.9M; effdet tf_efficientdet_d0
    assert abs(report["macs"] / 2.54e9 - 1) < 0.03  # paper: 2.54B FLOPs (multiply-adds)
    assert report["parts"]["feature_network"]["params"] == 196_281


@pytest.mark.parametrize("spec", ["specs/fpn.yaml", "specs/nasfpn.yaml", "specs/qufpn.yaml"])
def test_other_specs_get_the_same_backbone_and_head(spec):
    bifpn = detector_report("specs/bifpn.yaml", 1)
    other = detector_report(spec, 1)
    assert other["parts"]["backbone"] == bifpn["parts"]["backbone"]
    assert other["parts"]["heads"] == bifpn["parts"]["heads"]
    assert (other["width"], other["repeats"]) == (88, 4)


def test_d7_uses_anchor_scale_5_and_d7x_levels_3_to_8():
    with torch.device("meta"):
        d7 = build_detector("specs/bifpn.yaml", 7)
        d7x = build_detector("specs/bifpn_p3p8.yaml", 8)
    assert d7.anchor_config.anchor_scale == 5.0
    assert (d7x.anchor_config.min_level, d7x.anchor_config.max_level) == (3, 8)
    assert d7.spec.node_by_id["p4_out"].fusion == "sum"  # D6-D7x: sum fusion


def test_head_output_shapes_and_wrappers():
    model = build_detector("specs/fpn.yaml", 0, num_classes=3, overrides={"width": 16, "repeats": 1})
    images = torch.randn(2, 3, 128, 128)
    class_out, box_out = model.eval()(images)
    assert [tuple(c.shape) for c in class_out] == [(2, 27, 128 // 2**k, 128 // 2**k) for k in range(3, 8)]
    assert [tuple(b.shape) for b in box_out] == [(2, 36, 128 // 2**k, 128 // 2**k) for k in range(3, 8)]
    targets = [
        {"boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]
    losses = DetectorTrainer(model, 128).train()(images, targets)
    assert set(losses) == {"loss", "class_loss", "box_loss"} and losses["loss"].requires_grad
    detections = DetectorPredictor(model, 128).eval()(images)
    assert len(detections) == 2 and all(d["boxes"].shape[1] == 4 and len(d["boxes"]) <= 100 for d in detections)


def test_class_bias_starts_at_the_prior():
    model = build_detector("specs/fpn.yaml", 0, num_classes=3, overrides={"width": 16, "repeats": 1})
    bias = model.class_head.predict.conv_pw.bias
    torch.testing.assert_close(torch.sigmoid(bias), torch.full_like(bias, 0.01))


def test_detector_cost_on_a_real_model_equals_meta():
    model = build_detector("specs/fpn.yaml", 0, num_classes=3, overrides={"width": 16, "repeats": 1})
    with torch.device("meta"):
        meta = build_detector("specs/fpn.yaml", 0, num_classes=3, overrides={"width": 16, "repeats": 1})
    assert detector_cost(model, 128) == detector_cost(meta, 128)


def test_build_detector_cli_json(capsys):
    assert main(["build", "specs/bifpn.yaml", "--detector", "--phi", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["params"] == 3_880_067 and isinstance(report["macs"], int)
    assert set(report["parts"]) == {"backbone", "feature_network", "heads"}
    assert report["image_size"] == 512


def test_build_detector_cli_errors(capsys):
    assert main(["build", "specs/bifpn.yaml", "--detector", "--phi", "11"]) == 2
    assert "no scaling entry for phi 11" in capsys.readouterr().err
    assert main(["build", "specs/bifpn.yaml", "--detector", "--backbone", "efficientnet_bx"]) == 2
    assert "unknown timm backbone 'efficientnet_bx'" in capsys.readouterr().err
