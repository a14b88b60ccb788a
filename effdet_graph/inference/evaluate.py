"""COCO box AP of detections, via pycocotools' ``COCOeval``."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.ops import box_convert

from effdet_graph.inference.bootstrap import bootstrap_ap

__all__ = ["AGNOSTIC_KEY", "CI_KEYS", "METRICS", "coco_evaluate", "to_coco_results"]

#: Keys of :func:`coco_evaluate`'s result, in ``COCOeval.stats`` order.
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
#: Keys :func:`coco_evaluate` adds with ``bootstrap``: the ends of AP's 95% bootstrap interval.
CI_KEYS = ("AP_low", "AP_high")
#: Key :func:`coco_evaluate` adds with ``class_agnostic``: AP of the same detections with the classes ignored (any
#: box may match any object), which measures finding and placing boxes alone; AP below it is what wrong classes cost.
AGNOSTIC_KEY = "AP_agnostic"


def to_coco_results(
    detections: Sequence[Mapping[str, Any]],
    label_to_category: Sequence[int],
) -> list[dict[str, Any]]:
    """Detections -> COCO result entries ``{image_id, category_id, bbox [x, y, w, h], score}``.

    Each detection dict has ``image_id`` (int), ``boxes`` (``FloatTensor[D, 4]`` xyxy model-input
    pixels), ``scores`` (``FloatTensor[D]``), ``labels`` (``Int64Tensor[D]``, 0-based) and
    optionally ``scale`` (input pixels per original pixel, as returned by the eval transform;
    boxes are divided by it; default 1).

    Raises:
        ValueError: a label has no category.
    """
    results = []
    for det in detections:
        boxes = torch.as_tensor(det["boxes"], dtype=torch.float32).reshape(-1, 4)
        if boxes.shape[0] == 0:
            continue
        boxes = box_convert(boxes / float(det.get("scale", 1.0)), "xyxy", "xywh")
        image_id = int(det["image_id"])
        for box, score, label in zip(
            boxes.tolist(), torch.as_tensor(det["scores"]).tolist(), torch.as_tensor(det["labels"]).tolist()
        ):
            if not 0 <= label < len(label_to_category):
                raise ValueError(f"label {label} out of range for {len(label_to_category)} classes")
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(label_to_category[label]),
                    "bbox": [round(v, 3) for v in box],
                    "score": float(score),
                }
            )
    return results


def coco_evaluate(
    coco_gt: COCO,
    detections: Sequence[Mapping[str, Any]],
    label_to_category: Sequence[int] | None = None,
    image_ids: Sequence[int] | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    class_agnostic: bool = False,
) -> dict[str, float]:
    """COCO bbox metrics of ``detections`` against ``coco_gt``.

    Args:
        coco_gt: ground truth (e.g. ``CocoDetection.coco``).
        detections: per image, as in :func:`to_coco_results`.
        label_to_category: COCO category id of each 0-based label; defaults to the ground
            truth's category ids in ascending order (what ``CocoDetection`` uses).
        image_ids: images to evaluate on; defaults to all images of ``coco_gt`` (images without
            detections count as missed).
        bootstrap: resamples of the images for a 95% percentile interval of AP
            (:func:`~effdet_graph.inference.bootstrap.bootstrap_ap`); 0: none.
        seed: seed of the resamples.
        class_agnostic: also evaluate with the classes ignored (pycocotools' ``useCats = 0``): a detection may
            match an object of any class; a box found once per class counts once, its other copies as false
            positives.

    Returns:
        ``{"AP", "AP50", "AP75", "APs", "APm", "APl"}`` as floats in [0, 1]; all 0.0 when there
        are no detections. As in pycocotools, a size bucket without any ground truth gives -1.0.
        With ``bootstrap``, also ``AP_low`` and ``AP_high``: the interval's ends (both 0.0 without detections).
        With ``class_agnostic``, also ``AP_agnostic`` (:data:`AGNOSTIC_KEY`).

    Raises:
        ValueError: detections are for images the ground truth does not have, a label has no category, or
            ``bootstrap`` is negative.
    """
    if bootstrap < 0:
        raise ValueError(f"bootstrap resamples must be >= 0, got {bootstrap}")
    if label_to_category is None:
        label_to_category = sorted(coco_gt.getCatIds())
    results = to_coco_results(detections, label_to_category)
    if not results:
        return {k: 0.0 for k in METRICS + (CI_KEYS if bootstrap else ()) + ((AGNOSTIC_KEY,) if class_agnostic else ())}
    known = set(coco_gt.getImgIds())
    unknown = sorted({r["image_id"] for r in results} - known)
    if unknown:
        raise ValueError(f"detections for image ids not in the ground truth: {unknown[:5]}")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
    evaluator = _evaluated(coco_gt, coco_dt, image_ids)
    metrics = {k: float(v) for k, v in zip(METRICS, evaluator.stats[: len(METRICS)])}
    if bootstrap:
        interval = bootstrap_ap(evaluator, bootstrap, seed)
        metrics |= dict(zip(CI_KEYS, (interval.low, interval.high)))
    if class_agnostic:
        metrics[AGNOSTIC_KEY] = float(_evaluated(coco_gt, coco_dt, image_ids, use_categories=False).stats[0])
    return metrics


def _evaluated(coco_gt: COCO, coco_dt: COCO, image_ids: Sequence[int] | None, use_categories: bool = True) -> COCOeval:
    """A ``COCOeval`` of ``coco_dt`` that has run ``evaluate``, ``accumulate`` and ``summarize`` (its ``stats``)."""
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.useCats = int(use_categories)
        if image_ids is not None:
            evaluator.params.imgIds = sorted(int(i) for i in image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator
