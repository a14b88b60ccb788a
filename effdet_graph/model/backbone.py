"""The backbone: any timm model created with ``features_only=True``, at the strides a spec takes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import timm
from timm.models import FeatureInfo
from torch import nn

from effdet_graph.model.backbone_weights import (
    IMAGENET_NORMALISATION,
    fold_input_normalisation,
    is_efficientnet_pytorch,
    map_efficientnet_pytorch,
    packaged_weights,
    read_state_dict,
    trained_normalisation,
)
from graphspec import InputError

#: ``weights`` of :func:`create_backbone` that asks timm for its ImageNet weights (a download).
IMAGENET = "imagenet"


def create_backbone(name: str, levels: Sequence[int], weights: str | Path | None = None, **kwargs: Any) -> nn.Module:
    """A timm feature extractor returning the maps at stride ``2**level`` for each of ``levels``.

    Args:
        name: a timm model name (``tf_efficientnet_b0``, ``mobilenetv3_small_100``, ...).
        levels: the pyramid levels the spec takes from the backbone (stride ``2**level`` each).
        weights: ``None`` for random weights; :data:`IMAGENET` for ImageNet weights: an installed package's file
            where one ships them (:data:`~effdet_graph.model.backbone_weights.PACKAGED_WEIGHTS`, offline), else
            timm's (a download, or its cache); or a local file, in timm's layout (the state dict of
            ``timm.create_model(name)``) or EfficientNet-PyTorch's (mapped by name, every shape checked):
            ``.pth``/``.pt``/``.bin`` read with ``weights_only=True``, or ``.safetensors``. Weights trained on
            another input normalisation than the data pipeline's (ImageNet's mean and std), such as the Lite
            ports' ``(x - 127) / 128``, are adapted to it in the stem (:func:`fold_input_normalisation`).
        kwargs: passed to ``timm.create_model`` (e.g. ``drop_path_rate``).

    Raises:
        InputError: timm has no such model, it has no feature map at a level's stride, the weights file is
            missing, unreadable or for another model, or the ImageNet weights cannot be downloaded.
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
    if weights is None:
        return timm.create_model(name, features_only=True, pretrained=False, out_indices=out_indices, **kwargs)
    if weights == IMAGENET:
        weights = packaged_weights(name) or IMAGENET  # an installed package's file: no download
    if weights != IMAGENET:
        path = Path(weights)
        if not path.is_file():
            raise InputError(f"{path}: backbone weights file " + ("is a directory" if path.is_dir() else "not found"))
        if path.suffix not in (".pth", ".pt", ".bin", ".safetensors"):
            raise InputError(
                f"{path}: backbone weights must be a .pth, .pt, .bin or .safetensors file in timm's or "
                "EfficientNet-PyTorch's layout"
            )
        state = read_state_dict(path)
        if is_efficientnet_pytorch(state):
            backbone = timm.create_model(name, features_only=True, pretrained=False, out_indices=out_indices, **kwargs)
            backbone.load_state_dict(map_efficientnet_pytorch(state, backbone, name, path))
        else:
            backbone = _timm_pretrained(
                name, weights, out_indices, {**kwargs, "pretrained_cfg_overlay": {"file": str(path)}}
            )
    else:
        path, backbone = None, _timm_pretrained(name, weights, out_indices, kwargs)
    fold_input_normalisation(backbone, trained_normalisation(name, path), IMAGENET_NORMALISATION)
    return backbone


def _timm_pretrained(name: str, weights: str | Path, out_indices: tuple[int, ...], kwargs: dict[str, Any]) -> nn.Module:
    """timm's feature extractor with its pretrained weights (``kwargs`` may point them at a file)."""
    try:
        return timm.create_model(name, features_only=True, pretrained=True, out_indices=out_indices, **kwargs)
    except Exception as exc:  # timm, torch, safetensors and the hub raise many types; the cause is in the text
        raise InputError(_weights_error(name, weights, exc)) from None


def weights_source(name: str, weights: str | Path | None) -> str:
    """Where a backbone's weights come from, as a checkpoint records it: ``random``, ``imagenet (timm)``,
    ``imagenet (FILE)`` for an installed package's file, or the file's path."""
    if weights is None:
        return "random"
    if weights == IMAGENET:
        packaged = packaged_weights(name)
        return "imagenet (timm)" if packaged is None else f"imagenet ({packaged})"
    return str(Path(weights).resolve())


def _weights_error(name: str, weights: str | Path, exc: Exception) -> str:
    """One line saying why ``weights`` could not be loaded into backbone ``name``."""
    text = " ".join(str(exc).split())
    if weights == IMAGENET:
        return (
            f"--pretrained-backbone: timm could not load the ImageNet weights of '{name}' ({type(exc).__name__}: "
            f"{text[:200]}); offline, download them elsewhere and pass --backbone-weights FILE"
        )
    if isinstance(exc, RuntimeError) and ("state_dict" in text or "size mismatch" in text):
        first = re.search(r"size mismatch for [\w.]+|Missing key\(s\)[^:]*: \S+|Unexpected key\(s\)[^:]*: \S+", text)
        why = f" ({first.group(0).rstrip(',.')})" if first else ""
        return f"{weights}: these weights are not for backbone '{name}'{why}; pass the weights of '{name}'"
    return f"{weights}: cannot load backbone weights ({type(exc).__name__}: {text[:200]})"


def feature_info(backbone: nn.Module) -> FeatureInfo:
    """The ``feature_info`` of a timm feature extractor (channels and reductions of its maps), typed.

    Args:
        backbone: a model made by ``timm.create_model(..., features_only=True)``.

    Returns:
        Its :class:`timm.models.FeatureInfo`.
    """
    return cast(FeatureInfo, backbone.feature_info)
