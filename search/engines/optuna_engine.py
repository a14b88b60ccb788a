"""Optuna: TPE (or random) for AP alone, NSGA-II for AP against cost; named, resumable studies.

Storage is a database URL: SQLite (the default, one file in the results folder) for one machine,
PostgreSQL or another server database for workers on several machines (SQLite must not be shared
between machines). Workers send heartbeats; a trial whose worker was killed is marked failed when
its heartbeat stops, and a restarted search — the same command — continues the study until
``trials`` trials have finished, without running finished ones again. Trials run one at a time in
this process: run more workers on the same storage to run them side by side (``TrialResources`` is
not used). A trial's number is the study's trial number.
"""

from __future__ import annotations

import gc
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from effdet_graph import InputError
from effdet_graph.errors import OutputError
from graphspec.errors import escape, quote
from search.engines.base import SearchEngine
from search.engines.samplers import make_sampler
from search.engines.trial_files import (
    error_line,
    record_output_failure,
    refuse_new_search_over_trials,
    trial_dir,
    write_record,
    write_spec,
    write_traceback,
)
from search.objective import Evaluate, MakeEvaluate, Objective
from search.reporting.results import TrialRecord
from search.request import SearchRequest
from search.sampling.rejection import Rejected
from search.sampling.sample import sample_point
from search.sampling.stats import SampleStats
from search.space.types import SearchSpace

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats, stale trials
HEARTBEAT_S = 5
GRACE_S = 15
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class _OneLinePerFailedTrial(logging.Filter):
    """Optuna logs a failed trial with its traceback; the search keeps the traceback in the trial's folder
    (``traceback.txt``) and its error line in the leaderboard, so the log keeps Optuna's one-line warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and "failed with parameters" in str(record.msg):
            record.exc_info, record.exc_text = None, None
        return True


logging.getLogger("optuna.study._optimize").addFilter(_OneLinePerFailedTrial())


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
    attempt = 0
    while True:
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 4:
                raise
            attempt += 1
            time.sleep(0.5 * attempt)
        except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.OperationalError, ImportError) as exc:
            raise InputError(
                f"--storage {escape(url)}: cannot open the database ({_reason(exc)}); check the URL (e.g. "
                "sqlite:///runs/study.db, postgresql+psycopg2://user:pw@host/db) and that the "
                "server is up"
            ) from None
        except sqlalchemy.exc.DatabaseError as exc:  # opened, but not a database Optuna can read
            where = (
                escape(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else f"--storage {escape(url)}"
            )
            raise InputError(
                f"{where}: the study database is unreadable ({_reason(exc)}): it was cut short or damaged (a kill or a "
                "full disk while it was written?). The finished trials' files are kept: start a new search with "
                "--out another folder"
            ) from None


def _reason(exc: Exception) -> str:
    """The first line of a database error, without SQLAlchemy's wrapping."""
    return escape(str(getattr(exc, "orig", None) or exc).splitlines()[0])


def open_study(
    space: SearchSpace,
    objective: Objective,
    storage: str,
    study_name: str,
    must_exist: bool = False,
    results_dir: Path | None = None,
) -> optuna.Study:
    """Create the study, or load it when it exists (how a killed search resumes).

    Args:
        space: the search space (its sampler and the sampler's seed).
        objective: the study's directions.
        storage: a database URL.
        study_name: the study's name in ``storage``.
        must_exist: fail when there is no such study.
        results_dir: the search's results folder; a new study is refused while it holds an earlier search's trials.

    Raises:
        InputError: the storage cannot be opened or read, ``must_exist`` and there is no such study, or the study
            is new and ``results_dir`` holds trials.
    """
    rdb = open_storage(storage)
    if study_name not in {s.study_name for s in optuna.get_all_study_summaries(rdb)}:
        if must_exist:
            raise InputError(f"--resume: no study {quote(study_name)} in {escape(storage)}; drop --resume to start it")
        if results_dir is not None:
            refuse_new_search_over_trials(
                results_dir, f"the database {escape(storage)} holds no study {quote(study_name)}"
            )
    sampler = PerTrialSeed(lambda trial_seed: make_sampler(space, objective, trial_seed), space.sampler.seed)
    return optuna.create_study(
        study_name=study_name,
        storage=rdb,
        sampler=sampler,
        directions=[StudyDirection[d.upper()] for d in objective.directions],
        load_if_exists=True,
    )


def optuna_objective(
    space: SearchSpace,
    evaluate: Evaluate,
    objective: Objective,
    results_dir: Path,
    stats: SampleStats,
    stopped_by: list[OutputError],
) -> Callable[[optuna.Trial], list[float]]:
    """The function ``study.optimize`` calls: sample, check the budget, train, evaluate, record. A trial that
    cannot write its files (:class:`~effdet_graph.errors.OutputError`) is recorded as failed and stops the study;
    its error, naming the trial, is appended to ``stopped_by``."""

    def run(trial: optuna.Trial) -> list[float]:
        start = time.perf_counter()
        try:
            candidate = sample_point(space, trial, stats)
        except Rejected as rejection:
            trial.set_user_attr("rejected", str(rejection))
            raise optuna.TrialPruned(str(rejection)) from None
        spec_file = str(write_spec(candidate, results_dir))
        cost = candidate.detector_cost or candidate.cost
        for key, value in (("spec_file", spec_file), ("params", cost.params), ("macs", cost.macs)):
            trial.set_user_attr(key, value)

        def report(step: int, ap: float) -> None:
            trial.report(ap, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"intermediate AP {ap:.4f} at step {step}")

        record = TrialRecord(trial.number, "complete", spec_file, cost.params, cost.macs)
        try:
            # Optuna prunes single-objective studies only
            metrics = evaluate(candidate, trial_dir(results_dir, trial.number), None if objective.multi else report)
            values = objective.values(candidate, metrics)
        except optuna.TrialPruned:
            trial.set_user_attr("wall_s", time.perf_counter() - start)
            raise
        except Exception as exc:  # a failed trial is recorded with its error; the search goes on
            record.state, record.error, record.wall_s = "failed", error_line(exc), time.perf_counter() - start
            trial.set_user_attr("error", record.error)
            trial.set_user_attr("wall_s", record.wall_s)
            if isinstance(exc, OutputError):
                trial.study.stop()
                stopped_by.append(record_output_failure(record, results_dir, exc))
                raise
            write_record(record, results_dir)
            write_traceback(exc, results_dir, trial.number)
            raise
        record.metrics, record.wall_s = dict(metrics), time.perf_counter() - start
        trial.set_user_attr("metrics", record.metrics)
        trial.set_user_attr("wall_s", record.wall_s)
        write_record(record, results_dir)
        return values

    return run


class OptunaEngine(SearchEngine):
    """Optuna studies in a database; see the module docstring. ``storage``: a database URL (default: SQLite,
    ``study.db`` in the results folder); ``name``: the study's name."""

    name = "optuna"

    def check(self, request: SearchRequest) -> None:
        """Open ``request.storage`` (a bad URL fails here, before anything is written) and check the device here."""
        super().check(request)
        if request.storage is not None:
            open_storage(request.storage)

    def run(
        self, space: SearchSpace, make_evaluate: MakeEvaluate, results_dir: Path, request: SearchRequest
    ) -> list[TrialRecord]:
        """Run (or continue) the study until ``request.trials`` trials have finished; see :meth:`SearchEngine.run`."""
        results_dir.mkdir(parents=True, exist_ok=True)
        storage = request.storage or f"sqlite:///{(results_dir / 'study.db').resolve()}"
        objective, trials = request.goal, request.trial_count
        study = open_study(
            space,
            objective,
            storage,
            request.study_name or space.name,
            must_exist=request.resume,
            results_dir=results_dir,
        )
        optuna.storages.fail_stale_trials(study)
        if len(study.get_trials(deepcopy=False, states=FINISHED)) >= trials:
            return records_of(study)  # finished already (optimize would run one trial before its callback stops it)
        stopped_by: list[OutputError] = []
        study.optimize(
            optuna_objective(space, make_evaluate(), objective, results_dir, SampleStats(), stopped_by),
            callbacks=[optuna.study.MaxTrialsCallback(trials, states=FINISHED), collect_after_failure],
            catch=(Exception,),
        )
        if stopped_by:
            raise stopped_by[0]
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
