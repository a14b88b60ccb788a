"""Checkpoints that rebuild their detector alone: the spec's YAML text, its parameters and the
detector configuration travel with the weights.

A checkpoint is a ``torch.save`` dict of plain values and tensors (so ``torch.load(weights_only=True)``
reads it) with ``format`` :data:`FORMAT` and the keys of :meth:`ModelRecipe.to_dict` plus ``model``
(state_dict), optionally ``ema`` (state_dict of the averaged weights) and, when written by
training, the state needed to resume (see :mod:`effdet_graph.training.loop`). A model variant's checkpoint
(:mod:`effdet_graph.training.variant`) also holds its entry :data:`VARIANT_KEY`; it rebuilds no plain detector,
and :func:`load_checkpoint` refuses it.

Reading one checks it as data from outside (:mod:`effdet_graph.io.validation`): every entry the loader
uses must be there, of its type and range, and the stored spec must parse; the first problem is a
:class:`~effdet_graph.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from effdet_graph.atomic import atomic_output
from effdet_graph.errors import CheckpointError
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.io.validation import VARIANT_KEY, check_checkpoint_dict
from effdet_graph.model.detector import EfficientDet
from graphspec import InputError
from graphspec.errors import ConfigError, first_few

__all__ = [
    "FORMAT",
    "VARIANT_KEY",
    "build_from_checkpoint",
    "load_model_state",
    "load_safely",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]

FORMAT = "effdet-graph/1"


def save_checkpoint(
    path: str | Path, recipe: ModelRecipe, model_state: Mapping[str, torch.Tensor], **extra: Any
) -> None:
    """Write a checkpoint atomically: a kill or an error leaves the previous file (or none).

    Raises:
        OutputError: a full disk or a read-only folder (one line naming ``path``; the previous file is kept).
    """
    payload = {"format": FORMAT, **recipe.to_dict(), "model": dict(model_state), **extra}
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:  # through Python's file: a full disk is ENOSPC,
        torch.save(payload, handle)  # where torch's own writer raises "unexpected pos" without an errno


#: The first bytes of a file written by ``torch.save(..., _use_new_zipfile_serialization=False)``: a pickle
#: of torch's legacy magic number.
_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."


def load_safely(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors and plain values only, never code.

    Raises:
        CheckpointError: the file is missing or a directory; not a PyTorch checkpoint (a raw pickle, JSON,
            text); corrupt or truncated; or holds objects other than tensors and plain values (the
            message names the refused global, e.g. ``posix.system``).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # the safe unpickler's warnings about a corrupt file's pickle protocol
            warnings.filterwarnings("ignore", module="torch._weights_only_unpickler")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(_load_error(path, exc)) from None


def _load_error(path: Path, exc: Exception) -> str:
    """What is wrong with a file ``torch.load`` refused, from its first bytes and torch's message."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LEGACY_MAGIC))
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror or err})"
    if not (zipfile.is_zipfile(path) or head.startswith((_LEGACY_MAGIC, b"PK\x03\x04"))):
        return f"{path}: not a PyTorch checkpoint (torch.save writes a zip archive); it looks like {_looks_like(head)}"
    cause = _cause(exc)
    if cause.startswith("unsupported global"):
        return (
            f"{path}: refused to load: {cause}; a checkpoint may hold only tensors and plain values, "
            "never code (those of effdet-graph and effdet do)"
        )
    return f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {cause}); it is corrupt or truncated"


def _looks_like(head: bytes) -> str:
    """A guess at what a file is from its first bytes."""
    text = head.lstrip()
    if not head:
        return "an empty file"
    if head.startswith(b"\x80"):
        return "a raw pickle (not written by torch.save)"
    if text[:1] in (b"{", b"["):
        return "JSON"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "some other binary file"
    return "text"


def _cause(exc: Exception) -> str:
    """What went wrong, without torch's advice to turn the safe loading off (which is not ours to give):
    the refused global (``unsupported global posix.system``) where that is the cause, else the first line of
    torch's message that is not its boilerplate."""
    text = str(exc)
    refused = re.search(r"unsupported GLOBAL ([\w.]+)", text) or re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if refused:
        return f"unsupported global {refused.group(1)}"
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    boilerplate = ("weights only load failed", "please file an issue", "check the documentation", "re-running")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.lower().startswith(boilerplate) and "weights_only" not in line]
    return lines[0] if lines else type(exc).__name__


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, safely (``weights_only=True``), and check every
    entry a loader reads (:func:`effdet_graph.io.validation.check_checkpoint_dict`).

    Raises:
        CheckpointError: missing, a directory, unreadable, not this format, or an entry missing or wrong.
    """
    data = load_safely(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{path}: not an effdet-graph checkpoint (format {found!r}, expected {FORMAT!r}); "
            "convert public effdet weights with `effdet-graph convert`"
        )
    check_checkpoint_dict(data, str(path))
    return data


def backbone_weights_of(data: Mapping[str, Any]) -> str:
    """Where the backbone of a checkpoint read by :func:`read_checkpoint` started from: ``random``, ``imagenet
    (timm)``, ``imagenet (FILE)`` or a weights file's path, as training recorded it."""
    return str(data.get("backbone_weights", "not recorded (a checkpoint from before effdet-graph recorded it)"))


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


def load_checkpoint(path: str | Path, use_ema: bool = True) -> tuple[EfficientDet, ModelRecipe]:
    """Rebuild the detector of a checkpoint and load its weights (the EMA weights where present and
    ``use_ema``), in eval mode on the CPU.

    Raises:
        CheckpointError: the file is unreadable or not a valid effdet-graph checkpoint, holds a model variant
            (a supernet, say) rather than a plain detector, its stored spec does not parse (located in the
            checkpoint's copy, not the spec file on disk), its backbone is unknown, or its weights do not fit the
            model it describes.
    """
    data = read_checkpoint(path)
    variant = data.get(VARIANT_KEY)
    if variant is not None:
        raise CheckpointError(
            f"{path}: holds a {variant['kind']}, not a plain detector, and rebuilds none; "
            f"load it with {variant['load_with']}"
        )
    recipe = ModelRecipe.from_dict(data)
    model = build_from_checkpoint(recipe, str(path))
    weights = data["ema"] if use_ema and data.get("ema") is not None else data["model"]
    load_model_state(model, weights, str(path))
    return model.eval(), recipe


def build_from_checkpoint(recipe: ModelRecipe, source: str) -> EfficientDet:
    """``recipe.build()`` for a recipe read from the checkpoint ``source``, its errors phrased as the
    checkpoint's: ``CKPT.pt: stored spec (copy of specs/bifpn.yaml): line 11:8: ...``.

    Raises:
        CheckpointError: the stored spec does not parse, or the recipe does not build a detector.
    """
    try:
        return recipe.build(source=source)
    except ConfigError as exc:
        text, location = str(exc), exc.location
        stored = f"{source} (stored copy of {recipe.spec_file})"  # the file name recipe.spec(source) gives
        if location is None or location.file != stored or not text.startswith(f"{location}: "):
            raise CheckpointError(f"{source}: {text}") from None
        where = f"{source}: stored spec (copy of {recipe.spec_file})"
        if location.line:
            where += f": line {location.line}:{location.column}"
        raise CheckpointError(f"{where}: {text[len(f'{location}: ') :]}") from None
    except InputError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
