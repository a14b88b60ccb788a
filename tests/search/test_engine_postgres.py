"""Many workers on one study: ``run_optuna`` in two worker processes sharing a real PostgreSQL server (a throwaway
cluster started for the test), as workers on several machines would. Every trial number finishes exactly once,
every sampled point is evaluated once, and both workers do work.

Needs Debian's ``postgresql`` package (``.ci/run`` installs it) and ``psycopg2`` (the ``search`` extra); skips
with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from engine_helpers import free_port, postgres_bin_dir, read_log, write_worker_script
from optuna.trial import TrialState

pytest.importorskip("psycopg2", reason="psycopg2 (the `search` extra: psycopg2-binary) is not installed")
optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # heartbeats
N_TRIALS = 14


@pytest.fixture
def postgres_url():
    """A PostgreSQL server of its own on a free localhost port; yields its SQLAlchemy URL, stops and deletes it."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as Debian's `postgres` user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the PostgreSQL server as")
        prefix = ["runuser", "-u", "postgres", "--"]
    # Not tmp_path: root's pytest folder (mode 0700) is closed to the `postgres` user.
    base = Path(tempfile.mkdtemp(prefix="effdet-graph-pg-"))
    if prefix:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data, port = base / "data", free_port()

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *args], check=True, capture_output=True, text=True, timeout=120)

    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        pg(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            "start",
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        log = (base / "server.log").read_text(errors="replace") if (base / "server.log").is_file() else ""
        detail = (getattr(exc, "stderr", None) or str(exc)).strip().splitlines()[-3:] + log.splitlines()[-3:]
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {' | '.join(detail)}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow  # two worker processes importing torch, and a server: ~25-35 s on two cores
def test_two_workers_share_one_study_on_postgres(postgres_url, tmp_path, fast_spaces):
    space = fast_spaces["bifpn_edges"]  # some points are over budget: rejected trials count as finished too
    script, log = write_worker_script(tmp_path), tmp_path / "evaluate.log"
    config = {
        "space": space.file,
        "results_dir": str(tmp_path / "results"),
        "n_trials": N_TRIALS,
        "log": str(log),
        "sleep_s": 0.3,
        "storage": postgres_url,
        "study_name": "shared",
        "barrier": str(tmp_path),
    }
    start = time.perf_counter()
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), json.dumps(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2:  # both imported: let them open the study at once
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers), "a worker did not start"
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outputs = [worker.communicate(timeout=240) for worker in workers]
    for worker, (_out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    print(f"two workers, {N_TRIALS} trials: {time.perf_counter() - start:.1f} s")

    trials = optuna.load_study(study_name="shared", storage=postgres_url).get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
    # Each worker stops once N_TRIALS have finished; one that was mid-trial then finishes that one as well.
    assert N_TRIALS <= len(finished) <= N_TRIALS + 1, states
    assert states[TrialState.RUNNING] == 0 and states[TrialState.FAIL] == 0, states
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # every number once, none lost

    rows = read_log(log)
    done = [(row.number, row.digest) for row in rows if row.event == "done"]
    started = [(row.number, row.digest) for row in rows if row.event == "start"]
    complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    assert sorted(n for n, _ in done) == sorted(complete) == sorted(n for n, _ in started)  # each trial ran once
    points = Counter(digest for _, digest in done)
    assert max(points.values()) == 1, f"a point was evaluated more than once: {points.most_common(3)}"
    pids = Counter(row.pid for row in rows if row.event == "done")
    assert len(pids) == 2 and min(pids.values()) >= 2, f"both workers should have evaluated trials: {pids}"
