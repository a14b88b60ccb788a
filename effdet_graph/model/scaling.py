"""Compound scaling: phi -> resolution, backbone, feature-network width and repeats, head depth.

The numbers live in ``specs/detectors/efficientdet.yaml``; this module reads and checks them, and scales a
feature-network spec by setting its named parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effdet_graph.builtin import specs_dir
from effdet_graph.model.anchors import AnchorConfig
from graphspec import Spec, SpecError, load_spec
from graphspec.errors import Location, choices_text
from graphspec.yaml_loader import load_yaml

DETECTOR_FILE = "detectors/efficientdet.yaml"
_MODEL_KEYS = {"name", "phi", "resolution", "backbone", "width", "repeats", "head_depth", "fusion", "anchor_scale"}


@dataclass(frozen=True)
class HeadConfig:
    """Class and box prediction nets (shared across levels, per-level BatchNorm)."""

    depth: int
    act: str = "swish"
    conv_bias: bool = True
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01
    class_prior: float = 0.01


@dataclass(frozen=True)
class DetectorConfig:
    """One row of the scaling table, with the settings every row shares."""

    name: str
    phi: int
    resolution: int
    backbone: str
    width: int
    repeats: int
    head: HeadConfig
    anchors: AnchorConfig
    num_classes: int
    padding: str
    fusion: str | None = None
    backbone_args: dict[str, Any] = field(default_factory=dict)

    def spec_overrides(self) -> dict[str, Any]:
        """The feature-network parameters this scaling step sets."""
        values: dict[str, Any] = {"width": self.width, "repeats": self.repeats, "padding": self.padding}
        if self.fusion is not None:
            values["fusion"] = self.fusion
        return values


def load_scaling(path: str | Path | None = None) -> dict[int, dict[str, Any]]:
    """The scaling table by phi, as plain values, plus the shared settings under key ``-1``."""
    loaded = load_yaml(path or specs_dir() / DETECTOR_FILE)
    data = loaded.data
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise SpecError("a detector file needs a `models` list", loaded.where(()))
    table: dict[int, dict[str, Any]] = {-1: {k: v for k, v in data.items() if k != "models"}}
    for i, row in enumerate(data["models"]):
        unknown = set(row) - _MODEL_KEYS if isinstance(row, dict) else {"<not a mapping>"}
        if unknown:
            raise SpecError(
                f"unknown keys {sorted(unknown)} in a model row {choices_text(sorted(_MODEL_KEYS))}",
                loaded.where(("models", i)),
            )
        table[int(row["phi"])] = row
    return table


def detector_config(
    phi: int, backbone: str | None = None, num_classes: int | None = None, path: str | Path | None = None
) -> DetectorConfig:
    """The configuration of EfficientDet-D``phi`` (D7x is phi 8), optionally with another backbone or
    number of classes."""
    table = load_scaling(path)
    shared = table.pop(-1)
    if phi not in table:
        raise SpecError(f"no scaling entry for phi {phi}; choose one of {sorted(table)} (D0-D7x; D7x is phi 8)")
    row = table[phi]
    anchors = dict(shared["anchors"])
    anchors["aspect_ratios"] = tuple(tuple(r) for r in anchors["aspect_ratios"])
    if "anchor_scale" in row:
        anchors["anchor_scale"] = row["anchor_scale"]
    return DetectorConfig(
        name=row["name"],
        phi=phi,
        resolution=row["resolution"],
        backbone=backbone or row["backbone"],
        width=row["width"],
        repeats=row["repeats"],
        head=HeadConfig(depth=row["head_depth"], **shared["head"]),
        anchors=AnchorConfig(**anchors),
        num_classes=num_classes or shared["num_classes"],
        padding=shared["padding"],
        fusion=row.get("fusion"),
        backbone_args=dict(shared.get("backbone_args", {})),
    )


def scale_spec(path: str | Path, config: DetectorConfig, overrides: Mapping[str, Any] | None = None) -> Spec:
    """Load a feature-network spec scaled by ``config``; ``overrides`` (``--set``) win over the scaling.

    The spec must declare ``width`` and ``repeats`` parameters; ``fusion`` and ``padding`` are set
    only where the spec declares them.
    """
    spec = load_spec(path)
    declared = spec.params
    missing = [name for name in ("width", "repeats") if name not in declared]
    if missing:
        raise SpecError(
            f"compound scaling sets the parameters {', '.join(missing)}, which the spec does not "
            "declare; add them under `params` and use them as `width: $width`, `repeats: $repeats`",
            Location(spec.file),
        )
    values = {k: v for k, v in config.spec_overrides().items() if k in declared}
    values.update(overrides or {})
    return load_spec(path, values)
