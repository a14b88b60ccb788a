"""``compare --seeds``: the spread of a row's AP over seeds and the within-noise rule, on made-up rows."""

from __future__ import annotations

import math

import pytest

from effdet_graph.comparison.table import CompareRow, ap_spread, mean_metrics, rows_to_json, within_noise


def _row(spec: str, aps: list[float]) -> CompareRow:
    seed_metrics = [{"AP": ap, "AP50": 2 * ap} for ap in aps]
    return CompareRow(spec, f"{spec}.yaml", 64, 3, 1, 1, 1, 1, 1.0, "cpu", 5, mean_metrics(seed_metrics), seed_metrics)


def test_spread_is_mean_sample_sd_and_range():
    spread = ap_spread(_row("a", [0.30, 0.32, 0.34]))
    assert spread is not None
    assert (spread.mean, spread.low, spread.high, spread.seeds) == (pytest.approx(0.32), 0.30, 0.34, 3)
    assert spread.std == pytest.approx(0.02) and spread.standard_error == pytest.approx(0.02 / math.sqrt(3))
    single = ap_spread(_row("b", [0.3]))
    assert single is not None and math.isnan(single.std)
    assert ap_spread(_row("c", [])) is None
    assert mean_metrics([{"AP": 0.1, "AP50": 0.2}, {"AP": 0.3, "AP50": 0.4}]) == pytest.approx({"AP": 0.2, "AP50": 0.3})


def test_within_noise_at_two_standard_errors():
    # sd of each: 0.02 / sqrt(2); se of each mean: 0.01; se of a difference: 0.0141; the threshold: 0.0283
    base = _row("base", [0.29, 0.31])
    near = _row("near", [0.317, 0.337])  # 0.027 apart: within
    far = _row("far", [0.320, 0.340])  # 0.030 apart: outside
    assert within_noise([base, near, far]) == [[1], [0, 2], [1]]
    same = [_row("x", [0.1, 0.1]), _row("y", [0.1, 0.1])]  # no spread, no difference: within
    assert within_noise(same) == [[1], [0]]
    assert within_noise([_row("one", [0.3]), _row("two", [0.3])]) == [[], []]  # one seed: noise unknown
    json_rows = rows_to_json([base, near, far])
    assert [r["within_noise_of"] for r in json_rows] == [["near"], ["base", "far"], ["near"]]
    assert json_rows[0]["AP_spread"]["std"] == pytest.approx(math.sqrt(0.0002))
    assert rows_to_json([_row("one", [0.3])])[0]["AP_spread"]["std"] is None
