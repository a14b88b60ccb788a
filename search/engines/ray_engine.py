"""Ray Tune: ``tune.Tuner`` with ``OptunaSearch`` (define-by-run over the search space) and ASHA,
locally or on a cluster (``RAY_ADDRESS``, ``ray submit``); results under a ``storage_path``; a killed
run resumes with ``Tuner.restore``.

Known limits of the installed Ray we design around: ``OptunaSearch`` ignores Optuna pruners (ASHA
stops poor trials instead) and takes lists for multi-objective ``metric``/``mode``, for which ASHA
is not meant, so multi-objective runs have no scheduler.

Trial actors are reused (``reuse_actors``): a trial starts in a worker that has torch and this project
imported already instead of a new process (about 5 s each on a 2-core CPU, more than a smoke-test trial).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from graphspec.cost import Cost
from search.engines.optuna_engine import make_sampler, trial_dir, write_candidate
from search.objective import Evaluate, Objective
from search.rejection import Rejected
from search.results import TrialRecord
from search.sample import sample_point
from search.space import SearchSpace, load_search_space

REJECTED = "_rejected"
DETECTOR_COST = "_detector_cost"


class DefineByRun:
    """What ``OptunaSearch`` calls to draw a point; a rejected point (invalid, over budget) is marked so
    the trainable records it without training, and a whole-detector cost counted here is handed to the
    trainable so it is not counted twice. A class, not a closure: Tune pickles its searcher."""

    def __init__(self, space_file: str):
        self.space_file = space_file
        self.space: SearchSpace | None = None

    def __call__(self, trial: optuna.Trial) -> dict[str, Any] | None:
        self.space = self.space or load_search_space(self.space_file)
        try:
            candidate = sample_point(self.space, trial)
        except Rejected as rejection:
            return {REJECTED: str(rejection)}
        cost = candidate.detector_cost
        return None if cost is None else {DETECTOR_COST: [cost.params, cost.macs]}

    def __getstate__(self) -> dict[str, Any]:
        return {"space_file": self.space_file, "space": None}


def _trial_number(trial_dir: str | None = None) -> int:
    """Tune's running index of the trial, read from its folder name ``<trainable>_<id>_<index>_<config>``."""
    match = re.match(r"[^_]+_[0-9a-f]+_(\d+)", Path(trial_dir or tune.get_context().get_trial_dir()).name)
    return int(match.group(1)) if match else 0


def make_trainable(
    space_file: str, evaluate_factory: Callable[[], Evaluate], objective: Objective, results_dir: Path, proxy_steps: int
) -> Callable[[dict[str, Any]], None]:
    """The Tune function trainable: rebuild the candidate from the sampled values, train, report (the last
    result at ``step`` = ``proxy_steps``, the scheduler's time attribute)."""

    def trainable(config: dict[str, Any]) -> None:
        start = time.perf_counter()
        number = _trial_number()
        node = ray.get_runtime_context().get_node_id()
        if REJECTED in config:  # NaN metrics: a result without them ends the whole run (Tune's strict metric check,
            nan = dict.fromkeys(objective.metrics, float("nan"))  # OptunaSearch.on_trial_result); ASHA ignores NaN
            tune.report({**nan, "rejected": config[REJECTED], "node_id": node, "trial_number": number})
            return
        space = load_search_space(space_file)
        values = {k: v for k, v in config.items() if not k.startswith("_")}
        known = Cost(*config[DETECTOR_COST]) if DETECTOR_COST in config else None
        candidate = sample_point(space, optuna.trial.FixedTrial(values, number=number), detector_cost=known)
        directory = trial_dir(results_dir, number)
        spec_file = str(write_candidate(candidate, directory))
        cost = candidate.detector_cost or candidate.cost
        common = {
            "spec_file": spec_file,
            "params": cost.params,
            "macs": cost.macs,
            "node_id": node,
            "trial_number": number,
        }

        def report(step: int, ap: float) -> None:
            tune.report({"AP": ap, "step": step, **common})

        metrics = evaluate_factory()(candidate, directory, report)
        objective.values(candidate, metrics)  # raises on NaN: Tune records the trial as errored
        tune.report({**metrics, **common, "step": proxy_steps, "wall_s": time.perf_counter() - start, "finished": True})

    return trainable


def run_ray(
    space: SearchSpace,
    evaluate_factory: Callable[[], Evaluate],
    objective: Objective,
    results_dir: Path,
    n_trials: int,
    storage_path: str | None = None,
    name: str | None = None,
    resources: dict[str, float] | None = None,
    max_concurrent: int | None = None,
) -> list[TrialRecord]:
    """Run the search with Ray Tune (restoring it when ``storage_path/name`` holds a killed run)."""
    name = name or space.name
    storage = storage_path or str(results_dir.resolve().parent)
    experiment = f"{storage.rstrip('/')}/{name}"
    space_file = str(Path(space.file).resolve())
    trainable = tune.with_resources(
        make_trainable(space_file, evaluate_factory, objective, results_dir.resolve(), space.proxy.steps),
        resources or {"cpu": 1},
    )
    if tune.Tuner.can_restore(experiment):
        tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True, restart_errored=False)
    else:
        metric = objective.metrics[0] if not objective.multi else list(objective.metrics)
        mode = objective.directions[0][:3] if not objective.multi else [d[:3] for d in objective.directions]
        searcher = OptunaSearch(
            DefineByRun(space_file),
            metric=metric,
            mode=mode,
            seed=space.sampler.seed,
            sampler=make_sampler(space, objective),
        )
        scheduler = None
        if not objective.multi:
            steps = space.proxy.steps  # rungs in training steps: the first at the first intermediate AP
            scheduler = ASHAScheduler(
                time_attr="step", max_t=steps, grace_period=max(1, steps // space.proxy.reports), reduction_factor=3
            )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=n_trials,
                max_concurrent_trials=max_concurrent,
                metric=metric if scheduler else None,
                mode=mode if scheduler else None,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage,
                verbose=1,
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            ),
        )
    grid = tuner.fit()
    return records_of(grid)


def records_of(grid: tune.ResultGrid) -> list[TrialRecord]:
    """Every Tune trial as a leaderboard record."""
    records = []
    for i, result in enumerate(grid):
        metrics = result.metrics or {}
        # A trial that failed before its first report has no trial_number: read it from its folder's name.
        number = int(metrics.get("trial_number", _trial_number(result.path) if result.path else i))
        if result.error is not None:
            lines = [line for line in str(result.error).splitlines() if line.strip()]
            state, error = "failed", (lines[-1] if lines else type(result.error).__name__)[:300]
        elif "rejected" in metrics:
            state, error = "rejected", metrics["rejected"]
            metrics = {k: v for k, v in metrics.items() if k not in ("AP", "latency_ms", "macs")}  # NaN placeholders
        elif metrics.get("finished"):
            state, error = "complete", None
        else:
            state, error = "pruned", "stopped early by ASHA"
        records.append(
            TrialRecord(
                number=number,
                state=state,
                spec_file=metrics.get("spec_file"),
                params=metrics.get("params"),
                macs=metrics.get("macs"),
                metrics={
                    k: float(metrics[k])
                    for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "latency_ms")
                    if k in metrics
                },
                wall_s=metrics.get("wall_s"),
                error=error,
            )
        )
    return records
