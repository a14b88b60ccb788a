"""NAS-FPN-style cell search (Ghiasi, Lin, Le, CVPR 2019, Sec. 3.1): ``cells`` merging cells, each choosing
its output level, two inputs among the cell inputs and the earlier cells, and its merge.

Per cell ``c<i>`` the trial suggests ``c<i>.level``, ``c<i>.input0``, ``c<i>.input1`` and ``c<i>.merge``
(the choices of each name never change, as Optuna's samplers want). The cell's outputs are the last
cell of each level. Deterministic repairs, each recorded:

- two equal inputs: the second becomes the latest other candidate (NAS-FPN samples without replacement);
- a level no cell produced: a node ``p<n>_fill`` resamples the output of the nearest produced level
  (on a tie the finer one) and applies the template's op;
- cells that feed no output are dropped.

A cell only reads earlier cells, so no cycle can arise and nothing is rejected as invalid.
"""

from __future__ import annotations

from dataclasses import dataclass

from effdet_graph import DetectorConfig
from graphspec import level_name
from graphspec.model import FUSIONS
from graphspec.reader import Reader
from search.sampling.candidate import Draft
from search.sampling.repair import NodeData, drop_dead_nodes, nearest_level
from search.sampling.trial import TrialLike
from search.space.detector import read_detector, spec_params
from search.space.template import Template

KEYS = {"detector": False, "cells": True, "merges": True}
ATTENTION = "global_pool_attention"
MERGES = (ATTENTION,) + FUSIONS  # a fusion method names a weighted-sum merge with that fusion
MAX_CELLS = 64


def cell_name(index: int) -> str:
    """The node id of merging cell ``index``: ``c0``, ``c1`` ..."""
    return f"c{index}"


def fill_name(level: int) -> str:
    """The node id that fills a level no cell produced: ``p3_fill`` ..."""
    return f"p{level}_fill"


def merge_fields(merge: str) -> dict[str, str]:
    """The node keys of a merge choice: ``global_pool_attention``, or a weighted sum with that fusion."""
    return {"merge": ATTENTION} if merge == ATTENTION else {"merge": "weighted_sum", "fusion": merge}


@dataclass(frozen=True)
class CellChoices:
    """A NAS-FPN cell search space."""

    cells: int
    merges: tuple[str, ...]
    detector: DetectorConfig

    def draw(self, template: Template, trial: TrialLike) -> Draft:
        pyramid = template.spec.levels
        levels = [level_name(level) for level in pyramid]
        nodes: list[NodeData] = []
        repairs: list[str] = []
        for i in range(self.cells):
            cell_id, candidates = cell_name(i), levels + [node["id"] for node in nodes]
            level = trial.suggest_categorical(f"{cell_id}.level", levels)
            first = trial.suggest_categorical(f"{cell_id}.input0", candidates)
            second = trial.suggest_categorical(f"{cell_id}.input1", candidates)
            merge = trial.suggest_categorical(f"{cell_id}.merge", list(self.merges))
            if second == first:
                second = next(name for name in reversed(candidates) if name != first)
                repairs.append(f"{cell_id}: both inputs were {first}; the second is now {second}")
            nodes.append({"id": cell_id, "level": level, "inputs": [first, second], **merge_fields(str(merge))})
        outputs = {node["level"]: node["id"] for node in nodes}  # the last cell of each level wins
        repairs += fill_missing_levels(nodes, outputs, pyramid)
        nodes, dropped = drop_dead_nodes(nodes, outputs)
        if dropped:
            repairs.append(f"dropped {', '.join(dropped)}: they feed no output")
        cell = {"nodes": nodes, "outputs": {name: outputs[name] for name in levels}}
        return Draft(spec_params(template.spec, self.detector.phi, {}), self.detector, cell, tuple(repairs))


def fill_missing_levels(nodes: list[NodeData], outputs: dict[str, str], pyramid: tuple[int, ...]) -> list[str]:
    """Add a ``p<n>_fill`` node (and output) for each level of ``pyramid`` missing from ``outputs``; it
    resamples the output of the nearest level a cell produced. Returns one line per fill."""
    produced = [level for level in pyramid if level_name(level) in outputs]
    repairs = []
    for level in pyramid:
        name = level_name(level)
        if name not in outputs:
            source = outputs[level_name(nearest_level(level, produced))]
            nodes.append({"id": fill_name(level), "level": name, "inputs": [source], **merge_fields("sum")})
            outputs[name] = fill_name(level)
            repairs.append(f"no cell produced {name}: {fill_name(level)} resamples {source}")
    return repairs


def read(reader: Reader, template: Template, num_classes: int) -> CellChoices:
    """The cell-search keys of a search-space file (``KEYS``)."""
    if len(template.spec.levels) < 2:
        raise reader.fail(
            f"a cell search needs a template with at least two levels; {template.path} has "
            f"{level_name(template.spec.levels[0])} only",
            ("template",),
        )
    return CellChoices(
        cells=reader.integer(("cells",), 1, MAX_CELLS),
        merges=reader.choices(("merges",), MERGES),
        detector=read_detector(reader, num_classes),
    )
