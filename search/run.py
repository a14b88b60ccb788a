"""One search, start to finish: load the space, prepare the data, run an engine, write the results."""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from effdet_graph import InputError
from effdet_graph.comparison.table import CompareRow
from effdet_graph.comparison.text import format_table
from graphspec.errors import escape, quote
from search.engines import MakeEvaluate, TrialResources, engine_class
from search.objective import OBJECTIVES
from search.reporting.results import (
    LEADERBOARD,
    RESULT_FILES,
    TrialRecord,
    best_records,
    leaderboard_table,
    write_results,
)
from search.reporting.retrain import RETRAIN_TABLE, check_retrain, retrain_best
from search.space.loader import load_search_space
from search.space.types import SearchSpace
from search.strategies.oneshot.union import TOPOLOGY_KINDS, topology_choices
from search.strategies.proxy import ProxyTask, prepare_dataset, prepare_shared_cache

SMOKE_STEPS = 4
SMOKE_IMAGES = 24
STRATEGIES = ("proxy", "oneshot")
#: The objective and trial count of each strategy where none is given: a one-shot trial costs an evaluation, not
#: a training, so it scores many candidates, AP against MACs (NSGA-II).
DEFAULT_OBJECTIVE = {"proxy": "ap", "oneshot": "ap_macs"}
DEFAULT_TRIALS = {"proxy": 8, "oneshot": 100}
STATE_WORDS = {"failed": "failed", "rejected": "rejected", "pruned": "stopped early"}


@dataclass
class SearchOutcome:
    """What a search left in ``results_dir``."""

    results_dir: Path
    records: list[TrialRecord]
    best_specs: list[Path]
    retrained: list[CompareRow] = dataclasses.field(default_factory=list)


def smoke_space(space: SearchSpace) -> SearchSpace:
    """The same space with a tiny proxy task and data set: for CI and a first try."""
    return dataclasses.replace(
        space,
        proxy=dataclasses.replace(space.proxy, steps=SMOKE_STEPS, reports=1, image_size=128, batch_size=4),
        dataset=dataclasses.replace(space.dataset, images=SMOKE_IMAGES, image_size=128),
        oneshot=dataclasses.replace(space.oneshot, steps=SMOKE_STEPS, bn_batches=1),
    )


def run_search(
    space_file: str | Path,
    engine: str = "optuna",
    trials: int | None = None,
    objective: str | None = None,
    results_dir: str | Path | None = None,
    storage: str | None = None,
    resume: bool = False,
    smoke_test: bool = False,
    seed: int = 0,
    proxy_steps: int | None = None,
    gpus_per_trial: float | None = None,
    device: str | None = None,
    strategy: str = "proxy",
    progress: bool | None = None,
    retrain: int = 0,
    retrain_seeds: int = 2,
    retrain_steps: int | None = None,
) -> SearchOutcome:
    """Run (or resume: the same call again) a search and write its leaderboard, best spec(s) and plot.

    Every argument is checked before the results folder, the data set or any trial is made.

    Args:
        space_file: the search-space file.
        engine: a registered engine's name (:func:`search.engines.engine_names`).
        trials: finished trials to reach in all (default: :data:`DEFAULT_TRIALS` of the strategy).
        objective: a name in :data:`search.objective.OBJECTIVES` (default: :data:`DEFAULT_OBJECTIVE` of the
            strategy).
        results_dir: the results folder (default ``runs/search/<space name>``; ``<space name>-oneshot`` with the
            ``oneshot`` strategy, whose trials are not the proxy's).
        storage: the engine's storage (Optuna: a database URL; Ray: a ``storage_path``).
        resume: continue an existing search; fail when there is none.
        smoke_test: a tiny proxy task and data set (CI, a first try).
        seed: the seed of the proxy training.
        proxy_steps: replaces the space's ``proxy.steps`` (a larger budget on a cluster, without editing the file);
            with the ``oneshot`` strategy, its ``oneshot.steps`` (the supernet's training).
        gpus_per_trial: GPUs each trial reserves (Ray; by default 1 when the cluster has GPUs now, else 0: an
            autoscaling cluster whose GPU workers are not up yet needs it given).
        device: the device the proxy task trains and measures latency on (default: CUDA when present).
        strategy: ``proxy`` (every trial trains its candidate) or ``oneshot`` (a supernet trained once, trials
            measure candidates with its weights: :mod:`search.strategies.oneshot.strategy`; topology spaces only).
        progress: show the progress bar of the supernet training or of the trials' shared feature cache (``None``:
            only when stderr is a terminal).
        retrain: after the search, train the template and this many of the best trials no larger than it
            stand-alone (:mod:`search.reporting.retrain`; topology spaces only).
        retrain_seeds: trainings of each, seeds 0 to ``retrain_seeds - 1``.
        retrain_steps: their training steps (default: the space's ``proxy.steps``).

    Returns:
        What the search left in the results folder.

    Raises:
        InputError: a bad argument, space file or storage; the message is one line.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {quote(strategy)}; choose one of {', '.join(STRATEGIES)}")
    objective = objective or DEFAULT_OBJECTIVE[strategy]
    trials = DEFAULT_TRIALS[strategy] if trials is None else trials
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {quote(objective)}; choose one of {', '.join(OBJECTIVES)}")
    if trials < 1:
        raise InputError(f"--trials must be at least 1, got {trials}")
    if gpus_per_trial is not None and gpus_per_trial < 0:
        raise InputError(f"--gpus-per-trial must be at least 0, got {gpus_per_trial}")
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")
    if proxy_steps is not None and proxy_steps < 1:
        raise InputError(f"--steps must be at least 1, got {proxy_steps}")
    check_retrain(retrain, retrain_seeds, retrain_steps)
    search_engine = engine_class(engine)()
    space = load_search_space(space_file)
    if strategy == "oneshot":
        topology_choices(space)  # a supernet holds topology spaces only
    if retrain and space.kind not in TOPOLOGY_KINDS:
        raise InputError(
            f"--retrain compares topologies on one detector; {space.file} is a {quote(space.kind)} space, whose "
            "candidates differ in their detector; leave --retrain out"
        )
    resources = TrialResources(gpus=gpus_per_trial)
    search_engine.check(storage, device, resources)
    if smoke_test:
        space = smoke_space(space)
    if proxy_steps is not None and strategy == "oneshot":
        space = dataclasses.replace(space, oneshot=dataclasses.replace(space.oneshot, steps=proxy_steps))
    elif proxy_steps is not None:
        space = dataclasses.replace(space, proxy=dataclasses.replace(space.proxy, steps=proxy_steps))
    default = Path("runs") / "search" / (space.name if strategy == "proxy" else f"{space.name}-{strategy}")
    results = Path(results_dir or default).resolve()
    check_results_dir(results, "--out" if results_dir else "the results folder")
    results.mkdir(parents=True, exist_ok=True)
    data = prepare_dataset(space, results)
    goal = OBJECTIVES[objective]
    latency = objective == "ap_latency"
    make_evaluate: MakeEvaluate
    if strategy == "oneshot":
        from search.strategies.oneshot.evaluation import InheritedWeights
        from search.strategies.oneshot.strategy import train_space_supernet

        supernet = train_space_supernet(space, data, results, seed, device, progress=progress)
        make_evaluate = functools.partial(
            InheritedWeights, space, supernet, data, measure_latency=latency, device=device
        )
    else:
        if space.proxy.feature_cache and space.kind in TOPOLOGY_KINDS:  # one detector: every trial shares one cache
            prepare_shared_cache(space, topology_choices(space).detector, data, results, seed, device, progress)
        make_evaluate = functools.partial(ProxyTask, space, data, seed, measure_latency=latency, device=device)
    records = search_engine.run(
        space, make_evaluate, goal, results, trials=trials, storage=storage, resume=resume, resources=resources
    )
    best = write_results(records, goal, results, strategy)
    retrained: list[CompareRow] = []
    if retrain:
        retrained = retrain_best(
            space,
            topology_choices(space).detector,
            records,
            goal,
            data,
            results,
            retrain,
            retrain_seeds,
            retrain_steps or space.proxy.steps,
            device,
            progress,
        )
    return SearchOutcome(results, records, best, retrained)


def check_results_dir(results: Path, option: str) -> None:
    """Fail unless ``results`` is a folder or can be made one (no file in its place or above it).

    Args:
        results: The results folder (absolute).
        option: How the message names it (``--out``).

    Raises:
        InputError: one line naming ``option``; nothing is written.
    """
    for path in (results, *results.parents):
        if path.exists():
            if not path.is_dir():
                what = "is a file" if path == results else f"lies under the file {str(path)!r}"
                raise InputError(f"{option} {str(results)!r} {what}, not a folder; give a folder for the results")
            return


def summary(outcome: SearchOutcome, objective: str = "ap") -> str:
    """The leaderboard and where the results are, as printed at the end of a search: only the files that exist."""
    goal = OBJECTIVES[objective]
    lines = [leaderboard_table(outcome.records, goal), ""]
    best = best_records(outcome.records, goal)
    if best:
        lines.append(
            "best: " + ", ".join(f"trial {r.number} (AP {r.metrics.get('AP', float('nan')):.3f})" for r in best)
        )
    if outcome.retrained:
        lines += [f"retrained stand-alone ({RETRAIN_TABLE}):", format_table(outcome.retrained), ""]
    written = [name for name in (*RESULT_FILES, RETRAIN_TABLE) if (outcome.results_dir / name.rstrip("/")).exists()]
    lines += [f"results: {outcome.results_dir}" + (f"  ({', '.join(written)})" if written else "")]
    lines += [f"best spec: {path}" for path in outcome.best_specs]
    return "\n".join(lines)


def failure(outcome: SearchOutcome) -> str | None:
    """One line when no trial of the search completed and none is still running (every one failed, was rejected
    or was stopped early), naming the counts and the first error; ``None`` otherwise."""
    records = sorted(outcome.records, key=lambda r: r.number)
    if not records or any(r.state in ("complete", "running") for r in records):
        return None
    counts = Counter(r.state for r in records)
    states = ", ".join(f"{n} {STATE_WORDS.get(state, state)}" for state, n in sorted(counts.items()))
    first = next((r for r in records if r.error), None)
    where = f"; first error (trial {first.number}): {escape(first.error)}" if first and first.error else ""
    leaderboard = outcome.results_dir / LEADERBOARD
    return f"no trial of {len(records)} completed ({states}){where}; see {leaderboard}"
