"""Anchor boxes of an EfficientDet/RetinaNet detector, and the layout that ties them to head outputs.

Layout. Every per-anchor tensor in this package (anchors, class logits, box regressions,
targets) lists anchors in one order:

1. feature level, from ``min_level`` to ``max_level``;
2. position on that level's feature map, row-major (``y`` then ``x``);
3. anchor index at that position: scale-major, then aspect ratio.

A head output of shape ``(N, A * C, H_l, W_l)`` (``A`` anchors per position, ``C`` values per
anchor) is brought into this order by :func:`flatten_level_outputs`, which is the reshape
``(N, H, W, A, C) -> (N, H * W * A, C)`` followed by concatenation over levels. This is the order
and these are the values of ``effdet.anchors.Anchors`` (which stores ``yxyx``; here boxes are
``xyxy``), so a head trained with one lines up with the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = [
    "AnchorConfig",
    "Anchors",
    "feature_map_sizes",
    "generate_anchors",
    "flatten_level_outputs",
]


@dataclass(frozen=True)
class AnchorConfig:
    """How anchors are laid out on the feature levels ``min_level .. max_level``.

    Level ``l`` has stride ``2**l``. At every position of level ``l`` there are
    ``num_scales * len(aspect_ratios)`` anchors; the one with octave ``o`` (``0 <= o < num_scales``)
    and aspect ``(ax, ay)`` has width ``anchor_scale * 2**l * 2**(o / num_scales) * ax`` and height
    ``anchor_scale * 2**l * 2**(o / num_scales) * ay``.
    """

    min_level: int = 3
    max_level: int = 7
    num_scales: int = 3
    aspect_ratios: tuple[tuple[float, float], ...] = field(default=((1.0, 1.0), (1.4, 0.7), (0.7, 1.4)))
    anchor_scale: float = 4.0

    def __post_init__(self) -> None:
        if self.min_level < 1:
            raise ValueError(f"anchor min_level must be >= 1, got {self.min_level}")
        if self.max_level < self.min_level:
            raise ValueError(f"anchor max_level ({self.max_level}) must be >= min_level ({self.min_level})")
        if self.num_scales < 1:
            raise ValueError(f"anchor num_scales must be >= 1, got {self.num_scales}")
        if not self.aspect_ratios:
            raise ValueError("anchor aspect_ratios must not be empty")
        ratios = tuple(tuple(float(v) for v in pair) for pair in self.aspect_ratios)
        for pair in ratios:
            if len(pair) != 2 or min(pair) <= 0:
                raise ValueError(f"anchor aspect ratio {pair} must be a pair (x, y) of positive numbers")
        object.__setattr__(self, "aspect_ratios", ratios)
        if self.anchor_scale <= 0:
            raise ValueError(f"anchor_scale must be > 0, got {self.anchor_scale}")

    @property
    def num_levels(self) -> int:
        """Number of feature levels."""
        return self.max_level - self.min_level + 1

    @property
    def num_anchors(self) -> int:
        """Anchors per feature-map position (``A``)."""
        return self.num_scales * len(self.aspect_ratios)


def feature_map_sizes(image_size: tuple[int, int], config: AnchorConfig) -> list[tuple[int, int]]:
    """Return ``[(H_l, W_l)]`` for ``l = min_level .. max_level``.

    ``H_l`` is ``H`` ceil-halved ``l`` times (what a chain of stride-2 'same'-padded
    convolutions or poolings produces), likewise ``W_l``.

    Raises:
        ValueError: the image size is not positive.
    """
    h, w = int(image_size[0]), int(image_size[1])
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive, got {image_size}")
    sizes = []
    for level in range(1, config.max_level + 1):
        h, w = (h + 1) // 2, (w + 1) // 2
        if level >= config.min_level:
            sizes.append((h, w))
    return sizes


def generate_anchors(
    image_size: tuple[int, int],
    config: AnchorConfig,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Return all anchors for a model input of ``image_size = (H, W)`` pixels.

    Returns:
        ``FloatTensor[sum_l H_l * W_l * A, 4]``, boxes ``(x1, y1, x2, y2)`` in input pixels, in the
        order described in the module docstring.

    Anchor centres on level ``l`` are at ``(i + 0.5) * s_l`` with ``s_l = H / H_l`` vertically
    (``W / W_l`` horizontally). When ``H`` and ``W`` are divisible by ``2**max_level`` this is
    ``(i + 0.5) * 2**l``, as in effdet. Otherwise effdet's non-integer strides are used as well;
    such sizes are allowed but give anchors that do not sit on the feature-map grid exactly.
    Values are computed in float64 and cast to ``dtype`` at the end (as effdet does with numpy).
    """
    height, width = int(image_size[0]), int(image_size[1])
    per_level = []
    for fh, fw in feature_map_sizes(image_size, config):
        stride_y, stride_x = height / fh, width / fw
        sizes = []  # (half_w, half_h) per anchor index, scale-major then aspect
        for octave in range(config.num_scales):
            base = 2.0 ** (octave / config.num_scales)
            for aspect_x, aspect_y in config.aspect_ratios:
                sizes.append(
                    (
                        config.anchor_scale * stride_x * base * aspect_x / 2.0,
                        config.anchor_scale * stride_y * base * aspect_y / 2.0,
                    )
                )
        half = torch.tensor(sizes, dtype=torch.float64)  # (A, 2)
        cy = (torch.arange(fh, dtype=torch.float64) + 0.5) * stride_y
        cx = (torch.arange(fw, dtype=torch.float64) + 0.5) * stride_x
        yy, xx = torch.meshgrid(cy, cx, indexing="ij")
        centers = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)  # (H*W, 2)
        boxes = torch.cat([centers[:, None, :] - half[None], centers[:, None, :] + half[None]], dim=2)
        per_level.append(boxes.reshape(-1, 4))
    return torch.cat(per_level, dim=0).to(device=device, dtype=dtype)


def flatten_level_outputs(outputs: Sequence[Tensor], values_per_anchor: int) -> Tensor:
    """Bring per-level head outputs into anchor order.

    Args:
        outputs: one tensor per level, ``(N, A * C, H_l, W_l)`` where ``C = values_per_anchor``
            (``num_classes`` for class logits, 4 for box regressions).
        values_per_anchor: ``C``.

    Returns:
        ``Tensor[N, sum_l H_l * W_l * A, C]`` lined up with :func:`generate_anchors`.

    Raises:
        ValueError: there are no levels, or a level's channels are not a multiple of ``C``.
    """
    if not outputs:
        raise ValueError("expected at least one feature level of head outputs")
    flat = []
    for out in outputs:
        n, channels = out.shape[0], out.shape[1]
        if channels % values_per_anchor:
            raise ValueError(f"head output has {channels} channels, not a multiple of {values_per_anchor}")
        flat.append(out.permute(0, 2, 3, 1).reshape(n, -1, values_per_anchor))
    return torch.cat(flat, dim=1)


class Anchors(nn.Module):
    """Holds the anchors of one input size as a (non-persistent) buffer ``boxes``.

    ``boxes`` is ``FloatTensor[num_anchors_total, 4]`` in ``xyxy`` input pixels; it moves with
    ``.to(device)`` and is not written into checkpoints.
    """

    boxes: Tensor

    def __init__(self, config: AnchorConfig, image_size: tuple[int, int]):
        super().__init__()
        self.config = config
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.register_buffer("boxes", generate_anchors(self.image_size, config), persistent=False)

    def forward(self) -> Tensor:
        """Return ``boxes``."""
        return self.boxes

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, anchors={self.boxes.shape[0]}"
