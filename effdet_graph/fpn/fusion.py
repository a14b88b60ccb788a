"""Merging the resampled inputs of a node: weighted sums (EfficientDet, Section 3.3) and NAS-FPN's
global-pool attention; and :class:`MergeChoice`, every merge a node of a union network may run."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from graphspec.model import FAST_NORMALIZED_EPS

ATTENTION = "global_pool_attention"


class WeightedSum(nn.Module):
    """out = sum_i w_i * x_i over ``num_inputs`` tensors of shape (N, C, H, W).

    ``method``:
      - ``sum``: w_i = 1 (no parameters);
      - ``unbounded``: learned scalars w_i;
      - ``softmax``: softmax over the learned scalars;
      - ``fast_normalized``: relu(w_i) / (eps + sum_j relu(w_j)), eps = 1e-4;
      - ``channel_softmax`` / ``channel_fast_normalized``: the same per channel, weights (num_inputs, C).
    Weights start at 1, so every method starts as an (optionally normalised) plain sum.

    ``forward(inputs, positions)`` with ``positions`` (K indices into the ``num_inputs`` weights) sums K inputs
    with those weights only, normalised over them: a sub-graph of a union network (:class:`MergeChoice`).
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

    def normalized_weights(self, dtype: torch.dtype, positions: list[int] | None = None) -> torch.Tensor:
        """(K,) or (K, C) weights as the formula of ``method`` gives them, over the inputs at ``positions``
        (all ``num_inputs`` when ``None``).

        Raises:
            ValueError: the method is ``sum``, which has no weights.
        """
        if self.weight is None:
            raise ValueError("a 'sum' fusion has no weights")
        w = (self.weight if positions is None else self.weight[positions]).to(dtype)
        if self.normalizer == "softmax":
            return torch.softmax(w, dim=0)
        if self.normalizer == "fast_normalized":
            w = F.relu(w)
            return w / (w.sum(dim=0, keepdim=True) + FAST_NORMALIZED_EPS)
        return w

    def forward(self, inputs: list[torch.Tensor], positions: list[int] | None = None) -> torch.Tensor:
        if self.weight is None:
            out = inputs[0]
            for x in inputs[1:]:
                out = out + x
            return out
        w = self.normalized_weights(inputs[0].dtype, positions)
        if self.per_channel:
            w = w[:, None, :, None, None]  # (K, C) -> (K, 1, C, 1, 1) to broadcast over (N, C, H, W)
        out = inputs[0] * w[0]
        for i in range(1, len(inputs)):
            out = out + inputs[i] * w[i]
        return out


def coarser_index(levels: Sequence[int]) -> int:
    """Which of two inputs at ``levels`` is NAS-FPN's coarser input ``a``: 1 if the second, else 0 (ties: 0)."""
    return 1 if levels[1] > levels[0] else 0


def pool_attention(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b * sigmoid(global_max_pool(a)) for (N, C, H, W) tensors ``a`` (the coarser input) and ``b``."""
    gate = torch.sigmoid(torch.amax(a, dim=(2, 3), keepdim=True))  # (N, C, 1, 1)
    return a + b * gate


class GlobalPoolAttention(nn.Module):
    """NAS-FPN's merge, TensorFlow variant: out = a + b * sigmoid(global_max_pool(a)).

    ``a`` is the input from the coarser level (before resampling), ``b`` the other one;
    ``coarse_index`` (0 or 1) says which of the two inputs is ``a``. No parameters.
    """

    def __init__(self, coarse_index: int):
        super().__init__()
        self.coarse_index = coarse_index

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return pool_attention(inputs[self.coarse_index], inputs[1 - self.coarse_index])


class MergeChoice(nn.Module):
    """Every merge a node of a union network may run, over any ordered subset of its inputs.

    ``options`` name the merges: ``global_pool_attention``, or a fusion method naming a weighted sum. Each
    weighted sum holds its own weights, one per input of the node at ``input_levels`` (per channel too for
    ``channel_*``); a run normalises over the inputs it sums only. ``forward(inputs)`` runs ``default`` over
    every input, as the plain merge of that name would.
    """

    def __init__(self, options: Sequence[str], default: str, input_levels: Sequence[int], channels: int):
        super().__init__()
        self.default = default
        self.input_levels = tuple(input_levels)
        num_inputs = len(self.input_levels)
        self.sums = nn.ModuleDict(
            {name: WeightedSum(num_inputs, name, channels) for name in options if name != ATTENTION}
        )

    def run(self, option: str, inputs: list[torch.Tensor], positions: list[int]) -> torch.Tensor:
        """Merge ``inputs`` (K tensors (N, C, H, W), the node's inputs at ``positions``) with ``option``."""
        if option == ATTENTION:
            coarse = coarser_index([self.input_levels[p] for p in positions])
            return pool_attention(inputs[coarse], inputs[1 - coarse])
        return self.sums[option](inputs, positions)

    def sub_weight(self, option: str, positions: list[int]) -> torch.Tensor | None:
        """The weights of a stand-alone ``option`` merge of the node's inputs at ``positions``: a (K,) or (K, C)
        copy, or ``None`` where that merge has none (``sum``, ``global_pool_attention``)."""
        weight = self.sums[option].weight if option in self.sums else None
        return weight.detach()[positions] if isinstance(weight, torch.Tensor) else None

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.run(self.default, inputs, list(range(len(inputs))))
