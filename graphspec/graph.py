"""The cell as a networkx DAG: execution order, cycle and dead-node checks, depth for drawing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import networkx as nx

from graphspec.errors import SpecError

if TYPE_CHECKING:
    from graphspec.model import Spec


def cell_graph(spec: Spec) -> nx.DiGraph:
    """One cell as a DAG. Vertices are cell inputs (``P3`` ...) and node ids; edges carry ``kind``
    (``input`` or ``residual``). Vertex attributes: ``level`` and ``is_input``."""
    from graphspec.model import level_name

    graph = nx.DiGraph()
    for level in spec.levels:
        graph.add_node(level_name(level), level=level, is_input=True)
    for node in spec.nodes:
        graph.add_node(node.id, level=node.level, is_input=False)
    for node in spec.nodes:
        for ref in node.inputs:
            graph.add_edge(ref, node.id, kind="input")
        for ref in node.residual:
            graph.add_edge(ref, node.id, kind="residual")
    return graph


def schedule(spec: Spec) -> list[str]:
    """Node ids in execution order: topological, ties broken by the order written in the spec."""
    graph = cell_graph(spec)
    position = {node.id: i for i, node in enumerate(spec.nodes)}
    order = nx.lexicographical_topological_sort(graph, key=lambda v: position.get(v, -1))
    return [v for v in order if v in position]


def graph_cycle(graph: nx.DiGraph) -> list[str] | None:
    """One cycle of a directed graph, as a closed walk of its vertices.

    Args:
        graph: any directed graph (a cell, or a draft of one that may have cycles).

    Returns:
        The vertices of the cycle with the first repeated at the end (``[a, b, a]``), or ``None``
        when ``graph`` is acyclic.
    """
    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return None
    return [u for u, _ in edges] + [edges[0][0]]


def vertices_reaching(graph: nx.DiGraph, targets: Iterable[str]) -> set[str]:
    """The vertices that feed one of ``targets`` (the cell outputs, say): the targets and their ancestors.

    Args:
        graph: a directed graph that holds every target.
        targets: the vertices to reach.

    Returns:
        The targets and every vertex with a path to one of them.
    """
    reaching: set[str] = set()
    for target in targets:
        reaching |= nx.ancestors(graph, target) | {target}
    return reaching


def check_graph(spec: Spec) -> None:
    """Check that the cell is acyclic and that every node feeds an output.

    Raises:
        SpecError: the cell has a cycle, or a node that feeds no output.
    """
    graph = cell_graph(spec)
    by_id = spec.node_by_id
    cycle = graph_cycle(graph)
    if cycle:
        ids = cycle[:-1]
        first = min(ids, key=lambda i: spec.nodes.index(by_id[i]))
        start = ids.index(first)
        ring = ids[start:] + ids[:start] + [first]
        raise SpecError(
            f"the nodes form a cycle {' -> '.join(ring)}; a feature network must be acyclic",
            by_id[first].location,
            first,
        )
    feeding = vertices_reaching(graph, spec.outputs.values())
    for node in spec.nodes:
        if node.id not in feeding:
            raise SpecError("the node feeds no cell output; connect it or remove it", node.location, node.id)


def node_depths(spec: Spec) -> dict[str, int]:
    """Longest path from the cell inputs to each vertex (inputs have depth 0); used for layout."""
    graph = cell_graph(spec)
    depth: dict[str, int] = {}
    for vertex in nx.topological_sort(graph):
        preds = list(graph.predecessors(vertex))
        depth[vertex] = 1 + max(depth[p] for p in preds) if preds else 0
    return depth
