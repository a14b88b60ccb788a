"""Compound scaling: phi -> resolution, backbone, feature-network width and repeats, head depth.

The numbers live in ``specs/detectors/efficientdet.yaml``; this module reads and checks them (through the
shared :class:`graphspec.reader.Reader`, schema ``TABLE_KEYS`` ...) into a :class:`ScalingTable`, and scales
a feature-network spec by setting its named parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, cast

from effdet_graph.builtin import specs_dir
from effdet_graph.model.anchors import AnchorConfig
from graphspec import ConfigError, Spec, SpecError, build_spec, declared_params, load_spec_document
from graphspec.errors import Location
from graphspec.model import ACTIVATIONS, FUSIONS, PADDINGS
from graphspec.reader import Keys, Reader
from graphspec.yaml_loader import LoadedYaml, YamlPath, load_yaml

DETECTOR_FILE = "detectors/efficientdet.yaml"
TABLE_KEYS: Keys = {
    "num_classes": True,
    "padding": True,
    "backbone_args": False,
    "anchors": True,
    "head": True,
    "models": True,
}
ANCHOR_KEYS: Keys = {"num_scales": True, "aspect_ratios": True, "anchor_scale": True}
HEAD_KEYS: Keys = {"act": True, "conv_bias": True, "bn_eps": True, "bn_momentum": True, "class_prior": True}
MODEL_KEYS: Keys = {
    "name": True,
    "phi": True,
    "resolution": True,
    "backbone": True,
    "width": True,
    "repeats": True,
    "head_depth": True,
    "fusion": False,
    "anchor_scale": False,
}
"""The schema of the scaling table, declared once: each section's keys and whether they are required."""


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
    """One EfficientDet: a row of the scaling table with the settings every row shares, the detector a search
    candidate trains, and what a checkpoint's recipe stores. Hashable (``backbone_args`` is left out of the hash),
    so it keys the costing caches."""

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
    backbone_args: dict[str, Any] = field(default_factory=dict, hash=False)

    def spec_overrides(self) -> dict[str, Any]:
        """The feature-network parameters this scaling step sets."""
        values: dict[str, Any] = {"width": self.width, "repeats": self.repeats, "padding": self.padding}
        if self.fusion is not None:
            values["fusion"] = self.fusion
        return values

    def around(self, spec: Spec) -> DetectorConfig:
        """This detector around ``spec``: its width, repeats, padding and fusion are the spec's (a search
        candidate's spec sets them), so that ``EfficientDet(spec, config.around(spec))`` builds it."""
        return replace(
            self,
            width=spec.width,
            repeats=spec.repeats,
            padding=spec.padding,
            fusion=cast("str | None", spec.params.get("fusion")),
            backbone_args=dict(self.backbone_args),
        )


@dataclass(frozen=True)
class ScalingTable:
    """The detector scaling table: EfficientDet-D``phi`` for every ``phi`` it lists (0-8: D0-D7x), each row
    resolved with the settings the table's rows share (anchors, head, padding, classes)."""

    file: str
    rows: dict[int, DetectorConfig]

    @property
    def phis(self) -> list[int]:
        """The phis of the table, ascending (0-8: D0-D7x)."""
        return sorted(self.rows)

    def config(self, phi: int, backbone: str | None = None, num_classes: int | None = None) -> DetectorConfig:
        """The configuration of the row for ``phi``, optionally with another backbone or number of classes.

        Args:
            phi: The compound coefficient (D7x is phi 8).
            backbone: A timm backbone instead of the row's.
            num_classes: Classes instead of the table's.

        Returns:
            The row's detector configuration.

        Raises:
            ConfigError: The table has no row for ``phi``.
        """
        if phi not in self.rows:
            raise ConfigError(
                f"no scaling entry for phi {phi}; choose one of {self.phis} (D0-D7x; D7x is phi 8)", key="phi"
            )
        row = self.rows[phi]
        return replace(
            row,
            backbone=backbone or row.backbone,
            num_classes=num_classes or row.num_classes,
            backbone_args=dict(row.backbone_args),
        )


def load_scaling(path: str | Path | None = None) -> ScalingTable:
    """Read and check a detector scaling table (default ``specs/detectors/efficientdet.yaml``).

    Args:
        path: The table file.

    Returns:
        The table.

    Raises:
        ConfigError: Any problem (a missing or unknown key, a value of the wrong type or out of range, a
            phi listed twice ...), as one line ``FILE:LINE:COL: ...`` naming the key.
    """
    reader = Reader(load_yaml(path or specs_dir() / DETECTOR_FILE, holds="a detector scaling table"))
    reader.mapping((), TABLE_KEYS, "a detector scaling table")
    reader.mapping(("anchors",), ANCHOR_KEYS)
    reader.mapping(("head",), HEAD_KEYS)
    shared = DetectorConfig(
        name="",
        phi=0,
        resolution=0,
        backbone="",
        width=0,
        repeats=0,
        head=HeadConfig(
            depth=0,
            act=reader.choice(("head", "act"), ACTIVATIONS),
            conv_bias=reader.boolean(("head", "conv_bias")),
            bn_eps=float(reader.number(("head", "bn_eps"), low=0, low_open=True)),
            bn_momentum=float(reader.number(("head", "bn_momentum"), 0, 1, low_open=True)),
            class_prior=float(reader.number(("head", "class_prior"), 0, 1, low_open=True, high_open=True)),
        ),
        anchors=AnchorConfig(
            num_scales=reader.integer(("anchors", "num_scales"), low=1),
            aspect_ratios=_aspect_ratios(reader, ("anchors", "aspect_ratios")),
            anchor_scale=float(reader.number(("anchors", "anchor_scale"), low=0, low_open=True)),
        ),
        num_classes=reader.integer(("num_classes",), low=1),
        padding=reader.choice(("padding",), PADDINGS),
        backbone_args=dict(reader.mapping(("backbone_args",), None, optional=True)),
    )
    rows: dict[int, DetectorConfig] = {}
    for i in range(len(reader.items(("models",)))):
        row = _row(reader, ("models", i), shared)
        if row.phi in rows:
            raise reader.fail(f"phi {row.phi} is listed twice (also by '{rows[row.phi].name}')", ("models", i, "phi"))
        rows[row.phi] = row
    return ScalingTable(file=reader.file, rows=rows)


def _row(reader: Reader, path: YamlPath, shared: DetectorConfig) -> DetectorConfig:
    """A model row: its own keys; the rest (and the anchors where it sets no ``anchor_scale``) from ``shared``."""
    reader.mapping(path, MODEL_KEYS, "a model row")
    anchor_scale = reader.number(path + ("anchor_scale",), low=0, low_open=True, default=None)
    anchors = shared.anchors if anchor_scale is None else replace(shared.anchors, anchor_scale=float(anchor_scale))
    return replace(
        shared,
        name=reader.string(path + ("name",)),
        phi=reader.integer(path + ("phi",), low=0),
        resolution=reader.integer(path + ("resolution",), low=0, low_open=True),
        backbone=reader.string(path + ("backbone",)),
        width=reader.integer(path + ("width",), low=0, low_open=True),
        repeats=reader.integer(path + ("repeats",), low=0, low_open=True),
        head=replace(shared.head, depth=reader.integer(path + ("head_depth",), low=0, low_open=True)),
        anchors=anchors,
        fusion=reader.choice(path + ("fusion",), FUSIONS, default=None),
        backbone_args=dict(shared.backbone_args),
    )


def _aspect_ratios(reader: Reader, path: YamlPath) -> tuple[tuple[float, float], ...]:
    ratios = []
    for i, pair in enumerate(reader.items(path)):
        if not isinstance(pair, list) or len(pair) != 2:
            raise reader.fail(f"`{path[-1]}` items are [x, y] pairs like [1.4, 0.7], got {pair!r}", path + (i,))
        x, y = (float(reader.number(path + (i, j), low=0, low_open=True)) for j in range(2))
        ratios.append((x, y))
    return tuple(ratios)


def detector_config(
    phi: int, backbone: str | None = None, num_classes: int | None = None, path: str | Path | None = None
) -> DetectorConfig:
    """The configuration of EfficientDet-D``phi`` (D7x is phi 8), optionally with another backbone or
    number of classes.

    Args:
        phi: The compound coefficient.
        backbone: A timm backbone instead of the row's.
        num_classes: Classes instead of the table's.
        path: The scaling table (default ``specs/detectors/efficientdet.yaml``).

    Returns:
        The detector configuration.

    Raises:
        ConfigError: The table is malformed or has no row for ``phi``.
    """
    table = builtin_scaling() if path is None else load_scaling(path)
    return table.config(phi, backbone, num_classes)


@cache
def builtin_scaling() -> ScalingTable:
    """The built-in scaling table (``specs/detectors/efficientdet.yaml``), read and checked once."""
    return load_scaling()


def scale_spec(path: str | Path, config: DetectorConfig, overrides: Mapping[str, Any] | None = None) -> Spec:
    """Load a feature-network spec scaled by ``config``; ``overrides`` (``--set``) win over the scaling.

    The spec must declare ``width`` and ``repeats`` parameters; ``fusion`` and ``padding`` are set
    only where the spec declares them. The file is read once: its declared parameters decide which
    scaled values apply, then the same document is resolved with them (:func:`scale_document`).

    Args:
        path: The spec file.
        config: The detector whose scaling applies.
        overrides: Parameter values that win over the scaling.

    Returns:
        The scaled spec.

    Raises:
        SpecError: The spec is invalid, or does not declare ``width`` and ``repeats``.
    """
    return scale_document(load_spec_document(path), config, overrides)


def scale_document(document: LoadedYaml, config: DetectorConfig, overrides: Mapping[str, Any] | None = None) -> Spec:
    """:func:`scale_spec` of a spec document already read (:func:`graphspec.parse.loads_spec_document` for a
    spec's text); the document is consumed."""
    declared = declared_params(document)
    missing = [name for name in ("width", "repeats") if name not in declared]
    if missing:
        raise SpecError(
            f"compound scaling sets the parameters {', '.join(missing)}, which the spec does not "
            "declare; add them under `params` and use them as `width: $width`, `repeats: $repeats`",
            Location(document.file),
        )
    values = {k: v for k, v in config.spec_overrides().items() if k in declared}
    values.update(overrides or {})
    return build_spec(document, values)
