"""The files of one trial, the same for every engine: ``<results>/trials/<nnnn>/`` holds the candidate's spec
(``<space>_trial<nnnn>.yaml``), what the evaluate writes (the proxy task's ``train/``), and ``trial.json``, the
trial's :class:`~search.reporting.results.TrialRecord` once it completed or failed.

Trial numbers count from 0 (see :mod:`search.engines.base`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import traceback
from pathlib import Path

from effdet_graph import InputError
from effdet_graph.atomic import atomic_output
from effdet_graph.errors import OutputError
from search.reporting.results import TrialRecord
from search.sampling.candidate import Candidate

TRIALS = "trials"
RECORD = "trial.json"
TRACEBACK = "traceback.txt"
ERROR_CHARS = 300
#: What a search stopped by a trial that could not write its files says (after the file and the reason).
SEARCH_STOPPED = "the search stopped; run the same command again once there is room, finished trials are kept"


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


def record_output_failure(record: TrialRecord, results_dir: Path, exc: OutputError) -> OutputError:
    """Record a trial that could not write its files (as far as the disk still lets it: the record is small) and
    return the error that stops the search, naming the trial. A full disk fails every later trial the same way,
    so every engine stops at the first such trial."""
    with contextlib.suppress(OutputError):
        write_record(record, results_dir)
    return OutputError(f"{exc} (trial {record.number}: {SEARCH_STOPPED})")


def write_traceback(exc: BaseException, results_dir: Path, number: int) -> Path:
    """Write ``exc``'s traceback as ``traceback.txt`` in trial ``number``'s folder (the log keeps one line)."""
    directory = trial_dir(results_dir, number)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / TRACEBACK
    path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return path


def read_record(results_dir: Path, number: int) -> TrialRecord | None:
    """Trial ``number``'s record as :func:`write_record` left it, or ``None`` when there is none.

    Raises:
        InputError: the file is not such a record (damaged by hand: it is written atomically); one line naming it.
    """
    path = trial_dir(results_dir, number) / RECORD
    if not path.is_file():
        return None
    try:
        return TrialRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputError(
            f"{path}: not a trial record ({type(exc).__name__}: {exc}); delete it (the study or experiment state "
            "keeps the trial's result)"
        ) from None


def started_trials(results_dir: Path) -> list[int]:
    """The numbers of the trials that have a folder under ``results_dir`` (begun, finished or failed), sorted."""
    folder = results_dir / TRIALS
    numbers = (path.name for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else ()
    return sorted(int(name) for name in numbers if name.isdigit())


def refuse_new_search_over_trials(results_dir: Path, state: str) -> None:
    """Refuse to start a new search in ``results_dir`` when it holds the trials of an earlier one whose engine
    state is gone (``state`` says what the engine found instead): the new search would number its trials from 0
    and train them over the earlier ones' files.

    Raises:
        InputError: one line naming the folder and the way out; nothing is deleted.
    """
    numbers = started_trials(results_dir)
    if numbers:
        raise InputError(
            f"{results_dir}: holds {len(numbers)} trial(s) of an earlier search under {TRIALS}/, but {state}; a new "
            "search there would write over them. They are kept: start a new search with --out another folder"
        )


def error_line(exc: BaseException) -> str:
    """How a failed trial's error is recorded: ``<type>: <first line of the message>``, at most 300 characters."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:ERROR_CHARS]
