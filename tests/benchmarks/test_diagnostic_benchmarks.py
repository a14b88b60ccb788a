"""The diagnostic benchmarks' measurements on models and runs whose answers are known: the receptive field of
stacked convolutions, and the per-topology summary of AP beside class-agnostic AP."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks import bench_class_agnostic as agnostic
from benchmarks import bench_receptive_field as receptive


def _levels(*convs: nn.Module):
    """Outputs of two levels: after the first module, and after all of them."""

    def outputs(images: torch.Tensor) -> list[torch.Tensor]:
        first = convs[0](images)
        last = first
        for conv in convs[1:]:
            last = conv(last)
        return [first, last]

    return outputs


def test_receptive_field_of_stacked_convolutions():
    """Three 3x3 convs see 7 px; a stride-2 3x3 conv then a 3x3 conv see 3 + 2 * 2 = 7 px; with uniform weights
    the gradient spreads out so that 90% of it needs a wider radius than a single conv's."""
    torch.manual_seed(0)
    convs = [nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(3)]
    for conv in convs:
        nn.init.constant_(conv.weight, 0.1)
    outputs = _levels(*convs)
    assert receptive.receptive_field(outputs, 33, 0)[0] == 3
    extent, r90 = receptive.receptive_field(outputs, 33, 1)
    assert extent == 7 and 1.0 < r90 <= 3 * 2**0.5
    assert receptive.receptive_field(outputs, 33, 0)[1] <= 2**0.5 + 1e-6
    strided = _levels(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    assert receptive.receptive_field(strided, 32, 1)[0] == 7


def test_receptive_field_is_clipped_by_the_image():
    convs = [nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1) for i in range(5)]  # 11 px, on a 9 px image
    assert receptive.receptive_field(_levels(*convs), 9, 1)[0] == 9


def test_class_agnostic_summary_per_topology():
    rows = [
        {"topology": "fpn", "seed": 0, "AP": 0.5, "AP_agnostic": 0.6},
        {"topology": "fpn", "seed": 1, "AP": 0.7, "AP_agnostic": 0.7},
        {"topology": "nofusion", "seed": 0, "AP": 0.72, "AP_agnostic": 0.73},
    ]
    fpn, control = agnostic.summarise(rows)
    assert fpn["seeds"] == [0, 1] and fpn["mean_AP"] == pytest.approx(0.6) and fpn["mean_AP_agnostic"] == 0.65
    assert fpn["sd_AP"] == pytest.approx(0.1414, abs=1e-4) and fpn["sd_AP_agnostic"] == pytest.approx(0.0707, abs=1e-4)
    assert control["topology"] == "nofusion" and control["sd_AP"] is None


def test_class_agnostic_overall_figures():
    rows = [
        {"topology": "fpn", "seed": 0, "AP": 0.5, "AP_agnostic": 0.625},
        {"topology": "fpn", "seed": 1, "AP": 0.7, "AP_agnostic": 0.7},
        {"topology": "fc_fpn", "seed": 0, "AP": 0.004, "AP_agnostic": 0.005},  # found nothing: no ratio
        {"topology": "fc_fpn", "seed": 1, "AP": 0.45, "AP_agnostic": 0.5},
    ]
    overall = agnostic.overall_figures(rows, agnostic.summarise(rows))
    assert overall["runs"] == 4 and overall["median_ratio"] == 0.9 and overall["lowest_ratio"] == 0.8
    assert overall["mean_sd_AP"] == pytest.approx((0.1414 + 0.3154) / 2, abs=1e-3)
