"""Graph checks and deterministic repairs on a cell written as plain YAML data (node dicts).

A node dict has ``id``, ``level`` (``"P4"``), ``inputs`` and optionally ``residual``; names that are
no node id are cell inputs (``P3`` ...). ``outputs`` maps a level name to a node id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

NodeData = dict[str, Any]


def _graph(nodes: Sequence[NodeData]) -> nx.DiGraph:
    graph = nx.DiGraph()
    for node in nodes:
        graph.add_node(node["id"])
        for ref in list(node["inputs"]) + list(node.get("residual", [])):
            graph.add_edge(ref, node["id"])
    return graph


def find_cycle(nodes: Sequence[NodeData]) -> list[str] | None:
    """The node ids of one cycle (``[a, b, a]``), or ``None`` when the cell is acyclic."""
    try:
        edges = nx.find_cycle(_graph(nodes))
    except nx.NetworkXNoCycle:
        return None
    return [u for u, _ in edges] + [edges[0][0]]


def drop_dead_nodes(nodes: Sequence[NodeData], outputs: Mapping[str, str]) -> tuple[list[NodeData], list[str]]:
    """``nodes`` without those that feed no output (kept in order), and the dropped ids.

    A dead node's consumers are dead too, so no kept node loses an input.
    """
    graph = _graph(nodes)
    alive = set(outputs.values())
    for node_id in outputs.values():
        alive |= nx.ancestors(graph, node_id)
    kept = [node for node in nodes if node["id"] in alive]
    return kept, [node["id"] for node in nodes if node["id"] not in alive]


def nearest_level(missing: int, produced: Sequence[int]) -> int:
    """The produced level closest to ``missing``; on a tie the finer one (more spatial detail)."""
    return min(produced, key=lambda level: (abs(level - missing), level))
