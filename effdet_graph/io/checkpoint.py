"""Checkpoints that rebuild their detector alone: the spec's YAML text, its parameters and the
detector configuration travel with the weights.

A checkpoint is a ``torch.save`` dict of plain values and tensors (so ``torch.load(weights_only=True)``
reads it) with ``format`` :data:`FORMAT` and the keys of :meth:`ModelRecipe.to_dict` plus ``model``
(state_dict), optionally ``ema`` (state_dict of the averaged weights) and, when written by
training, the state needed to resume (see :mod:`effdet_graph.training.loop`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from effdet_graph.errors import CheckpointError
from effdet_graph.io.atomic import atomic_output
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.model.detector import EfficientDet
from graphspec.errors import first_few

__all__ = ["FORMAT", "load_model_state", "load_safely", "model_from_checkpoint", "read_checkpoint", "save_checkpoint"]

FORMAT = "effdet-graph/1"


def save_checkpoint(
    path: str | Path, recipe: ModelRecipe, model_state: Mapping[str, torch.Tensor], **extra: Any
) -> None:
    """Write a checkpoint atomically: a kill or an error leaves the previous file (or none)."""
    payload = {"format": FORMAT, **recipe.to_dict(), "model": dict(model_state), **extra}
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_safely(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors and plain values only, never code.

    Raises:
        CheckpointError: the file is missing, corrupt, or holds other objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # the safe unpickler's warnings about a corrupt file's pickle protocol
            warnings.filterwarnings("ignore", module="torch._weights_only_unpickler")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {_cause(exc)}); "
            "it is corrupt, or holds objects other than tensors and plain values"
        ) from None


def _cause(exc: Exception) -> str:
    """The line that says what went wrong. A refused unpickling puts it after torch's advice to turn the
    safe loading off, which is not ours to give."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no details"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, safely (``weights_only=True``).

    Raises:
        CheckpointError: missing, unreadable, not this format, or lacking keys.
    """
    data = load_safely(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{path}: not an effdet-graph checkpoint (format {found!r}, expected {FORMAT!r}); "
            "convert public effdet weights with `effdet-graph convert`"
        )
    missing = [f.name for f in dataclasses.fields(ModelRecipe) if f.name not in data] + [
        key for key in ("model",) if key not in data
    ]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks the entries {', '.join(missing)}")
    return data


def load_model_state(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state)``, strict, with missing, unexpected and wrongly shaped keys named
    in one :class:`CheckpointError`.

    Raises:
        CheckpointError: keys are missing, unexpected or wrongly shaped.
    """
    ours = model.state_dict()
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    shapes = [
        f"{k}: checkpoint {list(v.shape)}, model {list(ours[k].shape)}"
        for k, v in state.items()
        if k in ours and v.shape != ours[k].shape
    ]
    problems = [
        f"{len(keys)} {label}: {first_few(keys, sep='; ')}"
        for label, keys in (("shape mismatches", shapes), ("missing keys", missing), ("unexpected keys", unexpected))
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"{source}: weights do not fit the model (another phi, spec, backbone or "
            "number of classes?): " + " | ".join(problems)
        )
    model.load_state_dict(state)


def model_from_checkpoint(path: str | Path, use_ema: bool = True) -> tuple[EfficientDet, ModelRecipe]:
    """Rebuild the detector of a checkpoint and load its weights (the EMA weights where present and
    ``use_ema``), in eval mode on the CPU."""
    data = read_checkpoint(path)
    recipe = ModelRecipe.from_dict(data)
    model = recipe.build()
    weights = data["ema"] if use_ema and data.get("ema") is not None else data["model"]
    load_model_state(model, weights, str(path))
    return model.eval(), recipe
