"""Merging the resampled inputs of a node: weighted sums (EfficientDet, Section 3.3) and NAS-FPN's
global-pool attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from graphspec.model import FAST_NORMALIZED_EPS


class WeightedSum(nn.Module):
    """out = sum_i w_i * x_i over ``num_inputs`` tensors of shape (N, C, H, W).

    ``method``:
      - ``sum``: w_i = 1 (no parameters);
      - ``unbounded``: learned scalars w_i;
      - ``softmax``: softmax over the learned scalars;
      - ``fast_normalized``: relu(w_i) / (eps + sum_j relu(w_j)), eps = 1e-4;
      - ``channel_softmax`` / ``channel_fast_normalized``: the same per channel, weights (num_inputs, C).
    Weights start at 1, so every method starts as an (optionally normalised) plain sum.
    """

    def __init__(self, num_inputs: int, method: str, channels: int):
        super().__init__()
        self.method = method
        self.per_channel = method.startswith("channel_")
        self.normalizer = method.removeprefix("channel_")
        if method == "sum":
            self.weight = None
        else:
            shape = (num_inputs, channels) if self.per_channel else (num_inputs,)
            self.weight = nn.Parameter(torch.ones(shape))

    def normalized_weights(self, dtype: torch.dtype) -> torch.Tensor:
        """(num_inputs,) or (num_inputs, C) weights as the formula of ``method`` gives them.

        Raises:
            ValueError: the method is ``sum``, which has no weights.
        """
        if self.weight is None:
            raise ValueError("a 'sum' fusion has no weights")
        w = self.weight.to(dtype)
        if self.normalizer == "softmax":
            return torch.softmax(w, dim=0)
        if self.normalizer == "fast_normalized":
            w = F.relu(w)
            return w / (w.sum(dim=0, keepdim=True) + FAST_NORMALIZED_EPS)
        return w

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.weight is None:
            out = inputs[0]
            for x in inputs[1:]:
                out = out + x
            return out
        w = self.normalized_weights(inputs[0].dtype)
        if self.per_channel:
            w = w[:, None, :, None, None]  # (K, C) -> (K, 1, C, 1, 1) to broadcast over (N, C, H, W)
        out = inputs[0] * w[0]
        for i in range(1, len(inputs)):
            out = out + inputs[i] * w[i]
        return out


class GlobalPoolAttention(nn.Module):
    """NAS-FPN's merge, TensorFlow variant: out = a + b * sigmoid(global_max_pool(a)).

    ``a`` is the input from the coarser level (before resampling), ``b`` the other one;
    ``coarse_index`` (0 or 1) says which of the two inputs is ``a``. No parameters.
    """

    def __init__(self, coarse_index: int):
        super().__init__()
        self.coarse_index = coarse_index

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        a, b = inputs[self.coarse_index], inputs[1 - self.coarse_index]
        gate = torch.sigmoid(torch.amax(a, dim=(2, 3), keepdim=True))  # (N, C, 1, 1)
        return a + b * gate
