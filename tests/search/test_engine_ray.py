"""The Ray Tune engine end to end with a cheap evaluate (``engine_helpers.CheapEvaluateFactory``): a local search
records complete, rejected (over budget) and failed trials and writes its results; a second call restores the
experiment without running a finished trial again; a driver connected to a real multi-node cluster (a head and
two worker nodes on this machine, ``ray.cluster_utils.Cluster``) runs trials on both workers.

Slow: every Tune trial starts a worker process that imports torch (seconds each on two cores).
"""

from __future__ import annotations

import contextlib
import csv
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
    ship_to_ray,
    space_file,
    tune_results,
    write_ray_driver,
)

from search.objective import OBJECTIVES
from search.results import best_records, write_results
from search.space import load_search_space

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from search.engines.ray_engine import run_ray  # noqa: E402

pytestmark = [
    pytest.mark.slow,  # ASHA's cutoff over a rung of rejected trials only (NaN placeholders):
    pytest.mark.filterwarnings("ignore:All-NaN slice encountered:RuntimeWarning"),
]
N_TRIALS = 6
MAX_MACS = 125_000_000  # about half of bifpn_edges' points are over this budget (BiFPN itself: 136 M)
FAIL = {1: "raise", 3: "oom", 5: "raise"}  # the odd trials that are not rejected fail (Tune counts from 1)


@pytest.fixture(scope="class")
def local_ray():
    """One local Ray for the in-process searches (two CPUs, no dashboard), shut down after them."""
    ship_to_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="class")
def local_search(local_ray, tmp_path_factory):
    """A finished local search: (space, its folder, its evaluate log, the records run_ray returned, seconds)."""
    folder = tmp_path_factory.mktemp("ray_local")
    space = load_search_space(space_file(folder, "bifpn_edges", max_macs=MAX_MACS))
    log = folder / "evaluate.log"
    start = time.perf_counter()
    records = run_ray(
        space,
        CheapEvaluateFactory(log=str(log), sleep_s=0.2, fail=FAIL),
        OBJECTIVES["ap"],
        folder / "results",
        N_TRIALS,
        storage_path=str(folder / "ray"),
        name="local",
        max_concurrent=2,
    )
    return space, folder, log, records, time.perf_counter() - start


class TestLocalSearch:
    """Searches in this process, on one local Ray."""

    def test_local_search_records_complete_rejected_and_failed_trials(self, local_search):
        space, folder, log, records, seconds = local_search
        print(f"local run_ray, {N_TRIALS} trials: {seconds:.1f} s")
        states = Counter(r.state for r in records)
        assert len(records) == N_TRIALS and sorted(r.number for r in records) == list(range(1, N_TRIALS + 1))
        assert states["complete"] >= 1 and states["rejected"] >= 1 and states["failed"] >= 1, states
        for r in records:
            if r.state == "rejected":
                assert r.error.startswith("feature network over budget: MACs") and r.metrics == {}
            elif r.state == "failed":
                expected = {
                    "raise": f"ValueError: planted failure in trial {r.number}",
                    "oom": "OutOfMemoryError: CUDA out of memory.",
                }[FAIL[r.number]]
                assert expected in r.error, r.error
            else:
                assert r.state == "complete" and r.number not in FAIL and 0 < r.metrics["AP"] < 1
                assert r.macs <= MAX_MACS and Path(r.spec_file).is_file()
        evaluated = sorted(row.number for row in read_log(log) if row.event == "start")
        assert evaluated == sorted(r.number for r in records if r.state != "rejected")  # rejected: never trained

        best = write_results(records, OBJECTIVES["ap"], folder / "results")
        with (folder / "results" / "leaderboard.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert Counter(row["state"] for row in rows) == states
        top = max((r for r in records if r.state == "complete"), key=lambda r: r.metrics["AP"])
        assert [p.name for p in best] == [Path(top.spec_file).name] and (folder / "results" / "pareto.png").is_file()

    def test_asha_stops_poor_trials_at_their_first_report_and_keeps_finished_ones(self, local_ray, tmp_path):
        space = load_search_space(space_file(tmp_path, "bifpn_edges", max_params=10**9, max_macs=10**12))
        space = dataclasses.replace(space, proxy=dataclasses.replace(space.proxy, steps=30, reports=3))
        log = tmp_path / "evaluate.log"
        records = run_ray(
            space,
            functools.partial(FadingEvaluate, str(log)),
            OBJECTIVES["ap"],
            tmp_path / "results",
            4,
            storage_path=str(tmp_path / "ray"),
            name="asha",
            max_concurrent=1,
        )
        states = {r.number: r.state for r in records}
        assert states[1] == "complete" and list(states.values()).count("pruned") >= 2, states
        done = {row.number for row in read_log(log) if row.event == "done"}
        assert done == {n for n, state in states.items() if state == "complete"}  # stopped at step 10, not later
        assert all(r.metrics["AP"] == 1.0 / r.number for r in records)

    def test_ap_against_macs_trains_every_accepted_point_and_gives_a_pareto_front(self, local_ray, tmp_path):
        space = load_search_space(space_file(tmp_path, "bifpn_edges", max_macs=MAX_MACS))
        records = run_ray(
            space,
            CheapEvaluateFactory(),
            OBJECTIVES["ap_macs"],
            tmp_path / "results",
            N_TRIALS,
            storage_path=str(tmp_path / "ray"),
            name="pareto",
            max_concurrent=2,
        )
        states = Counter(r.state for r in records)
        assert set(states) == {"complete", "rejected"} and states["rejected"] >= 1, states  # no scheduler stops
        for r in records:
            if r.state == "rejected":
                assert r.macs is None and r.params is None and r.metrics == {}
        front = best_records(records, OBJECTIVES["ap_macs"])
        done = [r for r in records if r.state == "complete"]
        assert front and all(
            not any(
                o.metrics["AP"] >= r.metrics["AP"]
                and o.macs <= r.macs
                and (o.metrics["AP"], o.macs) != (r.metrics["AP"], r.macs)
                for o in done
            )
            for r in front
        )

    def test_a_second_call_restores_the_experiment_without_rerunning_trials(self, local_search, monkeypatch):
        space, folder, log, records, _ = local_search
        restored = []
        original = tune.Tuner.restore.__func__
        monkeypatch.setattr(
            tune.Tuner,
            "restore",
            classmethod(
                lambda cls, path, *args, **kwargs: (restored.append(path), original(cls, path, *args, **kwargs))[1]
            ),
        )
        evaluated = read_log(log)
        again = run_ray(
            space,
            CheapEvaluateFactory(log=str(log), sleep_s=0.2, fail=FAIL),
            OBJECTIVES["ap"],
            folder / "results",
            N_TRIALS,
            storage_path=str(folder / "ray"),
            name="local",
            max_concurrent=2,
        )
        assert restored == [f"{folder / 'ray'}/local"]
        assert read_log(log) == evaluated  # no trial evaluated again
        key = lambda r: (r.number, r.state, r.spec_file, r.metrics, r.error)  # noqa: E731
        assert sorted(map(key, again)) == sorted(map(key, records))


def test_a_driver_on_a_multi_node_cluster_runs_trials_on_every_worker_node(tmp_path):
    from ray.cluster_utils import Cluster

    space = space_file(tmp_path, "bifpn_edges", max_params=10**9, max_macs=10**12)  # nothing rejected
    config = {
        "space": str(space),
        "results_dir": str(tmp_path / "results"),
        "n_trials": 4,
        "log": str(tmp_path / "evaluate.log"),
        "sleep_s": 1.0,
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
    return {int(Path(trial.path).name.split("_")[2]): trial.status for trial in trials}


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
    assert sorted(number for number, _, _ in records) == list(range(1, n_trials + 1))
    assert [state for _, state, _ in records] == ["complete"] * n_trials, records
    assert not finished & {r.number for r in rows if r.event == "start"}  # a recorded finished trial: never again
    assert len(done_after) == len(set(done_after)) and set(done_after) | finished == set(range(1, n_trials + 1))
