"""Sub-graphs of a union spec: the nodes, inputs and merges of a compiled union network that one forward pass runs.

A *union* spec holds every node and input that a family of specs uses (the candidates of a search space, say).
Compiled with ``merge_options`` (the merges each node may run), its network runs any *sub* spec that fits in it:
``network(features, network.subgraph(sub))`` computes only the sub spec's nodes and edges, and gives what
``compile_spec(sub, in_channels)`` loaded with ``network.sub_state_dict(path)`` gives.

A sub spec fits when it has the union's settings (width, repeats, pyramid, conv and BN settings) and each of its
nodes is a union node (through ``names``, sub node id -> union node id; the same id where absent) with the same
level, op and edge style, whose inputs and residuals include the sub node's (mapped the same way), and which may
run the sub node's merge. Weighted sums then normalise over the sub node's inputs only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from effdet_graph.fpn.fusion import ATTENTION
from graphspec import Location, Node, Spec, SpecError, level_name, schedule
from graphspec.errors import choices_text, quote
from graphspec.model import FUSIONS

MERGE_NAMES = (ATTENTION,) + FUSIONS
"""The merges a node may run: NAS-FPN's attention, or a fusion method naming a weighted sum."""


def merge_name(node: Node) -> str:
    """The merge ``node`` runs, one of :data:`MERGE_NAMES`."""
    return ATTENTION if node.merge == ATTENTION else node.fusion


@dataclass(frozen=True)
class ActiveNode:
    """A node of a sub-graph, named as in the union: it merges ``inputs`` (in this order; ``positions`` are their
    indices in the union node's inputs) with ``merge`` and adds ``residual``."""

    id: str
    level: int
    inputs: tuple[str, ...]
    positions: tuple[int, ...]
    residual: tuple[str, ...]
    merge: str


@dataclass(frozen=True)
class SubGraph:
    """What one forward pass of a union network runs, per cell.

    ``inputs``: the cell inputs (``P3`` ...), finest first. ``nodes``: the active nodes in the union's execution
    order. ``outputs``: the union name of the output of each level, finest first. ``names``: union node id ->
    the sub spec's id, for every active node.
    """

    inputs: tuple[str, ...]
    nodes: tuple[ActiveNode, ...]
    outputs: tuple[str, ...]
    names: dict[str, str]


def node_merge_options(spec: Spec, extra: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """The merges each node of ``spec`` may run: its own, then ``extra[node id]`` where given.

    Raises:
        SpecError: ``extra`` names a node the spec lacks or a merge not in :data:`MERGE_NAMES`.
    """
    by_id = spec.node_by_id
    for node_id, names in extra.items():
        if node_id not in by_id:
            raise SpecError(f"merge options for {quote(node_id)}, which is no node of the spec", Location(spec.file))
        unknown = [name for name in names if name not in MERGE_NAMES]
        if unknown:
            raise SpecError(
                f"unknown merge option {quote(unknown[0])} {choices_text(MERGE_NAMES)}",
                by_id[node_id].location,
                node_id,
            )
    own = {node.id: merge_name(node) for node in spec.nodes}
    return {node_id: tuple(dict.fromkeys((name, *extra.get(node_id, ())))) for node_id, name in own.items()}


def build_subgraph(
    union: Spec, options: Mapping[str, Sequence[str]], sub: Spec, names: Mapping[str, str] | None = None
) -> SubGraph:
    """The sub-graph of ``union`` that runs ``sub`` (see the module docstring).

    Args:
        union: the union spec.
        options: the merges each union node may run (:func:`node_merge_options`).
        sub: the spec to run.
        names: sub node id -> union node id, where they differ.

    Raises:
        SpecError: ``sub`` does not fit in ``union``; the message names the sub spec's node and what differs.
    """
    names = dict(names or {})
    _check_settings(union, sub)
    by_id = union.node_by_id
    active: dict[str, ActiveNode] = {}
    for node in sub.nodes:
        target = by_id.get(names.get(node.id, node.id))
        if target is None:
            raise SpecError(
                f"union {union.name} has no node {quote(names.get(node.id, node.id))}", node.location, node.id
            )
        if target.id in active:
            raise SpecError(f"a second node runs as union node {quote(target.id)}", node.location, node.id)
        if (node.level, node.op, node.edges) != (target.level, target.op, target.edges):
            raise SpecError(
                f"its level, op or edge style differs from union node {quote(target.id)}", node.location, node.id
            )
        inputs = tuple(names.get(ref, ref) for ref in node.inputs)
        residual = tuple(names.get(ref, ref) for ref in node.residual)
        missing = [ref for ref in inputs if ref not in target.inputs] + [
            ref for ref in residual if ref not in target.residual
        ]
        if missing:
            raise SpecError(f"union node {quote(target.id)} has no input {quote(missing[0])}", node.location, node.id)
        if merge_name(node) not in options[target.id]:
            raise SpecError(
                f"union node {quote(target.id)} cannot run the merge {quote(merge_name(node))} "
                f"{choices_text(options[target.id])}",
                node.location,
                node.id,
            )
        positions = tuple(target.inputs.index(ref) for ref in inputs)
        active[target.id] = ActiveNode(target.id, node.level, inputs, positions, residual, merge_name(node))
    return SubGraph(
        inputs=tuple(level_name(level) for level in union.levels),
        nodes=tuple(active[node_id] for node_id in schedule(union) if node_id in active),
        outputs=tuple(names.get(sub.outputs[level], sub.outputs[level]) for level in sub.levels),
        names={names.get(node.id, node.id): node.id for node in sub.nodes},
    )


def _settings(spec: Spec) -> dict[str, object]:
    """What a sub spec must share with its union besides the nodes."""
    derived = [(d.level, d.source, d.downsample, d.act, d.projection) for d in spec.derived]
    return {
        "width": spec.width,
        "repeats": spec.repeats,
        "backbone levels": spec.backbone_levels,
        "lateral": spec.lateral,
        "derived levels": derived,
        "conv_bias": spec.conv_bias,
        "padding": spec.padding,
        "batch norm": spec.batch_norm,
    }


def _check_settings(union: Spec, sub: Spec) -> None:
    theirs = _settings(union)
    for key, value in _settings(sub).items():
        if value != theirs[key]:
            raise SpecError(
                f"{key}: {value} here, {theirs[key]} in union {union.name}; a sub-graph keeps the union's settings",
                Location(sub.file),
            )
