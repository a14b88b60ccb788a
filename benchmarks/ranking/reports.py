"""The report of one recipe's stored runs: its ground truth, seed-to-seed agreement, control gap and each
method's agreement with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ranking import RESULTS_DIR
from benchmarks.ranking.correlation import seed_to_seed_tau
from benchmarks.ranking.methods import Method, context_for
from benchmarks.ranking.recipes import Recipe
from benchmarks.ranking.scoring import MethodResult, score_methods
from benchmarks.ranking.statistics import Anova, Interval, separated_pairs, split_half_tau, topology_effect
from benchmarks.ranking.store import RunStore
from benchmarks.ranking.topologies import BUILTIN_SET, CONTROL_NAME, FAMILIES, Topology

#: The ANOVA's p below which a family's topology effect is significant; the ranking methods are scored within
#: the families where it is.
SIGNIFICANT = 0.01


@dataclass(frozen=True)
class Resolvable:
    """What the ground truth resolves within one family of topologies: the topology effect, the pairs a Welch
    t-test separates at 0.05, and the split-half tau with its bootstrap interval."""

    family: str
    anova: Anova
    separated: tuple[int, int]  # pairs separated, pairs
    split_half: Interval

    @property
    def significant(self) -> bool:
        return self.anova.p < SIGNIFICANT

    def as_json(self) -> dict[str, Any]:
        return {
            **self.anova.as_json(),
            "icc": round(self.anova.icc, 3),
            "separated_pairs": list(self.separated),
            "split_half_tau": self.split_half.as_json(),
            "significant": self.significant,
        }

    def text(self) -> str:
        a, (k, n) = self.anova, self.separated
        return (
            f"{self.family}: {a.topologies} topologies x {a.seeds} seeds, topology effect F {a.f:.2f} p {a.p:.2g} "
            f"(ICC {a.icc:.2f}{'' if self.significant else ', not significant'}); {k} of {n} pairs separated "
            f"(Welch, 0.05); split-half tau {self.split_half}"
        )


@dataclass(frozen=True)
class Report:
    """What the harness measured for one recipe: the ground truth and each method's agreement with it."""

    recipe: Recipe
    seeds: tuple[int, ...]
    table: dict[str, dict[int, float]]  # topology -> seed -> AP
    truth: dict[str, float]  # topology -> mean AP over the seeds
    spread: dict[str, float]  # topology -> sample standard deviation of AP over the seeds
    ceiling: float  # seed-to-seed tau over the whole set
    builtin_ceiling: float  # seed-to-seed tau over the built-in topologies and the control
    methods: list[MethodResult]
    run_seconds: float  # mean seconds of one run of the recipe
    families: list[Resolvable]  # the families with at least 3 topologies, in FAMILIES order

    @property
    def minutes_per_run(self) -> float:
        """The mean wall time of a ground-truth run (training and evaluation), in minutes."""
        return self.run_seconds / 60

    @property
    def seed_sd(self) -> float:
        """The mean over topologies of the seed standard deviation of AP."""
        return float(np.mean(list(self.spread.values())))

    def control_gap(self, name: str) -> float:
        """How far ``name``'s mean AP lies above the control's, in units of :attr:`seed_sd`."""
        return (self.truth[name] - self.truth[CONTROL_NAME]) / self.seed_sd

    def as_json(self) -> dict[str, Any]:
        """The report as JSON data (what the README quotes)."""
        return {
            "recipe": self.recipe.as_json(),
            "recipe_hash": self.recipe.hash,
            "seeds": list(self.seeds),
            "topologies": len(self.truth),
            "seed_to_seed_tau": round(self.ceiling, 3),
            "seed_to_seed_tau_builtin": round(self.builtin_ceiling, 3),
            "builtin_topologies": len([n for n in self.truth if n in BUILTIN_SET]),
            "seed_sd": round(self.seed_sd, 4),
            "control_gap_sd": {n: round(self.control_gap(n), 1) for n in ("fpn", "bifpn") if n in self.truth},
            "mean_ap": {n: round(ap, 4) for n, ap in sorted(self.truth.items(), key=lambda kv: -kv[1])},
            "ap_by_seed": {n: [round(runs[s], 4) for s in self.seeds] for n, runs in self.table.items()},
            "minutes_per_run": round(self.minutes_per_run, 1),
            "ap_sd": {n: round(sd, 4) for n, sd in self.spread.items()},
            "families": {f.family: f.as_json() for f in self.families},
            "methods": [
                {
                    "name": r.name,
                    "family": r.family,
                    "tau": round(r.tau, 3),
                    "tau_95": [round(r.interval.low, 3), round(r.interval.high, 3)],
                    "rho": round(r.rho, 3),
                    "precision_at_3": round(r.precision_at_3, 2),
                    "seconds": round(r.seconds, 1),
                    "topologies": r.topologies,
                    "ceiling": round(r.ceiling, 3),
                }
                for r in self.methods
            ],
        }

    def text(self) -> str:
        """The report as the command prints it."""
        lines = [
            f"recipe {self.recipe.name} ({self.recipe.hash}), seeds {list(self.seeds)}, {len(self.truth)} topologies",
            f"seed-to-seed Kendall tau (ceiling): {self.ceiling:.3f} over the set, {self.builtin_ceiling:.3f} over "
            f"the built-in topologies and the control",
            f"seed standard deviation of AP (mean over topologies): {self.seed_sd:.4f}; "
            f"{self.minutes_per_run:.1f} minutes a run",
        ]
        if CONTROL_NAME in self.truth:
            gaps = ", ".join(f"{n} {self.control_gap(n):+.1f}" for n in ("fpn", "bifpn") if n in self.truth)
            lines.append(f"above the no-fusion control, in seed standard deviations: {gaps}")
        lines += [f.text() for f in self.families]
        lines.append(
            f"{'method':<44}{'family':<13}{'tau [95%]':>22}{'rho':>8}{'P@3':>6}{'seconds':>10}{'ranked':>7}"
            f"{'ceiling':>8}"
        )
        for r in self.methods:
            lines.append(
                f"{r.name:<44}{r.family:<13}{str(r.interval):>22}{r.rho:>8.3f}{r.precision_at_3:>6.2f}"
                f"{r.seconds:>10.1f}{r.topologies:>7}{r.ceiling:>8.3f}"
            )
        lines.append(
            "mean AP (sd): "
            + ", ".join(
                f"{n} {ap:.3f} ({self.spread[n]:.3f})" for n, ap in sorted(self.truth.items(), key=lambda kv: -kv[1])
            )
        )
        return "\n".join(lines)


def build_report(
    store: RunStore, topologies: Sequence[Topology], seeds: Sequence[int], recipe: Recipe, methods: Mapping[str, Method]
) -> Report | None:
    """The report of ``recipe``'s stored runs; ``None`` when fewer than 3 topologies have every seed. The methods
    are scored within each family (:data:`~ranking.topologies.FAMILIES`) whose topology effect is significant
    (:data:`SIGNIFICANT`); with a single seed, on the whole set, untested."""
    complete = store.complete(recipe, topologies, seeds)
    if len(complete) < 3:
        return None
    families = []
    for family in FAMILIES:
        members = {t.name: complete[t.name] for t in topologies if t.in_family(family) and t.name in complete}
        if len(members) >= 3 and len(seeds) >= 2:
            families.append(
                Resolvable(
                    family,
                    topology_effect(members, seeds),
                    separated_pairs(members, seeds),
                    split_half_tau(members, seeds),
                )
            )
    scored = [f.family for f in families if f.significant] if len(seeds) >= 2 else ["all"]
    context = context_for(recipe)
    truth = {name: float(np.mean([runs[s] for s in seeds])) for name, runs in complete.items()}
    spread = {name: float(np.std([runs[s] for s in seeds], ddof=1)) for name, runs in complete.items()}
    builtin = {name: runs for name, runs in complete.items() if name in BUILTIN_SET}
    return Report(
        recipe,
        tuple(seeds),
        complete,
        truth,
        spread,
        seed_to_seed_tau(complete, seeds),
        seed_to_seed_tau(builtin, seeds),
        [r for family in scored for r in score_methods(topologies, complete, seeds, context, methods, family)],
        store.mean_seconds(recipe, topologies),
        families,
    )


def report_path(recipe: Recipe) -> Path:
    """Where the report of ``recipe``'s stored runs goes: ``ranking_report-RECIPE.json`` beside the runs."""
    return RESULTS_DIR / f"ranking_report-{recipe.name}.json"
