"""One search, start to finish: load the space, prepare the data, run an engine, write the results."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from graphspec import InputError
from search.objective import OBJECTIVES
from search.proxy import ProxyTask, prepare_dataset
from search.results import TrialRecord, best_records, leaderboard_table, write_results
from search.space import SearchSpace, load_search_space

ENGINES = ("optuna", "ray")
SMOKE_STEPS = 4
SMOKE_IMAGES = 24


@dataclass
class SearchOutcome:
    """What a search left in ``results_dir``."""

    results_dir: Path
    records: list[TrialRecord]
    best_specs: list[Path]


def smoke_space(space: SearchSpace) -> SearchSpace:
    """The same space with a tiny proxy task and data set: for CI and a first try."""
    return dataclasses.replace(
        space,
        proxy=dataclasses.replace(space.proxy, steps=SMOKE_STEPS, reports=1, image_size=128, batch_size=4),
        dataset=dataclasses.replace(space.dataset, images=SMOKE_IMAGES, image_size=128),
    )


def run_search(
    space_file: str | Path,
    engine: str = "optuna",
    trials: int = 8,
    objective: str = "ap",
    results_dir: str | Path | None = None,
    storage: str | None = None,
    resume: bool = False,
    smoke_test: bool = False,
    seed: int = 0,
    proxy_steps: int | None = None,
    gpus_per_trial: float | None = None,
) -> SearchOutcome:
    """Run (or resume: the same call again) a search and write its leaderboard, best spec(s) and plot.

    ``proxy_steps`` replaces the space's ``proxy.steps`` (a larger budget on a cluster, without editing the file).
    ``gpus_per_trial`` (Ray): GPUs each trial reserves; by default 1 when the cluster has GPUs now, else 0 (an
    autoscaling cluster whose GPU workers are not up yet needs it given).
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}'; choose one of {', '.join(ENGINES)}")
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective '{objective}'; choose one of {', '.join(OBJECTIVES)}")
    if trials < 1:
        raise InputError(f"--trials must be at least 1, got {trials}")
    if gpus_per_trial is not None and gpus_per_trial < 0:
        raise InputError(f"--gpus-per-trial must be at least 0, got {gpus_per_trial}")
    if proxy_steps is not None and proxy_steps < 1:
        raise InputError(f"--steps must be at least 1, got {proxy_steps}")
    space = load_search_space(space_file)
    if engine == "optuna" and storage is not None:
        from search.engines.optuna_engine import open_storage

        open_storage(storage)  # a bad URL fails here, before the results folder and data set are made
    if smoke_test:
        space = smoke_space(space)
    if proxy_steps is not None:
        space = dataclasses.replace(space, proxy=dataclasses.replace(space.proxy, steps=proxy_steps))
    results = Path(results_dir or Path("runs") / "search" / space.name).resolve()
    results.mkdir(parents=True, exist_ok=True)
    data = prepare_dataset(space, results)
    goal = OBJECTIVES[objective]
    make_task = functools.partial(ProxyTask, space, data, seed, objective == "ap_latency")
    if engine == "optuna":
        from search.engines.optuna_engine import run_optuna

        records = run_optuna(space, make_task(), goal, results, trials, storage=storage, resume=resume)
    else:
        import ray

        from search.engines.ray_engine import run_ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)  # joins RAY_ADDRESS's cluster when set
        if gpus_per_trial is None:
            gpus_per_trial = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        records = run_ray(
            space, make_task, goal, results, trials, storage_path=storage, resources={"cpu": 1, "gpu": gpus_per_trial}
        )
    best = write_results(records, goal, results)
    return SearchOutcome(results, records, best)


def summary(outcome: SearchOutcome, objective: str = "ap") -> str:
    """The leaderboard and where the results are, as printed at the end of a search."""
    goal = OBJECTIVES[objective]
    lines = [leaderboard_table(outcome.records, goal), ""]
    best = best_records(outcome.records, goal)
    if best:
        lines.append(
            "best: " + ", ".join(f"trial {r.number} (AP {r.metrics.get('AP', float('nan')):.3f})" for r in best)
        )
    lines += [f"results: {outcome.results_dir}  (leaderboard.csv, best/, pareto.png, trials/)"]
    lines += [f"best spec: {path}" for path in outcome.best_specs]
    return "\n".join(lines)
