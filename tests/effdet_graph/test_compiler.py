"""The compiled modules: fusion formulas on hand-computed numbers, train/eval, tracing and export."""

from __future__ import annotations

import math

import pytest
import torch

from effdet_graph.builtin import builtin_specs
from effdet_graph.fpn.compiler import compile_spec
from effdet_graph.fpn.fusion import GlobalPoolAttention, WeightedSum
from effdet_graph.fpn.summary import random_features
from graphspec import SpecError, load_spec, loads_spec

B0_CHANNELS = [40, 112, 320]


def _constant_inputs(values: list[float], channels: int = 2) -> list[torch.Tensor]:
    return [torch.full((1, channels, 2, 2), v) for v in values]


@pytest.mark.parametrize(
    "method, weights, expected",
    [
        ("sum", None, 1.0 + 2.0 + 4.0),
        ("unbounded", [0.5, -1.0, 2.0], 0.5 * 1 - 1.0 * 2 + 2.0 * 4),
        # softmax of [0, ln 2, ln 5] = [1, 2, 5] / 8
        ("softmax", [0.0, math.log(2), math.log(5)], (1 * 1 + 2 * 2 + 5 * 4) / 8),
        # relu([3, -1, 1]) = [3, 0, 1]; / (4 + 1e-4)
        ("fast_normalized", [3.0, -1.0, 1.0], (3 * 1 + 0 * 2 + 1 * 4) / (4 + 1e-4)),
    ],
)
def test_weighted_sum_matches_formula(method, weights, expected):
    fusion = WeightedSum(3, method, channels=2)
    if weights is not None:
        fusion.weight.data = torch.tensor(weights)
    out = fusion(_constant_inputs([1.0, 2.0, 4.0]))
    assert out.shape == (1, 2, 2, 2)
    torch.testing.assert_close(out, torch.full_like(out, expected))


def test_per_channel_fusion_weights_each_channel():
    fast = WeightedSum(2, "channel_fast_normalized", channels=2)
    fast.weight.data = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # (inputs, channels)
    out = fast(_constant_inputs([10.0, 20.0]))
    # channel 0: (1*10 + 3*20) / (4 + 1e-4); channel 1: (0*10 + 2*20) / (2 + 1e-4)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([70 / (4 + 1e-4), 40 / (2 + 1e-4)]))
    soft = WeightedSum(2, "channel_softmax", channels=2)
    soft.weight.data = torch.tensor([[0.0, math.log(3)], [0.0, 0.0]])
    out = soft(_constant_inputs([10.0, 20.0]))
    # channel 0: weights [1/2, 1/2]; channel 1: [3/4, 1/4]
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([15.0, 12.5]))


def test_fusion_parameter_counts():
    assert sum(p.numel() for p in WeightedSum(3, "sum", 8).parameters()) == 0
    assert sum(p.numel() for p in WeightedSum(3, "fast_normalized", 8).parameters()) == 3
    assert sum(p.numel() for p in WeightedSum(3, "channel_softmax", 8).parameters()) == 24


def test_global_pool_attention_tensorflow_variant():
    a = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]]])  # global max = 1
    b = torch.full((1, 1, 2, 2), 2.0)
    out = GlobalPoolAttention(coarse_index=0)([a, b])
    torch.testing.assert_close(out, a + 2.0 / (1 + math.exp(-1.0)))
    swapped = GlobalPoolAttention(coarse_index=1)([b, a])
    torch.testing.assert_close(swapped, out)


def test_global_pool_attention_takes_the_coarser_input_as_a():
    network = compile_spec(load_spec("specs/nasfpn.yaml", {"width": 8, "repeats": 1}), B0_CHANNELS)
    merges = {name: node.merge for name, node in network.cells[0].nodes.items()}
    assert merges["gp_p4"].coarse_index == 1  # inputs (P4, P6): P6 is coarser
    assert merges["p5_out"].coarse_index == 1  # inputs (p3_out at P3, p4_out at P4)
    assert merges["p7_out"].coarse_index == 1  # inputs (sum_p4 at P4, p5_out at P5)


def test_state_dict_keys_name_nodes_and_inputs():
    keys = compile_spec(load_spec("specs/bifpn.yaml"), B0_CHANNELS).state_dict().keys()
    assert "derived.P6.resample.project.conv.weight" in keys
    assert "cells.0.nodes.p4_out.edges.P4.project.conv.weight" in keys  # backbone P4: 112 -> 64 channels
    assert "cells.1.nodes.p4_out.edges.P4.project.conv.weight" not in keys  # later repeats: no projection
    assert "cells.2.nodes.p4_out.merge.weight" in keys
    assert "cells.2.nodes.p7_out.op.conv.conv_dw.weight" in keys


def test_train_and_eval_modes_and_backward():
    spec = load_spec("specs/bifpn.yaml", {"width": 16, "repeats": 2})
    network = compile_spec(spec, B0_CHANNELS)
    features = [f.requires_grad_() for f in random_features(spec, B0_CHANNELS, 128, batch=2)]
    outputs = network.train()(features)
    sum(o.square().mean() for o in outputs).backward()
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in features)
    assert all(p.grad is not None for p in network.parameters())
    with torch.no_grad():
        evaluated = network.eval()(features)
    assert [o.shape for o in evaluated] == [o.shape for o in outputs]


@pytest.mark.parametrize("size", [(100, 75), (131, 129), (64, 64)])
def test_sizes_not_divisible_by_the_largest_stride(size):
    spec = load_spec("specs/bifpn.yaml", {"width": 8, "repeats": 1})
    network = compile_spec(spec, B0_CHANNELS).eval()
    h, w = size
    features = []
    for level, c in zip(spec.backbone_levels, B0_CHANNELS):
        features.append(torch.randn(1, c, -(-h // 2**level), -(-w // 2**level)))
    outputs = network(features)
    expected = []
    for level in spec.levels:
        eh, ew = h, w
        for _ in range(level):
            eh, ew = (eh + 1) // 2, (ew + 1) // 2
        expected.append((1, 8, eh, ew))
    assert [tuple(o.shape) for o in outputs] == expected


def test_backbone_feature_info_is_checked():
    timm = pytest.importorskip("timm")
    backbone = timm.create_model("efficientnet_b0", features_only=True, out_indices=(2, 3, 4), pretrained=False)
    info = backbone.feature_info
    spec = load_spec("specs/bifpn.yaml")
    compile_spec(spec, info.channels(), info.reduction())
    with pytest.raises(
        SpecError, match=r"reductions are \[4, 8, 16\] but the spec's inputs P3, P4, P5 need \[8, 16, 32\]"
    ):
        compile_spec(spec, [24, 40, 112], [4, 8, 16])
    with pytest.raises(SpecError, match="gives 2 feature maps"):
        compile_spec(spec, [40, 112])


def test_bad_number_of_features_at_run_time():
    network = compile_spec(load_spec("specs/fpn.yaml", {"width": 8}), B0_CHANNELS)
    with pytest.raises(ValueError, match="expected 3 feature maps for P3, P4, P5, got 2"):
        network([torch.randn(1, 40, 8, 8), torch.randn(1, 112, 4, 4)])


def test_residual_is_added_before_the_op():
    text = """
width: 4
inputs: {backbone: [P3, P4]}
defaults: {fusion: sum, op: []}
cell:
  nodes:
    - {id: a, level: P3, inputs: [P3]}
    - {id: b, level: P4, inputs: [P4], residual: [a]}
  outputs: {P3: a, P4: b}
"""
    network = compile_spec(loads_spec(text), [4, 4]).eval()
    p3, p4 = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)
    a, b = network([p3, p4])
    torch.testing.assert_close(a, p3)
    torch.testing.assert_close(b, p4 + torch.nn.functional.max_pool2d(p3, 3, 2, 1))


@pytest.mark.parametrize("path", builtin_specs(), ids=lambda p: p.stem)
def test_builtin_specs_trace_without_graph_breaks(path):
    spec = load_spec(path, {"width": 8, "repeats": 2})
    network = compile_spec(spec, B0_CHANNELS).eval()
    features = random_features(spec, B0_CHANNELS, 128)
    explanation = torch._dynamo.explain(network)(features)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
    torch._dynamo.reset()


@pytest.mark.parametrize("path", builtin_specs(), ids=lambda p: p.stem)
def test_builtin_specs_torch_export_matches_eager(path, tmp_path):
    from effdet_graph.fpn.export import export_network

    spec = load_spec(path, {"width": 8, "repeats": 2})
    network = compile_spec(spec, B0_CHANNELS).eval()
    features = random_features(spec, B0_CHANNELS, 128)
    export_network(network, features, tmp_path / "net.pt2")
    program = torch.export.load(tmp_path / "net.pt2")
    with torch.no_grad():
        expected = network(features)
    for got, want in zip(program.module()(*features), expected):
        torch.testing.assert_close(got, want)


@pytest.mark.slow
def test_torch_compile_fullgraph_matches_eager():
    spec = load_spec("specs/bifpn.yaml", {"width": 16, "repeats": 2})
    network = compile_spec(spec, B0_CHANNELS).eval()
    features = random_features(spec, B0_CHANNELS, 128)
    compiled = torch.compile(network, fullgraph=True)
    with torch.no_grad():
        for got, want in zip(compiled(features), network(features)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("path", builtin_specs(), ids=lambda p: p.stem)
def test_builtin_specs_onnx_export_matches_eager(path, tmp_path):
    onnx = pytest.importorskip("onnx")
    from effdet_graph.fpn.export import export_network

    spec = load_spec(path, {"width": 8, "repeats": 2})
    network = compile_spec(spec, B0_CHANNELS).eval()
    features = random_features(spec, B0_CHANNELS, 128)
    export_network(network, features, tmp_path / "net.onnx")
    model = onnx.load(str(tmp_path / "net.onnx"))
    onnx.checker.check_model(model)
    assert len(model.graph.output) == len(spec.levels)
    reference = pytest.importorskip("onnx.reference")
    session = reference.ReferenceEvaluator(model)
    feeds = {inp.name: f.numpy() for inp, f in zip(model.graph.input, features)}
    with torch.no_grad():
        expected = network(features)
    for got, want in zip(session.run(None, feeds), expected):
        torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-4)
