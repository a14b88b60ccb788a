"""Ranking methods scored against the ground truth, and the methods made from stored results: short trainings
(the search's proxy) and a one-shot supernet's inherited weights."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ranking import RESULTS_DIR
from benchmarks.ranking.correlation import precision_at_k, seed_to_seed_tau, spearman_rho
from benchmarks.ranking.methods import METHODS, Context, Method
from benchmarks.ranking.recipes import Recipe
from benchmarks.ranking.statistics import Interval, tau_interval
from benchmarks.ranking.store import RunStore
from benchmarks.ranking.topologies import Topology

ONESHOT_RESULTS = RESULTS_DIR / "oneshot.json"


@dataclass(frozen=True)
class StoredTraining:
    """A ranking method that trains: each topology's AP from a stored run of ``recipe`` with ``seed`` (made by
    ``--proxies``, or another recipe's runs named by ``ranking_runs``); it covers the topologies with such a run,
    and its cost is the runs' recorded seconds, not the lookup's."""

    recipe: Recipe
    store: RunStore
    seed: int = 0

    def _run(self, topology: Topology) -> Mapping[str, Any]:
        run = self.store.get(RunStore.key(topology, self.seed, self.recipe))
        if run is None:
            raise KeyError(f"no stored run of {topology.name} seed {self.seed} with recipe {self.recipe.name}")
        return run

    def covers(self, topology: Topology) -> bool:
        """Whether ``topology`` has a stored run to rank it by."""
        return self.store.has(RunStore.key(topology, self.seed, self.recipe))

    def __call__(self, topology: Topology, context: Context) -> float:
        return float(self._run(topology)["metrics"]["AP"])

    def seconds(self, topologies: Sequence[Topology]) -> float:
        """The recorded seconds of the runs of ``topologies``."""
        return float(sum(self._run(t)["seconds"] for t in topologies))


@dataclass(frozen=True)
class MethodResult:
    """One method's agreement with the ground truth."""

    name: str
    interval: Interval  # Kendall tau with its 95% bootstrap interval over the topologies ranked
    rho: float
    precision_at_3: float
    seconds: float
    topologies: int  # how many topologies it ranked (a supernet ranks those of its space)
    ceiling: float  # the seed-to-seed tau over those topologies
    family: str = "all"  # the family of the set it ranked (ranking.topologies.FAMILIES)

    @property
    def tau(self) -> float:
        """Kendall tau against the ground truth."""
        return self.interval.value


def score_methods(
    topologies: Sequence[Topology],
    table: Mapping[str, Mapping[int, float]],
    seeds: Sequence[int],
    context: Context,
    methods: Mapping[str, Method] = METHODS,
    family: str = "all",
) -> list[MethodResult]:
    """Score every method against the mean AP over ``seeds`` on the topologies of ``family`` with a ground truth
    in ``table`` (and, for a method with ``covers``, that it covers)."""
    results = []
    for name, method in methods.items():
        covers = getattr(method, "covers", None)
        ranked = [t for t in topologies if t.in_family(family) and t.name in table and (covers is None or covers(t))]
        target = [float(np.mean([table[t.name][s] for s in seeds])) for t in ranked]
        started = time.perf_counter()
        scores = [method(t, context) for t in ranked]
        seconds = method.seconds(ranked) if hasattr(method, "seconds") else time.perf_counter() - started
        ceiling = seed_to_seed_tau({t.name: table[t.name] for t in ranked}, seeds)
        results.append(
            MethodResult(
                name,
                tau_interval(target, scores),
                spearman_rho(target, scores),
                precision_at_k(target, scores),
                seconds,
                len(ranked),
                ceiling,
                family,
            )
        )
    return results


@dataclass(frozen=True)
class StoredInherited:
    """A ranking method from ``benchmarks.bench_oneshot``'s results: each topology's AP with the weights it inherits
    from the supernet trained with ``sampling``, BatchNorm statistics recomputed on ``bn_batches`` batches (0:
    the supernet's own). It covers the topologies of the supernet's space; its cost is the supernet's training
    plus the measurements."""

    sampling: str
    bn_batches: int
    supernet: Mapping[str, Any]  # the sampling's entry of benchmarks/results/oneshot.json

    @property
    def scores(self) -> Mapping[str, Mapping[str, float]]:
        return self.supernet["scores"].get(str(self.bn_batches), {})

    def covers(self, topology: Topology) -> bool:
        return topology.name in self.scores

    def __call__(self, topology: Topology, context: Context) -> float:
        return float(self.scores[topology.name]["AP"])

    def seconds(self, topologies: Sequence[Topology]) -> float:
        """The supernet's training seconds plus the measurements of ``topologies``."""
        return float(self.supernet["train_seconds"] + sum(self.scores[t.name]["seconds"] for t in topologies))


def oneshot_methods(recipe: Recipe, path: Path = ONESHOT_RESULTS) -> dict[str, Method]:
    """The supernet rows of ``benchmarks.bench_oneshot``'s results for ``recipe``: each sampling, without and with
    BatchNorm recalibration (on the search's default number of batches, else the most measured)."""
    from search.space import OneShotConfig

    if not path.exists():
        return {}
    entry = json.loads(path.read_text(encoding="utf-8")).get(recipe.hash, {})
    methods: dict[str, Method] = {}
    for sampling, supernet in entry.get("supernets", {}).items():
        measured = sorted(int(k) for k, scores in supernet.get("scores", {}).items() if scores)
        default = OneShotConfig.bn_batches if OneShotConfig.bn_batches in measured else max(measured, default=0)
        for k in sorted({0, default} & set(measured)):
            label = "no BN recalibration" if k == 0 else f"BN on {k} batches"
            methods[f"supernet {sampling}, {label}"] = StoredInherited(sampling, k, supernet)
    return methods
