"""Confidence interval of COCO box AP: a bootstrap over the evaluated images.

The val images are drawn with replacement ``resamples`` times (seeded), COCO AP (IoU 0.50:0.95, all
areas, 100 detections per image) is recomputed on each draw, and the percentile interval of those APs
is reported.

Only the accumulation is redone per draw. ``COCOeval.evaluate()`` has matched every detection of every
(image, category) once; :class:`ImageMatches` turns its ``evalImgs`` into per-category arrays, sorted by
score as ``COCOeval.accumulate()`` sorts them: the image of each detection, whether it is a true or a false
positive at each IoU threshold, and the non-ignored ground truth per image. A draw is a count per image
(how often it was drawn); each detection then weighs its image's count, and precision and recall follow
from the weighted cumulative sums, which is what ``accumulate()`` computes on the data set with every
image repeated that many times (an image drawn twice contributes each detection and each ground-truth box
twice). Drawing every image once reproduces ``COCOeval``'s AP (to rounding in the final mean).

Repeated images sort next to each other, detection by detection: where two detections have exactly the
same score, copies of an image drawn twice are ordered by detection rather than image copy by image copy;
such ties are rare and move the AP of one draw by far less than the draws differ from one another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools.cocoeval import COCOeval

__all__ = ["CI_LEVEL", "DEFAULT_RESAMPLES", "ApInterval", "ImageMatches", "bootstrap_ap"]

#: Resamples of the val images by default (``eval --bootstrap``).
DEFAULT_RESAMPLES = 200
#: Coverage of the reported interval.
CI_LEVEL = 0.95
_CHUNK_ELEMENTS = 1 << 22  # floats per (resamples, thresholds, detections) block: bounds the memory


@dataclass(frozen=True)
class ApInterval:
    """A bootstrap interval of COCO AP.

    Attributes:
        low: lower percentile of the resampled APs.
        high: upper percentile of the resampled APs.
        level: coverage (0.95: the 2.5th and 97.5th percentiles).
        resamples: draws of the images.
        images: images drawn from (each draw has this many).
    """

    low: float
    high: float
    level: float
    resamples: int
    images: int


@dataclass(frozen=True)
class _Category:
    """The matched detections of one category, in ``accumulate()``'s score order."""

    image: np.ndarray  # int (D,): image index of each detection
    tp: np.ndarray  # float (T, D): 1 where a true positive at IoU threshold t
    fp: np.ndarray  # float (T, D): 1 where a false positive (neither where ignored)
    gt: np.ndarray  # int (I,): non-ignored ground-truth boxes per image


class ImageMatches:
    """Per-image matching of an evaluated ``COCOeval`` (``evaluate()`` done, ``accumulate()`` not needed),
    for recomputing AP on any multiset of its images.

    Only the bbox AP of ``summarize()``'s first line is covered: all IoU thresholds, the ``all`` area range,
    the last (largest) ``maxDets``, categories used (``useCats``, the default).

    Attributes:
        image_ids: the evaluated image ids, in ``COCOeval``'s (sorted) order; counts index them.
        iou_thresholds: ``params.iouThrs``.
        recall_thresholds: ``params.recThrs``.

    Raises:
        ValueError: ``evaluate()`` has not run, or categories are not used.
    """

    def __init__(self, evaluator: COCOeval):
        if not getattr(evaluator, "evalImgs", None) or not hasattr(evaluator, "_paramsEval"):
            raise ValueError("COCOeval.evaluate() has not run")
        params = evaluator._paramsEval
        if not params.useCats:
            raise ValueError("the bootstrap needs COCOeval with useCats=1")
        self.image_ids = [int(i) for i in params.imgIds]
        self.iou_thresholds = np.asarray(params.iouThrs, dtype=float)
        self.recall_thresholds = np.asarray(params.recThrs, dtype=float)
        images = len(self.image_ids)
        areas = len(params.areaRng)
        area = params.areaRngLbl.index("all")
        max_det = params.maxDets[-1]
        thresholds = len(self.iou_thresholds)
        self._categories = []
        for k in range(len(params.catIds)):
            start = (k * areas + area) * images
            gt = np.zeros(images, dtype=np.int64)
            index, scores, tp, fp = [], [], [], []
            for i, entry in enumerate(evaluator.evalImgs[start : start + images]):
                if entry is None:
                    continue
                gt[i] = np.count_nonzero(np.asarray(entry["gtIgnore"]) == 0)
                matched = np.asarray(entry["dtMatches"])[:, :max_det].astype(bool)
                ignored = np.asarray(entry["dtIgnore"])[:, :max_det].astype(bool)
                scores.append(np.asarray(entry["dtScores"][:max_det], dtype=float))
                index.append(np.full(len(scores[-1]), i, dtype=np.int64))
                tp.append(matched & ~ignored)
                fp.append(~matched & ~ignored)
            if scores and sum(len(s) for s in scores):
                order = np.argsort(-np.concatenate(scores), kind="mergesort")  # as accumulate() sorts
                self._categories.append(
                    _Category(
                        np.concatenate(index)[order],
                        np.concatenate(tp, axis=1)[:, order].astype(float),
                        np.concatenate(fp, axis=1)[:, order].astype(float),
                        gt,
                    )
                )
            else:
                empty = np.zeros((thresholds, 0))
                self._categories.append(_Category(np.zeros(0, dtype=np.int64), empty, empty, gt))

    @property
    def num_images(self) -> int:
        """Images evaluated (the length of a count vector)."""
        return len(self.image_ids)

    def ap(self, counts: np.ndarray) -> np.ndarray:
        """COCO AP of image multisets.

        Args:
            counts: ``(B, I)`` or ``(I,)`` non-negative integers: how often each image (in ``image_ids``
                order) is in each multiset. All ones: the evaluated set itself.

        Returns:
            ``(B,)`` APs (one, for a 1-D ``counts``); NaN for a multiset without any non-ignored ground truth (AP
            undefined; ``COCOeval`` reports -1 there).

        Raises:
            ValueError: ``counts`` has the wrong shape or a negative entry.
        """
        counts = np.asarray(counts)
        single = counts.ndim == 1
        counts = np.atleast_2d(counts)
        if counts.ndim != 2 or counts.shape[1] != self.num_images:
            raise ValueError(f"counts must have shape (B, {self.num_images}), got {counts.shape}")
        if (counts < 0).any():
            raise ValueError("counts must be non-negative")
        counts = counts.astype(float)
        total = np.zeros(len(counts))  # sum of the categories' mean precision
        used = np.zeros(len(counts))  # categories with ground truth
        for category in self._categories:
            ap, has_gt = self._category_ap(category, counts)
            total += np.where(has_gt, ap, 0.0)
            used += has_gt
        with np.errstate(invalid="ignore", divide="ignore"):
            result = np.where(used > 0, total / np.maximum(used, 1), np.nan)
        return result[0] if single else result

    def _category_ap(self, category: _Category, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean interpolated precision (over IoU and recall thresholds) of one category per multiset,
        and whether the multiset has ground truth of it."""
        npig = counts @ category.gt  # (B,)
        has_gt = npig > 0
        ap = np.zeros(len(counts))
        detections = len(category.image)
        if detections == 0:
            return ap, has_gt
        recall_thresholds = self.recall_thresholds
        chunk = max(1, _CHUNK_ELEMENTS // (category.tp.size or 1))
        for start in range(0, len(counts), chunk):
            rows = np.flatnonzero(has_gt[start : start + chunk]) + start
            if not len(rows):
                continue
            weights = counts[rows][:, category.image][:, None, :]  # (b, 1, D)
            tp_sum = np.cumsum(weights * category.tp, axis=-1)  # (b, T, D): integer valued, exact
            fp_sum = np.cumsum(weights * category.fp, axis=-1)
            recall = tp_sum / npig[rows][:, None, None]
            precision = tp_sum / (fp_sum + tp_sum + np.spacing(1))
            envelope = np.maximum.accumulate(precision[..., ::-1], axis=-1)[..., ::-1]
            recall = recall.reshape(-1, detections)
            envelope = envelope.reshape(-1, detections)
            found = np.stack([np.searchsorted(row, recall_thresholds, side="left") for row in recall])
            interpolated = np.take_along_axis(envelope, np.minimum(found, detections - 1), axis=1)
            interpolated[found >= detections] = 0.0  # recall never reached
            ap[rows] = interpolated.reshape(len(rows), -1).mean(axis=1)
        return ap, has_gt


def bootstrap_ap(
    evaluator: COCOeval, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = CI_LEVEL
) -> ApInterval:
    """Percentile bootstrap interval of the COCO AP of an evaluated ``COCOeval``, over its images.

    Cost: one pass over ``evalImgs``, then per resample a weighted cumulative sum over every detection at
    each IoU threshold; a few milliseconds per resample for hundreds of images, small next to
    ``evaluate()`` itself.

    Args:
        evaluator: ``evaluate()`` has run on it.
        resamples: draws of the images, each as many as were evaluated, with replacement.
        seed: seed of the draws (the same seed gives the same interval).
        level: coverage of the interval, in (0, 1).

    Returns:
        The interval. Draws without ground truth (AP undefined) are left out of the percentiles; when every
        draw is, the interval is NaN.

    Raises:
        ValueError: ``resamples`` below 1, ``level`` outside (0, 1), or ``evaluate()`` has not run.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    matches = ImageMatches(evaluator)
    images = matches.num_images
    draws = np.random.default_rng(seed).integers(0, images, size=(resamples, images))
    counts = np.stack([np.bincount(row, minlength=images) for row in draws])
    aps = matches.ap(counts)
    aps = aps[~np.isnan(aps)]
    if not len(aps):
        return ApInterval(float("nan"), float("nan"), level, resamples, images)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(aps, [tail, 100.0 - tail])
    return ApInterval(float(low), float(high), level, resamples, images)
