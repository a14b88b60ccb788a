"""The Optuna engine end to end with a cheap evaluate (``engine_helpers.CheapEvaluate``: AP from the analytic
cost, no training): failed trials are recorded with their error and the search goes on; a search killed with
SIGKILL resumes with the same command without running a finished trial again; the same seed gives the same
sequence of specs; AP against MACs gives a Pareto front in the results folder."""

from __future__ import annotations

import csv
import functools
import json
import math
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
from engine_helpers import CheapEvaluate, read_log, space_file, write_worker_script
from optuna.trial import TrialState

from graphspec import loads_spec
from search.engines.optuna_engine import run_optuna
from search.objective import OBJECTIVES
from search.results import best_records, write_results
from search.space import builtin_space, load_search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # heartbeats
NO_BUDGET = {"max_params": 10**9, "max_macs": 10**12}  # every bifpn_edges point is valid: none is rejected


def test_failed_trials_are_recorded_with_their_error_and_the_search_goes_on(tmp_path):
    space = load_search_space(space_file(tmp_path, "bifpn_edges", **NO_BUDGET))
    fail = {1: "raise", 3: "nan", 4: "oom"}
    records = run_optuna(space, CheapEvaluate(fail=fail), OBJECTIVES["ap"], tmp_path / "results", n_trials=7)

    by_number = {r.number: r for r in records}
    assert sorted(by_number) == list(range(7))
    assert {n: r.state for n, r in by_number.items() if r.state != "complete"} == dict.fromkeys(fail, "failed")
    assert by_number[1].error == "ValueError: planted failure in trial 1"
    assert by_number[3].error.startswith("FloatingPointError: the trial produced NaN: {'AP': nan}")
    assert by_number[4].error.startswith("OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB")
    for number in fail:  # the candidate was sampled and written before it failed
        assert Path(by_number[number].spec_file).is_file() and by_number[number].macs > 0
    done = [r for r in records if r.state == "complete"]
    assert all(0 < r.metrics["AP"] < 1 and r.error is None for r in done)

    write_results(records, OBJECTIVES["ap"], tmp_path / "results")
    with (tmp_path / "results" / "leaderboard.csv").open(newline="") as handle:
        rows = {int(row["trial"]): row for row in csv.DictReader(handle)}
    assert rows[4]["state"] == "failed" and "OutOfMemoryError" in rows[4]["error"]
    best = max(done, key=lambda r: r.metrics["AP"])
    assert [p.name for p in (tmp_path / "results" / "best").iterdir()] == [Path(best.spec_file).name]


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
        records = run_optuna(
            space, CheapEvaluate(), OBJECTIVES[objective_name], tmp_path / folder, n_trials, storage=fast_sqlite(folder)
        )
        return [
            (r.state, Path(r.spec_file).read_text() if r.spec_file else r.error, r.metrics.get("AP"))
            for r in sorted(records, key=lambda r: r.number)
        ]

    first, second = sequence("first"), sequence("second")
    assert len(first) == n_trials and first == second
    assert len({text for _, text, _ in first}) > n_trials // 2  # mostly distinct points
    assert {state for state, _, _ in first} <= {"complete", "rejected"} and first[0][0] == "complete"


def test_ap_against_macs_gives_a_pareto_front(tmp_path):
    objective = OBJECTIVES["ap_macs"]
    space = load_search_space(builtin_space("bifpn_edges"))
    results = tmp_path / "results"
    records = run_optuna(space, CheapEvaluate(), objective, results, n_trials=10)
    best = write_results(records, objective, results)

    done = [r for r in records if r.state == "complete"]
    assert len(records) == 10 and len(done) >= 3
    assert all("over budget" in r.error for r in records if r.state == "rejected")
    front = [
        r
        for r in done
        if not any(
            o.metrics["AP"] >= r.metrics["AP"]
            and o.macs <= r.macs
            and (o.metrics["AP"], o.macs) != (r.metrics["AP"], r.macs)
            for o in done
        )
    ]
    pareto = best_records(records, objective)  # (a point sampled twice is on it once)
    assert {(r.macs, r.metrics["AP"]) for r in pareto} == {(r.macs, r.metrics["AP"]) for r in front}
    assert sorted(p.name for p in best) == sorted(Path(r.spec_file).name for r in pareto)
    assert 1 <= len(best) and sorted(p.name for p in (results / "best").iterdir()) == sorted(p.name for p in best)
    for path in best:
        loads_spec(path.read_text(), path.name)  # a best spec is a spec file that loads
    assert (results / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with (results / "leaderboard.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and Counter(row["state"] for row in rows) == Counter(r.state for r in records)
    for row in rows:
        if row["state"] == "complete":
            assert 0 < float(row["AP"]) < 1 and int(row["macs"]) > 0 and not math.isnan(float(row["AP"]))
