"""The Ray Tune engine end to end with a cheap evaluate (``engine_helpers.CheapEvaluateFactory``): ASHA stops poor
trials; a driver connected to a real multi-node cluster (a head and two worker nodes on this machine,
``ray.cluster_utils.Cluster``) runs trials on both workers; a killed driver resumes. What every engine does
(numbering, trial files, failed and rejected trials, a Pareto front, continuing a search) is in
``test_engine_interface.py``.

Slow: every Tune trial starts a worker process that imports torch (seconds each on two cores).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from engine_helpers import (
    CheapEvaluateFactory,
    FadingEvaluate,
    read_log,
    space_file,
    tune_results,
    write_ray_driver,
)
from engine_helpers import local_ray as local_ray_session

from search.space import load_search_space

ray = pytest.importorskip("ray")

from effdet_graph.errors import OutputError  # noqa: E402
from search.engines.ray_engine import TRIAL_NUMBER, RayEngine  # noqa: E402
from search.engines.trial_files import trial_dir  # noqa: E402
from search.request import SearchRequest, TrialResources  # noqa: E402

pytestmark = [
    pytest.mark.slow,  # ASHA's cutoff over a rung of rejected trials only (NaN placeholders):
    pytest.mark.filterwarnings("ignore:All-NaN slice encountered:RuntimeWarning"),
]


@pytest.fixture(scope="class")
def local_ray():
    """One local Ray for the in-process searches (two CPUs, no dashboard), shut down after them."""
    with local_ray_session():
        yield


def _local_search(tmp_path, evaluate, objective: str, trials: int, space=None) -> list:
    """A search of ``bifpn_edges`` (no budget) in this process, one trial at a time, results in ``tmp_path/results``."""
    space = space or load_search_space(space_file(tmp_path, "bifpn_edges", max_params=10**9, max_macs=10**12))
    request = SearchRequest(
        space.file,
        engine="ray",
        trials=trials,
        objective=objective,
        storage=str(tmp_path / "ray"),
        study_name=objective,
        resources=TrialResources(max_concurrent=1),
    )
    return RayEngine().run(space, evaluate, tmp_path / "results", request)


class TestLocalSearch:
    """A search in this process, on a local Ray."""

    def test_asha_stops_poor_trials_at_their_first_report_and_keeps_finished_ones(self, local_ray, tmp_path):
        space = load_search_space(space_file(tmp_path, "bifpn_edges", max_params=10**9, max_macs=10**12))
        space = dataclasses.replace(space, proxy=dataclasses.replace(space.proxy, steps=30, reports=3))
        log = tmp_path / "evaluate.log"
        records = _local_search(tmp_path, functools.partial(FadingEvaluate, str(log)), "ap", 4, space)
        states = {r.number: r.state for r in records}
        assert states[0] == "complete" and list(states.values()).count("pruned") >= 2, states
        done = {row.number for row in read_log(log) if row.event == "done"}
        assert done == {n for n, state in states.items() if state == "complete"}  # stopped at step 10, not later
        assert all(r.metrics["AP"] == 1.0 / (r.number + 1) for r in records)

    def test_a_trial_that_finds_the_disk_full_stops_the_search(self, local_ray, tmp_path):
        """A full disk fails every later trial the same way: the trial is recorded as failed with the reason,
        no later trial starts, and the search ends with one error naming the file."""
        out, log = tmp_path / "results", tmp_path / "evaluate.log"
        with pytest.raises(OutputError, match=r"^no space left on device while writing .*\(trial 1: the search"):
            _local_search(tmp_path, CheapEvaluateFactory(str(log), fail={1: "full"}), "ap", 6)
        assert [row.number for row in read_log(log) if row.event == "start"] == [0, 1]
        assert json.loads((trial_dir(out, 1) / "trial.json").read_text())["state"] == "failed"

    def test_a_multi_objective_search_hands_its_trials_no_report(self, local_ray, tmp_path):
        """No scheduler stops a multi-objective trial: it gets no ``report`` and measures no intermediate AP."""
        out = tmp_path / "results"
        records = _local_search(tmp_path, CheapEvaluateFactory(), "ap_macs", 2)
        assert [r.state for r in records] == ["complete", "complete"]
        assert [(trial_dir(out, r.number) / "report.txt").read_text() for r in records] == ["none", "none"]


def test_a_driver_on_a_multi_node_cluster_runs_trials_on_every_worker_node(tmp_path):
    from ray.cluster_utils import Cluster

    space = space_file(tmp_path, "bifpn_edges", max_params=10**9, max_macs=10**12)  # nothing rejected
    config = {
        "space": str(space),
        "results_dir": str(tmp_path / "results"),
        "n_trials": 4,
        "log": str(tmp_path / "evaluate.log"),
        # Longer than a worker node's first actor takes to start on a busy 2-core CPU (torch's import, about 5 s):
        # with 1 s, the first node's reused actor could finish every trial before the second node's had started.
        "sleep_s": 6.0,
        "storage_path": str(tmp_path / "ray"),
        "name": "cluster",
        "max_concurrent": 2,
    }
    start = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        # As `ray submit` runs a script on the head: a driver process that finds the cluster through RAY_ADDRESS.
        driver = subprocess.run(
            [sys.executable, str(write_ray_driver(tmp_path)), json.dumps(config)],
            env={**os.environ, "RAY_ADDRESS": cluster.address},
            capture_output=True,
            text=True,
            timeout=400,
        )
    finally:
        cluster.shutdown()
    print(f"cluster (head + 2 worker nodes), 4 trials: {time.perf_counter() - start:.1f} s")
    assert driver.returncode == 0, driver.stderr[-4000:]
    records = json.loads(driver.stdout.split("RECORDS", 1)[1])
    assert [state for _, state, _ in records] == ["complete"] * 4, records

    results = tune_results(tmp_path / "ray" / "cluster")
    nodes = Counter(result["node_id"] for result in results)
    assert len(results) == 4 and sum(nodes.values()) == 4
    assert set(nodes) == {worker.node_id for worker in workers}, (nodes, [w.node_id for w in workers])
    assert len({row.pid for row in read_log(tmp_path / "evaluate.log")}) >= 2


def recorded_trials(experiment: Path) -> dict[int, str]:
    """Trial number -> status in the experiment state Tune last saved ({} before the first save)."""
    from ray.tune import ExperimentAnalysis

    logger = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = logger.level
    logger.setLevel(logging.ERROR)  # not "Failed to fetch metrics" of every trial that has not reported yet
    try:
        trials = ExperimentAnalysis(str(experiment)).trials
    except Exception:  # not written yet, or being written
        return {}
    finally:
        logger.setLevel(level)
    return {int(trial.config[TRIAL_NUMBER]): trial.status for trial in trials}


def test_a_killed_driver_resumes_without_rerunning_the_trials_it_had_recorded(tmp_path):
    n_trials = 4
    space = space_file(tmp_path, "bifpn_edges", max_params=10**9, max_macs=10**12)  # nothing rejected
    log, experiment = tmp_path / "evaluate.log", tmp_path / "ray" / "killed"
    config = {
        "space": str(space),
        "results_dir": str(tmp_path / "results"),
        "n_trials": n_trials,
        "log": str(log),
        "sleep_s": 4.0,
        "storage_path": str(tmp_path / "ray"),
        "name": "killed",
        "max_concurrent": 2,
    }
    command = [sys.executable, str(write_ray_driver(tmp_path)), json.dumps(config)]
    start = time.perf_counter()
    # Its own session: SIGKILL reaches the driver and the local Ray it started (raylet, GCS, workers).
    # Tune saves its state every second (not every 10 s or more), so the kill finds two finished trials saved
    # while others still run, however fast this machine is.
    with (tmp_path / "first.out").open("w") as out:
        driver = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"},
        )
    deadline, recorded = time.monotonic() + 300, {}
    try:
        while True:  # kill it once Tune has saved two finished trials, while another one is running
            assert driver.poll() is None, (tmp_path / "first.out").read_text()[-3000:]
            assert time.monotonic() < deadline, "Tune recorded no two finished trials in time"
            recorded = recorded_trials(experiment)
            rows = read_log(log)
            running = {r.number for r in rows if r.event == "start"} - {r.number for r in rows if r.event == "done"}
            if list(recorded.values()).count("TERMINATED") >= 2 and running:
                break
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already: the assertion above says why
            os.killpg(driver.pid, 9)
        driver.wait()
        killed_at = time.time()
    quiet_s = config["sleep_s"] + 2
    while read_log(log) != (before := read_log(log)) or time.time() - max(r.time for r in before) < quiet_s:
        time.sleep(0.5)  # Ray's workers are not in the driver's session: they see their raylet die, and may
    # finish their trial's evaluate first
    finished = {number for number, status in recorded.items() if status == "TERMINATED"}

    again = subprocess.run(command, capture_output=True, text=True, timeout=400)  # the same command again
    assert again.returncode == 0, again.stderr[-4000:]
    records = json.loads(again.stdout.split("RECORDS", 1)[1])
    rows = read_log(log)[len(before) :]  # what the restored run evaluated
    done_before = sorted(r.number for r in before if r.event == "done" and r.time < killed_at)
    done_after = [r.number for r in rows if r.event == "done"]
    print(
        f"ray: killed with trials {sorted(finished)} saved as finished by Tune, {done_before} evaluated "
        f"({sorted(r.number for r in before if r.event == 'done' and r.time >= killed_at)} by orphaned workers "
        f"after the kill); restored, evaluated {sorted(done_after)} (evaluated before the kill but after Tune's "
        f"last save, so run again: {sorted(set(done_before) & set(done_after))}); "
        f"{time.perf_counter() - start:.1f} s"
    )
    assert not {r.pid for r in before} & {r.pid for r in rows}
    assert sorted(number for number, _, _ in records) == list(range(n_trials))
    assert [state for _, state, _ in records] == ["complete"] * n_trials, records
    assert not finished & {r.number for r in rows if r.event == "start"}  # a recorded finished trial: never again
    assert len(done_after) == len(set(done_after)) and set(done_after) | finished == set(range(n_trials))
