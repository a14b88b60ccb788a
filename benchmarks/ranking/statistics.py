"""What a ground truth can resolve: the topology effect (one-way ANOVA and the intraclass correlation), the pairs
of topologies a Welch t-test separates, the split-half noise ceiling of Kendall's tau, and bootstrap intervals.

A table maps each topology to its runs' APs by seed (``{name: {seed: AP}}``); every function uses the seeds given
and the topologies that have all of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from benchmarks.ranking.correlation import kendall_tau

Table = Mapping[str, Mapping[int, float]]

#: Bootstrap resamples of an interval, and the seed they are drawn with (an interval is the same on every run).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def _matrix(table: Table, seeds: Sequence[int]) -> tuple[list[str], np.ndarray]:
    """The topologies with every seed and their APs, ``(T, S)``."""
    names = [name for name, runs in table.items() if all(s in runs for s in seeds)]
    return names, np.array([[table[n][s] for s in seeds] for n in names], dtype=float).reshape(len(names), len(seeds))


@dataclass(frozen=True)
class Anova:
    """A one-way ANOVA of AP by topology (each topology a group of its seeds' runs)."""

    topologies: int
    seeds: int
    f: float
    p: float
    icc: float  # ICC(1): the share of a single run's AP variance that is the topology's

    def as_json(self) -> dict[str, float | int]:
        return {"topologies": self.topologies, "seeds": self.seeds, "F": round(self.f, 2), "p": float(f"{self.p:.3g}")}


def topology_effect(table: Table, seeds: Sequence[int]) -> Anova:
    """The one-way ANOVA of AP by topology over ``seeds`` (``scipy.stats.f_oneway``), with the intraclass
    correlation ICC(1) = (MSB - MSW) / (MSB + (k - 1) MSW), ``k`` the number of seeds."""
    names, ap = _matrix(table, seeds)
    t, k = ap.shape
    if t < 2 or k < 2:
        raise ValueError(f"an ANOVA needs 2 topologies with 2 seeds each, got {t} with {k}")
    result = stats.f_oneway(*ap)
    between = k * ((ap.mean(axis=1) - ap.mean()) ** 2).sum() / (t - 1)
    within = ((ap - ap.mean(axis=1, keepdims=True)) ** 2).sum() / (t * (k - 1))
    icc = (between - within) / (between + (k - 1) * within) if between + (k - 1) * within > 0 else float("nan")
    return Anova(t, k, float(result.statistic), float(result.pvalue), float(icc))


def separated_pairs(table: Table, seeds: Sequence[int], alpha: float = 0.05) -> tuple[int, int]:
    """How many pairs of topologies a two-sided Welch t-test separates at ``alpha`` (their mean APs over ``seeds``
    differ), and how many pairs there are."""
    _, ap = _matrix(table, seeds)
    pairs = list(itertools.combinations(range(len(ap)), 2))
    separated = sum(bool(stats.ttest_ind(ap[i], ap[j], equal_var=False).pvalue < alpha) for i, j in pairs)
    return separated, len(pairs)


def halvings(seeds: Sequence[int]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every split of ``seeds`` into two halves (sizes ``n // 2`` and the rest), each split once."""
    seeds = tuple(seeds)
    size = len(seeds) // 2
    splits = []
    for first in itertools.combinations(seeds, size):
        rest = tuple(s for s in seeds if s not in first)
        if size * 2 == len(seeds) and (rest, first) in splits:
            continue
        splits.append((first, rest))
    return splits


def _split_half_tau(ap: np.ndarray, splits: Sequence[tuple[Sequence[int], Sequence[int]]]) -> float:
    """The mean over ``splits`` (column indices) of tau between the two halves' mean APs."""
    return float(np.mean([kendall_tau(ap[:, list(a)].mean(axis=1), ap[:, list(b)].mean(axis=1)) for a, b in splits]))


@dataclass(frozen=True)
class Interval:
    """A statistic and its percentile bootstrap interval (resampling topologies)."""

    value: float
    low: float
    high: float
    level: float = 0.95

    def as_json(self) -> list[float]:
        return [round(self.value, 3), round(self.low, 3), round(self.high, 3)]

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    count: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> Interval:
    """``statistic`` of the ``count`` items (given their indices) and its percentile interval over ``resamples``
    resamples of the items with replacement (a resample whose statistic is undefined is left out)."""
    rng = np.random.default_rng(seed)
    value = statistic(np.arange(count))
    draws = np.array([statistic(rng.integers(0, count, count)) for _ in range(resamples)])
    draws = draws[np.isfinite(draws)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail]) if len(draws) else (float("nan"), float("nan"))
    return Interval(float(value), float(low), float(high), level)


def split_half_tau(table: Table, seeds: Sequence[int], resamples: int = BOOTSTRAP_RESAMPLES) -> Interval:
    """The split-half noise ceiling: Kendall's tau between the mean AP of one half of ``seeds`` and that of the
    other, averaged over every halving (:func:`halvings`), with its bootstrap interval over topologies."""
    _, ap = _matrix(table, seeds)
    if len(seeds) < 2:
        raise ValueError("a split-half tau needs at least 2 seeds")
    columns = {s: i for i, s in enumerate(seeds)}
    splits = [([columns[s] for s in a], [columns[s] for s in b]) for a, b in halvings(seeds)]
    return bootstrap(lambda rows: _split_half_tau(ap[rows], splits), len(ap), resamples)


def tau_interval(truth: Sequence[float], scores: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES) -> Interval:
    """Kendall's tau between ``truth`` and ``scores`` with its bootstrap interval over the items."""
    x, y = np.asarray(truth, dtype=float), np.asarray(scores, dtype=float)
    return bootstrap(lambda rows: kendall_tau(x[rows], y[rows]), len(x), resamples)
