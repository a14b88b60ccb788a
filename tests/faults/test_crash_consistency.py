"""Long jobs killed (SIGKILL) at seeded random moments, each time run again until they finish, end where an
uninterrupted run ends: the same final weights bit for bit (training), the same AP for every trial that both
runs trained (a search), every file they read back readable. The slow suite (CI runs it) kills each job
:data:`SLOW_KILLS` times; ``CRASH_KILLS=N`` sets another number."""

from __future__ import annotations

import csv
import functools
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from crash import Job, draw_kills, kill_and_finish, python, timed
from tiny_training import train_flags

from benchmarks.ranking.store import RunStore
from effdet_graph.builtin import specs_dir
from effdet_graph.data.synthetic import make_dataset
from effdet_graph.io.checkpoint import read_checkpoint
from search.engines.trial_files import read_record

ROOT = Path(__file__).resolve().parents[2]
SLOW_KILLS = 6
TRAIN_STEPS = 8  # 10 images: 8 train, batch 4, 2 steps an epoch: 4 checkpoints
FINISHED = ("complete", "rejected", "failed")


def kills(default: int) -> int:
    return int(os.environ.get("CRASH_KILLS", default))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("crash") / "shapes"
    make_dataset(folder, images=10, seed=0, image_size=128)
    return folder


def train_job(data: Path) -> Job:
    flags = train_flags(steps=TRAIN_STEPS, bn_images=8)

    def command(out: Path) -> list[str]:
        return python("-m", "effdet_graph.cli", "train", "--data", str(data), *flags, "--out", str(out), "--eval")

    def again(out: Path) -> list[str]:  # the documented way on: --resume once a checkpoint is there
        return command(out) + (["--resume", str(out / "last.pt")] if (out / "last.pt").exists() else [])

    return Job("train --eval", command, again)


def search_job(name: str, *flags: str, engine: str = "optuna") -> Job:
    """``effdet-graph search`` of the built-in ``bifpn_edges`` space, at the smoke budget (2 trials)."""
    space = str(specs_dir() / "search" / "bifpn_edges.yaml")
    flags = ("--smoke-test", "--engine", engine, "--device", "cpu", *flags)
    return Job(name, lambda out: python("-m", "effdet_graph.cli", "search", space, *flags, "--out", f"{out}"))


def assert_same_training(run: Path, reference: Path) -> None:
    got, want = read_checkpoint(run / "last.pt"), read_checkpoint(reference / "last.pt")
    assert got["step"] == want["step"] == TRAIN_STEPS
    for part in ("model", "ema"):
        assert got[part].keys() == want[part].keys()
        assert all(torch.equal(got[part][k], want[part][k]) for k in want[part]), f"{part} differs"


def graph_text(spec_file: Path) -> str:
    """A trial's spec without what names the trial (comments, ``name`` and ``description``): its graph."""
    lines = spec_file.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith(("#", "name:", "description:")))


def complete_trials(folder: Path, database: bool = True) -> tuple[int, dict[str, Path]]:
    """How many trials finished, and the complete trials' folders by their graph; every file of the search
    checked readable on the way (with ``database``, the Optuna study's: a Ray search keeps its state in Tune's
    experiment, which the rerun that finished it has read)."""
    if database:
        with sqlite3.connect(folder / "study.db") as db:
            assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    with open(folder / "leaderboard.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    trials = {}
    for row in rows:
        record = read_record(folder, int(row["trial"]))  # readable, or absent (killed before its record)
        if row["state"] == "complete":
            assert record is not None and record.state == "complete"
            trials[graph_text(Path(row["spec_file"]))] = Path(row["spec_file"]).parent
    return sum(row["state"] in FINISHED for row in rows), trials


def assert_same_search(run: Path, reference: Path, database: bool = True) -> None:
    (finished, got), (finished_reference, want) = (complete_trials(f, database) for f in (run, reference))
    # a trial killed while it ran is not finished: another one is run; on failure, the leaderboards say which
    leaderboards = "\n".join((folder / "leaderboard.csv").read_text(encoding="utf-8") for folder in (run, reference))
    assert finished == finished_reference, f"finished trials differ; killed run, then reference:\n{leaderboards}"
    shared = got.keys() & want.keys()
    assert shared, "no trial in common with the uninterrupted search"
    for graph in shared:  # trained the same: the same weights, step for step
        got_run, want_run = (read_checkpoint(t[graph] / "train" / "last.pt") for t in (got, want))
        assert got_run["step"] == want_run["step"]
        assert all(torch.equal(got_run["ema"][k], want_run["ema"][k]) for k in want_run["ema"]), graph


def assert_same_oneshot(run: Path, reference: Path) -> None:
    """The supernet trained to the same weights; the trials both searches scored have the same AP."""
    got, want = (read_checkpoint(folder / "supernet" / "last.pt") for folder in (run, reference))
    assert got["step"] == want["step"] and all(torch.equal(got["ema"][k], want["ema"][k]) for k in want["ema"])
    (finished, trials), (finished_reference, trials_reference) = complete_trials(run), complete_trials(reference)
    assert finished == finished_reference
    shared = trials.keys() & trials_reference.keys()
    assert shared, "no trial in common with the uninterrupted search"
    for graph in shared:
        assert trial_metrics(trials[graph]) == trial_metrics(trials_reference[graph]), graph


def trial_metrics(trial: Path) -> dict[str, float]:
    """The metrics in the record of the trial whose folder is ``trial``."""
    record = read_record(trial.parent.parent, int(trial.name))
    assert record is not None
    return record.metrics


def assert_same_retraining(run: Path, reference: Path) -> None:
    """The template, retrained in every case, has the same AP for each seed; the rows read."""
    got, want = (json.loads((folder / "retrain.json").read_text(encoding="utf-8")) for folder in (run, reference))
    assert got["rows"][0]["spec"] == want["rows"][0]["spec"]  # the template first
    assert got["rows"][0]["seed_metrics"] == want["rows"][0]["seed_metrics"]
    assert len(got["rows"]) == len(want["rows"])


def ranking_job() -> Job:
    def command(out: Path) -> list[str]:
        flags = ["--recipe", "quick", "--seeds", "0", "1", "--only", "nofusion", "fpn", "--proxies"]
        paths = ["--work", str(out / "work"), "--results", str(out / "ranking.json")]
        return python("-m", "benchmarks.bench_ranking", *flags, *paths)  # run in ROOT

    return Job("ranking benchmark", command)


def assert_same_ranking(run: Path, reference: Path) -> None:
    """The same stored runs (topology, seed, recipe) with the same AP."""

    def runs(folder: Path) -> dict[tuple, float]:
        store = RunStore(folder / "ranking.json")
        return {RunStore.key_of(r): r["metrics"]["AP"] for r in store.runs}

    got, want = runs(run), runs(reference)
    assert len(want) == 4 and got == want


JOBS: dict[str, tuple[Callable[[Path], Job], Callable[[Path, Path], None], int]] = {  # job, check, its writes
    "train": (train_job, assert_same_training, TRAIN_STEPS // 2),
    "search": (lambda _: search_job("optuna search"), assert_same_search, 8),
    "ray": (lambda _: search_job("ray search", engine="ray"), functools.partial(assert_same_search, database=False), 2),
    "oneshot": (lambda _: search_job("one-shot search", "--strategy", "oneshot"), assert_same_oneshot, 8),
    "retrain": (
        lambda _: search_job("search --retrain", "--retrain", "1", "--retrain-seeds", "2"),
        assert_same_retraining,
        12,
    ),
    "ranking": (lambda _: ranking_job(), assert_same_ranking, 4),
}


def crash_and_compare(name: str, count: int, tmp_path: Path, data: Path) -> None:
    make_job, assert_same, writes = JOBS[name]
    job = make_job(data)
    reference = tmp_path / "reference"
    seconds = timed(job, reference, ROOT)
    for i, kill in enumerate(draw_kills(count, seed=len(name), seconds=seconds, writes=writes)):
        outcome = kill_and_finish(job, tmp_path / f"killed{i}", ROOT, kill)
        print(f"{job.name}: killed {kill}: {'died' if outcome.killed else 'finished first'}, reruns {outcome.reruns}")
        assert_same(tmp_path / f"killed{i}", reference)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(JOBS))
def test_a_job_killed_many_times_finishes_as_an_uninterrupted_run(name, tmp_path, data):
    crash_and_compare(name, kills(SLOW_KILLS), tmp_path, data)
