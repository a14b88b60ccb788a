"""Load the public EfficientDet PyTorch checkpoints (the ``effdet`` package's state_dict layout) into
a compiled detector, through an explicit key mapping.

effdet names feature-network nodes by position (``fpn.cell.<repeat>.fnode.<i>``) and their inputs by
offset into the growing list of cell inputs and nodes; we name both by id. Node ``i`` of the
checkpoint is node ``i`` of the spec, in the order written (the built-in BiFPN lists its nodes in
google/automl's order), and offset ``o`` is level ``P<min_level + o>`` for the cell inputs, then the
spec's nodes in order.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from effdet_graph.errors import CheckpointError
from effdet_graph.io.checkpoint import FORMAT, load_safely
from effdet_graph.model.detector import EfficientDet
from graphspec import Spec, level_name
from graphspec.errors import first_few

_HEADS = {"class_net": "class_head", "box_net": "box_head"}
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^fpn\.resample\.(\d+)\.conv\.(conv|bn)\.(.+)$"), "derived"),
    (re.compile(r"^fpn\.cell\.(\d+)\.fnode\.(\d+)\.combine\.edge_weights$"), "merge"),
    (re.compile(r"^fpn\.cell\.(\d+)\.fnode\.(\d+)\.combine\.resample\.(\d+)\.conv\.(conv|bn)\.(.+)$"), "edge"),
    (re.compile(r"^fpn\.cell\.(\d+)\.fnode\.(\d+)\.after_combine\.conv\.(conv_dw|conv_pw|bn)\.(.+)$"), "op"),
    (re.compile(r"^(class_net|box_net)\.conv_rep\.(\d+)\.(conv_dw|conv_pw)\.(.+)$"), "head_conv"),
    (re.compile(r"^(class_net|box_net)\.bn_rep\.(\d+)\.(\d+)\.bn\.(.+)$"), "head_bn"),
    (re.compile(r"^(class_net|box_net)\.predict\.(conv_dw|conv_pw)\.(.+)$"), "head_predict"),
]


#: Name prefixes only effdet's EfficientDet state_dicts have (besides ``backbone.``).
_EFFDET_PREFIXES = ("fpn.", "class_net.", "box_net.")


def effdet_key_to_ours(key: str, spec: Spec) -> str | None:
    """Our state_dict key for one effdet key, or None if it has no counterpart."""
    if key.startswith("backbone."):
        return key
    min_level = spec.levels[0]
    cell_inputs = [level_name(level) for level in spec.levels]

    def input_name(offset: int) -> str:
        return cell_inputs[offset] if offset < len(cell_inputs) else spec.nodes[offset - len(cell_inputs)].id

    for pattern, kind in _RULES:
        match = pattern.match(key)
        if not match:
            continue
        g = match.groups()
        if kind.startswith("head"):
            head = _HEADS[g[0]]
            if kind == "head_conv":
                return f"{head}.convs.{g[1]}.{g[2]}.{g[3]}"
            if kind == "head_bn":
                return f"{head}.norms.{g[1]}.{level_name(min_level + int(g[2]))}.{g[3]}"
            return f"{head}.predict.{g[1]}.{g[2]}"
        if kind == "derived":
            return f"fpn.derived.{level_name(min_level + int(g[0]))}.resample.project.{g[1]}.{g[2]}"
        if int(g[1]) >= len(spec.nodes):
            return None
        node = spec.nodes[int(g[1])].id
        if kind == "merge":
            return f"fpn.cells.{g[0]}.nodes.{node}.merge.weight"
        if kind == "edge":
            offset = int(g[2])
            if offset >= len(cell_inputs) + len(spec.nodes):
                return None
            return f"fpn.cells.{g[0]}.nodes.{node}.edges.{input_name(offset)}.project.{g[3]}.{g[4]}"
        part = "bn" if g[2] == "bn" else f"conv.{g[2]}"
        return f"fpn.cells.{g[0]}.nodes.{node}.op.{part}.{g[3]}"
    return None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely (``weights_only=True``); unwraps ``state_dict``/``state_dict_ema``/``model``
    and a ``model.`` prefix (effdet's training wrapper).

    Raises:
        CheckpointError: the file is missing or unreadable, holds no state_dict, is already an
            effdet-graph checkpoint, or is a state_dict without effdet's keys.
    """
    data = load_safely(path)
    if isinstance(data, dict) and "format" in data:
        if data["format"] == FORMAT:
            raise CheckpointError(
                f"{path}: already an effdet-graph checkpoint; nothing to convert (eval and predict read it as it is)"
            )
        raise CheckpointError(f"{path}: a checkpoint of format {data['format']!r}, not effdet weights to convert")
    for wrapper in ("state_dict_ema", "state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: expected a state_dict (a mapping of names to tensors)")
    state = {str(k).removeprefix("model."): v for k, v in data.items()}
    if not any(k.startswith(_EFFDET_PREFIXES) for k in state):
        raise CheckpointError(
            f"{path}: not effdet EfficientDet weights: none of its {len(state)} tensors is named "
            f"{', '.join(repr(p + '*') for p in _EFFDET_PREFIXES)} (found {first_few([repr(k) for k in state], 3)})"
        )
    return state


def convert_effdet_state_dict(
    state: dict[str, torch.Tensor], model: EfficientDet, source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """Map an effdet state_dict onto ``model``'s keys. Every key must map and fit: unmapped, missing
    and wrongly-shaped keys are all reported by name in one :class:`CheckpointError`.

    Raises:
        CheckpointError: keys are unmapped, missing or wrongly shaped.
    """
    ours = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    unexpected, mismatched = [], []
    for key, value in state.items():
        target = effdet_key_to_ours(key, model.spec)
        if target is None or target not in ours:
            unexpected.append(key)
        elif ours[target].shape != value.shape:
            mismatched.append(f"{key} -> {target}: checkpoint {list(value.shape)}, model {list(ours[target].shape)}")
        else:
            converted[target] = value
    missing = [k for k in ours if k not in converted and not k.endswith("num_batches_tracked")]
    problems = []
    for label, keys in (("shape mismatches", mismatched), ("unexpected keys", unexpected), ("missing keys", missing)):
        if keys:
            problems.append(f"{len(keys)} {label}: {first_few(keys, sep='; ')}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit {model.config.name} with spec '{model.spec.name}' "
            f"(width {model.spec.width}, {model.spec.repeats} repeats, backbone "
            f"{model.config.backbone}); is it for another phi or topology? " + " | ".join(problems)
        )
    return converted


def load_effdet_checkpoint(model: EfficientDet, path: str | Path) -> None:
    """Load an effdet checkpoint file into ``model`` (strict: every key accounted for)."""
    state = convert_effdet_state_dict(read_state_dict(path), model, str(path))
    model.load_state_dict(state, strict=False)
