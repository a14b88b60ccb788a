"""The union spec of a topology search space: every node and edge a candidate may use, and the merges each node
may run, so that every candidate is a sub-graph of it (:mod:`effdet_graph.fpn.subgraph`).

- ``bifpn_edges``: the template's nodes with every optional edge on (added to the end of its target's inputs, in
  file order); each weighted-sum node may run every fusion of ``fusions``. Candidate nodes keep their ids.
- ``nasfpn_cells``: merging cell ``c<i>`` becomes one node per pyramid level, ``c<i>_p<l>``, reading every level and
  every node of the earlier cells and able to run each of ``merges``; the fill node ``p<l>_fill`` of each level
  reads every cell node of the other levels. The fill nodes are the union's outputs, so every node feeds one.
  A candidate's cell ``c<i>`` at level ``P<l>`` runs as ``c<i>_p<l>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphspec import Spec, level_name, loads_spec
from search.sampling.spec_text import render_spec_text
from search.space.detector import spec_params
from search.space.kinds.cells import CellChoices, cell_name, fill_name, merge_fields
from search.space.kinds.edges import EdgeChoices
from search.space.template import Template
from search.space.types import SearchSpace, topology_choices

Cell = dict[str, Any]  # {"nodes": [...], "outputs": {...}} as plain YAML data
Merges = dict[str, tuple[str, ...]]  # union node id -> the merges it may run


@dataclass(frozen=True)
class UnionSpec:
    """The union spec of a search space, its file ``text`` (the parameters' defaults are the candidates', before
    any overrides) and the merges each of its nodes may run (``merge_options`` of
    :func:`effdet_graph.fpn.compiler.compile_spec`)."""

    kind: str
    spec: Spec
    merges: Merges
    text: str

    def names(self, candidate: Spec) -> dict[str, str]:
        """Candidate node id -> union node id, where they differ."""
        if self.kind != "nasfpn_cells":
            return {}
        return {node.id: at_level(node.id, node.level) for node in candidate.nodes if node.id != fill_name(node.level)}


def at_level(cell: str, level: int) -> str:
    """The union node of merging cell ``cell`` at ``level``: ``c3_p5``."""
    return f"{cell}_{level_name(level).lower()}"


def union_spec(space: SearchSpace, overrides: Mapping[str, Any] | None = None) -> UnionSpec:
    """The union spec of ``space`` (see the module docstring), its parameters set as the candidates' are, then
    by ``overrides``.

    Raises:
        ConfigError: ``space`` searches no topology (a ``compound`` space).
        SpecError: the union does not load, e.g. the optional edges, all on, form a cycle.
    """
    choices = topology_choices(space)
    if isinstance(choices, EdgeChoices):
        cell, merges = _edges_union(space.template, choices)
    else:
        cell, merges = _cells_union(space.template, choices)
    name = f"{space.name}_union"
    description = f"every node and edge of search space {space.name}"
    params = spec_params(space.template.spec, choices.detector.phi, {})
    text = render_spec_text(space.template.data, name, description, params, cell)
    return UnionSpec(space.kind, loads_spec(text, f"{name}.yaml", overrides), merges, text)


def _edges_union(template: Template, choices: EdgeChoices) -> tuple[Cell, Merges]:
    nodes = [node | {"inputs": list(node["inputs"])} for node in template.data["cell"]["nodes"]]
    by_id = {node["id"]: node for node in nodes}
    for edge in choices.edges:
        if edge.source not in by_id[edge.target]["inputs"]:
            by_id[edge.target]["inputs"].append(edge.source)
    merges = {node.id: choices.fusions for node in template.spec.nodes if node.merge == "weighted_sum"}
    return {"nodes": nodes, "outputs": dict(template.data["cell"]["outputs"])}, merges


def _cells_union(template: Template, choices: CellChoices) -> tuple[Cell, Merges]:
    levels = template.spec.levels
    names = [level_name(level) for level in levels]
    nodes: list[dict[str, Any]] = []
    for i in range(choices.cells):
        earlier = [node["id"] for node in nodes]
        nodes += [
            {
                "id": at_level(cell_name(i), level),
                "level": level_name(level),
                "inputs": names + earlier,
                **merge_fields("sum"),
            }
            for level in levels
        ]
    merges = {node["id"]: choices.merges for node in nodes}
    fills = [
        {
            "id": fill_name(level),
            "level": level_name(level),
            "inputs": [node["id"] for node in nodes if node["level"] != level_name(level)],
            **merge_fields("sum"),
        }
        for level in levels
    ]
    return {"nodes": nodes + fills, "outputs": {level_name(level): fill_name(level) for level in levels}}, merges
