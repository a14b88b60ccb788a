"""The bootstrap interval of COCO AP: its re-accumulation equals pycocotools' on any multiset of images,
and the interval holds the point AP and narrows with more images. Synthetic boxes, no model."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from effdet_graph.inference.bootstrap import ApInterval, ImageMatches, bootstrap_ap
from effdet_graph.inference.evaluate import CI_KEYS, METRICS, coco_evaluate

CATEGORIES = (1, 2, 5)


def _scene(images: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth (a COCO dict; some crowd boxes, some images empty) and noisy detections: jittered
    true boxes (scored higher), missed boxes, wrong classes and false alarms (lower); no two scores tie."""
    rng = np.random.default_rng(seed)
    gt: dict[str, Any] = {
        "images": [{"id": 3 * i + 1, "width": 200, "height": 200} for i in range(images)],
        "categories": [{"id": c, "name": f"c{c}"} for c in CATEGORIES],
        "annotations": [],
    }
    dets: list[dict[str, Any]] = []
    for image in gt["images"]:
        for _ in range(rng.integers(0, 6)):
            x, y = rng.uniform(0, 150, 2)
            w, h = rng.uniform(4, 50, 2)
            category = int(rng.choice(CATEGORIES))
            crowd = int(rng.random() < 0.05)
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image["id"],
                    "category_id": category,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": crowd,
                }
            )
            if rng.random() < 0.8:  # found, roughly
                jitter = rng.normal(0, 0.15 * min(w, h), 4)
                label = category if rng.random() < 0.9 else int(rng.choice(CATEGORIES))
                box = [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])]
                score = float(rng.uniform(0.3, 1.0))
                dets.append({"image_id": image["id"], "category_id": label, "bbox": box, "score": score})
        for _ in range(rng.integers(0, 4)):  # false alarms
            x, y = rng.uniform(0, 150, 2)
            w, h = rng.uniform(4, 50, 2)
            label = int(rng.choice(CATEGORIES))
            dets.append(
                {"image_id": image["id"], "category_id": label, "bbox": [x, y, w, h], "score": rng.uniform(0, 0.7)}
            )
    return gt, dets


def _evaluated(gt: dict[str, Any], dets: list[dict[str, Any]], image_ids: list[int] | None = None) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(dets), iouType="bbox")
        if image_ids is not None:
            evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _repeated(gt: dict[str, Any], dets: list[dict[str, Any]], counts: dict[int, int]):
    """The data set with image ``i`` present ``counts[i]`` times (new ids that sort next to the original)."""
    copies = {i: [100 * i + c for c in range(n)] for i, n in counts.items()}
    images = [{**im, "id": new} for im in gt["images"] for new in copies[im["id"]]]
    annotations = [{**a, "image_id": new} for a in gt["annotations"] for new in copies[a["image_id"]]]
    for number, annotation in enumerate(annotations, 1):
        annotation["id"] = number
    detections = [{**d, "image_id": new} for d in dets for new in copies[d["image_id"]]]
    return {**gt, "images": images, "annotations": annotations}, detections


@pytest.fixture(scope="module")
def scene():
    gt, dets = _scene(40, seed=1)
    return gt, dets, _evaluated(gt, dets)


def test_all_images_once_is_cocoevals_ap(scene):
    _, _, evaluator = scene
    matches = ImageMatches(evaluator)
    assert matches.image_ids == sorted(im["id"] for im in scene[0]["images"])
    ap = matches.ap(np.ones(matches.num_images, dtype=int))
    assert 0.1 < evaluator.stats[0] < 0.9  # neither trivial nor perfect
    assert ap == pytest.approx(evaluator.stats[0], abs=1e-12)
    assert matches.ap(np.ones((3, matches.num_images), dtype=int)) == pytest.approx([evaluator.stats[0]] * 3, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_any_multiset_is_cocoevals_ap_on_the_repeated_images(scene, seed):
    gt, dets, evaluator = scene
    matches = ImageMatches(evaluator)
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, matches.num_images)
    counts[0] = 0  # dropped images too
    expected = _evaluated(*_repeated(gt, dets, dict(zip(matches.image_ids, counts.tolist())))).stats[0]
    assert matches.ap(counts) == pytest.approx(expected, abs=1e-9)


def test_a_subset_is_cocoevals_ap_on_those_images(scene):
    gt, dets, evaluator = scene
    matches = ImageMatches(evaluator)
    keep = matches.image_ids[::3]
    counts = np.isin(matches.image_ids, keep).astype(int)
    assert matches.ap(counts) == pytest.approx(_evaluated(gt, dets, keep).stats[0], abs=1e-9)


def test_no_ground_truth_is_nan(scene):
    gt, dets, evaluator = scene
    matches = ImageMatches(evaluator)
    empty = {a["image_id"] for a in gt["annotations"]} ^ set(matches.image_ids)
    assert empty, "the scene has an image without objects"
    counts = np.isin(matches.image_ids, sorted(empty)).astype(int)
    assert np.isnan(matches.ap(counts))
    with pytest.raises(ValueError, match="shape"):
        matches.ap(np.ones(3, dtype=int))


def test_interval_holds_the_ap_and_narrows_with_more_images():
    widths = []
    for images in (30, 300):
        gt, dets = _scene(images, seed=7)
        evaluator = _evaluated(gt, dets)
        interval = bootstrap_ap(evaluator, resamples=200, seed=0)
        assert isinstance(interval, ApInterval) and interval.images == images and interval.resamples == 200
        assert interval.low < evaluator.stats[0] < interval.high
        assert bootstrap_ap(evaluator, resamples=200, seed=0) == interval  # seeded
        widths.append(interval.high - interval.low)
    assert widths[1] < 0.6 * widths[0]  # ~ 1/sqrt(10) in theory


def test_bootstrap_refuses_bad_arguments(scene):
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_ap(scene[2], resamples=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ap(scene[2], level=1.0)
    with pytest.raises(ValueError, match="evaluate"):
        ImageMatches(COCOeval(iouType="bbox"))


def test_coco_evaluate_adds_the_interval(tmp_path):
    from effdet_graph.data.coco import CocoDetection
    from effdet_graph.data.synthetic import make_dataset

    make_dataset(tmp_path / "ds", images=12, seed=3, image_size=96, val_fraction=0.5)
    val = CocoDetection.from_split(tmp_path / "ds" / "val")
    dets = []
    for i in range(len(val)):
        _, target = val.load(i)
        boxes = target["boxes"].clone()
        boxes[::2] += 6.0  # every other box off by a few pixels
        count = len(boxes)
        dets.append(
            {
                "image_id": target["image_id"],
                "boxes": boxes,
                "scores": np.linspace(0.9, 0.5, count),
                "labels": target["labels"],
            }
        )
    plain = coco_evaluate(val.coco, dets)
    assert set(plain) == set(METRICS)
    metrics = coco_evaluate(val.coco, dets, bootstrap=50)
    assert set(metrics) == set(METRICS) | set(CI_KEYS)
    assert metrics["AP_low"] <= metrics["AP"] == plain["AP"] <= metrics["AP_high"]
    assert coco_evaluate(val.coco, [], bootstrap=50) == {k: 0.0 for k in METRICS + CI_KEYS}
