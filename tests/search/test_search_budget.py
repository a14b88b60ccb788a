"""Budgets: checked on the feature network (analytic) or the whole detector (meta device), before training;
over-budget points are typed rejections, counted."""

from __future__ import annotations

import pytest
import torch
from optuna.trial import FixedTrial
from search_helpers import variant_text

from effdet_graph.model.cost import detector_cost, detector_report
from effdet_graph.model.detector import EfficientDet
from graphspec.cost import Cost
from search.sampling.rejection import OverBudget, Rejected
from search.sampling.sample import sample_point
from search.sampling.stats import SampleStats
from search.space import load_search_space
from search.space.budget import Budget

SMALL_BIFPN = {"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "phi": 0, "fusion": "softmax"}  # D0 with softmax fusion
BIG_BIFPN = {"alpha": 1.0, "beta": 1.0, "gamma": 1.4, "phi": 3, "fusion": "sum"}  # 1408x1408 input


def test_budget_check_allows_the_bound_and_names_what_is_over():
    budget = Budget("feature_network", max_params=100, max_macs=1000)
    budget.check(Cost(100, 1000))
    message = r"^feature network over budget: params 101 > 100; MACs 2,000 > 1,000$"
    with pytest.raises(OverBudget, match=message) as info:
        budget.check(Cost(101, 2000))
    assert (info.value.scope, info.value.params, info.value.macs, info.value.kind) == (
        "feature_network",
        101,
        2000,
        "budget",
    )
    Budget("detector").check(Cost(10**12, 10**15))  # no bounds


def test_feature_network_budget_rejects_and_counts(write_space):
    text = variant_text("nasfpn_cells", "max_params: 1_000_000", "max_params: 1_000")
    space = load_search_space(write_space("tiny.yaml", text))
    stats = SampleStats()
    values = {
        f"c{i}.{key}": value
        for i in range(7)
        for key, value in (("level", "P4"), ("input0", "P3"), ("input1", "P5"), ("merge", "sum"))
    }
    with pytest.raises(OverBudget, match=r"feature network over budget: params [\d,]+ > 1,000$") as info:
        sample_point(space, FixedTrial(values, number=3), stats)
    assert info.value.suggestions == values
    counts = (stats.sampled, stats.repaired, stats.rejected_invalid, stats.rejected_budget, stats.accepted)
    assert counts == (1, 1, 0, 1, 0)
    assert stats.rates() == {"repaired": 1.0, "rejected_invalid": 0.0, "rejected_budget": 1.0, "accepted": 0.0}


def test_detector_budget_matches_the_detector_report_and_rejects_large_points(spaces):
    space = spaces["compound"]  # scope: detector, 12M params, 12 GMACs
    stats = SampleStats()
    candidate = sample_point(space, FixedTrial(SMALL_BIFPN), stats)
    report = detector_report(space.template.path, 0, num_classes=5, overrides=candidate.overrides)
    assert candidate.detector_cost == Cost(report["params"], report["macs"])
    assert candidate.cost == Cost(
        report["parts"]["feature_network"]["params"], report["parts"]["feature_network"]["macs"]
    )
    with pytest.raises(Rejected) as info:
        sample_point(space, FixedTrial(BIG_BIFPN), stats)
    assert isinstance(info.value, OverBudget) and info.value.scope == "detector"
    assert info.value.macs > 12_000_000_000
    assert (stats.sampled, stats.repaired, stats.rejected_budget, stats.accepted) == (2, 0, 1, 1)


def test_a_known_detector_cost_is_checked_not_counted_again(spaces, monkeypatch):
    space = spaces["compound"]
    counted = sample_point(space, FixedTrial(SMALL_BIFPN))
    monkeypatch.setattr("search.space.budget.whole_detector_cost", lambda *_: pytest.fail("counted again"))
    again = sample_point(space, FixedTrial(SMALL_BIFPN), detector_cost=counted.detector_cost)
    assert again == counted
    with pytest.raises(OverBudget, match="detector over budget: params 12,000,001 > 12,000,000"):
        sample_point(space, FixedTrial(SMALL_BIFPN), detector_cost=Cost(12_000_001, 1))


def test_the_same_detector_under_another_trial_number_is_counted_once(spaces, monkeypatch):
    import effdet_graph.model.cost

    counted = []
    count = effdet_graph.model.cost._count_detector
    monkeypatch.setattr(effdet_graph.model.cost, "_detector_costs", {})
    monkeypatch.setattr(effdet_graph.model.cost, "_count_detector", lambda *args: counted.append(args) or count(*args))
    first = sample_point(spaces["compound"], FixedTrial(SMALL_BIFPN, number=1))
    second = sample_point(spaces["compound"], FixedTrial(SMALL_BIFPN, number=2))
    assert first.file_name != second.file_name and first.detector_cost == second.detector_cost
    assert len(counted) == 1


@pytest.mark.parametrize("phi, fusion", [(1, "fast_normalized"), (2, "sum"), (2, "softmax")])
def test_the_detector_budget_count_equals_counting_the_built_detector(spaces, phi, fusion):
    candidate = sample_point(spaces["compound"], FixedTrial({**SMALL_BIFPN, "phi": phi, "fusion": fusion}))
    with torch.device("meta"):
        model = EfficientDet(candidate.spec(), candidate.detector_config())
    report = detector_cost(model, candidate.detector.resolution)
    assert candidate.detector_cost == Cost(report["params"], report["macs"])
    assert candidate.detector.resolution > 512 and candidate.detector.backbone == f"tf_efficientnet_b{phi}"
