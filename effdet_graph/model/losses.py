"""EfficientDet training loss: sigmoid focal loss on classes plus Huber loss on box codes.

Normalisation follows effdet: with ``P`` the number of positive anchors summed over the whole
batch,

* ``class_loss = sum(focal over every class of every non-ignored anchor) / (P + 1)``
* ``box_loss = sum(huber over the 4 codes of every positive anchor) / (4 * (P + 1))``
* ``loss = class_loss + box_loss_weight * box_loss``

The ``+ 1`` keeps a batch without any object finite. One deliberate difference from effdet:
effdet weights the box loss by ``box_target != 0`` element-wise (so a positive anchor whose
target code happens to be exactly 0 gets no loss for that code); here every code of every
positive anchor counts. Also unlike effdet (whose labeler gives ignored anchors the background
target), ignored anchors are left out of the class loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import sigmoid_focal_loss

from effdet_graph.model.anchors import flatten_level_outputs
from effdet_graph.model.box_coding import AnchorTargets, MatchConfig, assign_targets, one_hot_targets

__all__ = ["DetectionLoss", "batch_targets"]


def batch_targets(
    anchors: Tensor,
    targets: Sequence[Mapping[str, Tensor]],
    match: MatchConfig = MatchConfig(),
) -> tuple[Tensor, Tensor, int]:
    """Assign targets for a batch.

    Args:
        anchors: ``FloatTensor[A, 4]`` xyxy pixels.
        targets: per image a dict with ``boxes`` (``FloatTensor[M, 4]`` xyxy pixels),
            ``labels`` (``Int64Tensor[M]``, 0-based) and optionally ``ignore_boxes``
            (``FloatTensor[C, 4]`` xyxy crowd regions).

    Returns:
        ``(classes LongTensor[N, A], box_codes FloatTensor[N, A, 4], num_positives)``.

    Raises:
        ValueError: a target lacks ``boxes`` or ``labels``.
    """
    per_image: list[AnchorTargets] = []
    for i, target in enumerate(targets):
        if "boxes" not in target or "labels" not in target:
            raise ValueError(f"target {i} needs 'boxes' and 'labels', has {sorted(target)}")
        per_image.append(assign_targets(anchors, target["boxes"], target["labels"], target.get("ignore_boxes"), match))
    classes = torch.stack([t.classes for t in per_image])
    boxes = torch.stack([t.boxes for t in per_image])
    return classes, boxes, sum(t.num_positives for t in per_image)


class DetectionLoss(nn.Module):
    """Focal + Huber detection loss (see the module docstring for the exact formula).

    Args:
        num_classes: ``K``.
        alpha, gamma: focal loss parameters.
        delta: Huber loss threshold on box codes.
        box_loss_weight: factor of ``box_loss`` in ``loss``.
        match: anchor matching thresholds.
    """

    def __init__(
        self,
        num_classes: int,
        alpha: float = 0.25,
        gamma: float = 1.5,
        delta: float = 0.1,
        box_loss_weight: float = 50.0,
        match: MatchConfig = MatchConfig(),
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.alpha = alpha
        self.gamma = gamma
        self.delta = delta
        self.box_loss_weight = box_loss_weight
        self.match = match

    def forward(
        self,
        class_outputs: Sequence[Tensor],
        box_outputs: Sequence[Tensor],
        anchors: Tensor,
        targets: Sequence[Mapping[str, Tensor]],
    ) -> dict[str, Tensor]:
        """Compute the loss of a batch.

        Args:
            class_outputs: per level ``(N, A * K, H_l, W_l)`` logits.
            box_outputs: per level ``(N, A * 4, H_l, W_l)`` codes ``(ty, tx, th, tw)``.
            anchors: ``FloatTensor[sum_l H_l * W_l * A, 4]`` xyxy, from
                :func:`effdet_graph.model.anchors.generate_anchors`.
            targets: ``N`` dicts as in :func:`batch_targets`.

        Returns:
            ``{"loss", "class_loss", "box_loss"}``, scalar tensors.

        Raises:
            ValueError: outputs and targets do not fit together.
        """
        logits = flatten_level_outputs(class_outputs, self.num_classes).float()
        codes = flatten_level_outputs(box_outputs, 4).float()
        if logits.shape[0] != len(targets):
            raise ValueError(f"batch of {logits.shape[0]} outputs but {len(targets)} targets")
        if logits.shape[1] != anchors.shape[0] or codes.shape[1] != anchors.shape[0]:
            raise ValueError(
                f"head outputs cover {logits.shape[1]} (class) and {codes.shape[1]} (box) anchors, "
                f"but {anchors.shape[0]} anchors were given; check the anchor config and input size"
            )
        with torch.no_grad():
            cls_t, box_t, num_pos = batch_targets(anchors, targets, self.match)
            onehot, valid = one_hot_targets(cls_t, self.num_classes)
        normalizer = float(num_pos) + 1.0

        focal = sigmoid_focal_loss(logits, onehot, alpha=self.alpha, gamma=self.gamma, reduction="none")
        class_loss = (focal * valid.unsqueeze(-1)).sum() / normalizer

        positive = cls_t >= 0
        box_loss = F.huber_loss(codes[positive], box_t[positive], delta=self.delta, reduction="sum") / (
            4.0 * normalizer
        )
        return {
            "loss": class_loss + self.box_loss_weight * box_loss,
            "class_loss": class_loss,
            "box_loss": box_loss,
        }
