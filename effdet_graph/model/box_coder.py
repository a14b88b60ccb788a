"""Box regression codes: a box encoded against an anchor, and decoded back.

A box is encoded against an anchor as ``(ty, tx, th, tw)`` (effdet's order, no scaling weights)::

    ty = (yc - yc_a) / h_a      tx = (xc - xc_a) / w_a
    th = log(h / h_a)           tw = log(w / w_a)

Boxes and anchors are ``(x1, y1, x2, y2)`` pixels. torchvision's ``BoxCoder`` uses ``(tx, ty, tw, th)``
with weights, so it does not reproduce effdet; the few lines here do.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["EPS", "encode_boxes", "decode_boxes"]

#: Added to widths and heights before dividing and taking logs, and the least anchor area a crowd
#: overlap divides by (effdet adds the same 1e-7).
EPS = 1e-7
# Decoded log-size offsets are clamped here so exp() cannot overflow (torchvision's bound).
_MAX_LOG_SCALE = math.log(1000.0 / 16)


def _centers_sizes(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``boxes (Tensor[..., 4])`` in ``(x1, y1, x2, y2)`` -> ``(yc, xc, h, w)``, each ``Tensor[...]``."""
    x1, y1, x2, y2 = boxes.unbind(dim=-1)
    w, h = x2 - x1, y2 - y1
    return y1 + h / 2, x1 + w / 2, h, w


def encode_boxes(boxes: Tensor, anchors: Tensor) -> Tensor:
    """Encode ``boxes`` against ``anchors`` row by row.

    Args:
        boxes (Tensor[..., N, 4]): ``(x1, y1, x2, y2)`` pixels.
        anchors (Tensor[N, 4]): ``(x1, y1, x2, y2)`` pixels, broadcast against ``boxes``.

    Returns:
        Tensor[..., N, 4]: codes ``(ty, tx, th, tw)``.
    """
    yc_a, xc_a, h_a, w_a = _centers_sizes(anchors)
    yc, xc, h, w = _centers_sizes(boxes)
    h_a, w_a, h, w = h_a + EPS, w_a + EPS, h + EPS, w + EPS
    return torch.stack([(yc - yc_a) / h_a, (xc - xc_a) / w_a, torch.log(h / h_a), torch.log(w / w_a)], dim=-1)


def decode_boxes(codes: Tensor, anchors: Tensor) -> Tensor:
    """Invert :func:`encode_boxes`.

    Args:
        codes (Tensor[..., N, 4]): ``(ty, tx, th, tw)``.
        anchors (Tensor[N, 4]): ``(x1, y1, x2, y2)`` pixels, broadcast against ``codes``.

    Returns:
        Tensor[..., N, 4]: boxes, ``(x1, y1, x2, y2)`` pixels. ``th`` and ``tw`` are clamped at
        ``log(1000/16)`` so that wild predictions cannot overflow to ``inf``.
    """
    yc_a, xc_a, h_a, w_a = _centers_sizes(anchors)
    ty, tx, th, tw = codes.unbind(dim=-1)
    h = torch.exp(th.clamp(max=_MAX_LOG_SCALE)) * h_a
    w = torch.exp(tw.clamp(max=_MAX_LOG_SCALE)) * w_a
    yc = ty * h_a + yc_a
    xc = tx * w_a + xc_a
    return torch.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], dim=-1)
