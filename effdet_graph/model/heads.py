"""Class and box prediction nets, shared across pyramid levels with per-level BatchNorm."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from effdet_graph.fpn.ops import SeparableConv2d, make_activation, make_bn
from graphspec import BatchNormStyle, level_name


class PredictionHead(nn.Module):
    """``depth`` x (separable conv -> BN of the level -> act), then a separable conv predicting
    ``num_outputs`` values per anchor.

    ``forward(features)``: list of (N, width, H_l, W_l), one per level, finest first ->
    list of (N, num_anchors * num_outputs, H_l, W_l). Channel ``a * num_outputs + k`` is output
    ``k`` of anchor ``a`` (see :func:`effdet_graph.model.anchors.flatten_level_outputs`).
    Convs are shared by all levels; each level has its own BatchNorm (``norms.<repeat>.P<level>``).
    Conv weights start as effdet's and google/automl's separable head convs do: normal with std
    ``1 / sqrt(fan_in)`` (TF ``variance_scaling``). With ``class_prior`` the prediction bias starts at
    -log((1 - p) / p) (focal loss, RetinaNet).
    """

    def __init__(
        self,
        width: int,
        num_outputs: int,
        num_anchors: int,
        depth: int,
        levels: Sequence[int],
        act: str = "swish",
        conv_bias: bool = True,
        bn: BatchNormStyle = BatchNormStyle(1e-3, 0.01),
        class_prior: float | None = None,
    ):
        super().__init__()
        self.level_names = [level_name(level) for level in levels]
        self.convs = nn.ModuleList([SeparableConv2d(width, width, bias=conv_bias) for _ in range(depth)])
        self.norms = nn.ModuleList(
            [nn.ModuleDict({name: make_bn(width, bn) for name in self.level_names}) for _ in range(depth)]
        )
        self.act = make_activation(act)
        self.predict = SeparableConv2d(width, num_anchors * num_outputs, bias=True)
        self._init_weights(class_prior)

    def _init_weights(self, class_prior: float | None) -> None:
        for layer in self.modules():  # in registration order: the shared convs, then the prediction's
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="linear")
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        bias = self.predict.conv_pw.bias
        if class_prior is not None and bias is not None:
            nn.init.constant_(bias, -math.log((1 - class_prior) / class_prior))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        outputs = []
        for x, name in zip(features, self.level_names):
            for conv, norms in zip(self.convs, self.norms):
                x = self.act(cast(nn.ModuleDict, norms)[name](conv(x)))
            outputs.append(self.predict(x))
        return outputs
