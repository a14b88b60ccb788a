"""Box regression coding and anchor-to-ground-truth matching (the training targets).

Coding. A box is encoded against an anchor as ``(ty, tx, th, tw)`` (effdet's order, no scaling
weights)::

    ty = (yc - yc_a) / h_a      tx = (xc - xc_a) / w_a
    th = log(h / h_a)           tw = log(w / w_a)

Boxes and anchors are ``xyxy`` pixels. torchvision's ``BoxCoder`` uses ``(tx, ty, tw, th)`` with
weights, and its ``Matcher`` forces *every* anchor tied for a ground truth's best IoU (to that
anchor's own best ground truth), so neither reproduces effdet; the few lines here do.

Matching. Each anchor takes the ground truth of highest IoU. IoU ``>= matched_threshold`` makes
it positive, ``< unmatched_threshold`` negative, in between ignored. Then every ground truth is
forced onto its best anchor (the first ground truth wins when two pick the same anchor), however
low the IoU. Anchors that are not positive and lie mostly inside a crowd box (intersection over
anchor area ``>= crowd_ioa_threshold``) are ignored too.

Two implementations compute the same targets. :func:`assign_targets` takes one image's boxes as
they come (any number of them) and decides with host-side branches (``if positive.any()``,
boolean-mask indexing): simple, and the reference. :func:`assign_targets_batched` takes a whole
batch padded to a fixed number of boxes per image (:class:`PaddedTargets`, from
:func:`pad_targets` or :class:`effdet_graph.data.transforms.PaddedCollate`) and uses only
static-shape tensor operations (``torch.where``, ``gather``, ``scatter_reduce``, masks): no
``nonzero``, no ``.item()``, no data-dependent Python control flow, so it never waits for the
device, and a training step that uses it can be captured in a CUDA graph or compiled with
``torch.compile(fullgraph=True)``. The results are identical (same class targets, bitwise same box
codes, same number of positives).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torchvision.ops import box_iou

__all__ = [
    "BACKGROUND",
    "IGNORE",
    "MatchConfig",
    "AnchorTargets",
    "encode_boxes",
    "decode_boxes",
    "match_anchors",
    "assign_targets",
    "one_hot_targets",
    "DEFAULT_MAX_BOXES",
    "DEFAULT_MAX_IGNORE_BOXES",
    "Overflow",
    "PaddedTargets",
    "pad_targets",
    "BatchAnchorTargets",
    "match_anchors_batched",
    "assign_targets_batched",
]

# Per-anchor class target values: ``>= 0`` is the class of a positive anchor, or one of these two.
#: Negative anchor (background: every class target is 0).
BACKGROUND = -1
#: Ignored anchor (contributes to no loss).
IGNORE = -2

# Added to widths and heights before dividing and taking logs (effdet adds the same 1e-7).
_EPS = 1e-7
# Decoded log-size offsets are clamped here so exp() cannot overflow (torchvision's bound).
_MAX_LOG_SCALE = math.log(1000.0 / 16)


def _centers_sizes(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``xyxy (N, 4)`` -> ``(yc, xc, h, w)``, each ``(N,)``."""
    x1, y1, x2, y2 = boxes.unbind(dim=-1)
    w, h = x2 - x1, y2 - y1
    return y1 + h / 2, x1 + w / 2, h, w


def encode_boxes(boxes: Tensor, anchors: Tensor) -> Tensor:
    """Encode ``boxes`` against ``anchors`` row by row.

    Args:
        boxes: ``FloatTensor[N, 4]`` xyxy pixels.
        anchors: ``FloatTensor[N, 4]`` xyxy pixels.

    Returns:
        ``FloatTensor[N, 4]`` codes ``(ty, tx, th, tw)``.
    """
    yc_a, xc_a, h_a, w_a = _centers_sizes(anchors)
    yc, xc, h, w = _centers_sizes(boxes)
    h_a, w_a, h, w = h_a + _EPS, w_a + _EPS, h + _EPS, w + _EPS
    return torch.stack([(yc - yc_a) / h_a, (xc - xc_a) / w_a, torch.log(h / h_a), torch.log(w / w_a)], dim=-1)


def decode_boxes(codes: Tensor, anchors: Tensor) -> Tensor:
    """Invert :func:`encode_boxes`.

    Args:
        codes: ``FloatTensor[N, 4]`` ``(ty, tx, th, tw)``.
        anchors: ``FloatTensor[N, 4]`` xyxy pixels.

    Returns:
        ``FloatTensor[N, 4]`` xyxy pixels. ``th`` and ``tw`` are clamped at ``log(1000/16)``
        so that wild predictions cannot overflow to ``inf``.
    """
    yc_a, xc_a, h_a, w_a = _centers_sizes(anchors)
    ty, tx, th, tw = codes.unbind(dim=-1)
    h = torch.exp(th.clamp(max=_MAX_LOG_SCALE)) * h_a
    w = torch.exp(tw.clamp(max=_MAX_LOG_SCALE)) * w_a
    yc = ty * h_a + yc_a
    xc = tx * w_a + xc_a
    return torch.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], dim=-1)


@dataclass(frozen=True)
class MatchConfig:
    """Thresholds of anchor matching (see the module docstring)."""

    matched_threshold: float = 0.5
    unmatched_threshold: float = 0.4
    allow_low_quality_matches: bool = True
    crowd_ioa_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.unmatched_threshold <= self.matched_threshold <= 1.0:
            raise ValueError(
                "need 0 <= unmatched_threshold <= matched_threshold <= 1, got "
                f"{self.unmatched_threshold} and {self.matched_threshold}"
            )


def match_anchors(anchors: Tensor, gt_boxes: Tensor, config: MatchConfig = MatchConfig()) -> Tensor:
    """Match every anchor to at most one ground-truth box.

    Args:
        anchors: ``FloatTensor[A, 4]`` xyxy.
        gt_boxes: ``FloatTensor[M, 4]`` xyxy (``M`` may be 0).

    Returns:
        ``LongTensor[A]``: the index of the matched box (positive), :data:`BACKGROUND` (-1) or
        :data:`IGNORE` (-2).
    """
    num_anchors = anchors.shape[0]
    if gt_boxes.shape[0] == 0:
        return torch.full((num_anchors,), BACKGROUND, dtype=torch.long, device=anchors.device)
    iou = box_iou(gt_boxes, anchors)  # (M, A)
    best_iou, matches = iou.max(dim=0)
    matches = matches.clone()
    matches[best_iou < config.matched_threshold] = IGNORE
    matches[best_iou < config.unmatched_threshold] = BACKGROUND
    if config.allow_low_quality_matches:
        num_gt = gt_boxes.shape[0]
        best_anchor = iou.argmax(dim=1)  # (M,)
        forced = torch.full((num_anchors,), num_gt, dtype=torch.long, device=anchors.device)
        forced = forced.scatter_reduce(0, best_anchor, torch.arange(num_gt, device=anchors.device), reduce="amin")
        matches = torch.where(forced < num_gt, forced, matches)
    return matches


@dataclass
class AnchorTargets:
    """Training targets of one image, one row per anchor.

    Attributes:
        classes: ``LongTensor[A]``: class id (``>= 0``) of positive anchors, :data:`BACKGROUND`
            (-1) for negatives, :data:`IGNORE` (-2) for ignored anchors.
        boxes: ``FloatTensor[A, 4]``: codes ``(ty, tx, th, tw)`` of the matched box for positive
            anchors, zeros elsewhere.
        num_positives: ``int``: number of positive anchors.
    """

    classes: Tensor
    boxes: Tensor
    num_positives: int


def assign_targets(
    anchors: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    ignore_boxes: Tensor | None = None,
    config: MatchConfig = MatchConfig(),
) -> AnchorTargets:
    """Compute the class and box targets of one image.

    Args:
        anchors: ``FloatTensor[A, 4]`` xyxy pixels.
        gt_boxes: ``FloatTensor[M, 4]`` xyxy pixels.
        gt_labels: ``Int64Tensor[M]`` 0-based class ids.
        ignore_boxes: ``FloatTensor[C, 4]`` xyxy crowd/ignore regions, or ``None``.
        config: matching thresholds.

    Raises:
        ValueError: boxes and labels differ in number.
    """
    if gt_boxes.shape[0] != gt_labels.shape[0]:
        raise ValueError(f"got {gt_boxes.shape[0]} boxes but {gt_labels.shape[0]} labels for one image")
    gt_boxes = gt_boxes.to(anchors)
    matches = match_anchors(anchors, gt_boxes, config)
    positive = matches >= 0
    classes = matches.clone()
    if positive.any():
        classes[positive] = gt_labels.to(anchors.device)[matches[positive]]
    if ignore_boxes is not None and ignore_boxes.shape[0] > 0:
        ignore_boxes = ignore_boxes.to(anchors)
        lt = torch.max(anchors[:, None, :2], ignore_boxes[None, :, :2])
        rb = torch.min(anchors[:, None, 2:], ignore_boxes[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(dim=2)  # (A, C)
        anchor_area = (anchors[:, 2:] - anchors[:, :2]).prod(dim=1).clamp(min=_EPS)
        in_crowd = (inter / anchor_area[:, None]).max(dim=1).values >= config.crowd_ioa_threshold
        classes = torch.where(in_crowd & ~positive, torch.full_like(classes, IGNORE), classes)
    boxes = torch.zeros_like(anchors)
    if positive.any():
        boxes[positive] = encode_boxes(gt_boxes[matches[positive]], anchors[positive])
    return AnchorTargets(classes=classes, boxes=boxes, num_positives=int(positive.sum()))


def one_hot_targets(classes: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Turn per-anchor class targets into focal-loss targets.

    Args:
        classes: ``LongTensor[...]`` values as in :attr:`AnchorTargets.classes`.
        num_classes: ``K``.

    Returns:
        ``(targets, valid)``: ``FloatTensor[..., K]`` one-hot rows (all zero for background and
        ignored anchors) and ``BoolTensor[...]``, False for ignored anchors.

    Raises:
        ValueError: a class id is ``>= num_classes``.
    """
    if classes.numel() and int(classes.max()) >= num_classes:
        raise ValueError(f"class id {int(classes.max())} out of range for {num_classes} classes")
    positive = classes >= 0
    targets = torch.nn.functional.one_hot(classes.clamp(min=0), num_classes).to(torch.float32)
    targets = targets * positive.unsqueeze(-1)
    return targets, classes != IGNORE


#: Default number of boxes per image of :func:`pad_targets` (effdet's ``max_instances``; COCO's
#: most crowded image has 93 boxes).
DEFAULT_MAX_BOXES = 100
#: Default number of crowd/ignore boxes per image of :func:`pad_targets`.
DEFAULT_MAX_IGNORE_BOXES = 16

#: What :func:`pad_targets` does with an image that has more boxes than the maximum: ``"error"``
#: raises :class:`ValueError`; ``"largest"`` keeps the boxes of largest area (in their original
#: order, so tie-breaking among the kept boxes is unchanged) and drops the rest.
Overflow = Literal["error", "largest"]


@dataclass
class PaddedTargets:
    """The targets of a batch, padded to a fixed number of boxes per image.

    Row ``j`` of image ``i`` is a real box where ``box_valid[i, j]``; padded rows hold a zero box
    and label ``-1``, and are never matched. Likewise for the crowd/ignore boxes. Real rows come
    first, in the order of the image's target, so matching (where the first box wins ties) sees
    the same order as :func:`assign_targets`.

    Attributes:
        boxes: ``FloatTensor[B, M, 4]`` xyxy input pixels.
        labels: ``Int64Tensor[B, M]`` 0-based class ids, ``-1`` in padded rows.
        box_valid: ``BoolTensor[B, M]``: True for real boxes.
        ignore_boxes: ``FloatTensor[B, C, 4]`` xyxy crowd/ignore regions (``C`` may be 0).
        ignore_valid: ``BoolTensor[B, C]``: True for real crowd/ignore boxes.
    """

    boxes: Tensor
    labels: Tensor
    box_valid: Tensor
    ignore_boxes: Tensor
    ignore_valid: Tensor

    @property
    def batch_size(self) -> int:
        """``B``."""
        return self.boxes.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PaddedTargets:
        """The same targets on ``device`` (``non_blocking`` as for :meth:`torch.Tensor.to`)."""
        return PaddedTargets(*(t.to(device, non_blocking=non_blocking) for t in self._tensors()))

    def pin_memory(self) -> PaddedTargets:
        """The same targets in page-locked memory (``DataLoader(pin_memory=True)`` calls this)."""
        return PaddedTargets(*(t.pin_memory() for t in self._tensors()))

    def _tensors(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        return self.boxes, self.labels, self.box_valid, self.ignore_boxes, self.ignore_valid


def _keep_rows(boxes: Tensor, limit: int, overflow: Overflow, what: str, image: int) -> Tensor | None:
    """Indices of the rows of ``boxes (N, 4)`` to keep: ``None`` (all), or the ``limit`` largest in order."""
    n = boxes.shape[0]
    if n <= limit:
        return None
    if overflow == "error":
        raise ValueError(
            f"target {image} has {n} {what}, more than the maximum of {limit}; raise the maximum "
            "(max_boxes / max_ignore_boxes) or pass overflow='largest' to keep the largest ones"
        )
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    # stable: among equal areas the earlier box is kept
    order = torch.sort(area, descending=True, stable=True).indices[:limit]
    return order.sort().values


def pad_targets(
    targets: Sequence[Mapping[str, Tensor]],
    max_boxes: int | None = DEFAULT_MAX_BOXES,
    max_ignore_boxes: int | None = DEFAULT_MAX_IGNORE_BOXES,
    overflow: Overflow = "error",
    num_classes: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> PaddedTargets:
    """Pad per-image targets to a fixed number of boxes per image.

    Meant to run on the CPU (in the data loader's workers, see
    :class:`effdet_graph.data.transforms.PaddedCollate`): it loops over the images and, with
    ``num_classes``, checks the labels, which on a GPU would wait for the device.

    Args:
        targets: per image a dict with ``boxes`` (``FloatTensor[M_i, 4]`` xyxy pixels),
            ``labels`` (``Int64Tensor[M_i]``, 0-based) and optionally ``ignore_boxes``
            (``FloatTensor[C_i, 4]`` xyxy crowd regions); other keys are ignored.
        max_boxes: ``M``, the rows per image; ``None``: the most boxes of any image of this
            batch (no overflow possible, but the shape changes from batch to batch).
        max_ignore_boxes: ``C``, likewise for ``ignore_boxes``.
        overflow: what to do with an image that has more than ``M`` boxes (or ``C`` ignore
            boxes): ``"error"`` (default) raises, ``"largest"`` keeps the largest ones.
            Dropping boxes changes the training targets, so it is never silent by default
            (effdet truncates to its first ``max_instances`` boxes without a word).
        num_classes: when given, labels must lie in ``[0, num_classes)``.
        device: where the tensors go (default: the device of the first image's boxes, else CPU).
        dtype: dtype of the boxes.

    Returns:
        :class:`PaddedTargets` with ``B = len(targets)``.

    Raises:
        ValueError: a target lacks ``boxes`` or ``labels``, has not as many boxes as labels, too
            many boxes with ``overflow="error"``, or a label out of range.
    """
    for i, target in enumerate(targets):
        if "boxes" not in target or "labels" not in target:
            raise ValueError(f"target {i} needs 'boxes' and 'labels', has {sorted(target)}")
        if target["boxes"].shape[0] != target["labels"].shape[0]:
            raise ValueError(
                f"target {i}: got {target['boxes'].shape[0]} boxes but {target['labels'].shape[0]} labels for one image"
            )
    if overflow not in ("error", "largest"):
        raise ValueError(f"overflow must be 'error' or 'largest', got {overflow!r}")
    if device is None:
        device = targets[0]["boxes"].device if targets else torch.device("cpu")
    given = [t.get("ignore_boxes") for t in targets]
    crowds = [torch.zeros(0, 4) if crowd is None else crowd.reshape(-1, 4) for crowd in given]
    m = max((t["boxes"].shape[0] for t in targets), default=0) if max_boxes is None else max_boxes
    c = max((crowd.shape[0] for crowd in crowds), default=0) if max_ignore_boxes is None else max_ignore_boxes
    if m < 0 or c < 0:
        raise ValueError(f"max_boxes and max_ignore_boxes must be >= 0, got {max_boxes} and {max_ignore_boxes}")
    n = len(targets)
    boxes = torch.zeros(n, m, 4, dtype=dtype, device=device)
    labels = torch.full((n, m), -1, dtype=torch.long, device=device)
    box_valid = torch.zeros(n, m, dtype=torch.bool, device=device)
    ignore_boxes = torch.zeros(n, c, 4, dtype=dtype, device=device)
    ignore_valid = torch.zeros(n, c, dtype=torch.bool, device=device)
    for i, (target, crowd) in enumerate(zip(targets, crowds)):
        image_boxes, image_labels = target["boxes"], target["labels"]
        keep = _keep_rows(image_boxes, m, overflow, "boxes", i)
        if keep is not None:
            image_boxes, image_labels = image_boxes[keep], image_labels[keep]
        k = image_boxes.shape[0]
        if num_classes is not None and k and not bool(((image_labels >= 0) & (image_labels < num_classes)).all()):
            raise ValueError(f"target {i} has a class id out of range for {num_classes} classes")
        boxes[i, :k] = image_boxes
        labels[i, :k] = image_labels
        box_valid[i, :k] = True
        keep = _keep_rows(crowd, c, overflow, "ignore boxes", i)
        if keep is not None:
            crowd = crowd[keep]
        k = crowd.shape[0]
        ignore_boxes[i, :k] = crowd
        ignore_valid[i, :k] = True
    return PaddedTargets(boxes, labels, box_valid, ignore_boxes, ignore_valid)


@dataclass
class BatchAnchorTargets:
    """Training targets of a batch, one row per anchor (see :class:`AnchorTargets`).

    Attributes:
        classes: ``LongTensor[B, A]``: class id, :data:`BACKGROUND` or :data:`IGNORE`.
        boxes: ``FloatTensor[B, A, 4]``: codes of the matched box for positive anchors, zeros elsewhere.
        num_positives: ``LongTensor[]`` (0-dim, on the anchors' device): positive anchors of
            the whole batch. A tensor, so that reading it does not wait for the device.
    """

    classes: Tensor
    boxes: Tensor
    num_positives: Tensor


def _pairwise_iou(gt_boxes: Tensor, anchors: Tensor) -> Tensor:
    """``(B, M, A)`` IoU of ``gt_boxes (B, M, 4)`` with ``anchors (A, 4)``.

    The same floating-point operations as :func:`torchvision.ops.box_iou` (so bitwise the same
    values), one coordinate at a time and in place, into three ``(B, M, A)`` buffers: on the CPU,
    allocating (and page-faulting) a fresh large tensor per operation costs more than the arithmetic.
    """
    gx1, gy1, gx2, gy2 = (v.unsqueeze(-1) for v in gt_boxes.unbind(dim=-1))  # (B, M, 1)
    ax1, ay1, ax2, ay2 = anchors.unbind(dim=-1)  # (A,)
    inter = torch.minimum(gx2, ax2)
    tmp = torch.maximum(gx1, ax1)
    inter.sub_(tmp).clamp_(min=0)  # width of the intersection
    h = torch.minimum(gy2, ay2)
    torch.maximum(gy1, ay1, out=tmp)
    inter.mul_(h.sub_(tmp).clamp_(min=0))
    union = torch.add((gx2 - gx1) * (gy2 - gy1), (ax2 - ax1) * (ay2 - ay1), out=tmp)
    return inter.div_(union.sub_(inter))


def _crowd_overlap(anchors: Tensor, crowd_boxes: Tensor, threshold: float) -> Tensor:
    """``BoolTensor[B, A, C]``: intersection over anchor area ``>= threshold``.

    The operations of :func:`assign_targets` (bitwise the same values), in place as in :func:`_pairwise_iou`.
    """
    cx1, cy1, cx2, cy2 = (v.unsqueeze(1) for v in crowd_boxes.unbind(dim=-1))  # (B, 1, C)
    ax1, ay1, ax2, ay2 = (v.unsqueeze(-1) for v in anchors.unbind(dim=-1))  # (A, 1)
    inter = torch.minimum(ax2, cx2)
    tmp = torch.maximum(ax1, cx1)
    inter.sub_(tmp).clamp_(min=0)
    h = torch.minimum(ay2, cy2)
    torch.maximum(ay1, cy1, out=tmp)
    inter.mul_(h.sub_(tmp).clamp_(min=0))
    anchor_area = ((ax2 - ax1) * (ay2 - ay1)).clamp(min=_EPS)
    return inter.div_(anchor_area) >= threshold


def match_anchors_batched(anchors: Tensor, targets: PaddedTargets, config: MatchConfig = MatchConfig()) -> Tensor:
    """:func:`match_anchors` for a padded batch, without host synchronisation.

    Args:
        anchors: ``FloatTensor[A, 4]`` xyxy.
        targets: ``B`` images of ``M`` (padded) boxes.
        config: matching thresholds.

    Returns:
        ``LongTensor[B, A]``: per image the row of the matched box (positive), :data:`BACKGROUND`
        or :data:`IGNORE`; equal to :func:`match_anchors` of each image's real boxes.
    """
    batch, num_gt = targets.boxes.shape[:2]
    num_anchors = anchors.shape[0]
    if num_gt == 0:  # a static shape, not a value: no image of the batch has a box
        return torch.full((batch, num_anchors), BACKGROUND, dtype=torch.long, device=anchors.device)
    # padded rows get IoU -1 (real IoUs are >= 0): never the best box of an anchor, and below
    # both thresholds, so an image without boxes is all background, as in match_anchors
    iou = _pairwise_iou(targets.boxes.to(anchors), anchors)  # (B, M, A)
    iou.masked_fill_(~targets.box_valid.unsqueeze(-1), -1.0)
    best_iou, matches = iou.max(dim=1)  # (B, A); ties: the first box, as match_anchors
    matches = torch.where(best_iou < config.matched_threshold, IGNORE, matches)
    matches = torch.where(best_iou < config.unmatched_threshold, BACKGROUND, matches)
    if config.allow_low_quality_matches:
        best_anchor = iou.argmax(dim=2)  # (B, M)
        rows = torch.arange(num_gt, device=anchors.device).expand(batch, num_gt)
        # padded rows scatter the fill value, which amin leaves unchanged
        rows = torch.where(targets.box_valid, rows, num_gt)
        forced = torch.full((batch, num_anchors), num_gt, dtype=torch.long, device=anchors.device)
        forced = forced.scatter_reduce(1, best_anchor, rows, reduce="amin")
        matches = torch.where(forced < num_gt, forced, matches)
    return matches


def assign_targets_batched(
    anchors: Tensor, targets: PaddedTargets, config: MatchConfig = MatchConfig()
) -> BatchAnchorTargets:
    """:func:`assign_targets` for a padded batch, without host synchronisation.

    Every operation has a static output shape (``(B, A)``, ``(B, A, 4)``, ...), none reads a value
    back to the host, so the whole computation can be captured in a CUDA graph or compiled with
    ``torch.compile(fullgraph=True)``.

    Args:
        anchors: ``FloatTensor[A, 4]`` xyxy pixels.
        targets: ``B`` images of ``M`` (padded) boxes and ``C`` (padded) crowd/ignore boxes.
        config: matching thresholds.

    Returns:
        Per image the same classes and box codes as :func:`assign_targets` (bitwise), and the
        number of positives of the batch as a 0-dim tensor.
    """
    matches = match_anchors_batched(anchors, targets, config)  # (B, A)
    positive = matches >= 0
    batch, num_anchors = matches.shape
    if targets.boxes.shape[1] == 0:
        classes = matches
        boxes = torch.zeros(batch, num_anchors, 4, dtype=anchors.dtype, device=anchors.device)
    else:
        row = matches.clamp(min=0)  # any row for non-positive anchors; their values are discarded
        classes = torch.where(positive, targets.labels.to(anchors.device).gather(1, row), matches)
        matched = targets.boxes.to(anchors).gather(1, row.unsqueeze(-1).expand(batch, num_anchors, 4))
        boxes = torch.where(positive.unsqueeze(-1), encode_boxes(matched, anchors), 0.0)
    if targets.ignore_boxes.shape[1] > 0:
        over = _crowd_overlap(anchors, targets.ignore_boxes.to(anchors), config.crowd_ioa_threshold)  # (B, A, C)
        in_crowd = (over & targets.ignore_valid.unsqueeze(1)).any(dim=2)  # (B, A)
        classes = torch.where(in_crowd & ~positive, IGNORE, classes)
    return BatchAnchorTargets(classes=classes, boxes=boxes, num_positives=positive.sum())
