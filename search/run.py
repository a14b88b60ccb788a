"""One search, start to finish: load the space, prepare the data, let the strategy and the engine run the trials,
write the results."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from effdet_graph import InputError
from effdet_graph.comparison import CompareRow, format_table
from graphspec.errors import escape, quote
from search.engines import ENGINES
from search.objective import Objective
from search.reporting import (
    LEADERBOARD,
    RESULT_FILES,
    RETRAIN_TABLE,
    TrialRecord,
    best_records,
    leaderboard_table,
    retrain_best,
    write_results,
)
from search.request import SearchRequest
from search.space.loader import load_search_space
from search.space.types import TOPOLOGY_KINDS, SearchSpace, topology_choices
from search.strategies import STRATEGIES, SearchStrategy, prepare_dataset

SMOKE_STEPS = 4
SMOKE_IMAGES = 24
STATE_WORDS = {"failed": "failed", "rejected": "rejected", "pruned": "stopped early"}


@dataclass
class SearchOutcome:
    """What a search left in ``results_dir``."""

    results_dir: Path
    records: list[TrialRecord]
    best_specs: list[Path]
    objective: Objective
    retrained: list[CompareRow] = dataclasses.field(default_factory=list)


def smoke_space(space: SearchSpace) -> SearchSpace:
    """The same space with a tiny proxy task and data set: for CI and a first try."""
    return dataclasses.replace(
        space,
        proxy=dataclasses.replace(space.proxy, steps=SMOKE_STEPS, reports=1, image_size=128, batch_size=4),
        dataset=dataclasses.replace(space.dataset, images=SMOKE_IMAGES, image_size=128),
        oneshot=dataclasses.replace(space.oneshot, steps=SMOKE_STEPS, bn_batches=1),
    )


def run_search(request: SearchRequest) -> SearchOutcome:
    """Run (or resume: the same request again) a search and write its leaderboard, best spec(s) and plot.

    Everything is checked before the results folder, the data set or any trial is made.

    Args:
        request: the search (:class:`~search.request.SearchRequest`; its fields were checked when it was made).

    Returns:
        What the search left in the results folder.

    Raises:
        InputError: a bad space file, storage or device; the message is one line.
    """
    strategy = STRATEGIES.load(request.strategy)()
    request = request.with_defaults(strategy.default_trials, strategy.default_objective)
    engine = ENGINES.load(request.engine)()
    space = searched_space(request, strategy)
    engine.check(request)
    results = results_folder(request, space, strategy)
    data = prepare_dataset(space, results)
    make_evaluate = strategy.prepare(space, request, data, results)
    records = engine.run(space, make_evaluate, results, request)
    best = write_results(records, request.goal, results, strategy.name)
    retrained: list[CompareRow] = []
    if request.retrain:
        steps = request.retrain_steps or space.proxy.steps
        detector = topology_choices(space).detector
        retrained = retrain_best(space, detector, records, request, data, results, steps)
    return SearchOutcome(results, records, best, request.goal, retrained)


def searched_space(request: SearchRequest, strategy: SearchStrategy) -> SearchSpace:
    """The request's space, checked for its strategy and retraining, made tiny for a smoke test, with the
    request's steps."""
    space = load_search_space(request.space_file)
    strategy.check(space)
    if request.retrain and space.kind not in TOPOLOGY_KINDS:
        raise InputError(
            f"--retrain compares topologies on one detector; {space.file} is a {quote(space.kind)} space, whose "
            "candidates differ in their detector; leave --retrain out"
        )
    if request.smoke_test:
        space = smoke_space(space)
    return space if request.steps is None else strategy.with_steps(space, request.steps)


def results_folder(request: SearchRequest, space: SearchSpace, strategy: SearchStrategy) -> Path:
    """The results folder, made: ``--out``, or ``runs/search/<space name><the strategy's suffix>``.

    Raises:
        InputError: a file is in its place or above it; nothing is written.
    """
    default = Path("runs") / "search" / f"{space.name}{strategy.results_suffix}"
    results = Path(request.results_dir or default).resolve()
    check_results_dir(results, "--out" if request.results_dir else "the results folder")
    results.mkdir(parents=True, exist_ok=True)
    return results


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


def summary(outcome: SearchOutcome) -> str:
    """The leaderboard and where the results are, as printed at the end of a search: only the files that exist."""
    goal = outcome.objective
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
