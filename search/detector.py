"""The detector around a candidate: its settings, its :class:`DetectorConfig`, the spec parameters it sets,
and the ``detector`` section of a search-space file."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import timm

from effdet_graph import DetectorConfig, load_scaling
from graphspec import Spec
from graphspec.errors import did_you_mean, quote
from graphspec.reader import Reader, key_text
from graphspec.yaml_loader import YamlPath
from search.schema import DETECTOR_KEYS

scaling_table = cache(load_scaling)
"""``load_scaling`` (reads ``specs/detectors/efficientdet.yaml``), cached."""


@cache
def table_row(phi: int, backbone: str | None = None, num_classes: int | None = None) -> DetectorConfig:
    """``detector_config`` from the cached :func:`scaling_table` (the file is read once), cached: sampling asks
    for it per trial. The rows it returns are shared: copy before changing them (``dataclasses.replace``)."""
    return scaling_table().config(phi, backbone, num_classes)


@dataclass(frozen=True)
class DetectorSettings:
    """EfficientDet settings of one candidate; the shared ones (anchors, head activation ...) come from
    the scaling table's row for ``phi`` (``specs/detectors/efficientdet.yaml``)."""

    phi: int
    backbone: str
    head_depth: int
    resolution: int
    num_classes: int

    @classmethod
    def from_table(cls, phi: int, backbone: str | None, num_classes: int) -> DetectorSettings:
        """The settings of EfficientDet-D``phi``'s row, optionally with another backbone."""
        row = table_row(phi, backbone, num_classes)
        return cls(phi, row.backbone, row.head.depth, row.resolution, num_classes)

    def config(self, spec: Spec) -> DetectorConfig:
        """The :class:`DetectorConfig` that builds this detector around ``spec``:
        ``EfficientDet(spec, settings.config(spec))``; ``scale_spec(file, config)`` gives ``spec`` back."""
        row = table_row(self.phi, self.backbone, self.num_classes)
        return dataclasses.replace(
            row,
            resolution=self.resolution,
            width=spec.width,
            repeats=spec.repeats,
            padding=spec.padding,
            head=dataclasses.replace(row.head, depth=self.head_depth),
            fusion=cast("str | None", spec.params.get("fusion")),
            backbone_args=dict(row.backbone_args),
        )


def spec_params(template: Spec, phi: int, sampled: Mapping[str, Any]) -> dict[str, Any]:
    """All parameter values of a candidate spec: the template's defaults, then what EfficientDet-D``phi``'s
    scaling sets (as :func:`effdet_graph.model.scaling.scale_spec` does), then the sampled values."""
    scaling = table_row(phi).spec_overrides()
    values = dict(template.params)
    values.update({name: value for name, value in scaling.items() if name in values})
    values.update(sampled)
    return values


def table_phis() -> list[int]:
    """The phis of the scaling table (0-8: D0-D7x)."""
    return scaling_table().phis


def read_backbone(reader: Reader, path: YamlPath) -> str:
    """A timm model name, checked against timm's registry (with a did-you-mean)."""
    name = reader.string(path)
    if not timm.is_model(name):
        raise reader.fail(
            f"{key_text(path)}: unknown timm backbone {quote(name)}{did_you_mean(name, timm.list_models())}", path
        )
    return name


def read_detector(reader: Reader, num_classes: int) -> DetectorSettings:
    """The ``detector`` section of a topology search: ``phi`` (default 0) and optionally ``backbone``."""
    reader.mapping(("detector",), DETECTOR_KEYS, "`detector`", optional=True)
    phis = table_phis()
    phi = reader.integer(("detector", "phi"), phis[0], phis[-1], default=0)
    backbone = read_backbone(reader, ("detector", "backbone")) if reader.has(("detector", "backbone")) else None
    return DetectorSettings.from_table(phi, backbone, num_classes)
