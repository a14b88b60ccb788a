"""Analytic cost model: parameters and multiply-accumulates of a spec, without building modules.

It counts exactly what :mod:`effdet_graph.fpn.compiler` builds: every conv weight, conv bias, BN
affine pair and fusion weight; and the multiply-accumulates of convolutions (what
``torch.utils.flop_counter.FlopCounterMode`` counts, halved). Elementwise work (fusion, pooling,
activations, BN at inference) is not counted, as in the EfficientDet paper's FLOPs.

It also counts the activations: the elements of the feature maps one forward pass makes for one
image (the backbone inputs, the lateral and derived levels, and per node and repeat each resampled
input, the merge and the output of each op step), what :mod:`graphspec.limits` bounds before anything
is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from graphspec.model import EdgeStyle, Spec, level_name

_STEP_KERNEL = 3


@dataclass
class Cost:
    """Parameters and multiply-accumulates of one part."""

    params: int = 0
    macs: int = 0

    def add(self, params: int, macs: int) -> None:
        self.params += params
        self.macs += macs


@dataclass
class CostReport:
    """The whole network's cost and its parts: the ``lateral`` projections, the ``derived`` levels
    and each node by id (summed over the cell's repeats)."""

    total: Cost
    lateral: Cost = field(default_factory=Cost)
    derived: Cost = field(default_factory=Cost)
    nodes: dict[str, Cost] = field(default_factory=dict)
    activations: int = 0
    """Elements of the feature maps one forward pass makes for one image (see the module docstring)."""


def level_sizes(image_size: tuple[int, int], levels: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Feature map (H, W) of each level: repeated ceil-halving of the image size."""
    sizes: dict[int, tuple[int, int]] = {}
    h, w = image_size
    for level in range(max(levels) + 1):
        if level in levels:
            sizes[level] = (h, w)
        h, w = (h + 1) // 2, (w + 1) // 2
    return sizes


def _conv(cin: int, cout: int, kernel: int, groups: int, bias: bool, out_hw: tuple[int, int]) -> tuple[int, int]:
    weights = cout * (cin // groups) * kernel * kernel
    return weights + (cout if bias else 0), weights * out_hw[0] * out_hw[1]


def _projection(
    cin: int, cout: int, style: str, conv_bias: bool, kernel: int, out_hw: tuple[int, int]
) -> tuple[int, int]:
    with_bn = style == "conv_bn"
    params, macs = _conv(cin, cout, kernel, 1, conv_bias or not with_bn, out_hw)
    return params + (2 * cout if with_bn else 0), macs


def _resample(
    cin: int, cout: int, source: int, target: int, style: EdgeStyle, spec: Spec, sizes: dict[int, tuple[int, int]]
) -> tuple[int, int]:
    delta = target - source
    if delta > 0 and style.downsample == "conv":
        return _projection(cin, cout, style.projection, spec.conv_bias, 2**delta + 1, sizes[target])
    if cin != cout:
        return _projection(cin, cout, style.projection, spec.conv_bias, 1, sizes[source])
    return 0, 0


def _op(steps: tuple[str, ...], width: int, conv_bias: bool, out_hw: tuple[int, int]) -> tuple[int, int]:
    params = macs = 0
    for i, step in enumerate(steps):
        bias = conv_bias or "bn" not in steps[i + 1 :]
        if step == "bn":
            params += 2 * width
        elif step == "separable_conv":
            p_dw, m_dw = _conv(width, width, _STEP_KERNEL, width, False, out_hw)
            p_pw, m_pw = _conv(width, width, 1, 1, bias, out_hw)
            params, macs = params + p_dw + p_pw, macs + m_dw + m_pw
        elif step == "conv":
            p, m = _conv(width, width, _STEP_KERNEL, 1, bias, out_hw)
            params, macs = params + p, macs + m
    return params, macs


def _merge_params(merge: str, fusion: str, num_inputs: int, width: int) -> int:
    if merge != "weighted_sum" or fusion == "sum":
        return 0
    return num_inputs * width if fusion.startswith("channel_") else num_inputs


def estimate_cost(spec: Spec, in_channels: Sequence[int], image_size: int | tuple[int, int] = 512) -> CostReport:
    """Cost of ``spec`` for a backbone with ``in_channels`` per backbone level and square or (H, W) images."""
    hw = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
    sizes = level_sizes(hw, spec.levels)
    width = spec.width
    report = CostReport(Cost())
    channels = {level_name(level): c for level, c in zip(spec.backbone_levels, in_channels)}
    area = {level: h * w for level, (h, w) in sizes.items()}
    report.activations = sum(c * area[level] for level, c in zip(spec.backbone_levels, in_channels))
    if spec.lateral != "none":
        for level, c in zip(spec.backbone_levels, in_channels):
            report.lateral.add(*_projection(c, width, spec.lateral, spec.conv_bias, 1, sizes[level]))
            channels[level_name(level)] = width
            report.activations += width * area[level]
    for derived in spec.derived:
        style = EdgeStyle(downsample=derived.downsample, projection=derived.projection)
        cin = channels.get(level_name(derived.source), width)
        report.derived.add(*_resample(cin, width, derived.source, derived.level, style, spec, sizes))
        channels[level_name(derived.level)] = width
        report.activations += width * area[derived.level]
    per_repeat = sum(
        (len(node.inputs) + len(node.residual) + 1 + len(node.op)) * width * area[node.level] for node in spec.nodes
    )
    report.activations += spec.repeats * per_repeat
    levels = {level_name(level): level for level in spec.levels}
    levels.update({node.id: node.level for node in spec.nodes})
    for node in spec.nodes:
        report.nodes[node.id] = Cost()
    # Repeat 0 sees the backbone's channels; repeats 1.. are identical (every input has the width).
    for repeat, times in ((0, 1), (1, spec.repeats - 1)):
        if times == 0:
            continue
        for node in spec.nodes:
            params = macs = 0
            for ref in node.inputs + node.residual:
                cin = channels.get(ref, width) if repeat == 0 else width
                p, m = _resample(cin, width, levels[ref], node.level, node.edges, spec, sizes)
                params, macs = params + p, macs + m
            params += _merge_params(node.merge, node.fusion, len(node.inputs), width)
            p, m = _op(node.op, width, spec.conv_bias, sizes[node.level])
            report.nodes[node.id].add(times * (params + p), times * (macs + m))
    for part in [report.lateral, report.derived, *report.nodes.values()]:
        report.total.add(part.params, part.macs)
    return report
