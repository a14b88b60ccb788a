"""The Optuna engine end to end with a cheap evaluate (``engine_helpers.CheapEvaluate``: AP from the analytic
cost, no training): a search killed with SIGKILL resumes with the same command without running a finished trial
again; the same seed gives the same sequence of specs with each sampler. What every engine does (numbering, trial
files, failed and rejected trials, a Pareto front, continuing a search) is in ``test_engine_interface.py``."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from engine_helpers import CheapEvaluateFactory, read_log, space_file, write_worker_script
from optuna.trial import TrialState

from effdet_graph.errors import OutputError
from search.engines.optuna_engine import OptunaEngine
from search.engines.trial_files import trial_dir
from search.request import SearchRequest
from search.space import builtin_space, load_search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # heartbeats
NO_BUDGET = {"max_params": 10**9, "max_macs": 10**12}  # every bifpn_edges point is valid: none is rejected


@pytest.mark.slow  # two searches in fresh processes (imports: ~5 s each) and 7 trials of 0.8 s: ~20-30 s
def test_a_killed_search_resumes_without_running_finished_trials_again(tmp_path):
    n_trials, kill_after = 7, 3
    space = space_file(tmp_path, "bifpn_edges", **NO_BUDGET)
    results, log = tmp_path / "results", tmp_path / "evaluate.log"
    storage = f"sqlite:///{results / 'study.db'}"
    config = {
        "space": str(space),
        "results_dir": str(results),
        "n_trials": n_trials,
        "log": str(log),
        "sleep_s": 0.8,
        "storage": storage,
        "study_name": "killed",
        "heartbeat_s": 1,
        "grace_s": 2,
    }
    command = [sys.executable, str(write_worker_script(tmp_path)), json.dumps(config)]

    search = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while True:  # kill it inside a trial (0.8 s of sleep), once `kill_after` trials have completed
            assert search.poll() is None, f"the search ended before it was killed: {search.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no trial completed in time"
            rows = read_log(log)
            done = {row.number for row in rows if row.event == "done"}
            if len(done) >= kill_after and any(row.number not in done for row in rows):
                break
            time.sleep(0.05)
    finally:
        search.kill()  # SIGKILL: no handler, no cleanup
        search.communicate()
    assert search.returncode == -9

    before = optuna.load_study(study_name="killed", storage=storage).get_trials(deepcopy=False)
    finished_before = {t.number: t for t in before if t.state == TrialState.COMPLETE}
    running_trials = [t.number for t in before if t.state == TrialState.RUNNING]
    assert len(running_trials) == 1 and len(before) == len(finished_before) + 1, [t.state for t in before]
    running = running_trials[0]
    assert len(finished_before) >= kill_after

    start = time.perf_counter()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=180)  # the same command again
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    print(
        f"optuna: killed after {len(finished_before)} complete (trial {running} running); resumed in "
        f"{time.perf_counter() - start:.1f} s"
    )

    after = {t.number: t for t in optuna.load_study(study_name="killed", storage=storage).get_trials()}
    states = Counter(t.state for t in after.values())
    assert states == {TrialState.COMPLETE: n_trials - 1, TrialState.FAIL: 1}, states  # n_trials finished
    assert after[running].state == TrialState.FAIL  # its heartbeat stopped: failed, not run again
    for number, trial in finished_before.items():
        assert (after[number].params, after[number].values, after[number].user_attrs) == (
            trial.params,
            trial.values,
            trial.user_attrs,
        )

    rows = read_log(log)
    done = [(row.number, row.digest) for row in rows if row.event == "done"]
    started = sorted(row.number for row in rows if row.event == "start")
    complete = sorted(n for n, t in after.items() if t.state == TrialState.COMPLETE)
    assert sorted(n for n, _ in done) == complete  # each completed trial evaluated once
    assert started == sorted([*complete, running])  # and nothing else started, but the killed one
    assert len({digest for _, digest in done}) == len(done), "a point was evaluated twice"
    assert len({row.pid for row in rows}) == 2  # before and after the kill
    records = json.loads(rerun.stdout.split("RECORDS", 1)[1])
    assert dict(map(tuple, records))[running] == "failed"


SAMPLERS = {  # objective, trials, the sampler class and what is patched so that a few trials go past the random start
    "tpe": ("ap", 9, "TPESampler", {"n_startup_trials": 5}),  # 5 random trials, then 4 from the Parzen estimators
    "nsga2": ("ap_macs", 10, "NSGAIISampler", {"population_size": 4}),  # 2.5 generations: crossover, mutation
}


@pytest.fixture
def fast_sqlite(tmp_path):
    """``fast_sqlite(name)``: a SQLite URL on tmpfs (/dev/shm) where there is one (no disk sync per commit)."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="effdet-graph-test-")) if os.access(shm, os.W_OK) else tmp_path
    try:
        yield lambda name: f"sqlite:///{folder / name}.db"
    finally:
        if folder != tmp_path:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_same_seed_same_sequence_of_specs(tmp_path, fast_sqlite, monkeypatch, sampler):
    objective_name, n_trials, class_name, patch = SAMPLERS[sampler]
    monkeypatch.setattr(optuna.samplers, class_name, functools.partial(getattr(optuna.samplers, class_name), **patch))
    space = load_search_space(builtin_space("bifpn_edges"))  # some points are over budget: rejected ones too

    def sequence(folder: str) -> list[tuple[str, str, float | None]]:
        request = SearchRequest(space.file, trials=n_trials, objective=objective_name, storage=fast_sqlite(folder))
        records = OptunaEngine().run(space, CheapEvaluateFactory(), tmp_path / folder, request)
        return [
            (r.state, Path(r.spec_file).read_text() if r.spec_file else r.error, r.metrics.get("AP"))
            for r in sorted(records, key=lambda r: r.number)
        ]

    first, second = sequence("first"), sequence("second")
    assert len(first) == n_trials and first == second
    assert len({text for _, text, _ in first}) > n_trials // 2  # mostly distinct points
    assert {state for state, _, _ in first} <= {"complete", "rejected"} and first[0][0] == "complete"


@pytest.mark.parametrize(("objective", "listened"), [("ap", "listened"), ("ap_macs", "none")])
def test_only_a_single_objective_study_hands_its_trials_a_report(tmp_path, fast_sqlite, objective, listened):
    """Optuna prunes single-objective studies only: a multi-objective trial gets no ``report``, so the proxy task
    measures no intermediate AP that nobody would read."""
    space = load_search_space(space_file(tmp_path, "bifpn_edges", max_params=10**9, max_macs=10**12))
    out = tmp_path / "results"
    request = SearchRequest(space.file, trials=2, objective=objective, storage=fast_sqlite(objective))
    records = OptunaEngine().run(space, CheapEvaluateFactory(), out, request)
    assert [r.state for r in records] == ["complete", "complete"]
    assert [(trial_dir(out, r.number) / "report.txt").read_text() for r in records] == [listened, listened]


def test_a_trial_that_finds_the_disk_full_stops_the_search_and_a_rerun_continues_it(tmp_path, fast_sqlite):
    """A full disk fails every later trial the same way: the search records the trial as failed with the reason
    and stops after it, one error naming the file; run again (room made) it finishes without redoing trials."""
    space = load_search_space(space_file(tmp_path, "bifpn_edges", max_params=10**9, max_macs=10**12))
    out, storage, log = tmp_path / "results", fast_sqlite("full"), tmp_path / "evaluate.log"

    def search(**fail: str) -> list:
        failures = {int(number): how for number, how in fail.items()}
        evaluate = CheapEvaluateFactory(str(log), fail=failures)
        return OptunaEngine().run(
            space, evaluate, out, SearchRequest(space.file, trials=4, objective="ap", storage=storage)
        )

    stopped = r"^no space left on device while writing \S*last\.pt; .*\(trial 1: the search stopped; run the same"
    with pytest.raises(OutputError, match=stopped):
        search(**{"1": "full"})
    assert [row.number for row in read_log(log) if row.event == "start"] == [0, 1]  # stopped after trial 1
    assert json.loads((trial_dir(out, 1) / "trial.json").read_text())["error"].startswith("OutputError: no space left")
    records = sorted(search(), key=lambda r: r.number)
    assert [r.state for r in records] == ["complete", "failed", "complete", "complete"]
    assert [row.number for row in read_log(log) if row.event == "start"] == [0, 1, 2, 3]  # none run twice
