"""The files of one trial, the same for every engine: ``<results>/trials/<nnnn>/`` holds the candidate's spec
(``<space>_trial<nnnn>.yaml``), what the evaluate writes (the proxy task's ``train/``), and ``trial.json``, the
trial's :class:`~search.results.TrialRecord` once it completed or failed.

Trial numbers count from 0 (see :mod:`search.engines.base`).
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from pathlib import Path

from effdet_graph import atomic_output
from search.candidate import Candidate
from search.results import TrialRecord

TRIALS = "trials"
RECORD = "trial.json"
TRACEBACK = "traceback.txt"
ERROR_CHARS = 300


def trial_dir(results_dir: Path, number: int) -> Path:
    """Trial ``number``'s folder: ``<results_dir>/trials/<nnnn>``."""
    return results_dir / TRIALS / f"{number:04d}"


def write_spec(candidate: Candidate, results_dir: Path) -> Path:
    """Make the candidate's trial folder and write its spec file there; return the spec file's path."""
    directory = trial_dir(results_dir, candidate.trial_number)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / candidate.file_name
    path.write_text(candidate.spec_text, encoding="utf-8")
    return path


def write_record(record: TrialRecord, results_dir: Path) -> Path:
    """Write ``record`` as ``trial.json`` in its trial's folder (atomically: a killed trial leaves none)."""
    directory = trial_dir(results_dir, record.number)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_output(directory / RECORD) as tmp:
        tmp.write_text(json.dumps(dataclasses.asdict(record), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return directory / RECORD


def write_traceback(exc: BaseException, results_dir: Path, number: int) -> Path:
    """Write ``exc``'s traceback as ``traceback.txt`` in trial ``number``'s folder (the log keeps one line)."""
    directory = trial_dir(results_dir, number)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / TRACEBACK
    path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return path


def read_record(results_dir: Path, number: int) -> TrialRecord | None:
    """Trial ``number``'s record as :func:`write_record` left it, or ``None`` when there is none."""
    path = trial_dir(results_dir, number) / RECORD
    if not path.is_file():
        return None
    return TrialRecord(**json.loads(path.read_text(encoding="utf-8")))


def error_line(exc: BaseException) -> str:
    """How a failed trial's error is recorded: ``<type>: <first line of the message>``, at most 300 characters."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:ERROR_CHARS]
