"""Build a spec, run it once and report what it is: per-node cost, totals and output shapes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from effdet_graph.fpn.compiler import FeatureNetwork, compile_spec
from graphspec import Spec, level_name, schedule
from graphspec.cost import estimate_cost, level_sizes


@dataclass
class NodeRow:
    id: str
    level: str
    inputs: list[str]
    merge: str
    params: int
    macs: int


@dataclass
class BuildReport:
    """What ``effdet-graph build`` prints. ``outputs`` maps a level name to [C, H, W]."""

    name: str
    file: str
    width: int
    repeats: int
    params: int
    macs: int
    built_params: int
    compile_ms: float
    forward_ms: float
    input_size: int
    in_channels: list[int]
    outputs: dict[str, list[int]]
    nodes: list[NodeRow] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "spec": self.name,
            "file": self.file,
            "params": self.params,
            "macs": self.macs,
            "width": self.width,
            "repeats": self.repeats,
            "input_size": self.input_size,
            "in_channels": self.in_channels,
            "outputs": self.outputs,
            "compile_ms": round(self.compile_ms, 2),
            "forward_ms": round(self.forward_ms, 2),
            "nodes": [vars(row) for row in self.nodes],
        }


def random_features(
    spec: Spec, in_channels: Sequence[int], input_size: int, batch: int = 1, seed: int = 0
) -> list[torch.Tensor]:
    """Random backbone features for an ``input_size`` square image: one (batch, C, H_l, W_l) per level."""
    generator = torch.Generator().manual_seed(seed)
    sizes = level_sizes((input_size, input_size), spec.backbone_levels)
    return [
        torch.randn(batch, c, *sizes[level], generator=generator) for level, c in zip(spec.backbone_levels, in_channels)
    ]


def build_and_run(spec: Spec, in_channels: Sequence[int], input_size: int) -> tuple[FeatureNetwork, BuildReport]:
    """Compile ``spec``, run one eval forward pass on a random batch and return the network and its report."""
    cost = estimate_cost(spec, in_channels, input_size)
    start = time.perf_counter()
    network = compile_spec(spec, in_channels).eval()
    compile_ms = 1e3 * (time.perf_counter() - start)
    features = random_features(spec, in_channels, input_size)
    with torch.inference_mode():
        start = time.perf_counter()
        outputs = network(features)
        forward_ms = 1e3 * (time.perf_counter() - start)
    by_id = spec.node_by_id
    rows = [
        NodeRow(
            node_id,
            level_name(by_id[node_id].level),
            list(by_id[node_id].inputs + by_id[node_id].residual),
            by_id[node_id].merge if by_id[node_id].merge != "weighted_sum" else by_id[node_id].fusion,
            cost.nodes[node_id].params,
            cost.nodes[node_id].macs,
        )
        for node_id in schedule(spec)
    ]
    stages = [
        ("lateral", cost.lateral, [level_name(level) for level in spec.backbone_levels], spec.lateral),
        ("derived", cost.derived, [f"P{d.source}->P{d.level}" for d in spec.derived], ""),
    ]
    rows = [
        NodeRow(f"({name})", "", inputs, kind, part.params, part.macs)
        for name, part, inputs, kind in stages
        if part.params or part.macs
    ] + rows
    report = BuildReport(
        name=spec.name,
        file=spec.file,
        width=spec.width,
        repeats=spec.repeats,
        params=cost.total.params,
        macs=cost.total.macs,
        built_params=sum(p.numel() for p in network.parameters()),
        compile_ms=compile_ms,
        forward_ms=forward_ms,
        input_size=input_size,
        in_channels=list(in_channels),
        outputs={level_name(level): list(x.shape[1:]) for level, x in zip(spec.levels, outputs)},
        nodes=rows,
    )
    return network, report
