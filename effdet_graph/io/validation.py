"""Checkpoints read as data from outside: every entry the loader uses is checked (type, range,
consistency) before anything is built from it, and the first bad one is named with the file.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import torch

from effdet_graph.errors import CheckpointError
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.model.anchors import AnchorConfig
from effdet_graph.model.scaling import DetectorConfig, HeadConfig, load_scaling

__all__ = ["VARIANT_KEY", "check_checkpoint_dict", "check_recipe_dict", "check_state_dict"]

#: The entry of a model variant's checkpoint (:mod:`effdet_graph.training.variant`): a mapping with a ``kind`` and
#: a ``load_with`` string, and whatever else the variant records.
VARIANT_KEY = "variant"

#: Training-state entries (written by training, read when resuming) and what each must be when present.
_TRAINING_STATE = {
    "optimizer": "a mapping",
    "scheduler": "a mapping",
    "scaler": "a mapping",
    "rng": "a mapping",
    "args": "a mapping",
    "step": "a non-negative integer",
    "epoch": "a non-negative integer",
    "train_images": "a non-negative integer",
    "backbone_weights": "a string",
}

Fail = Callable[..., NoReturn]


def _show(value: Any) -> str:
    """A short description of a found value: its type and a shortened repr."""
    return f"{type(value).__name__} {reprlib.repr(value)}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_pair_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(_is_number(x) for x in p) for p in value
    )


#: How a field of the config dataclasses is checked, by its annotation: (test, what it must be).
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (_is_int, "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "float": (_is_number, "a finite number"),
    "str | None": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "dict[str, Any]": (lambda v: isinstance(v, Mapping) and all(isinstance(k, str) for k in v), "a mapping"),
    "tuple[tuple[float, float], ...]": (_is_pair_list, "a list of (x, y) pairs of numbers"),
}
_NESTED: dict[str, type] = {"head": HeadConfig, "anchors": AnchorConfig}


def _failer(source: str) -> Fail:
    def fail(key: str, problem: str, *found: Any) -> NoReturn:
        shown = f", found {_show(found[0])}" if found else ""
        raise CheckpointError(
            f"{source}: entry '{key}' {problem}{shown}; the checkpoint is damaged or was not written by effdet-graph"
        )

    return fail


def _check_config_dict(value: Any, cls: type, key: str, fail: Fail) -> None:
    """A stored config dataclass (``dataclasses.asdict``): a mapping with each field present (or defaulted)
    and of its type, nested configs recursively."""
    if not isinstance(value, Mapping):
        fail(key, "must be a mapping", value)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in value if k not in fields)
    if unknown:
        fail(key, f"has unknown entries {', '.join(unknown)}")
    for name, f in fields.items():
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                fail(f"{key}.{name}", "is missing")
            continue
        if cls is DetectorConfig and name in _NESTED:
            _check_config_dict(value[name], _NESTED[name], f"{key}.{name}", fail)
            continue
        kind = _KINDS.get(str(f.type))
        if kind is not None and not kind[0](value[name]):
            fail(f"{key}.{name}", f"must be {kind[1]}", value[name])


def check_recipe_dict(data: Mapping[str, Any], source: str) -> None:
    """Check the recipe entries of a checkpoint: every field of :class:`ModelRecipe` present, of its type
    and range, and consistent with the others (as many class names as classes and category ids).

    Args:
        data: the checkpoint's top-level dict.
        source: the checkpoint file, for messages.

    Raises:
        CheckpointError: the first entry that is missing or wrong, named with the file.
    """
    fail = _failer(source)
    missing = [f.name for f in dataclasses.fields(ModelRecipe) if f.name not in data]
    if missing:
        raise CheckpointError(f"{source}: checkpoint lacks the entries {', '.join(missing)}")
    for key in ("spec_text", "spec_file", "backbone"):
        if not isinstance(data[key], str) or not data[key].strip():
            fail(key, "must be a non-empty string", data[key])
    for key in ("spec_params", "spec_overrides"):
        if not isinstance(data[key], Mapping) or not all(isinstance(k, str) for k in data[key]):
            fail(key, "must be a mapping of parameter names to values", data[key])
    phis = load_scaling().phis
    if not _is_int(data["phi"]) or data["phi"] not in phis:
        fail("phi", f"must be an integer in {phis[0]}..{phis[-1]}", data["phi"])
    for key in ("image_size", "num_classes"):
        if not _is_int(data[key]) or data[key] < 1:
            fail(key, "must be a positive integer", data[key])
    names = data["class_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        fail("class_names", "must be a non-empty list of strings", names)
    if len(names) != data["num_classes"]:
        fail("class_names", f"has {len(names)} names for num_classes {data['num_classes']}")
    categories = data["label_to_category"]
    if not isinstance(categories, list) or not all(_is_int(c) for c in categories):
        fail("label_to_category", "must be a list of integer category ids", categories)
    if len(categories) != len(names):
        fail("label_to_category", f"has {len(categories)} category ids for {len(names)} class names")
    if len(set(categories)) != len(categories):
        fail("label_to_category", "lists a category id twice", categories)
    detector = data["detector"]
    _check_config_dict(detector, DetectorConfig, "detector", fail)
    for key in ("resolution", "width", "repeats", "num_classes"):
        if detector[key] < 1:
            fail(f"detector.{key}", "must be a positive integer", detector[key])
    if detector["head"]["depth"] < 1:
        fail("detector.head.depth", "must be a positive integer", detector["head"]["depth"])
    if detector["num_classes"] != data["num_classes"]:
        fail("detector.num_classes", f"is {detector['num_classes']} but num_classes is {data['num_classes']}")
    try:
        ModelRecipe.from_dict(data).config()
    except (TypeError, ValueError) as exc:
        fail("detector", f"does not make a detector configuration ({exc})")


def check_state_dict(state: Any, key: str, source: str) -> None:
    """Check a stored ``state_dict``: a mapping of parameter names to tensors.

    Args:
        state: the entry.
        key: its name in the checkpoint (``model``, ``ema``).
        source: the checkpoint file, for messages.

    Raises:
        CheckpointError: it is not a mapping, a key is not a string or a value not a tensor.
    """
    fail = _failer(source)
    if not isinstance(state, Mapping):
        fail(key, "must be a state_dict (a mapping of names to tensors)", state)
    for name, value in state.items():
        if not isinstance(name, str):
            fail(key, "must have parameter names (strings) as keys", name)
        if not isinstance(value, torch.Tensor):
            fail(f"{key}['{name}']", "must be a tensor", value)


def check_checkpoint_dict(data: Mapping[str, Any], source: str) -> None:
    """Check every entry of a checkpoint a loader reads: the recipe (:func:`check_recipe_dict`), ``model``
    and ``ema`` (:func:`check_state_dict`; ``ema`` may be absent or null) and, where present, the
    training state a resumed run reads (``optimizer``, ``step``, ``args`` ...: of their types), and a model
    variant's entry (:data:`VARIANT_KEY`).

    Args:
        data: the checkpoint's top-level dict (its ``format`` already checked).
        source: the checkpoint file, for messages.

    Raises:
        CheckpointError: the first entry that is missing or wrong, named with the file.
    """
    fail = _failer(source)
    check_recipe_dict(data, source)
    if "model" not in data:
        raise CheckpointError(f"{source}: checkpoint lacks the entries model")
    check_state_dict(data["model"], "model", source)
    if data.get("ema") is not None:
        check_state_dict(data["ema"], "ema", source)
    for key, what in _TRAINING_STATE.items():
        value = data.get(key)
        if value is None:
            continue
        ok = {"a mapping": isinstance(value, Mapping), "a string": isinstance(value, str)}.get(
            what, _is_int(value) and value >= 0
        )
        if not ok:
            fail(key, f"must be {what}", value)
    variant = data.get(VARIANT_KEY)
    if variant is not None:
        if not isinstance(variant, Mapping):
            fail(VARIANT_KEY, "must be a mapping", variant)
        for key in ("kind", "load_with"):
            if not isinstance(variant.get(key), str) or not variant[key]:
                fail(f"{VARIANT_KEY}.{key}", "must be a non-empty string", variant.get(key))
