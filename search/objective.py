"""What a search optimises, independent of the engine that drives it.

An :class:`Evaluate` trains and evaluates one :class:`~search.sampling.candidate.Candidate` (the proxy task)
and returns its metrics; it calls ``report(step, ap)`` with intermediate AP so that an engine can
stop a poor trial early, unless ``report`` is ``None`` (nothing stops a multi-objective trial early: its
intermediate AP would be measured for nobody). :data:`OBJECTIVES` names what is optimised: AP alone, or AP against MACs
or against measured latency (a Pareto front).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from effdet_graph.inference import METRICS
from search.sampling.candidate import Candidate

Report = Callable[[int, float], None]

#: What an :class:`Evaluate` may return: COCO's metrics, and ``latency_ms`` where an objective needs it.
EVALUATE_METRICS = (*METRICS, "latency_ms")


class Evaluate(Protocol):
    def __call__(self, candidate: Candidate, trial_dir: Path, report: Report | None) -> dict[str, float]:
        """Train and evaluate ``candidate``, writing its files under ``trial_dir``; return metrics named in
        :data:`EVALUATE_METRICS`, with at least ``AP`` (and ``latency_ms`` if the objective needs it). With
        ``report`` ``None`` no intermediate AP is measured."""


MakeEvaluate = Callable[[], Evaluate]
"""A picklable callable that makes the evaluate (an engine may call it in another process or machine)."""


@dataclass(frozen=True)
class Objective:
    """Metric names with their directions; the first is the one single-objective engines use."""

    metrics: tuple[str, ...]
    directions: tuple[str, ...]

    @property
    def multi(self) -> bool:
        return len(self.metrics) > 1

    def values(self, candidate: Candidate, metrics: dict[str, float]) -> list[float]:
        """The objective values of one finished trial; raises ``FloatingPointError`` on NaN."""
        known = {
            **metrics,
            "macs": float(candidate.cost.macs if candidate.detector_cost is None else candidate.detector_cost.macs),
        }
        values = [float(known[name]) for name in self.metrics]
        if any(math.isnan(v) for v in values):
            raise FloatingPointError(f"the trial produced NaN: {dict(zip(self.metrics, values))}")
        return values


OBJECTIVES = {
    "ap": Objective(("AP",), ("maximize",)),
    "ap_macs": Objective(("AP", "macs"), ("maximize", "minimize")),
    "ap_latency": Objective(("AP", "latency_ms"), ("maximize", "minimize")),
}
