"""Optuna: TPE (or random) for AP alone, NSGA-II for AP against cost; named, resumable studies.

Storage is a database URL: SQLite (the default, one file in the results folder) for one machine,
PostgreSQL or another server database for workers on several machines (SQLite must not be shared
between machines). Workers send heartbeats; a trial whose worker was killed is marked failed when
its heartbeat stops, and a restarted search — the same command — continues the study until
``n_trials`` trials have finished, without running finished ones again.
"""

from __future__ import annotations

import gc
import itertools
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from graphspec import InputError
from search.candidate import Candidate
from search.objective import Evaluate, Objective
from search.rejection import Rejected
from search.results import TrialRecord
from search.sample import sample_point
from search.space import SearchSpace
from search.stats import SampleStats

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats, stale trials
HEARTBEAT_S = 5
GRACE_S = 15
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def make_sampler(space: SearchSpace, objective: Objective, seed: int | None = None) -> optuna.samplers.BaseSampler:
    seed = space.sampler.seed if seed is None else seed
    if space.sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if objective.multi:
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


class PerTrialSeed(optuna.samplers.BaseSampler):
    """The space's sampler, made anew for each trial with a seed from (the space's seed, the trial number).

    A sampler seeded once per process replays its random draws (Optuna's random sampler, TPE's and NSGA-II's
    first trials) in a resumed search and in every worker of a shared study, so the same points were trained
    again under new trial numbers. Seeded by trial number, a fresh study still gives the same sequence for the
    same seed, and a resumed search or another worker draws points of its own.
    """

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int):
        self._make, self._seed = make, seed
        self._number: int | None = None
        self._sampler: optuna.samplers.BaseSampler | None = None

    def _of(self, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        if self._sampler is None or trial.number != self._number:
            self._number = trial.number
            self._sampler = self._make((self._seed * 1_000_003 + trial.number) % 2**32)
        return self._sampler

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._of(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self._of(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        return self._of(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: Any
    ) -> Any:
        return self._of(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._of(trial).after_trial(study, trial, state, values)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage at database ``url`` (its tables made if missing).

    Raises:
        InputError: the URL is malformed, its driver is not installed, or the database cannot be opened.
    """
    import sqlalchemy.exc

    # Workers started together on an empty database race to create Optuna's tables: the loser's CREATE TABLE
    # fails, and succeeds (skips) once the tables exist.
    for attempt in itertools.count():
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
        except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.OperationalError, ImportError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise InputError(
                f"--storage {url}: cannot open the database ({reason}); check the URL (e.g. "
                "sqlite:///runs/study.db, postgresql+psycopg2://user:pw@host/db) and that the "
                "server is up"
            ) from None


def open_study(
    space: SearchSpace, objective: Objective, storage: str, study_name: str, must_exist: bool = False
) -> optuna.Study:
    """Create the study, or load it when it exists (how a killed search resumes)."""
    rdb = open_storage(storage)
    if must_exist and study_name not in {s.study_name for s in optuna.get_all_study_summaries(rdb)}:
        raise InputError(f"--resume: no study '{study_name}' in {storage}; drop --resume to start it")
    sampler = PerTrialSeed(lambda seed: make_sampler(space, objective, seed), space.sampler.seed)
    return optuna.create_study(
        study_name=study_name, storage=rdb, sampler=sampler, directions=list(objective.directions), load_if_exists=True
    )


def trial_dir(results_dir: Path, number: int) -> Path:
    return results_dir / "trials" / f"{number:04d}"


def write_candidate(candidate: Candidate, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / candidate.file_name
    path.write_text(candidate.spec_text, encoding="utf-8")
    return path


def optuna_objective(
    space: SearchSpace, evaluate: Evaluate, objective: Objective, results_dir: Path, stats: SampleStats
):
    """The function ``study.optimize`` calls: sample, check the budget, train, evaluate, record."""

    def run(trial: optuna.Trial) -> list[float]:
        start = time.perf_counter()
        try:
            candidate = sample_point(space, trial, stats)
        except Rejected as rejection:
            trial.set_user_attr("rejected", str(rejection))
            raise optuna.TrialPruned(str(rejection)) from None
        directory = trial_dir(results_dir, trial.number)
        trial.set_user_attr("spec_file", str(write_candidate(candidate, directory)))
        cost = candidate.detector_cost or candidate.cost
        trial.set_user_attr("params", cost.params)
        trial.set_user_attr("macs", cost.macs)

        def report(step: int, ap: float) -> None:
            if objective.multi:  # Optuna prunes single-objective studies only
                return
            trial.report(ap, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"intermediate AP {ap:.4f} at step {step}")

        try:
            metrics = evaluate(candidate, directory, report)
            values = objective.values(candidate, metrics)
        except optuna.TrialPruned:
            trial.set_user_attr("wall_s", time.perf_counter() - start)
            raise
        except Exception as exc:  # a failed trial is recorded with its error; the search goes on
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
            trial.set_user_attr("wall_s", time.perf_counter() - start)
            raise
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("wall_s", time.perf_counter() - start)
        return values

    return run


def run_optuna(
    space: SearchSpace,
    evaluate: Evaluate,
    objective: Objective,
    results_dir: Path,
    n_trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    resume: bool = False,
) -> list[TrialRecord]:
    """Run (or continue) the study until ``n_trials`` trials have finished; return every trial's record."""
    results_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(results_dir / 'study.db').resolve()}"
    study = open_study(space, objective, storage, study_name or space.name, must_exist=resume)
    optuna.storages.fail_stale_trials(study)
    stats = SampleStats()
    study.optimize(
        optuna_objective(space, evaluate, objective, results_dir, stats),
        callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=FINISHED), collect_after_failure],
        catch=(Exception,),
    )
    return records_of(study)


def collect_after_failure(study: optuna.Study, trial: FrozenTrial) -> None:
    """Free what a failed trial's exception kept alive (its frames hold the model and batches: an OOM must not
    cause the next one). Only then: a full collection costs about 0.2 s with torch loaded, as much as a
    smoke-test trial's sampling, bookkeeping and storage together."""
    if trial.state == TrialState.FAIL:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def records_of(study: optuna.Study) -> list[TrialRecord]:
    """Every trial of ``study`` as a leaderboard record."""
    records = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        if trial.state == TrialState.PRUNED:
            state = "rejected" if "rejected" in attrs else "pruned"
        else:
            state = {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed"}.get(trial.state, "running")
        records.append(
            TrialRecord(
                number=trial.number,
                state=state,
                spec_file=attrs.get("spec_file"),
                params=attrs.get("params"),
                macs=attrs.get("macs"),
                metrics=dict(attrs.get("metrics", {})),
                wall_s=attrs.get("wall_s"),
                error=attrs.get("error")
                or attrs.get("rejected")
                or (
                    "its worker stopped (killed?); the trial was not finished"
                    if trial.state == TrialState.FAIL and "metrics" not in attrs
                    else None
                ),
            )
        )
    return records
