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

from effdet_graph.fpn.ops import conv_has_bias, make_bn
from graphspec import BatchNormStyle, EdgeStyle


def downsample_geometry(delta: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) for a ``2**delta`` downsample: kernel = stride + 1, as EfficientDet's
    3x3/2 max-pool; padding = stride // 2 gives ``ceil(size / stride)`` outputs."""
    stride = 2**delta
    return stride + 1, stride, stride // 2


class SamePad(nn.Module):
    """TensorFlow "SAME" padding for a strided window: pad so the output is ``ceil(size / stride)``,
    putting the odd pixel at the bottom/right (what the public EfficientDet checkpoints were trained with)."""

    def __init__(self, kernel: int, stride: int, value: float = 0.0):
        super().__init__()
        self.kernel, self.stride, self.value = kernel, stride, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((-(-size // self.stride) - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads, value=self.value)


class SameAvgPool2d(nn.Module):
    """Average pooling with TensorFlow "SAME" padding; like TensorFlow, the padding is not counted."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.pad = SamePad(kernel, stride)
        self.pool = nn.AvgPool2d(kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = x.new_ones((1, 1) + tuple(x.shape[-2:]))
        return self.pool(self.pad(x)) / self.pool(self.pad(ones))


def downsample_layers(kind: str, delta: int, padding: str) -> list[nn.Module]:
    """The pooling layers of a ``2**delta`` ``max_pool`` / ``avg_pool`` downsample."""
    kernel, stride, pad = downsample_geometry(delta)
    if padding == "same":
        if kind == "max_pool":
            return [SamePad(kernel, stride, float("-inf")), nn.MaxPool2d(kernel, stride)]
        return [SameAvgPool2d(kernel, stride)]
    if kind == "max_pool":
        return [nn.MaxPool2d(kernel, stride, pad)]
    return [nn.AvgPool2d(kernel, stride, pad, count_include_pad=False)]


def projection(in_channels: int, out_channels: int, style: str, conv_bias: bool, bn: BatchNormStyle) -> nn.Sequential:
    """1x1 conv (+ BN for ``conv_bn``) from ``in_channels`` to ``out_channels``."""
    with_bn = style == "conv_bn"
    layers: dict[str, nn.Module] = {
        "conv": nn.Conv2d(in_channels, out_channels, 1, bias=conv_has_bias(conv_bias, with_bn))
    }
    if with_bn:
        layers["bn"] = make_bn(out_channels, bn)
    return nn.Sequential(OrderedDict(layers))


class Resample(nn.Module):
    """(N, C_in, H_s, W_s) at level ``source`` -> (N, C_out, H_t, W_t) at level ``target``.

    Channels are projected first (at the source resolution for both directions, like EfficientDet);
    ``downsample="conv"`` projects and downsamples in one strided conv instead.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        delta: int,
        style: EdgeStyle,
        conv_bias: bool,
        bn: BatchNormStyle,
        padding: str = "symmetric",
    ):
        super().__init__()
        self.delta = delta
        self.upsample = style.upsample
        strided_conv = delta > 0 and style.downsample == "conv"
        self.project: nn.Module | None = None
        if strided_conv:
            kernel, stride, pad = downsample_geometry(delta)
            with_bn = style.projection == "conv_bn"
            layers: dict[str, nn.Module] = {}
            if padding == "same":
                layers["pad"] = SamePad(kernel, stride)
            layers["conv"] = nn.Conv2d(
                in_channels,
                out_channels,
                kernel,
                stride,
                0 if padding == "same" else pad,
                bias=conv_has_bias(conv_bias, with_bn),
            )
            if with_bn:
                layers["bn"] = make_bn(out_channels, bn)
            self.project = nn.Sequential(OrderedDict(layers))
        elif in_channels != out_channels:
            self.project = projection(in_channels, out_channels, style.projection, conv_bias, bn)
        self.pool: nn.Module | None = None
        if delta > 0 and not strided_conv:
            self.pool = nn.Sequential(*downsample_layers(style.downsample, delta, padding))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.project is not None:
            x = self.project(x)
        if self.pool is not None:
            x = self.pool(x)
        elif self.delta < 0:
            x = F.interpolate(x, size=size, mode=self.upsample)
        return x
