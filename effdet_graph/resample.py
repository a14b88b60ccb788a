"""Bring one input of a fusion node to the node's level and width.

Every resample produces ``ceil(size / 2**delta)`` for a coarser target, so inputs whose size is not
divisible by the largest stride still line up (backbones with "same"/symmetric padding do the
same); upsampling targets the exact size of the destination level.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from graphspec import BatchNormStyle, EdgeStyle

from effdet_graph.ops import make_bn


def downsample_geometry(delta: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) for a ``2**delta`` downsample: kernel = stride + 1, as EfficientDet's
    3x3/2 max-pool; padding = stride // 2 gives ``ceil(size / stride)`` outputs."""
    stride = 2**delta
    return stride + 1, stride, stride // 2


def projection(in_channels: int, out_channels: int, style: str, conv_bias: bool, bn: BatchNormStyle) -> nn.Sequential:
    """1x1 conv (+ BN for ``conv_bn``) from ``in_channels`` to ``out_channels``."""
    with_bn = style == "conv_bn"
    layers: dict[str, nn.Module] = {"conv": nn.Conv2d(in_channels, out_channels, 1, bias=conv_bias or not with_bn)}
    if with_bn:
        layers["bn"] = make_bn(out_channels, bn)
    return nn.Sequential(OrderedDict(layers))


class Resample(nn.Module):
    """(N, C_in, H_s, W_s) at level ``source`` -> (N, C_out, H_t, W_t) at level ``target``.

    Channels are projected first (at the source resolution for both directions, like EfficientDet);
    ``downsample="conv"`` projects and downsamples in one strided conv instead.
    """

    def __init__(self, in_channels: int, out_channels: int, delta: int, style: EdgeStyle, conv_bias: bool,
                 bn: BatchNormStyle):
        super().__init__()
        self.delta = delta
        self.upsample = style.upsample
        strided_conv = delta > 0 and style.downsample == "conv"
        self.project: nn.Module | None = None
        if strided_conv:
            kernel, stride, padding = downsample_geometry(delta)
            with_bn = style.projection == "conv_bn"
            layers: dict[str, nn.Module] = {"conv": nn.Conv2d(in_channels, out_channels, kernel, stride, padding,
                                                              bias=conv_bias or not with_bn)}
            if with_bn:
                layers["bn"] = make_bn(out_channels, bn)
            self.project = nn.Sequential(OrderedDict(layers))
        elif in_channels != out_channels:
            self.project = projection(in_channels, out_channels, style.projection, conv_bias, bn)
        self.pool: nn.Module | None = None
        if delta > 0 and not strided_conv:
            kernel, stride, padding = downsample_geometry(delta)
            if style.downsample == "max_pool":
                self.pool = nn.MaxPool2d(kernel, stride, padding)
            else:
                self.pool = nn.AvgPool2d(kernel, stride, padding, count_include_pad=False)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.project is not None:
            x = self.project(x)
        if self.pool is not None:
            x = self.pool(x)
        elif self.delta < 0:
            x = F.interpolate(x, size=size, mode=self.upsample)
        return x
