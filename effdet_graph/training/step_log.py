"""Per-step training logs: a CSV file (``OUT/log.csv``) or TensorBoard event files (``OUT/tensorboard``).

A resumed run continues the log of the run it resumes: rows (events) after the resumed step, written
by the run before it was killed, are dropped first, so no step appears twice.

Nothing is created (no file, no folder) before the first row is written, so a run that fails before
its first step leaves no header-only log behind.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Protocol

from effdet_graph.atomic import atomic_output

__all__ = ["FIELDS", "StepLog", "open_step_log"]

#: The values logged per step, in CSV column order.
FIELDS = ("step", "epoch", "lr", "loss", "class_loss", "box_loss", "images_per_s")


class StepLog(Protocol):
    def write(self, row: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class CsvLog:
    """Rows of :data:`FIELDS`, flushed after each step; the file is created (or cut back to
    ``start_step``) when the first row is written."""

    def __init__(self, path: Path, start_step: int):
        self._path = path
        self._start_step = start_step
        self._file: Any = None
        self._writer: csv.DictWriter[str] | None = None

    def _open(self) -> csv.DictWriter[str]:
        path = self._path
        if path.exists() and self._start_step > 0:
            with open(path, newline="", encoding="utf-8") as f:
                kept = [row for row in csv.DictReader(f) if int(row["step"]) <= self._start_step]
            with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, FIELDS)
                writer.writeheader()
                writer.writerows(kept)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, FIELDS).writeheader()
        self._file = open(path, "a", newline="", encoding="utf-8")
        return csv.DictWriter(self._file, FIELDS)

    def write(self, row: dict[str, float]) -> None:
        if self._writer is None:
            self._writer = self._open()
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file, self._writer = None, None


class TensorBoardLog:
    """Scalars ``train/<field>`` against the step; the event file is created when the first row is written."""

    def __init__(self, folder: Path, start_step: int):
        self._folder = folder
        self._start_step = start_step
        self._writer: Any = None

    def write(self, row: dict[str, float]) -> None:
        if self._writer is None:
            from tensorboardX import SummaryWriter

            start = self._start_step
            self._writer = SummaryWriter(str(self._folder), purge_step=start + 1 if start else None)
        for name in FIELDS[1:]:
            self._writer.add_scalar(f"train/{name}", row[name], int(row["step"]))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def open_step_log(kind: str, out: Path, start_step: int) -> StepLog:
    """``kind`` ``"csv"`` or ``"tensorboard"``, continuing after ``start_step``."""
    return CsvLog(out / "log.csv", start_step) if kind == "csv" else TensorBoardLog(out / "tensorboard", start_step)
