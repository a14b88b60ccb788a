"""Layers the compiled networks are made of: activations, separable conv, the op after a merge."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from graphspec import BatchNormStyle

CONV_STEPS = ("separable_conv", "conv")


def make_activation(name: str) -> nn.Module:
    """``swish`` -> SiLU, ``relu`` -> ReLU, ``none`` -> Identity."""
    return {"swish": nn.SiLU, "relu": nn.ReLU, "none": nn.Identity}[name]()


def make_bn(channels: int, style: BatchNormStyle) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=style.eps, momentum=style.momentum)


class SeparableConv2d(nn.Module):
    """3x3 depthwise conv (no bias) then 1x1 pointwise conv: (N, C, H, W) -> (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool):
        super().__init__()
        self.conv_dw = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.conv_pw = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_pw(self.conv_dw(x))


def conv_has_bias(conv_bias: bool, bn_follows: bool) -> bool:
    """Whether a conv carries a bias: unless a BN follows it, or always when ``conv_bias`` (public checkpoints).

    Every conv of a compiled feature network (the op after a merge, projections, strided-conv
    downsampling) follows this rule.

    Args:
        conv_bias: the spec's ``conv_bias``.
        bn_follows: whether a batch norm comes after the conv.

    Returns:
        ``True`` if the conv gets a bias.
    """
    return conv_bias or not bn_follows


def make_op(steps: tuple[str, ...], channels: int, conv_bias: bool, bn: BatchNormStyle) -> nn.Sequential:
    """The op after a merge, e.g. ``("swish", "separable_conv", "bn")``; all steps keep ``channels``.

    Submodules are named by kind (``act``, ``conv``, ``bn``; ``conv2`` for a second conv ...) so that
    state_dict keys read like ``op.conv.conv_dw.weight``.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, step in enumerate(steps):
        if step in ("swish", "relu"):
            kind, layer = "act", make_activation(step)
        elif step == "bn":
            kind, layer = "bn", make_bn(channels, bn)
        else:
            bias = conv_has_bias(conv_bias, "bn" in steps[i + 1 :])
            if step == "separable_conv":
                kind, layer = "conv", SeparableConv2d(channels, channels, bias)
            else:
                kind, layer = "conv", nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        name, n = kind, 1
        while name in layers:
            n += 1
            name = f"{kind}{n}"
        layers[name] = layer
    return nn.Sequential(layers)
