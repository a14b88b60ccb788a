"""What sampling produces: a :class:`Draft` from a search kind, then a checked, costed :class:`Candidate`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effdet_graph import DetectorConfig
from graphspec import Spec, loads_spec
from graphspec.cost import Cost


def spec_file_name(space: str, trial_number: int) -> str:
    """The name of a candidate's spec file, also used in its error messages: ``<space>_trial<NNNN>.yaml``."""
    return f"{space}_trial{trial_number:04d}.yaml"


@dataclass(frozen=True)
class Draft:
    """One trial's choices as a search kind drew them, before the spec is written and checked.

    ``params``: every spec parameter value (width, repeats, ...). ``cell``: ``{"nodes": [...],
    "outputs": {...}}`` as plain YAML data replacing the template's cell, or ``None`` to keep it.
    ``repairs``: one line per deterministic repair that was applied.
    """

    params: dict[str, Any]
    detector: DetectorConfig
    cell: dict[str, Any] | None = None
    repairs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """A sampled point that passed every check: a complete spec file and the detector around it.

    ``spec_text`` is a spec file that ``effdet-graph build`` rebuilds (its parameter defaults are the
    candidate's values, so ``overrides`` need not be passed again). ``cost`` is the analytic cost of the
    feature network at ``detector.resolution`` for the backbone's ``in_channels``; ``detector_cost``
    the whole detector's, where the budget was checked on it. ``suggestions`` are the trial's values.
    """

    space: str
    space_file: str
    trial_number: int
    suggestions: dict[str, Any]
    spec_text: str
    overrides: dict[str, Any]
    detector: DetectorConfig
    in_channels: tuple[int, ...]
    cost: Cost
    detector_cost: Cost | None
    repairs: tuple[str, ...]

    @property
    def file_name(self) -> str:
        return spec_file_name(self.space, self.trial_number)

    def spec(self) -> Spec:
        """The candidate's spec, loaded from ``spec_text``."""
        return loads_spec(self.spec_text, self.file_name)

    def detector_config(self) -> DetectorConfig:
        """``EfficientDet(candidate.spec(), candidate.detector_config())`` builds the candidate's detector."""
        return self.detector.around(self.spec())
