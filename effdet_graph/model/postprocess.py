"""Turn raw head outputs into detections: top-k, decode, clip, class-aware NMS.

Per image: the ``pre_nms_top_k`` highest logits over all (anchor, class) pairs are kept, their
anchors' box codes decoded and clipped to the image, scores below ``score_threshold`` dropped,
and class-aware hard NMS (``torchvision.ops.batched_nms``) or Gaussian soft-NMS applied; at most
``max_detections_per_image`` detections remain, best first. With ``score_threshold=0`` and hard
NMS this is effdet's ``_post_process`` + ``generate_detections``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image

from effdet_graph.model.anchors import flatten_level_outputs
from effdet_graph.model.box_coder import decode_boxes

__all__ = ["PostProcessConfig", "postprocess", "soft_nms"]


@dataclass(frozen=True)
class PostProcessConfig:
    """Settings of :func:`postprocess`.

    ``nms`` is ``"hard"`` (drop boxes with IoU > ``iou_threshold`` against a better box of the
    same class) or ``"soft"`` (Gaussian soft-NMS: multiply their scores by
    ``exp(-iou**2 / soft_nms_sigma)``; ``iou_threshold`` is not used). ``score_threshold`` drops
    detections scoring below it (effdet applies none for hard NMS and 0.001 for soft-NMS).
    """

    max_detections_per_image: int = 100
    pre_nms_top_k: int = 5000
    score_threshold: float = 0.001
    nms: str = "hard"
    iou_threshold: float = 0.5
    soft_nms_sigma: float = 0.5

    def __post_init__(self) -> None:
        if self.nms not in ("hard", "soft"):
            raise ValueError(f"nms must be 'hard' or 'soft', got {self.nms!r}")
        if self.max_detections_per_image < 1 or self.pre_nms_top_k < 1:
            raise ValueError("max_detections_per_image and pre_nms_top_k must be >= 1")
        if self.soft_nms_sigma <= 0:
            raise ValueError(f"soft_nms_sigma must be > 0, got {self.soft_nms_sigma}")


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    sigma: float = 0.5,
    score_threshold: float = 0.001,
    max_detections: int = 100,
) -> tuple[Tensor, Tensor]:
    """Class-aware Gaussian soft-NMS.

    Repeatedly takes the highest remaining score, then multiplies the scores of the remaining
    boxes of the same label by ``exp(-iou**2 / sigma)``; boxes falling below
    ``score_threshold`` are dropped. Each step is vectorised over all boxes; it stops after
    ``max_detections`` picks, which gives the same first picks as running to the end since the
    picked scores never increase.

    Args:
        boxes: ``FloatTensor[N, 4]`` xyxy.
        scores: ``FloatTensor[N]``.
        labels: ``Int64Tensor[N]``.

    Returns:
        ``(keep, new_scores)``: indices into the inputs of the picked boxes in pick order and
        their decayed scores.
    """
    remaining = scores.clone().float()
    remaining[remaining < score_threshold] = -1.0
    keep: list[Tensor] = []
    kept_scores: list[Tensor] = []
    for _ in range(min(max_detections, boxes.shape[0])):
        best = torch.argmax(remaining)
        best_score = remaining[best].clone()
        if best_score < 0:
            break
        keep.append(best)
        kept_scores.append(best_score)
        remaining[best] = -1.0
        iou = box_iou(boxes[best].unsqueeze(0), boxes)[0].nan_to_num(0.0)  # 0/0: two empty boxes
        decay = torch.exp(-(iou * iou) / sigma)
        decay = torch.where(labels == labels[best], decay, torch.ones_like(decay))
        alive = remaining >= 0
        remaining = torch.where(alive, remaining * decay, remaining)
        remaining[alive & (remaining < score_threshold)] = -1.0
    if not keep:
        return (
            torch.empty(0, dtype=torch.long, device=boxes.device),
            torch.empty(0, dtype=torch.float32, device=boxes.device),
        )
    return torch.stack(keep), torch.stack(kept_scores)


@torch.no_grad()
def postprocess(
    class_outputs: Sequence[Tensor],
    box_outputs: Sequence[Tensor],
    anchors: Tensor,
    image_sizes: Sequence[tuple[float, float]],
    config: PostProcessConfig = PostProcessConfig(),
) -> list[dict[str, Tensor]]:
    """Detections of a batch.

    Args:
        class_outputs: per level ``(N, A * K, H_l, W_l)`` logits.
        box_outputs: per level ``(N, A * 4, H_l, W_l)`` codes ``(ty, tx, th, tw)``.
        anchors: ``FloatTensor[sum_l H_l * W_l * A, 4]`` xyxy input pixels.
        image_sizes: per image ``(h, w)``, the part of the input the image covers (before
            padding); boxes are clipped to it.
        config: see :class:`PostProcessConfig`.

    Returns:
        per image ``{"boxes": FloatTensor[D, 4] xyxy input pixels, "scores": FloatTensor[D],
        "labels": Int64Tensor[D] 0-based}``, ``D <= max_detections_per_image``, scores descending.

    Raises:
        ValueError: outputs, anchors and image sizes do not fit together.
    """
    if box_outputs[0].shape[1] % 4:
        raise ValueError(f"box outputs have {box_outputs[0].shape[1]} channels, not 4 per anchor")
    anchors_per_position = box_outputs[0].shape[1] // 4
    num_classes = class_outputs[0].shape[1] // max(1, anchors_per_position)
    logits = flatten_level_outputs(class_outputs, num_classes).float()
    codes = flatten_level_outputs(box_outputs, 4).float()
    batch, num_anchors, _ = logits.shape
    if num_anchors != anchors.shape[0] or codes.shape[1] != anchors.shape[0]:
        raise ValueError(f"head outputs cover {num_anchors} anchors, {anchors.shape[0]} anchors were given")
    if len(image_sizes) != batch:
        raise ValueError(f"batch of {batch} outputs but {len(image_sizes)} image sizes")
    k = min(config.pre_nms_top_k, num_anchors * num_classes)
    top_logits, top_idx = logits.reshape(batch, -1).topk(k, dim=1)
    results = []
    for i in range(batch):
        anchor_idx = top_idx[i] // num_classes
        labels = top_idx[i] % num_classes
        scores = top_logits[i].sigmoid()
        boxes = decode_boxes(codes[i, anchor_idx], anchors[anchor_idx].float())
        boxes = clip_boxes_to_image(boxes, (float(image_sizes[i][0]), float(image_sizes[i][1])))
        if config.score_threshold > 0:
            ok = scores >= config.score_threshold
            boxes, scores, labels = boxes[ok], scores[ok], labels[ok]
        if config.nms == "hard":
            keep = batched_nms(boxes, scores, labels, config.iou_threshold)
            keep = keep[: config.max_detections_per_image]
            scores = scores[keep]
        else:
            keep, scores = soft_nms(
                boxes, scores, labels, config.soft_nms_sigma, config.score_threshold, config.max_detections_per_image
            )
        results.append({"boxes": boxes[keep], "scores": scores, "labels": labels[keep]})
    return results
