"""COCO evaluation: perfect detections give AP 1, none give 0; labels and scales map back."""

from __future__ import annotations

import pytest
import torch

from effdet_graph.data.coco import CocoDetection
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.inference.evaluate import AGNOSTIC_KEY, METRICS, coco_evaluate


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "ds"
    make_dataset(out, images=30, seed=3, image_size=128, val_fraction=0.5)
    return CocoDetection.from_split(out / "val")


def _perfect(ds, scale=1.0, label_offset=0):
    dets = []
    for i in range(len(ds)):
        _, t = ds.load(i)
        n = len(t["labels"])
        dets.append(
            {
                "image_id": t["image_id"],
                "boxes": t["boxes"] * scale,
                "scores": torch.linspace(0.9, 0.5, n),
                "labels": (t["labels"] + label_offset) % ds.num_classes,
                "scale": scale,
            }
        )
    return dets


def test_perfect_detections(val):
    metrics = coco_evaluate(val.coco, _perfect(val, scale=0.5), val.label_to_category)
    assert set(metrics) == set(METRICS)
    for k in METRICS:
        assert metrics[k] == pytest.approx(1.0), k


def test_wrong_labels_score_zero(val):
    metrics = coco_evaluate(val.coco, _perfect(val, label_offset=1))
    assert metrics["AP"] < 0.05  # only chance overlaps with objects of the shifted class


def test_class_agnostic_ap_ignores_the_labels(val):
    """Perfect boxes with every label wrong: AP near 0, class-agnostic AP exactly 1; with the right labels both 1."""
    wrong = coco_evaluate(val.coco, _perfect(val, label_offset=1), class_agnostic=True)
    assert wrong["AP"] < 0.05 and wrong[AGNOSTIC_KEY] == pytest.approx(1.0)
    assert set(wrong) == {*METRICS, AGNOSTIC_KEY}
    right = coco_evaluate(val.coco, _perfect(val), class_agnostic=True)
    assert right["AP"] == pytest.approx(1.0) and right[AGNOSTIC_KEY] == pytest.approx(1.0)
    assert coco_evaluate(val.coco, [], class_agnostic=True) == {k: 0.0 for k in (*METRICS, AGNOSTIC_KEY)}


def test_no_detections(val):
    assert coco_evaluate(val.coco, []) == {k: 0.0 for k in METRICS}
    empty = [
        {
            "image_id": val.image_ids[0],
            "boxes": torch.zeros(0, 4),
            "scores": torch.zeros(0),
            "labels": torch.zeros(0, dtype=torch.long),
        }
    ]
    assert coco_evaluate(val.coco, empty)["AP"] == 0.0


def test_unknown_image_id(val):
    det = [
        {
            "image_id": 12345,
            "boxes": torch.tensor([[0.0, 0, 5, 5]]),
            "scores": torch.tensor([0.5]),
            "labels": torch.tensor([0]),
        }
    ]
    with pytest.raises(ValueError, match="12345"):
        coco_evaluate(val.coco, det)
