"""Compile a :class:`graphspec.Spec` into a PyTorch feature network.

The execution schedule is fixed at build time: each cell keeps, per node, the positions of its
inputs in a flat list of tensors (cell inputs first, then node outputs in schedule order), so the
forward pass is a straight loop that ``torch.compile(fullgraph=True)``, ``torch.export`` and ONNX
export trace without graph breaks. Submodules are named by node id and input name, so state_dict
keys read like ``cells.0.nodes.p4_td.edges.P4.project.conv.weight``.

Compiled with ``merge_options``, the network of a union spec also runs sub-graphs of it (:mod:`.subgraph`):
``forward(features, path)`` walks only the path's nodes and edges, by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import nn

from effdet_graph.fpn.fusion import GlobalPoolAttention, MergeChoice, WeightedSum, coarser_index
from effdet_graph.fpn.ops import make_activation, make_op
from effdet_graph.fpn.resample import Resample, projection
from effdet_graph.fpn.subgraph import ActiveNode, SubGraph, build_subgraph, merge_name, node_merge_options
from graphspec import EdgeStyle, Node, Spec, SpecError, level_name, schedule
from graphspec.errors import Location, quote
from graphspec.model import reserved_ids


class FusionNode(nn.Module):
    """Resample every input to the node's level and width, merge, add residuals, apply the op.

    ``forward(inputs, residuals, size)``: lists of (N, C_i, H_i, W_i) tensors -> (N, width, H, W),
    with ``size`` = (H, W) of the node's level. With ``options`` (the merges it may run) the node can also
    :meth:`run` a sub-graph's node.
    """

    def __init__(
        self,
        node: Node,
        channels: dict[str, int],
        levels: dict[str, int],
        spec: Spec,
        options: Sequence[str] | None = None,
    ):
        super().__init__()
        refs = node.inputs + node.residual
        self.edges = nn.ModuleDict(
            {
                ref: Resample(
                    channels[ref],
                    spec.width,
                    node.level - levels[ref],
                    node.edges,
                    spec.conv_bias,
                    spec.batch_norm,
                    spec.padding,
                )
                for ref in refs
            }
        )
        self.num_inputs = len(node.inputs)
        input_levels = [levels[ref] for ref in node.inputs]
        if options is not None:
            self.merge: nn.Module = MergeChoice(options, merge_name(node), input_levels, spec.width)
        elif node.merge == "global_pool_attention":
            self.merge = GlobalPoolAttention(coarser_index(input_levels))
        else:
            self.merge = WeightedSum(len(node.inputs), node.fusion, spec.width)
        self.op = make_op(node.op, spec.width, spec.conv_bias, spec.batch_norm)

    def forward(self, inputs: list[torch.Tensor], residuals: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        values = [edge(x, size) for edge, x in zip(self.edges.values(), inputs + residuals)]
        out = self.merge(values[: self.num_inputs])
        for extra in values[self.num_inputs :]:
            out = out + extra
        return self.op(out)

    def run(self, active: ActiveNode, values: Mapping[str, torch.Tensor], size: torch.Size) -> torch.Tensor:
        """``forward`` over the active inputs and merge only: ``values`` maps names to (N, C_i, H_i, W_i) tensors."""
        inputs = [self.edges[ref](values[ref], size) for ref in active.inputs]
        merged = self.merge_choice().run(active.merge, inputs, list(active.positions))
        for ref in active.residual:
            merged = merged + self.edges[ref](values[ref], size)
        return self.op(merged)

    def sub_state_dict(self, active: ActiveNode, prefix: str, names: Mapping[str, str]) -> dict[str, torch.Tensor]:
        """The state dict, keys starting with ``prefix``, of the stand-alone node that ``active`` runs
        (its inputs renamed by ``names``, union name -> sub name)."""
        state: dict[str, torch.Tensor] = {}
        for ref in active.inputs + active.residual:
            state.update(self.edges[ref].state_dict(prefix=f"{prefix}edges.{names.get(ref, ref)}."))
        weight = self.merge_choice().sub_weight(active.merge, list(active.positions))
        if weight is not None:
            state[f"{prefix}merge.weight"] = weight
        state.update(self.op.state_dict(prefix=f"{prefix}op."))
        return state

    def merge_choice(self) -> MergeChoice:
        """The node's merges, where it was compiled with merge options.

        Raises:
            ValueError: it was not.
        """
        if not isinstance(self.merge, MergeChoice):
            raise ValueError("this network runs sub-graphs only when compiled with merge_options (maybe empty)")
        return self.merge


class Cell(nn.Module):
    """One repeat of the spec's cell: list of per-level tensors (finest first) -> the same levels.

    ``options``: the merges each node may run (a union network), or ``None``.
    """

    def __init__(self, spec: Spec, in_channels: dict[int, int], options: Mapping[str, Sequence[str]] | None = None):
        super().__init__()
        slots = {level_name(level): i for i, level in enumerate(spec.levels)}
        channels = {level_name(level): c for level, c in in_channels.items()}
        levels = {level_name(level): level for level in spec.levels}
        by_id = spec.node_by_id
        for node in spec.nodes:
            if node.id in reserved_ids():  # validation rejects these too; kept for hand-made Spec objects
                raise SpecError(
                    f"the id {quote(node.id)} is a PyTorch module attribute and cannot name a submodule; "
                    "rename the node",
                    node.location,
                    node.id,
                )
        self.nodes = nn.ModuleDict()
        self.input_slots: list[list[int]] = []
        self.residual_slots: list[list[int]] = []
        self.size_slots: list[int] = []
        for node_id in schedule(spec):
            node = by_id[node_id]
            try:
                self.nodes[node_id] = FusionNode(
                    node, channels, levels, spec, None if options is None else options[node_id]
                )
            except (ValueError, RuntimeError) as exc:
                raise SpecError(f"cannot build the node: {exc}", node.location, node.id) from exc
            self.input_slots.append([slots[ref] for ref in node.inputs])
            self.residual_slots.append([slots[ref] for ref in node.residual])
            self.size_slots.append(slots[level_name(node.level)])
            slots[node_id] = len(slots)
            channels[node_id] = spec.width
            levels[node_id] = node.level
        self.output_slots = [slots[spec.outputs[level]] for level in spec.levels]

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        sizes = [x.shape[-2:] for x in features]
        values = list(features)
        for node, inputs, residuals, size in zip(
            self.nodes.values(), self.input_slots, self.residual_slots, self.size_slots
        ):
            values.append(node([values[i] for i in inputs], [values[i] for i in residuals], sizes[size]))
        return [values[i] for i in self.output_slots]

    def run(self, features: list[torch.Tensor], path: SubGraph) -> list[torch.Tensor]:
        """``forward`` computing only the nodes and edges of ``path``."""
        values = dict(zip(path.inputs, features))
        sizes = {name: x.shape[-2:] for name, x in values.items()}
        for active in path.nodes:
            values[active.id] = self.node(active.id).run(active, values, sizes[level_name(active.level)])
        return [values[name] for name in path.outputs]

    def sub_state_dict(self, path: SubGraph, prefix: str) -> dict[str, torch.Tensor]:
        """The state dict, keys starting with ``prefix``, of the stand-alone cell that ``path`` runs."""
        state: dict[str, torch.Tensor] = {}
        for active in path.nodes:
            name = path.names[active.id]
            state.update(self.node(active.id).sub_state_dict(active, f"{prefix}nodes.{name}.", path.names))
        return state

    def node(self, node_id: str) -> FusionNode:
        return cast(FusionNode, self.nodes[node_id])


class DerivedLevelBlock(nn.Module):
    """Make level l + 1 from level l before the first cell: act, then project and downsample by 2."""

    def __init__(self, act: str, resample: Resample):
        super().__init__()
        self.act = make_activation(act)
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resample(self.act(x), x.shape[-2:])


class FeatureNetwork(nn.Module):
    """The compiled feature network.

    ``forward(features)``: the backbone's feature maps for ``spec.backbone_levels``, finest first,
    each (N, C_l, ceil(H / 2**l), ceil(W / 2**l)) with C_l = ``in_channels``; returns one
    (N, width, ...) tensor per level of ``spec.levels``, finest first.

    Args:
        spec: the validated spec.
        in_channels: the backbone's channels C_l, one per level of ``spec.backbone_levels``, finest first.
        reductions: the backbone's strides for those levels (timm's ``feature_info.reduction()``);
            checked against ``2**l`` when given.
        merge_options: for a union spec: node id -> the merges it may run besides its own (``global_pool_attention``
            or a fusion method); then ``forward(features, path)`` runs the sub-graph ``path`` (:meth:`subgraph`).

    Raises:
        SpecError: the channels or reductions do not fit the spec's backbone levels, a node cannot be built, or
            ``merge_options`` names an unknown node or merge.
    """

    def __init__(
        self,
        spec: Spec,
        in_channels: Sequence[int],
        reductions: Sequence[int] | None = None,
        merge_options: Mapping[str, Sequence[str]] | None = None,
    ):
        super().__init__()
        check_channels(spec, in_channels, reductions)
        self.spec = spec
        self.merge_options = None if merge_options is None else node_merge_options(spec, merge_options)
        self.in_channels = tuple(in_channels)
        self.levels = spec.levels
        channels = dict(zip(spec.backbone_levels, in_channels))
        self.lateral = nn.ModuleDict()
        if spec.lateral != "none":
            for level, c in channels.items():
                self.lateral[level_name(level)] = projection(
                    c, spec.width, spec.lateral, spec.conv_bias, spec.batch_norm
                )
                channels[level] = spec.width
        self.derived = nn.ModuleDict()
        for derived in spec.derived:
            style = EdgeStyle(downsample=derived.downsample, projection=derived.projection)
            resample = Resample(
                channels[derived.source], spec.width, 1, style, spec.conv_bias, spec.batch_norm, spec.padding
            )
            self.derived[level_name(derived.level)] = DerivedLevelBlock(derived.act, resample)
            channels[derived.level] = spec.width
        self.cells = nn.ModuleList()
        for _ in range(spec.repeats):
            self.cells.append(Cell(spec, channels, self.merge_options))
            channels = {level: spec.width for level in spec.levels}

    def forward(self, features: list[torch.Tensor], path: SubGraph | None = None) -> list[torch.Tensor]:
        if len(features) != len(self.in_channels):
            raise ValueError(
                f"{self.spec.name}: expected {len(self.in_channels)} feature maps for "
                f"{', '.join(level_name(level) for level in self.spec.backbone_levels)}, got {len(features)}"
            )
        features = list(features)
        if len(self.lateral):
            features = [lateral(x) for lateral, x in zip(self.lateral.values(), features)]
        for block in self.derived.values():
            features.append(block(features[-1]))
        for cell in self.cells:
            features = cell(features) if path is None else cast(Cell, cell).run(features, path)
        return features

    def subgraph(self, sub: Spec, names: Mapping[str, str] | None = None) -> SubGraph:
        """The path that runs ``sub``, a spec that fits in this network's union spec (:func:`.subgraph.build_subgraph`);
        ``names`` maps sub node ids to union node ids where they differ.

        Raises:
            SpecError: ``sub`` does not fit.
            ValueError: the network was compiled without ``merge_options``.
        """
        if self.merge_options is None:
            raise ValueError(f"{self.spec.name}: compile with merge_options (maybe empty) to run sub-graphs")
        return build_subgraph(self.spec, self.merge_options, sub, names)

    def sub_state_dict(self, path: SubGraph) -> dict[str, torch.Tensor]:
        """The weights ``path`` runs with, as the state dict of ``compile_spec(sub, in_channels)`` for its sub spec:
        its weighted sums hold the union node's weights at the sub node's inputs."""
        state = {**self.lateral.state_dict(prefix="lateral."), **self.derived.state_dict(prefix="derived.")}
        for r, cell in enumerate(self.cells):
            state.update(cast(Cell, cell).sub_state_dict(path, f"cells.{r}."))
        return state


def check_channels(spec: Spec, in_channels: Sequence[int], reductions: Sequence[int] | None = None) -> None:
    """Check a backbone's feature channels (and reductions, timm's ``feature_info``) against the spec.

    Raises:
        SpecError: one channel count per backbone level is not given, one is not positive, or the
            reductions are not the levels' strides.
    """
    where = Location(spec.file)
    names = ", ".join(level_name(level) for level in spec.backbone_levels)
    if len(in_channels) != len(spec.backbone_levels):
        raise SpecError(
            f"the backbone gives {len(in_channels)} feature maps ({list(in_channels)} channels) but the "
            f"spec takes {len(spec.backbone_levels)} ({names}); pass one channel count per level",
            where,
        )
    if any(c <= 0 for c in in_channels):
        raise SpecError(f"channel counts must be positive, got {list(in_channels)}", where)
    if reductions is not None:
        expected = [2**level for level in spec.backbone_levels]
        if list(reductions) != expected:
            raise SpecError(
                f"the backbone's feature reductions are {list(reductions)} but the spec's inputs "
                f"{names} need {expected}; pick backbone out_indices that give these strides",
                where,
            )


def compile_spec(
    spec: Spec,
    in_channels: Sequence[int],
    reductions: Sequence[int] | None = None,
    merge_options: Mapping[str, Sequence[str]] | None = None,
) -> FeatureNetwork:
    """Build the feature network of ``spec`` for a backbone with the given feature channels/reductions; with
    ``merge_options``, a union network that also runs sub-graphs (see :class:`FeatureNetwork`).

    Raises:
        SpecError: the channels or reductions do not fit the spec's backbone levels, a node cannot be built, or
            ``merge_options`` names an unknown node or merge.
    """
    return FeatureNetwork(spec, in_channels, reductions, merge_options)
