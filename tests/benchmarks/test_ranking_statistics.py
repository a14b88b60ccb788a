"""The ground truth's statistics (benchmarks/ranking/statistics.py), on tables worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from benchmarks.ranking.statistics import halvings, separated_pairs, split_half_tau, tau_interval, topology_effect

#: Three topologies x three seeds: a's runs lie well above b's and c's, b and c overlap.
TABLE = {
    "a": {0: 0.70, 1: 0.71, 2: 0.72},
    "b": {0: 0.60, 1: 0.62, 2: 0.61},
    "c": {0: 0.61, 1: 0.60, 2: 0.62},
}


def test_topology_effect_is_the_one_way_anova_with_the_icc():
    anova = topology_effect(TABLE, [0, 1, 2])
    # grand mean 0.6433..; group means .71, .61, .61: SSB = 3 * (.0667^2 + 2 * .0333^2) = 0.02; SSW = 6 * 1e-4
    msb, msw = 0.02 / 2, 0.0006 / 6
    assert anova.f == pytest.approx(msb / msw) and anova.p == pytest.approx(stats.f.sf(msb / msw, 2, 6))
    assert anova.icc == pytest.approx((msb - msw) / (msb + 2 * msw))
    assert (anova.topologies, anova.seeds) == (3, 3)
    same = {name: {0: 0.5, 1: 0.6} for name in "abc"}
    assert topology_effect(same, [0, 1]).f == pytest.approx(0.0) and topology_effect(same, [0, 1]).p == 1.0
    with pytest.raises(ValueError, match="2 topologies with 2 seeds"):
        topology_effect(TABLE, [0])


def test_only_the_pairs_whose_means_a_welch_test_tells_apart_are_separated():
    assert separated_pairs(TABLE, [0, 1, 2]) == (2, 3)  # a-b and a-c; b and c are the same runs reordered


def test_halvings_split_the_seeds_into_two_halves_once_each():
    assert halvings([0, 1, 2, 3]) == [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    assert len(halvings(range(5))) == 10 and halvings([0, 1, 2])[0] == ((0,), (1, 2))


def test_split_half_tau_of_a_table_whose_every_seed_agrees_is_one():
    steady = {f"t{i}": {s: i + 0.01 * s for s in range(4)} for i in range(6)}
    interval = split_half_tau(steady, [0, 1, 2, 3], resamples=200)
    assert (interval.value, interval.low, interval.high) == pytest.approx((1.0, 1.0, 1.0))


def test_split_half_tau_of_noise_straddles_zero_and_its_interval_is_seeded():
    rng = np.random.default_rng(0)
    noise = {f"t{i}": {s: float(rng.normal()) for s in range(4)} for i in range(30)}
    interval = split_half_tau(noise, [0, 1, 2, 3], resamples=300)
    assert interval.low < 0 < interval.high and abs(interval.value) < 0.2
    assert split_half_tau(noise, [0, 1, 2, 3], resamples=300) == interval


def test_tau_interval_holds_the_tau_and_narrows_with_more_topologies():
    truth = list(range(10))
    scores = [0, 2, 1, 3, 5, 4, 6, 8, 7, 9]
    interval = tau_interval(truth, scores, resamples=500)
    assert interval.value == pytest.approx(stats.kendalltau(truth, scores).statistic)
    assert interval.low < interval.value < interval.high <= 1.0
    wide = tau_interval(truth * 4, scores * 4, resamples=500)
    assert wide.high - wide.low < interval.high - interval.low
