"""A cheap, deterministic stand-in for proxy training, for the engine tests (Optuna, PostgreSQL, Ray).

:class:`CheapEvaluate` follows the :class:`search.objective.Evaluate` protocol without training anything: its
AP is a fixed function of the candidate's analytic MACs and params (plus a small jitter from the point's hash,
so that an AP-against-MACs front has dominated points), after an optional short sleep. Hooks make chosen trial
numbers fail: ``raise`` (a ``ValueError``), ``nan`` (AP is NaN), ``oom`` (``torch.OutOfMemoryError``) or ``full``
(a full disk: :class:`~effdet_graph.errors.OutputError`). Every
call appends ``start``/``done`` lines ``<event> <trial number> <point hash> <pid> <time>`` to ``log``, so a test can
tell which points were evaluated, by whom and how often.

It is a picklable class (not a closure): Ray ships the evaluate factory to its workers, which import this
module by value (see :func:`ship_to_ray`).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from effdet_graph.errors import OutputError
from search.objective import Report
from search.sampling.candidate import Candidate
from search.space import builtin_space

FAILURES = ("raise", "nan", "oom", "full")


def point_hash(candidate: Candidate) -> str:
    """Short hash of the sampled point: the trial's values by name (the spec text names the trial number)."""
    return hashlib.sha256(json.dumps(sorted(candidate.suggestions.items()), default=str).encode()).hexdigest()[:12]


def cheap_ap(candidate: Candidate) -> float:
    """AP in (0, 1): grows with log MACs and log params, jittered by up to +-0.03 by the point's hash."""
    cost = candidate.detector_cost or candidate.cost
    size = 0.5 * math.log10(1 + cost.macs / 1e6) / 4 + 0.5 * math.log10(1 + cost.params / 1e3) / 4
    jitter = (int(point_hash(candidate), 16) % 601 - 300) / 10_000
    return min(0.99, max(0.01, 0.1 + 0.6 * size + jitter))


@dataclass
class CheapEvaluate:
    """``evaluate(candidate, trial_dir, report)`` in milliseconds; see the module docstring.

    ``fail``: trial number -> one of :data:`FAILURES`. It reports no intermediate AP, so no pruner or scheduler
    stops a trial early; it writes whether the engine handed it a ``report`` to listen with (``listened`` or
    ``none``) to ``trial_dir/report.txt``.
    """

    log: str | None = None
    sleep_s: float = 0.0
    fail: dict[int, str] = field(default_factory=dict)

    def __call__(self, candidate: Candidate, trial_dir: Path, report: Report | None) -> dict[str, float]:
        number = candidate.trial_number
        (trial_dir / "report.txt").write_text("none" if report is None else "listened", encoding="utf-8")
        digest = point_hash(candidate)
        write_log(self.log, "start", number, digest)
        ap = cheap_ap(candidate)
        time.sleep(self.sleep_s)
        failure = self.fail.get(number)
        if failure == "raise":
            raise ValueError(f"planted failure in trial {number}")
        if failure == "oom":
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 20.00 GiB (planted, trial {number})")
        if failure == "full":
            raise OutputError(f"no space left on device while writing {trial_dir / 'last.pt'}; free space (planted)")
        metrics = {"AP": float("nan") if failure == "nan" else ap, "AP50": min(1.0, 1.5 * ap)}
        (trial_dir / "metrics.txt").write_text(f"{metrics}\n", encoding="utf-8")
        write_log(self.log, "done", number, digest)
        return metrics


@dataclass
class CheapEvaluateFactory:
    """An engine's ``make_evaluate``: a picklable callable that makes a :class:`CheapEvaluate` (Ray calls it inside
    each Tune trial)."""

    log: str | None = None
    sleep_s: float = 0.0
    fail: dict[int, str] = field(default_factory=dict)

    def __call__(self) -> CheapEvaluate:
        return CheapEvaluate(self.log, self.sleep_s, dict(self.fail))


@dataclass
class FadingEvaluate:
    """Reports the trial's AP, 1 / (trial number + 1), at steps 10 and 20 of 30, then returns it: each trial is
    worse than the ones before, so ASHA stops the later ones at their first report. Logs like CheapEvaluate.
    ``functools.partial(FadingEvaluate, log)`` is its ``make_evaluate``."""

    log: str

    def __call__(self, candidate: Candidate, trial_dir: Path, report: Report | None) -> dict[str, float]:
        assert report is not None, "a single-objective search hands its trials a report"
        ap = 1.0 / (candidate.trial_number + 1)
        write_log(self.log, "start", candidate.trial_number, point_hash(candidate))
        for step in (10, 20):
            report(step, ap)
        write_log(self.log, "done", candidate.trial_number, point_hash(candidate))
        return {"AP": ap}


class LogRow(NamedTuple):
    event: str  # start or done
    number: int  # the trial number
    digest: str  # the point's hash
    pid: int  # the process that evaluated it
    time: float  # when (time.time())


def write_log(path: str | None, event: str, number: int, digest: str) -> None:
    """Append one evaluate-log line (nothing when ``path`` is None)."""
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as handle:  # one short line per write: atomic with O_APPEND
        handle.write(f"{event} {number} {digest} {os.getpid()} {time.time():.3f}\n")


def read_log(path: str | Path) -> list[LogRow]:
    """The lines of an evaluate log (none when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        event, number, digest, pid, when = line.split()
        rows.append(LogRow(event, int(number), digest, int(pid), float(when)))
    return rows


def ship_to_ray() -> None:
    """Let Ray's workers unpickle this module's classes by value (tests/search is not on their path)."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@contextlib.contextmanager
def local_ray() -> Iterator[None]:
    """One local Ray (two CPUs, no dashboard) whose workers can unpickle this module's classes, shut down after."""
    import ray

    ship_to_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


# --- search spaces ---------------------------------------------------------------------------------------------


def space_file(
    directory: Path, name: str, max_params: int | None = None, max_macs: int | None = None, sampler: str | None = None
) -> Path:
    """The built-in space ``name`` with its budget bounds (and sampler name) replaced, written to ``directory``."""
    text = builtin_space(name).read_text(encoding="utf-8")
    for key, value in (("  max_params", max_params), ("  max_macs", max_macs), ("sampler:\n  name", sampler)):
        if value is not None:
            text, count = re.subn(rf"(?m)^({key}: )\S+", rf"\g<1>{value}", text)
            assert count == 1, f"{name}.yaml must have one `{key}:` line"
    path = directory / f"{name}_{max_params}_{max_macs}_{sampler}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the Optuna engine in a subprocess (a killed search, several workers) ---------------------------------------------

WORKER_SCRIPT = '''\
"""Run (or continue) one Optuna search, as `effdet-graph search` would; written by the engine tests."""
import json
import sys
from pathlib import Path

sys.path.insert(0, {helpers_dir!r})
config = json.loads(sys.argv[1])

import optuna

from search.engines import optuna_engine
from search.request import SearchRequest
from search.space import load_search_space

from engine_helpers import CheapEvaluateFactory

optuna.logging.set_verbosity(optuna.logging.WARNING)
# A short heartbeat, so that the trial of a killed worker is failed within seconds, not GRACE_S = 15.
optuna_engine.HEARTBEAT_S = config.get("heartbeat_s", optuna_engine.HEARTBEAT_S)
optuna_engine.GRACE_S = config.get("grace_s", optuna_engine.GRACE_S)
if "barrier" in config:  # several workers: start searching together, not as each one's imports finish
    import os, time
    barrier = Path(config["barrier"])
    (barrier / f"ready-{{os.getpid()}}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.05)
request = SearchRequest(config["space"], trials=config["n_trials"], objective=config.get("objective", "ap"),
                        storage=config.get("storage"), study_name=config.get("study_name"))
records = optuna_engine.OptunaEngine().run(
    load_search_space(config["space"]),
    CheapEvaluateFactory(log=config["log"], sleep_s=config["sleep_s"],
                         fail={{int(k): v for k, v in config.get("fail", {{}}).items()}}),
    Path(config["results_dir"]), request)
print("RECORDS", json.dumps([[r.number, r.state] for r in records]), flush=True)
'''


def write_worker_script(directory: Path) -> Path:
    """Write the script that runs the Optuna engine with :class:`CheapEvaluate`; its one argument is a JSON
    object: space, results_dir, n_trials, log, sleep_s, and optionally storage, study_name, objective, fail,
    heartbeat_s, grace_s, barrier (a folder: write ``ready-<pid>`` there, then wait for a file ``go``)."""
    path = directory / "optuna_worker.py"
    path.write_text(WORKER_SCRIPT.format(helpers_dir=str(Path(__file__).resolve().parent)), encoding="utf-8")
    return path


# --- a throwaway PostgreSQL server -------------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` and ``pg_ctl`` (Debian's layout)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found and Path(found[-1]).with_name("pg_ctl").is_file() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the Ray engine as a driver script (`ray submit`, or RAY_ADDRESS=<head> python script.py) --------------------

RAY_DRIVER_SCRIPT = '''\
"""Run (or restore) one Ray Tune search on the cluster at RAY_ADDRESS (or a local Ray); written by the engine tests."""
import json
import sys
from pathlib import Path

sys.path.insert(0, {helpers_dir!r})
config = json.loads(sys.argv[1])

from search.engines.ray_engine import RayEngine
from search.request import SearchRequest, TrialResources
from search.space import load_search_space

from engine_helpers import CheapEvaluateFactory, ship_to_ray

ship_to_ray()
request = SearchRequest(config["space"], engine="ray", trials=config["n_trials"],
                        objective=config.get("objective", "ap"), storage=config["storage_path"],
                        study_name=config["name"],
                        resources=TrialResources(max_concurrent=config.get("max_concurrent")))
records = RayEngine().run(
    load_search_space(config["space"]),
    CheapEvaluateFactory(log=config["log"], sleep_s=config["sleep_s"],
                         fail={{int(k): v for k, v in config.get("fail", {{}}).items()}}),
    Path(config["results_dir"]), request)
print("RECORDS", json.dumps([[r.number, r.state, r.error] for r in records]), flush=True)
'''


def write_ray_driver(directory: Path) -> Path:
    """Write the driver script that runs the Ray engine with :class:`CheapEvaluateFactory`; its one argument is a
    JSON object: space, results_dir, n_trials, log, sleep_s, storage_path, name, and optionally fail, objective,
    max_concurrent."""
    path = directory / "ray_driver.py"
    path.write_text(RAY_DRIVER_SCRIPT.format(helpers_dir=str(Path(__file__).resolve().parent)), encoding="utf-8")
    return path


def tune_results(experiment_dir: Path) -> list[dict]:
    """The last result of every trial of a Tune experiment, read from its trials' ``result.json`` files."""
    results = []
    for path in sorted(Path(experiment_dir).glob("*/result.json")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if lines:
            results.append(json.loads(lines[-1]))
    return results
