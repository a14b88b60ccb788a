"""The cell as a networkx DAG: execution order, cycle and dead-node checks, depth for drawing."""

from __future__ import annotations

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


def check_graph(spec: Spec) -> None:
    """Raise :class:`SpecError` if the cell has a cycle or a node that feeds no output."""
    graph = cell_graph(spec)
    by_id = spec.node_by_id
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        ids = [u for u, _ in cycle]
        first = min(ids, key=lambda i: spec.nodes.index(by_id[i]))
        start = ids.index(first)
        ring = ids[start:] + ids[:start] + [first]
        raise SpecError(
            f"the nodes form a cycle {' -> '.join(ring)}; a feature network must be acyclic",
            by_id[first].location,
            first,
        )
    feeding = set()
    for node_id in spec.outputs.values():
        feeding |= nx.ancestors(graph, node_id) | {node_id}
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
