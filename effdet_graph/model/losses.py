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

Targets come either as one dict per image or padded to a fixed number of boxes per image
(:class:`~effdet_graph.model.padded_targets.PaddedTargets`). Both are matched by
:func:`~effdet_graph.model.target_assignment.assign_targets`, and the loss itself keeps
``P`` a tensor and selects positives by masks, so with padded targets the whole loss runs without
waiting for the device (no ``nonzero``, no ``.item()``): ready for CUDA-graph capture and
``torch.compile(fullgraph=True)``. The list form pads on the fly and checks the labels, which
does wait for the device.

Several processes (data parallel): pass ``reduce_positives`` (a sum over the processes, e.g.
:func:`effdet_graph.training.distributed.all_reduce_sum`) and ``world_size`` ``W``. Process ``r``
then returns ``W * S_r / (P + 1)``, where ``S_r`` is its focal (or Huber) sum over its own images
and ``P = sum_r P_r`` the positives of the global batch, so the mean over the processes of the
losses, and of their gradients (what ``DistributedDataParallel`` averages), equals the loss and
the gradient of one process over the global batch: ``mean_r W * S_r / (P + 1) = sum_r S_r / (P + 1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import sigmoid_focal_loss

from effdet_graph.model.anchors import flatten_level_outputs
from effdet_graph.model.matching import IGNORE, MatchConfig
from effdet_graph.model.padded_targets import PaddedTargets, pad_targets
from effdet_graph.model.target_assignment import assign_targets

__all__ = ["DetectionLoss"]


class DetectionLoss(nn.Module):
    """Focal + Huber detection loss (see the module docstring for the exact formula).

    Args:
        num_classes: ``K``.
        alpha, gamma: focal loss parameters.
        delta: Huber loss threshold on box codes.
        box_loss_weight: factor of ``box_loss`` in ``loss``.
        match: anchor matching thresholds.
        reduce_positives: ``None`` (one process), or a function that sums a 0-dim tensor over the
            training processes, such as :func:`effdet_graph.training.distributed.all_reduce_sum`;
            then ``P`` is the positive count of the global batch.
        world_size: ``W``, the number of processes, by which the losses are multiplied when
            ``reduce_positives`` is given, so that the mean of the per-process losses (and
            gradients) is the loss (and gradient) of the global batch (see the module docstring).
            ``None``: read once here, from :mod:`torch.distributed` when its process group is
            initialised, else 1; construct the loss after joining the process group. Not read
            at each call, which keeps ``forward`` free of Python-side state for compilation.
    """

    def __init__(
        self,
        num_classes: int,
        alpha: float = 0.25,
        gamma: float = 1.5,
        delta: float = 0.1,
        box_loss_weight: float = 50.0,
        match: MatchConfig = MatchConfig(),
        reduce_positives: Callable[[Tensor], Tensor] | None = None,
        world_size: int | None = None,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if world_size is None:
            world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        self.num_classes = num_classes
        self.alpha = alpha
        self.gamma = gamma
        self.delta = delta
        self.box_loss_weight = box_loss_weight
        self.match = match
        self.reduce_positives = reduce_positives
        self.world_size = world_size

    def forward(
        self,
        class_outputs: Sequence[Tensor],
        box_outputs: Sequence[Tensor],
        anchors: Tensor,
        targets: Sequence[Mapping[str, Tensor]] | PaddedTargets,
    ) -> dict[str, Tensor]:
        """Compute the loss of a batch.

        Args:
            class_outputs: per level ``(N, A * K, H_l, W_l)`` logits.
            box_outputs: per level ``(N, A * 4, H_l, W_l)`` codes ``(ty, tx, th, tw)``.
            anchors: ``FloatTensor[sum_l H_l * W_l * A, 4]`` xyxy, from
                :func:`effdet_graph.model.anchors.generate_anchors`.
            targets: per image a dict with ``boxes`` (``Tensor[M, 4]``, ``(x1, y1, x2, y2)`` pixels),
                ``labels`` (``Int64Tensor[M]``, 0-based) and optionally ``ignore_boxes`` (``Tensor[C, 4]``
                crowd regions); or :class:`PaddedTargets` of ``N`` images (labels must then lie in
                ``[0, K)``; check them when padding, with
                :func:`~effdet_graph.model.padded_targets.pad_targets`'s ``num_classes``).

        Returns:
            ``{"loss", "class_loss", "box_loss"}``, scalar tensors (each multiplied by
            ``world_size`` when ``reduce_positives`` is given).

        Raises:
            ValueError: outputs and targets do not fit together, or (dict targets) a target lacks
                ``boxes`` or ``labels`` or has a class id out of range.
        """
        logits = flatten_level_outputs(class_outputs, self.num_classes).float()
        codes = flatten_level_outputs(box_outputs, 4).float()
        if not isinstance(targets, PaddedTargets):
            targets = pad_targets(
                targets, max_boxes=None, max_ignore_boxes=None, num_classes=self.num_classes, device=anchors.device
            )
        if logits.shape[0] != targets.batch_size:
            raise ValueError(f"batch of {logits.shape[0]} outputs but {targets.batch_size} targets")
        if logits.shape[1] != anchors.shape[0] or codes.shape[1] != anchors.shape[0]:
            raise ValueError(
                f"head outputs cover {logits.shape[1]} (class) and {codes.shape[1]} (box) anchors, "
                f"but {anchors.shape[0]} anchors were given; check the anchor config and input size"
            )
        with torch.no_grad():
            assigned = assign_targets(anchors, targets, self.match)
            classes = assigned.classes  # (N, A)
            positive = classes >= 0
            # one-hot by comparison: background (-1) and ignored (-2) anchors get all-zero rows
            onehot = (classes.unsqueeze(-1) == torch.arange(self.num_classes, device=classes.device)).to(logits.dtype)
            valid = classes != IGNORE
            num_positives = assigned.num_positives
            if self.reduce_positives is not None:
                num_positives = self.reduce_positives(num_positives)
            normalizer = num_positives.to(logits.dtype) + 1.0

        focal = sigmoid_focal_loss(logits, onehot, alpha=self.alpha, gamma=self.gamma, reduction="none")
        class_loss = (focal * valid.unsqueeze(-1)).sum() / normalizer

        # masked instead of indexed (codes[positive] would wait for the device); torch.where, not
        # a product, so that a non-finite output at a non-positive anchor stays out, as before
        huber = F.huber_loss(codes, assigned.boxes, delta=self.delta, reduction="none")  # (N, A, 4)
        box_loss = torch.where(positive.unsqueeze(-1), huber, 0.0).sum() / (4.0 * normalizer)
        if self.reduce_positives is not None and self.world_size != 1:
            class_loss = class_loss * self.world_size
            box_loss = box_loss * self.world_size
        return {
            "loss": class_loss + self.box_loss_weight * box_loss,
            "class_loss": class_loss,
            "box_loss": box_loss,
        }
