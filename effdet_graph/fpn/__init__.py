"""Feature networks: a spec compiled into a PyTorch module (:mod:`.compiler`), the layers it is made of
(:mod:`.ops`, :mod:`.resample`, :mod:`.fusion`), the sub-graphs a union network runs (:mod:`.subgraph`), and a
network built, run and reported (:mod:`.summary`), drawn (:mod:`.draw`) or exported to ONNX / ``torch.export``
(:mod:`.export`)."""

from effdet_graph.fpn.compiler import FeatureNetwork, FusionNode, check_channels, compile_spec
from effdet_graph.fpn.draw import draw_spec
from effdet_graph.fpn.export import export_network
from effdet_graph.fpn.fusion import GlobalPoolAttention, WeightedSum
from effdet_graph.fpn.ops import SeparableConv2d, make_activation, make_bn
from effdet_graph.fpn.subgraph import SubGraph, build_subgraph
from effdet_graph.fpn.summary import BuildReport, build_and_run, random_features

__all__ = [
    "compile_spec",
    "FeatureNetwork",
    "FusionNode",
    "check_channels",
    "SeparableConv2d",
    "make_activation",
    "make_bn",
    "WeightedSum",
    "GlobalPoolAttention",
    "SubGraph",
    "build_subgraph",
    "BuildReport",
    "build_and_run",
    "random_features",
    "draw_spec",
    "export_network",
]
