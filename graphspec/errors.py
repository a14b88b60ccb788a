"""The one exception type of the spec language, and the helpers that phrase its messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a spec file. ``line`` and ``column`` are 1-based; 0 means unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


class InputError(Exception):
    """Base of every error a user can cause with their input (a spec, a dataset, a checkpoint).

    The command line prints the message alone (no traceback) and exits with code 2.
    Subclasses phrase the message so that it names the file, the entry and how to fix it.
    """


class SpecError(InputError, ValueError):
    """A spec breaks a rule of the spec language.

    The message is one line: ``FILE:LINE:COL: node 'ID': what is wrong; how to fix it``.
    ``location`` and ``node`` are kept as attributes for programs that want them.
    """

    def __init__(self, message: str, location: Location | None = None, node: str | None = None):
        self.reason = message
        self.location = location
        self.node = node
        prefix = f"{location}: " if location else ""
        where = f"node '{node}': " if node else ""
        super().__init__(f"{prefix}{where}{message}")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def choices_text(choices: Iterable[str]) -> str:
    """Format the valid choices for an error message: ``(valid: a, b, c)``."""
    return "(valid: " + ", ".join(str(c) for c in choices) + ")"


def first_few(items: Sequence[str], limit: int = 5, sep: str = ", ") -> str:
    """The first ``limit`` items joined by ``sep``, then ``... (N more)`` for the rest: ``a, b, c, ... (7 more)``."""
    shown = sep.join(str(item) for item in items[:limit])
    return shown + (f"{sep}... ({len(items) - limit} more)" if len(items) > limit else "")
