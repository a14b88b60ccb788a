"""The crash-consistency harness: run a long job's command, SIGKILL it at a seeded random moment (a time into
the run, or inside its N-th atomic write through the hook of :mod:`effdet_graph.atomic`), then run the
command again, as a user would, until it finishes. The tests compare what it left with an uninterrupted run's.

A job is a :class:`Job`: its command for a folder, and the command that continues it there (the same command,
or, for ``train``, the same with ``--resume`` once a checkpoint exists)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from effdet_graph.atomic import CRASH_AT_WRITE

#: Every process of the harness runs on one thread: the CPU's results are then bit-equal run to run.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
#: Reruns after a kill before the harness gives up (a job that cannot finish is a failure).
MAX_RERUNS = 3


@dataclass(frozen=True)
class Kill:
    """Where a run is killed: ``after_s`` seconds into it, or inside its ``at_write``-th atomic write."""

    after_s: float | None = None
    at_write: int | None = None

    def __str__(self) -> str:
        return f"after {self.after_s:.2f} s" if self.after_s is not None else f"inside write {self.at_write}"


@dataclass(frozen=True)
class Job:
    """A long job: ``command(folder)`` starts it with its outputs in ``folder``; ``again(folder)`` continues it."""

    name: str
    command: Callable[[Path], list[str]]
    again: Callable[[Path], list[str]] | None = None

    def rerun(self, folder: Path) -> list[str]:
        return (self.again or self.command)(folder)


@dataclass
class Outcome:
    """One killed run and the reruns that finished it: whether the kill landed (the process died of SIGKILL
    before it finished), the reruns' exit codes, and the wall seconds in all."""

    kill: Kill
    killed: bool
    reruns: list[int] = field(default_factory=list)
    seconds: float = 0.0


def python(*args: str) -> list[str]:
    """A command line running this interpreter."""
    return [sys.executable, *args]


def run(argv: list[str], cwd: Path, kill: Kill | None = None, timeout: float = 600) -> int:
    """Run ``argv`` in ``cwd`` in a process group of its own; SIGKILL the group (the job and every process it
    started, as when its machine fails) as ``kill`` says. Its exit code (-9 when killed)."""
    env = dict(ENV)
    if kill is not None and kill.at_write is not None:
        env[CRASH_AT_WRITE] = str(kill.at_write)
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        if kill is not None and kill.after_s is not None:
            try:
                process.wait(timeout=kill.after_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        _, err = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):  # what the job left running (a killed Ray driver's workers)
            os.killpg(process.pid, signal.SIGKILL)
    if process.returncode not in (0, -9):
        raise AssertionError(f"{' '.join(argv)} exited with {process.returncode}:\n{err[-3000:]}")
    return process.returncode


def timed(job: Job, folder: Path, cwd: Path) -> float:
    """Run ``job`` once uninterrupted into ``folder``; its wall seconds."""
    start = time.perf_counter()
    assert run(job.command(folder), cwd) == 0
    return time.perf_counter() - start


def draw_kills(count: int, seed: int, seconds: float, writes: int) -> list[Kill]:
    """``count`` kills, half at a random time in the uninterrupted run's first ``seconds`` (a process takes
    about 3 s to import torch, so the first second is skipped less often than it is hit), half inside one of its
    ``writes`` atomic writes, drawn with ``seed``."""
    rng = random.Random(seed)
    return [
        Kill(after_s=rng.uniform(0.5, seconds)) if i % 2 == 0 else Kill(at_write=rng.randint(1, writes))
        for i in range(count)
    ]


def kill_and_finish(job: Job, folder: Path, cwd: Path, kill: Kill) -> Outcome:
    """Start ``job`` into ``folder`` killed as ``kill`` says, then rerun it until it exits 0."""
    start = time.perf_counter()
    outcome = Outcome(kill, killed=run(job.command(folder), cwd, kill) == -9)
    code = 0 if not outcome.killed else None
    while code != 0:
        assert len(outcome.reruns) < MAX_RERUNS, f"{job.name}: not finished after {MAX_RERUNS} reruns ({kill})"
        code = run(job.rerun(folder), cwd)
        outcome.reruns.append(code)
    outcome.seconds = time.perf_counter() - start
    return outcome
