"""Graph checks and deterministic repairs on a cell written as plain YAML data (node dicts).

A node dict has ``id``, ``level`` (``"P4"``), ``inputs`` and optionally ``residual``; names that are
no node id are cell inputs (``P3`` ...). ``outputs`` maps a level name to a node id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from graphspec.graph import graph_cycle, vertices_reaching

NodeData = dict[str, Any]


def _graph(nodes: Sequence[NodeData]) -> nx.DiGraph:
    """The draft cell as a directed graph: an edge from each input (a cell input or node id) to its node."""
    graph = nx.DiGraph()
    for node in nodes:
        graph.add_node(node["id"])
        for ref in list(node["inputs"]) + list(node.get("residual", [])):
            graph.add_edge(ref, node["id"])
    return graph


def find_cycle(nodes: Sequence[NodeData]) -> list[str] | None:
    """Find one cycle of a draft cell.

    Args:
        nodes: the cell's node dicts.

    Returns:
        The node ids of one cycle (``[a, b, a]``), or ``None`` when the cell is acyclic.
    """
    return graph_cycle(_graph(nodes))


def drop_dead_nodes(nodes: Sequence[NodeData], outputs: Mapping[str, str]) -> tuple[list[NodeData], list[str]]:
    """Drop the nodes that feed no output.

    A dead node's consumers are dead too, so no kept node loses an input.

    Args:
        nodes: the cell's node dicts.
        outputs: level name -> id of the node that produces it.

    Returns:
        ``nodes`` without the dead ones (kept in order), and the dropped ids.
    """
    alive = vertices_reaching(_graph(nodes), outputs.values())
    kept = [node for node in nodes if node["id"] in alive]
    return kept, [node["id"] for node in nodes if node["id"] not in alive]


def nearest_level(missing: int, produced: Sequence[int]) -> int:
    """Pick the level that stands in for one no cell produced.

    Args:
        missing: the level without a producer.
        produced: the levels that have one.

    Returns:
        The produced level closest to ``missing``; on a tie the finer one (more spatial detail).
    """
    return min(produced, key=lambda level: (abs(level - missing), level))
