"""The targets of a batch padded to a fixed number of boxes per image.

Matching a whole batch at once (:func:`effdet_graph.model.target_assignment.assign_targets`) needs
one box count for every image: :func:`pad_targets` pads each image's boxes (and crowd boxes) to it,
on the CPU, in the data loader's workers (:class:`effdet_graph.data.transforms.PaddedCollate`).
With a fixed count the shapes of a training step never change, so the step can be captured in a
CUDA graph or compiled without recompiling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = ["DEFAULT_MAX_BOXES", "DEFAULT_MAX_IGNORE_BOXES", "Overflow", "PaddedTargets", "pad_targets"]

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
    the boxes in the order the image's target lists them.

    Attributes:
        boxes (Tensor[B, M, 4]): ``(x1, y1, x2, y2)`` input pixels.
        labels (Int64Tensor[B, M]): 0-based class ids, ``-1`` in padded rows.
        box_valid (BoolTensor[B, M]): True for real boxes.
        ignore_boxes (Tensor[B, C, 4]): ``(x1, y1, x2, y2)`` crowd/ignore regions (``C`` may be 0).
        ignore_valid (BoolTensor[B, C]): True for real crowd/ignore boxes.
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


def _check_targets(targets: Sequence[Mapping[str, Tensor]], overflow: Overflow) -> None:
    """Every target has ``boxes`` and as many ``labels``, and ``overflow`` is one of :data:`Overflow`."""
    for i, target in enumerate(targets):
        if "boxes" not in target or "labels" not in target:
            raise ValueError(f"target {i} needs 'boxes' and 'labels', has {sorted(target)}")
        if target["boxes"].shape[0] != target["labels"].shape[0]:
            raise ValueError(
                f"target {i}: got {target['boxes'].shape[0]} boxes but {target['labels'].shape[0]} labels for one image"
            )
    if overflow not in ("error", "largest"):
        raise ValueError(f"overflow must be 'error' or 'largest', got {overflow!r}")


def _keep_rows(boxes: Tensor, limit: int, overflow: Overflow, what: str, image: int) -> Tensor | None:
    """The rows of ``boxes (Tensor[N, 4])`` to keep: ``None`` (all), or the indices of the ``limit``
    largest, in order."""
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
        targets: per image a dict with ``boxes`` (``Tensor[M_i, 4]``, ``(x1, y1, x2, y2)`` pixels),
            ``labels`` (``Int64Tensor[M_i]``, 0-based) and optionally ``ignore_boxes``
            (``Tensor[C_i, 4]``, ``(x1, y1, x2, y2)`` crowd regions); other keys are ignored.
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
    _check_targets(targets, overflow)
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
