"""The ``detector`` section of a search-space file, and the spec parameters a candidate's detector sets.

A candidate's detector is an :class:`effdet_graph.DetectorConfig`: the scaling table's row for its ``phi``
(``specs/detectors/efficientdet.yaml``), with the backbone, head depth and resolution the space chooses;
``config.around(spec)`` is the detector that builds around the candidate's spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import timm

from effdet_graph import DetectorConfig, detector_config
from effdet_graph.model import builtin_scaling
from graphspec import Spec
from graphspec.errors import did_you_mean, quote
from graphspec.reader import Reader, key_text
from graphspec.yaml_loader import YamlPath
from search.space.schema import DETECTOR_KEYS


def spec_params(template: Spec, phi: int, sampled: Mapping[str, Any]) -> dict[str, Any]:
    """All parameter values of a candidate spec: the template's defaults, then what EfficientDet-D``phi``'s
    scaling sets (as :func:`effdet_graph.model.scaling.scale_spec` does), then the sampled values."""
    scaling = detector_config(phi).spec_overrides()
    values = dict(template.params)
    values.update({name: value for name, value in scaling.items() if name in values})
    values.update(sampled)
    return values


def read_backbone(reader: Reader, path: YamlPath) -> str:
    """A timm model name, checked against timm's registry (with a did-you-mean)."""
    name = reader.string(path)
    if not timm.is_model(name):
        raise reader.fail(
            f"{key_text(path)}: unknown timm backbone {quote(name)}{did_you_mean(name, timm.list_models())}", path
        )
    return name


def read_detector(reader: Reader, num_classes: int) -> DetectorConfig:
    """The ``detector`` section of a topology search: ``phi`` (default 0) and optionally ``backbone``."""
    reader.mapping(("detector",), DETECTOR_KEYS, "`detector`", optional=True)
    phis = builtin_scaling().phis
    phi = reader.integer(("detector", "phi"), phis[0], phis[-1], default=0)
    backbone = read_backbone(reader, ("detector", "backbone")) if reader.has(("detector", "backbone")) else None
    return detector_config(phi, backbone, num_classes)
