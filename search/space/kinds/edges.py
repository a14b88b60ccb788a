"""BiFPN-style edge search (EfficientDet, Sec. 3.2): the template's node list stays; each optional edge
(``from`` a cell input or node, ``to`` a node) is on or off, and each weighted-sum node picks its fusion.

The trial suggests ``edge.<from>-><to>`` (True/False) per optional edge, in file order, and
``fusion.<node>`` per weighted-sum node where ``fusions`` is given. An optional edge the template has
is removed when off; one it lacks is added (as the node's last input) when on. Then:

- a node left without inputs, or edges that close a cycle: rejected (no deterministic repair);
- nodes that feed no output: dropped (a repair, recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effdet_graph import DetectorConfig
from graphspec import level_name
from graphspec.errors import choices_text, did_you_mean, quote
from graphspec.model import FUSIONS
from graphspec.reader import Reader
from search.sampling.candidate import Draft
from search.sampling.rejection import InvalidPoint
from search.sampling.repair import NodeData, drop_dead_nodes, find_cycle
from search.sampling.trial import TrialLike
from search.space.detector import read_detector, spec_params
from search.space.schema import OPTIONAL_EDGE_KEYS
from search.space.template import Template

KEYS = {"detector": False, "optional_edges": True, "fusions": False}


@dataclass(frozen=True)
class OptionalEdge:
    """An edge ``source -> target`` the search switches on or off."""

    source: str
    target: str

    @property
    def name(self) -> str:
        """The trial parameter's name."""
        return f"edge.{self.source}->{self.target}"


@dataclass(frozen=True)
class EdgeChoices:
    """A BiFPN edge search space."""

    edges: tuple[OptionalEdge, ...]
    fusions: tuple[str, ...]
    detector: DetectorConfig

    def draw(self, template: Template, trial: TrialLike) -> Draft:
        raw_nodes: list[NodeData] = template.data["cell"]["nodes"]
        inputs = {node["id"]: list(node["inputs"]) for node in raw_nodes}
        for edge in self.edges:
            refs = inputs[edge.target]
            present = trial.suggest_categorical(edge.name, [True, False])
            if present and edge.source not in refs:
                refs.append(edge.source)
            elif not present and edge.source in refs:
                refs.remove(edge.source)
        weighted = [node.id for node in template.spec.nodes if node.merge == "weighted_sum"] if self.fusions else []
        fusions = {node_id: trial.suggest_categorical(f"fusion.{node_id}", list(self.fusions)) for node_id in weighted}
        nodes = [node | {"inputs": inputs[node["id"]]} for node in raw_nodes]
        for node in nodes:
            if node["id"] in fusions:
                node["fusion"] = fusions[node["id"]]
        empty = [node_id for node_id, refs in inputs.items() if not refs]
        if empty:
            raise InvalidPoint(f"node{'s' * (len(empty) > 1)} {', '.join(empty)} lost every input")
        cycle = find_cycle(nodes)
        if cycle:
            raise InvalidPoint(f"the edges form a cycle {' -> '.join(cycle)}")
        outputs = dict(template.data["cell"]["outputs"])
        nodes, dropped = drop_dead_nodes(nodes, outputs)
        repairs = (f"dropped {', '.join(dropped)}: they feed no output",) if dropped else ()
        return Draft(
            spec_params(template.spec, self.detector.phi, {}),
            self.detector,
            {"nodes": nodes, "outputs": outputs},
            repairs,
        )


def read(reader: Reader, template: Template, num_classes: int) -> EdgeChoices:
    """The edge-search keys of a search-space file (``KEYS``)."""
    spec = template.spec
    node_ids = [node.id for node in spec.nodes]
    sources = [level_name(level) for level in spec.levels] + node_ids
    items = reader.get(("optional_edges",))
    if not isinstance(items, list) or not items:
        raise reader.fail("`optional_edges` must be a non-empty list of {from: ..., to: ...}", ("optional_edges",))
    edges: list[OptionalEdge] = []
    for i in range(len(items)):
        path = ("optional_edges", i)
        reader.mapping(path, OPTIONAL_EDGE_KEYS, "an optional edge")
        target, source = reader.string(path + ("to",)), reader.string(path + ("from",))
        for value, key, valid in ((target, "to", node_ids), (source, "from", sources)):
            if value not in valid:
                raise reader.fail(
                    f"optional edge {key} {quote(value)}: not in the template{did_you_mean(value, valid)} "
                    f"{choices_text(valid)}",
                    path + (key,),
                )
        edge = OptionalEdge(source, target)
        if source == target or edge in edges:
            raise reader.fail(f"optional edge {source} -> {target} is a self-loop or listed twice", path)
        edges.append(edge)
    _check_acyclic_alone(reader, template, edges)
    fusions = reader.choices(("fusions",), FUSIONS, default=())
    return EdgeChoices(tuple(edges), fusions, read_detector(reader, num_classes))


def _check_acyclic_alone(reader: Reader, template: Template, edges: list[OptionalEdge]) -> None:
    """Reject an optional edge that closes a cycle with the template's fixed (non-optional) edges alone:
    switching it on could never give a valid network."""
    optional = {(edge.source, edge.target) for edge in edges}
    fixed: list[dict[str, Any]] = [
        {
            "id": node.id,
            "inputs": [ref for ref in node.inputs if (ref, node.id) not in optional],
            "residual": list(node.residual),
        }
        for node in template.spec.nodes
    ]
    for i, edge in enumerate(edges):
        with_edge = [
            node | {"inputs": node["inputs"] + [edge.source]} if node["id"] == edge.target else node for node in fixed
        ]
        cycle = find_cycle(with_edge)
        if cycle:
            raise reader.fail(
                f"optional edge {edge.source} -> {edge.target} always closes the cycle "
                f"{' -> '.join(cycle)} with the template's fixed edges",
                ("optional_edges", i),
            )
