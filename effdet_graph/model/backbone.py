"""The backbone: any timm model created with ``features_only=True``, at the strides a spec takes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import timm
from timm.models import FeatureInfo
from torch import nn

from graphspec import InputError


def create_backbone(name: str, levels: Sequence[int], **kwargs: Any) -> nn.Module:
    """A timm feature extractor returning the maps at stride ``2**level`` for each of ``levels``.

    Weights are random: pretrained weights come from a checkpoint (``effdet-graph convert``), never
    from a download. ``kwargs`` go to ``timm.create_model`` (e.g. ``drop_path_rate``).

    Raises:
        InputError: timm has no such model, or it has no feature map at a level's stride.
    """
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[-1]}*")[:8]
        raise InputError(f"unknown timm backbone '{name}'" + (f"; similar: {', '.join(close)}" if close else ""))
    probe = timm.create_model(name, features_only=True, pretrained=False)
    reductions = feature_info(probe).reduction()
    wanted = [2**level for level in levels]
    missing = [r for r in wanted if r not in reductions]
    if missing:
        raise InputError(
            f"backbone '{name}' has feature maps at strides {reductions}, not at {missing}, "
            f"which the spec's levels {[f'P{level}' for level in levels]} need"
        )
    out_indices = tuple(reductions.index(r) for r in wanted)
    return timm.create_model(name, features_only=True, pretrained=False, out_indices=out_indices, **kwargs)


def feature_info(backbone: nn.Module) -> FeatureInfo:
    """The ``feature_info`` of a timm feature extractor (channels and reductions of its maps), typed.

    Args:
        backbone: a model made by ``timm.create_model(..., features_only=True)``.

    Returns:
        Its :class:`timm.models.FeatureInfo`.
    """
    return cast(FeatureInfo, backbone.feature_info)
