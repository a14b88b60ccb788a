"""A supernet: every candidate of a topology search space in one feature network with shared weights.

It is the compiler applied to the space's union spec (:mod:`search.strategies.oneshot.union`), not a second model
definition: a candidate runs as a sub-graph of the union (:mod:`effdet_graph.fpn.subgraph`), and its weights come out
as the state dict of its own compiled network. Inside a detector (:class:`~effdet_graph.model.detector.EfficientDet`,
whose feature network is called with the feature maps alone) it runs the path last :meth:`~Supernet.select`-ed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from effdet_graph import compile_spec
from effdet_graph.fpn import SubGraph
from effdet_graph.model import FeatureNetworkFactory
from graphspec import Spec, loads_spec
from search.sampling.candidate import Candidate
from search.space.types import SearchSpace
from search.strategies.oneshot.union import UnionSpec, union_spec


class Supernet(nn.Module):
    """Every node, edge and merge of a topology search space, weights shared by the candidates.

    ``forward(features, path)``: the backbone's feature maps, one (N, C_l, H / 2**l, W / 2**l) tensor per backbone
    level of the template, finest first -> one (N, width, H / 2**l, W / 2**l) tensor per pyramid level, finest
    first, computing only the nodes and edges of ``path`` (one candidate, :meth:`path`; the one last
    :meth:`select`-ed where not given). A weighted sum normalises over the candidate's inputs only; each fusion
    method a node may run has its own weights, one per union input.

    Args:
        space: a ``bifpn_edges`` or ``nasfpn_cells`` search space, or its union spec made with ``overrides``.
        in_channels: the backbone's channels C_l, one per backbone level of the template.
        overrides: spec parameter values (``{"width": 16}``) set on the union and on every candidate's spec.

    Raises:
        ConfigError: the space searches no topology (``compound``).
        SpecError: the union spec does not load or does not fit ``in_channels``.
    """

    def __init__(
        self, space: SearchSpace | UnionSpec, in_channels: Sequence[int], overrides: Mapping[str, Any] | None = None
    ):
        super().__init__()
        self.overrides = dict(overrides or {})
        self.union = space if isinstance(space, UnionSpec) else union_spec(space, self.overrides)
        self.network = compile_spec(self.union.spec, in_channels, merge_options=self.union.merges)
        self.active: SubGraph | None = None

    def candidate_spec(self, candidate: Candidate) -> Spec:
        """The candidate's spec with the supernet's overrides."""
        return loads_spec(candidate.spec_text, candidate.file_name, self.overrides)

    def path(self, candidate: Candidate | Spec) -> SubGraph:
        """The sub-graph that runs ``candidate`` (or its spec, with the supernet's overrides).

        Raises:
            SpecError: the spec is no candidate of this supernet's space (the message names the node).
        """
        spec = self.candidate_spec(candidate) if isinstance(candidate, Candidate) else candidate
        return self.network.subgraph(spec, self.union.names(spec))

    def select(self, path: SubGraph) -> None:
        """Make ``path`` the one ``forward(features)`` runs."""
        self.active = path

    def forward(self, features: list[torch.Tensor], path: SubGraph | None = None) -> list[torch.Tensor]:
        path = path or self.active
        if path is None:
            raise ValueError("the supernet runs one candidate at a time: select(path) one, or pass its path")
        return self.network(features, path)

    def candidate_state_dict(self, candidate: Candidate | Spec) -> dict[str, torch.Tensor]:
        """The candidate's weights in the supernet, as the state dict of its stand-alone network
        (``compile_spec(supernet.candidate_spec(candidate), in_channels)``)."""
        return self.network.sub_state_dict(self.path(candidate))


def supernet_factory(union: UnionSpec, overrides: Mapping[str, Any]) -> FeatureNetworkFactory:
    """A detector's feature network as the supernet of ``union`` (made with ``overrides``):
    ``EfficientDet(spec, config, feature_network=supernet_factory(union, overrides))``, ``spec`` the union spec
    as the detector's recipe loads it, which then runs in the supernet."""

    def build(spec: Spec, in_channels: Sequence[int], reductions: Sequence[int]) -> Supernet:
        return Supernet(dataclasses.replace(union, spec=spec), in_channels, overrides)

    return build
