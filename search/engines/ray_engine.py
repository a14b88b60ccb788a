"""Ray Tune: ``tune.Tuner`` with ``OptunaSearch`` (define-by-run over the search space) and ASHA,
locally or on a cluster (``RAY_ADDRESS``, ``ray submit``); results under a ``storage_path``; a killed
run resumes with ``Tuner.restore``.

Known limits of the installed Ray we design around: ``OptunaSearch`` ignores Optuna pruners (ASHA
stops poor trials instead) and takes lists for multi-objective ``metric``/``mode``, for which ASHA
is not meant, so multi-objective runs have no scheduler.

A trial's number is the number of the Optuna trial that ``OptunaSearch`` drew its point with (counted
from 0, as in the Optuna engine): the define-by-run function puts it into the trial's config, which Tune
keeps with the trial, restored runs included.

Trial actors are reused (``reuse_actors``): a trial starts in a worker that has torch and this project
imported already instead of a new process (about 5 s each on a 2-core CPU, more than a smoke-test trial).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pyarrow.fs
import ray
import ray.cloudpickle
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator
from ray.tune.search.optuna import OptunaSearch

from effdet_graph import InputError
from effdet_graph.device import resolve_device
from effdet_graph.errors import OutputError
from graphspec.cost import Cost
from search.engines.base import SearchEngine
from search.engines.samplers import make_sampler
from search.engines.trial_files import (
    ERROR_CHARS,
    error_line,
    read_record,
    record_output_failure,
    refuse_new_search_over_trials,
    started_trials,
    trial_dir,
    write_record,
    write_spec,
)
from search.objective import EVALUATE_METRICS, MakeEvaluate, Objective
from search.reporting.results import TrialRecord
from search.request import SearchRequest, TrialResources
from search.sampling.rejection import Rejected
from search.sampling.sample import sample_point
from search.sampling.trial import TrialLike
from search.space.loader import load_search_space
from search.space.types import SearchSpace

TUNER_STATE = "tuner.pkl"  # what Tune writes first when it makes an experiment, and restores from
TRIAL_NUMBER = "_trial_number"
REJECTED = "_rejected"
DETECTOR_COST = "_detector_cost"
#: The result key of a trial that could not write its files (its message): the search stops after it.
OUTPUT_ERROR = "output_error"


class DefineByRun:
    """What ``OptunaSearch`` calls to draw a point. It hands the trainable the trial's number; a rejected point
    (invalid, over budget) is marked so the trainable records it without training, and a whole-detector cost
    counted here is handed over so it is not counted twice. A class, not a closure: Tune pickles its searcher."""

    def __init__(self, space_file: str):
        self.space_file = space_file
        self.space: SearchSpace | None = None

    def __call__(self, trial: TrialLike) -> dict[str, Any]:
        self.space = self.space or load_search_space(self.space_file)
        constants: dict[str, Any] = {TRIAL_NUMBER: trial.number}
        try:
            candidate = sample_point(self.space, trial)
        except Rejected as rejection:
            return {**constants, REJECTED: str(rejection)}
        cost = candidate.detector_cost
        return constants if cost is None else {**constants, DETECTOR_COST: [cost.params, cost.macs]}

    def __getstate__(self) -> dict[str, Any]:
        return {"space_file": self.space_file, "space": None}


def make_trainable(
    space_file: str, make_evaluate: MakeEvaluate, objective: Objective, results_dir: Path, proxy_steps: int
) -> Callable[[dict[str, Any]], None]:
    """The Tune function trainable: rebuild the candidate from the sampled values, train, report (the last
    result at ``step`` = ``proxy_steps``, the scheduler's time attribute)."""

    def trainable(config: dict[str, Any]) -> None:
        start = time.perf_counter()
        number = int(config[TRIAL_NUMBER])
        node = ray.get_runtime_context().get_node_id()
        nan = dict.fromkeys(objective.metrics, float("nan"))  # placeholders: a result without the metrics ends the
        if REJECTED in config:  # whole run (Tune's strict metric check, OptunaSearch.on_trial_result); ASHA ignores NaN
            tune.report({**nan, "rejected": config[REJECTED], "node_id": node, "trial_number": number})
            return
        space = load_search_space(space_file)
        values = {k: v for k, v in config.items() if not k.startswith("_")}
        known = Cost(*config[DETECTOR_COST]) if DETECTOR_COST in config else None
        candidate = sample_point(space, optuna.trial.FixedTrial(values, number=number), detector_cost=known)
        spec_file = str(write_spec(candidate, results_dir))
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

        record = TrialRecord(number, "complete", spec_file, cost.params, cost.macs)
        try:
            # no scheduler stops a multi-objective trial (make_tuner)
            metrics = make_evaluate()(candidate, trial_dir(results_dir, number), None if objective.multi else report)
            objective.values(candidate, metrics)  # raises on NaN
        except Exception as exc:  # recorded with its error line; re-raised: Tune records the trial as errored
            record.state, record.error, record.wall_s = "failed", error_line(exc), time.perf_counter() - start
            if isinstance(exc, OutputError):  # StopOnOutputError ends the search after this result
                tune.report({**nan, **common, OUTPUT_ERROR: str(record_output_failure(record, results_dir, exc))})
                return
            write_record(record, results_dir)
            raise
        record.metrics, record.wall_s = dict(metrics), time.perf_counter() - start
        write_record(record, results_dir)
        tune.report({**metrics, **common, "step": proxy_steps, "wall_s": record.wall_s, "finished": True})

    return trainable


class StopOnOutputError(tune.Stopper):
    """Stops the whole experiment once a trial reports that it could not write its files (a full disk, a
    read-only folder: :data:`OUTPUT_ERROR`), instead of failing every later trial the same way. Its state is not
    pickled with the experiment: a restored search (once there is room) runs on."""

    def __init__(self) -> None:
        self.error: str | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if result.get(OUTPUT_ERROR):
            self.error = str(result[OUTPUT_ERROR])
        return False

    def stop_all(self) -> bool:
        return self.error is not None

    def __getstate__(self) -> dict[str, Any]:
        return {"error": None}


def connect() -> None:
    """Start a local Ray, or join ``RAY_ADDRESS``'s cluster when set; nothing when Ray is up already."""
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)


def gpus_per_trial(resources: TrialResources | None) -> float:
    """``resources.gpus``, or by default 1 when the cluster has GPUs now, else 0."""
    if resources is not None and resources.gpus is not None:
        return resources.gpus
    connect()
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


class RayEngine(SearchEngine):
    """Ray Tune with OptunaSearch and ASHA; see the module docstring. ``storage``: Tune's ``storage_path``, a
    folder or ``s3://...`` (default: the results folder's parent); ``name``: the experiment's name (default: the
    results folder's name)."""

    name = "ray"

    def check(self, request: SearchRequest) -> None:
        """Check the device where the trials run: a CUDA device must be one of the GPUs each trial reserves (on a
        cluster the driver may have none), any other device on this machine."""
        device = request.device
        if device is None or not device.startswith("cuda"):
            resolve_device(device)
            return
        gpus = gpus_per_trial(request.resources)
        if gpus <= 0:
            raise InputError(f"--device {device}: the Ray trials reserve no GPU; give --gpus-per-trial N (N > 0)")
        visible = max(1, math.floor(gpus))
        if device not in ("cuda", *(f"cuda:{i}" for i in range(visible))):
            raise InputError(
                f"--device {device}: a Ray trial sees only the {visible} GPU(s) it reserves; use cuda"
                + (f" or cuda:0..cuda:{visible - 1}" if visible > 1 else " or cuda:0")
            )

    def run(
        self, space: SearchSpace, make_evaluate: MakeEvaluate, results_dir: Path, request: SearchRequest
    ) -> list[TrialRecord]:
        """Run the search with Ray Tune, restoring it when ``storage/study_name`` holds an earlier run; see
        :meth:`SearchEngine.run`."""
        objective = request.goal
        results_dir = results_dir.resolve()
        name = request.study_name or results_dir.name
        storage = request.storage or str(results_dir.parent)
        experiment = f"{storage.rstrip('/')}/{name}"
        restore = experiment_restores(experiment, results_dir)
        if request.resume and not restore:
            raise InputError(f"--resume: no Ray Tune experiment at {experiment}; drop --resume to start it")
        if not restore:
            refuse_new_search_over_trials(results_dir, f"there is no Ray Tune experiment at {experiment}")
        connect()
        trainable = tune.with_resources(
            make_trainable(str(Path(space.file).resolve()), make_evaluate, objective, results_dir, space.proxy.steps),
            {"cpu": 1, "gpu": gpus_per_trial(request.resources)},
        )
        if restore:
            tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True, restart_errored=False)
        else:
            try:
                tuner = self._new_tuner(space, objective, trainable, storage, name, request)
            except BaseException:  # Tune opens tuner.pkl before it pickles into it: a failure leaves it empty
                remove_state(experiment)
                raise
        grid = tuner.fit()
        stops = [(grid[i].metrics or {}).get(OUTPUT_ERROR) for i in range(len(grid))]
        if any(stops):
            raise OutputError(next(stop for stop in stops if stop))
        return records_of(grid, results_dir)

    @staticmethod
    def _new_tuner(
        space: SearchSpace,
        objective: Objective,
        trainable: Any,
        storage: str,
        name: str,
        request: SearchRequest,
    ) -> tune.Tuner:
        metric = objective.metrics[0] if not objective.multi else list(objective.metrics)
        mode = objective.directions[0][:3] if not objective.multi else [d[:3] for d in objective.directions]
        seed = space.sampler.seed
        searcher: Searcher = OptunaSearch(
            DefineByRun(str(Path(space.file).resolve())),
            metric=metric,
            mode=mode,
            seed=seed,
            sampler=make_sampler(space, objective, seed),
        )
        if request.resources.max_concurrent:
            searcher = ConcurrencyLimiter(searcher, max_concurrent=request.resources.max_concurrent)
        scheduler = None
        if not objective.multi:
            steps = space.proxy.steps  # rungs in training steps: the first at the first intermediate AP
            scheduler = ASHAScheduler(
                time_attr="step", max_t=steps, grace_period=max(1, steps // space.proxy.reports), reduction_factor=3
            )
        return tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=SavedTrialsSearch(searcher),
                scheduler=scheduler,
                num_samples=request.trial_count,
                metric=objective.metrics[0] if scheduler else None,
                mode=objective.directions[0][:3] if scheduler else None,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage,
                verbose=1,
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                stop=StopOnOutputError(),
            ),
        )


class SavedTrialsSearch(SearchGenerator):
    """Tune's search generator, except that a restored one counts only the trials the experiment saved.

    Tune saves how many trials its searcher has made (``search_gen_state-*``) apart from the trials themselves
    (``experiment_state-*``). A kill between the two writes leaves a count above the trials saved: restored,
    the search would end that many trials short of ``--trials`` (found by the crash harness). On restore the
    count, and the trials a concurrency limit holds running, are set back to the trials saved."""

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        states = sorted(Path(dirpath).glob("experiment_state-*.json"), key=lambda path: path.name)
        if not states:
            return
        trial_data = json.loads(states[-1].read_text(encoding="utf-8"))["trial_data"]
        saved = {json.loads(entry[0])["trial_id"] for entry in trial_data}
        if self._counter > len(saved):
            self._counter, self._finished = len(saved), False
        searcher = self.searcher
        while hasattr(searcher, "searcher"):
            if isinstance(searcher, ConcurrencyLimiter):
                searcher.live_trials &= saved
                searcher.num_unfinished_live_trials = len(searcher.live_trials)
            searcher = searcher.searcher


def _state_file(experiment: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """The file system of ``experiment`` (a folder or ``s3://...``) and the path of its ``tuner.pkl`` there."""
    fs, path = pyarrow.fs.FileSystem.from_uri(experiment if "://" in experiment else str(Path(experiment).resolve()))
    return fs, f"{path.rstrip('/')}/{TUNER_STATE}"


def remove_state(experiment: str) -> None:
    """Delete ``experiment``'s ``tuner.pkl`` if there is one (a start that failed before any trial)."""
    fs, state = _state_file(experiment)
    if fs.get_file_info(state).type != pyarrow.fs.FileType.NotFound:
        fs.delete_file(state)


def experiment_restores(experiment: str, results_dir: Path) -> bool:
    """Whether ``experiment`` holds a Tune experiment to restore: its ``tuner.pkl`` is there and reads.

    An unreadable ``tuner.pkl`` (a kill while Tune made the experiment) is deleted when nothing else was done
    there, no Tune trial state and no trial folder in ``results_dir``: the search starts over with nothing lost.

    Raises:
        InputError: ``tuner.pkl`` is unreadable and trials were run; one line naming it, nothing deleted.
    """
    fs, state = _state_file(experiment)
    if fs.get_file_info(state).type == pyarrow.fs.FileType.NotFound:
        return False
    try:
        with fs.open_input_file(state) as stream:
            ray.cloudpickle.loads(stream.readall())
        return True
    except Exception as exc:  # what an unpickler raises on a short or damaged file varies: EOFError and others
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:ERROR_CHARS]
    tune_state = fs.get_file_info(pyarrow.fs.FileSelector(state.rsplit("/", 1)[0]))
    if started_trials(results_dir) or any(info.base_name.startswith("experiment_state") for info in tune_state):
        raise InputError(
            f"{experiment}/{TUNER_STATE}: Ray Tune's experiment state is unreadable ({reason}): it was cut short or "
            "damaged (a kill or a full disk while it was written?). The finished trials' files are kept: start a new "
            "search with --out another folder"
        )
    print(f"note: {experiment}/{TUNER_STATE} was cut short when its search started ({reason}); starting it again")
    fs.delete_file(state)
    return False


def trial_config(result: tune.Result) -> dict[str, Any]:
    """The trial's config: in its last result, or, for a restored trial that never reported, in the
    ``params.json`` Tune wrote into the trial's folder when it started."""
    if result.config:
        return result.config
    with result.filesystem.open_input_stream(f"{result.path}/params.json") as stream:
        return json.loads(stream.read())


def records_of(grid: tune.ResultGrid, results_dir: Path) -> list[TrialRecord]:
    """Every Tune trial as a leaderboard record: its state from Tune, its number from its config, and what
    Tune did not get (a trial that failed before its first report) from the trial's ``trial.json``."""
    records = []
    for result in (grid[i] for i in range(len(grid))):
        metrics = result.metrics or {}
        number = int(trial_config(result)[TRIAL_NUMBER])
        written = read_record(results_dir, number)
        if result.error is not None:
            lines = [line for line in str(result.error).splitlines() if line.strip()] or [type(result.error).__name__]
            state, error = "failed", written.error if written and written.error else lines[-1]
        elif metrics.get(OUTPUT_ERROR):  # its metrics are NaN placeholders
            state, error, metrics = "failed", written.error if written and written.error else metrics[OUTPUT_ERROR], {}
        elif "rejected" in metrics:  # its other metrics are NaN placeholders
            state, error, metrics = "rejected", metrics["rejected"], {}
        elif metrics.get("finished"):
            state, error = "complete", None
        else:
            state, error = "pruned", "stopped early by ASHA"
        records.append(
            TrialRecord(
                number=number,
                state=state,
                spec_file=metrics.get("spec_file", written and written.spec_file),
                params=metrics.get("params", written and written.params),
                macs=metrics.get("macs", written and written.macs),
                metrics={k: float(metrics[k]) for k in EVALUATE_METRICS if k in metrics},
                wall_s=metrics.get("wall_s", written and written.wall_s),
                error=error[:ERROR_CHARS] if error else None,
            )
        )
    return records
