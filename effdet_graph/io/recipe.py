"""The recipe of a detector: everything that rebuilds it, as plain values stored in its checkpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from effdet_graph.model.anchors import AnchorConfig
from effdet_graph.model.detector import EfficientDet
from effdet_graph.model.scaling import DetectorConfig, HeadConfig, detector_config, scale_spec
from graphspec import InputError, Spec, loads_spec

__all__ = ["ModelRecipe"]


@dataclass(frozen=True)
class ModelRecipe:
    """Everything that defines a detector and its classes, as plain values.

    ``spec_params`` are the values of all the spec's parameters (compound scaling plus ``--set``),
    so ``loads_spec(spec_text, spec_file, spec_params)`` gives the trained topology whatever the
    defaults in the file are now; ``spec_overrides`` are the ``--set`` values alone, for the record.
    """

    spec_text: str
    spec_file: str
    spec_params: dict[str, Any]
    spec_overrides: dict[str, Any]
    phi: int
    backbone: str
    image_size: int
    num_classes: int
    label_to_category: list[int]
    class_names: list[str]
    detector: dict[str, Any]

    @classmethod
    def create(
        cls,
        spec_path: str | Path,
        phi: int,
        image_size: int | None,
        label_to_category: Sequence[int],
        class_names: Sequence[str],
        backbone: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        head_depth: int | None = None,
    ) -> ModelRecipe:
        """The recipe of EfficientDet-D``phi`` with the feature network in ``spec_path``; ``image_size``
        defaults to the phi's resolution, ``head_depth`` to the phi's (a search may choose another)."""
        if len(label_to_category) != len(class_names) or not label_to_category:
            raise ValueError("label_to_category and class_names must be non-empty and of equal length")
        config = detector_config(phi, backbone=backbone, num_classes=len(label_to_category))
        if head_depth is not None:
            config = dataclasses.replace(config, head=dataclasses.replace(config.head, depth=head_depth))
        spec = scale_spec(spec_path, config, overrides)
        size = config.resolution if image_size is None else image_size
        if size < 2 ** spec.levels[-1]:
            raise InputError(
                f"image size {size} is smaller than the stride of level P{spec.levels[-1]} "
                f"({2 ** spec.levels[-1]}); use at least that"
            )
        return cls(
            spec_text=Path(spec_path).read_text(encoding="utf-8"),
            spec_file=str(spec_path),
            spec_params=dict(spec.params),
            spec_overrides=dict(overrides or {}),
            phi=phi,
            backbone=config.backbone,
            image_size=size,
            num_classes=config.num_classes,
            label_to_category=[int(c) for c in label_to_category],
            class_names=list(class_names),
            detector=dataclasses.asdict(config),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelRecipe:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})

    def config(self) -> DetectorConfig:
        """The stored :class:`DetectorConfig` (not re-read from the scaling table)."""
        values = dict(self.detector)
        head = HeadConfig(**values.pop("head"))
        anchors = dict(values.pop("anchors"))
        anchors["aspect_ratios"] = tuple(tuple(r) for r in anchors["aspect_ratios"])
        return DetectorConfig(**values, head=head, anchors=AnchorConfig(**anchors))

    def spec(self, source: str | None = None) -> Spec:
        """The feature-network spec of this recipe, from the stored text and parameter values.

        Args:
            source: the checkpoint the recipe was read from; a problem in the stored spec text is then
                located in ``SOURCE (stored copy of SPEC_FILE)``, not in the spec file on disk (which may
                differ, or be gone).

        Raises:
            SpecError: the text does not give a valid spec with ``spec_params``.
        """
        file = self.spec_file if source is None else f"{source} (stored copy of {self.spec_file})"
        return loads_spec(self.spec_text, file, self.spec_params)

    def build(self, backbone: nn.Module | None = None, source: str | None = None) -> EfficientDet:
        """A freshly initialised detector of this recipe (random weights), around ``backbone`` when given
        (a pretrained one, say); ``source`` as in :meth:`spec`."""
        return EfficientDet(self.spec(source), self.config(), backbone=backbone)
