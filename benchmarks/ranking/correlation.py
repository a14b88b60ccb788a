"""How well one ranking agrees with another: Kendall tau, Spearman rho, precision@k and the seed-to-seed tau."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either list corrected for: ``scipy.stats.kendalltau``); nan if undefined (fewer
    than 2 items, or a list constant)."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    if len(x) < 2:
        return float("nan")
    return float(stats.kendalltau(x, y).statistic)


def _ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties given their mean rank."""
    array = np.asarray(values, dtype=float)
    order = np.argsort(array, kind="stable")
    ranks = np.empty(len(array))
    ranks[order] = np.arange(1, len(array) + 1)
    for value in np.unique(array):
        tied = array == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the (tie-averaged) ranks; nan if a list is constant."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denominator) if denominator else float("nan")


def precision_at_k(truth: Sequence[float], scores: Sequence[float], k: int = 3) -> float:
    """The fraction of the ``k`` best items by ``truth`` that are among the ``k`` best by ``scores`` (higher
    is better in both; ties broken by position)."""
    best = set(np.argsort(-np.asarray(truth, dtype=float), kind="stable")[:k].tolist())
    picked = set(np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k].tolist())
    return len(best & picked) / k


def seed_to_seed_tau(table: Mapping[str, Mapping[int, float]], seeds: Sequence[int]) -> float:
    """Mean Kendall tau over pairs of seeds, on the topologies that have every one of them; nan if < 2 seeds."""
    names = [name for name, runs in table.items() if all(s in runs for s in seeds)]
    taus = [
        kendall_tau([table[n][a] for n in names], [table[n][b] for n in names])
        for a, b in itertools.combinations(seeds, 2)
    ]
    return float(np.mean(taus)) if taus else float("nan")
