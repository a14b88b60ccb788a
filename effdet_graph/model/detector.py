"""EfficientDet around any compiled feature network: backbone -> feature network -> class/box heads.

:class:`EfficientDet` returns raw per-level outputs in every mode. Training and prediction are
separate wrappers (:class:`DetectorTrainer`, :class:`DetectorPredictor`), so no ``forward`` changes
its return type with ``train()`` / ``eval()``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from effdet_graph.builtin import resolve_spec_path
from effdet_graph.fpn.compiler import compile_spec
from effdet_graph.model.anchors import Anchors
from effdet_graph.model.backbone import create_backbone, feature_info
from effdet_graph.model.heads import PredictionHead
from effdet_graph.model.losses import DetectionLoss
from effdet_graph.model.padded_targets import PaddedTargets
from effdet_graph.model.postprocess import PostProcessConfig, postprocess
from effdet_graph.model.scaling import DetectorConfig, detector_config, scale_spec
from graphspec import BatchNormStyle, Spec

FeatureNetworkFactory = Callable[[Spec, Sequence[int], Sequence[int]], nn.Module]
"""``(spec, in_channels, reductions) -> module``: builds a detector's feature network for its backbone's feature
channels and strides (finest first). The module maps the backbone's feature maps to one (N, spec.width, H_l, W_l)
tensor per level of ``spec.levels``, finest first, as :func:`~effdet_graph.fpn.compiler.compile_spec`'s does."""


class EfficientDet(nn.Module):
    """``forward(images)``: (N, 3, H, W) -> (class_outputs, box_outputs), lists over the spec's levels
    of (N, A * num_classes, H_l, W_l) and (N, A * 4, H_l, W_l) logits / box codes.

    ``feature_network`` builds the feature network (``self.fpn``): the spec's compiled network by default; any
    module with its interface otherwise (a weight-sharing supernet, say)."""

    def __init__(
        self,
        spec: Spec,
        config: DetectorConfig,
        backbone: nn.Module | None = None,
        feature_network: FeatureNetworkFactory = compile_spec,
    ):
        super().__init__()
        self.spec = spec
        self.config = config
        self.anchor_config = dataclasses.replace(config.anchors, min_level=spec.levels[0], max_level=spec.levels[-1])
        self.backbone = backbone or create_backbone(config.backbone, spec.backbone_levels, **config.backbone_args)
        info = feature_info(self.backbone)
        self.fpn = feature_network(spec, info.channels(), info.reduction())
        head = config.head
        bn = BatchNormStyle(head.bn_eps, head.bn_momentum)
        num_anchors = self.anchor_config.num_anchors
        common: dict[str, Any] = dict(
            width=spec.width,
            num_anchors=num_anchors,
            depth=head.depth,
            levels=spec.levels,
            act=head.act,
            conv_bias=head.conv_bias,
            bn=bn,
        )
        self.class_head = PredictionHead(num_outputs=config.num_classes, class_prior=head.class_prior, **common)
        self.box_head = PredictionHead(num_outputs=4, **common)
        self.backbone_frozen = False

    def freeze_backbone(self) -> EfficientDet:
        """Keep the backbone as it is while the rest trains: no gradients, its BatchNorms in eval mode (their
        ImageNet statistics) whatever :meth:`train` says, and its forward pass without autograd."""
        self.backbone_frozen = True
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        return self

    def train(self, mode: bool = True) -> EfficientDet:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def forward(self, images: torch.Tensor | list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``images``: ``(N, 3, H, W)``, or a frozen backbone's feature maps of them, finest first (a feature
        cache's: :mod:`effdet_graph.training.feature_cache`), which skip the backbone."""
        if isinstance(images, torch.Tensor):
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.backbone_frozen):
                backbone_features = self.backbone(images)
        else:
            backbone_features = images
        features = self.fpn(backbone_features)
        return self.class_head(features), self.box_head(features)


class DetectorTrainer(nn.Module):
    """``forward(images, targets) -> {"loss", "class_loss", "box_loss"}`` for a training step.

    ``targets``: either one dict per image with ``boxes`` (FloatTensor[M, 4], xyxy input pixels),
    ``labels`` (Int64Tensor[M], 0-based) and optionally ``ignore_boxes`` (crowd regions), padded
    here; or the batch already padded to a fixed number of boxes per image
    (:class:`~effdet_graph.model.padded_targets.PaddedTargets`, from
    :class:`~effdet_graph.data.transforms.PaddedCollate`), with which the step never waits for the
    device and can be captured in a CUDA graph. Both give the same losses.

    Args:
        model: the detector.
        image_size: side of the square input, in pixels.
        reduce_positives, world_size: for several processes, see
            :class:`~effdet_graph.model.losses.DetectionLoss`.
    """

    def __init__(
        self,
        model: EfficientDet,
        image_size: int,
        reduce_positives: Callable[[torch.Tensor], torch.Tensor] | None = None,
        world_size: int | None = None,
    ):
        super().__init__()
        self.model = model
        self.anchors = Anchors(model.anchor_config, (image_size, image_size))
        self.loss = DetectionLoss(model.config.num_classes, reduce_positives=reduce_positives, world_size=world_size)

    def forward(
        self, images: torch.Tensor, targets: Sequence[Mapping[str, torch.Tensor]] | PaddedTargets
    ) -> dict[str, torch.Tensor]:
        """Args:
            images: ``FloatTensor[N, 3, S, S]``.
            targets: ``N`` target dicts, or :class:`PaddedTargets` of ``N`` images.

        Returns:
            ``{"loss", "class_loss", "box_loss"}``, scalar tensors.
        """
        class_outputs, box_outputs = self.model(images)
        return self.loss(class_outputs, box_outputs, self.anchors.boxes, targets)


class DetectorPredictor(nn.Module):
    """``forward(images, image_sizes) -> detections``: one dict per image with ``boxes`` (xyxy input
    pixels), ``scores`` and 0-based ``labels``, at most ``max_detections_per_image``."""

    def __init__(self, model: EfficientDet, image_size: int, config: PostProcessConfig = PostProcessConfig()):
        super().__init__()
        self.model = model
        self.anchors = Anchors(model.anchor_config, (image_size, image_size))
        self.config = config

    @torch.no_grad()
    def forward(
        self, images: torch.Tensor, image_sizes: list[tuple[int, int]] | None = None
    ) -> list[dict[str, torch.Tensor]]:
        class_outputs, box_outputs = self.model(images)
        sizes = image_sizes or [(images.shape[-2], images.shape[-1])] * images.shape[0]
        return postprocess(class_outputs, box_outputs, self.anchors.boxes, sizes, self.config)


def build_detector(
    spec_path: str | Path,
    phi: int,
    backbone: str | None = None,
    num_classes: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EfficientDet:
    """EfficientDet-D``phi`` with the feature network of ``spec_path``, a spec file or a built-in spec's name
    (``"bifpn"``), scaled like BiFPN would be."""
    config = detector_config(phi, backbone=backbone, num_classes=num_classes)
    return EfficientDet(scale_spec(resolve_spec_path(str(spec_path)), config, overrides), config)
