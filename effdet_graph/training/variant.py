"""A model variant: what :func:`~effdet_graph.training.loop.train` trains in place of a recipe's plain detector.

The variant keeps the recipe's backbone and heads, data, schedule, logs, checkpoints and exact resumption, and
changes two things: the feature network it builds (any module with the compiled network's interface, see
:data:`~effdet_graph.model.detector.FeatureNetworkFactory`), and what it does before each step's forward pass
(a weight-sharing supernet picks the path the step trains, say).

Its checkpoints carry its :meth:`ModelVariant.entry` under ``variant``
(:data:`~effdet_graph.io.checkpoint.VARIANT_KEY`): loaders of plain detectors refuse them, naming the loader the
entry gives, and a run resumes only with the same entry. For a resumed run to continue exactly, ``before_step``
must depend on the step number and the variant's recorded settings alone (not on earlier calls).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from torch import nn

from effdet_graph.model.detector import EfficientDet
from graphspec import Spec

__all__ = ["ModelVariant"]


class ModelVariant(Protocol):
    """A detector trained by the training loop in place of the recipe's plain one (see the module docstring)."""

    def entry(self) -> dict[str, Any]:
        """The checkpoint's ``variant`` entry, plain values only: ``kind`` (a short name: ``supernet``),
        ``load_with`` (what loads such a checkpoint, for messages: a function's dotted name) and whatever else
        rebuilds the model or fixes its training."""
        ...

    def feature_network(self, spec: Spec, in_channels: Sequence[int], reductions: Sequence[int]) -> nn.Module:
        """The detector's feature network for the recipe's ``spec`` and the backbone's channels and strides."""
        ...

    def before_step(self, model: EfficientDet, step: int) -> None:
        """Prepare ``model`` (built with :meth:`feature_network`) for optimizer step ``step`` (0-based), before
        its forward pass."""
        ...
