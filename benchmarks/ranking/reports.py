"""The report of one recipe's stored runs: its ground truth, seed-to-seed agreement, control gap and each
method's agreement with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ranking import RESULTS_DIR
from ranking.correlation import seed_to_seed_tau
from ranking.methods import Method, context_for
from ranking.recipes import Recipe
from ranking.scoring import MethodResult, score_methods
from ranking.store import RunStore
from ranking.topologies import BUILTIN_SET, CONTROL_NAME, Topology


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
            "methods": [
                {
                    "name": r.name,
                    "tau": round(r.tau, 3),
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
        lines.append(f"{'method':<44}{'tau':>8}{'rho':>8}{'P@3':>8}{'seconds':>10}{'ranked':>8}{'ceiling':>9}")
        for r in self.methods:
            lines.append(
                f"{r.name:<44}{r.tau:>8.3f}{r.rho:>8.3f}{r.precision_at_3:>8.2f}{r.seconds:>10.1f}{r.topologies:>8}"
                f"{r.ceiling:>9.3f}"
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
    """The report of ``recipe``'s stored runs; ``None`` when fewer than 3 topologies have every seed."""
    complete = store.complete(recipe, topologies, seeds)
    if len(complete) < 3:
        return None
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
        score_methods(topologies, complete, seeds, context_for(recipe), methods),
        store.mean_seconds(recipe, topologies),
    )


def report_path(recipe: Recipe) -> Path:
    """Where the report of ``recipe``'s stored runs goes: ``ranking_report-RECIPE.json`` beside the runs."""
    return RESULTS_DIR / f"ranking_report-{recipe.name}.json"
