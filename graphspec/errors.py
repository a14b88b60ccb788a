"""The located error types of every YAML file the project reads, and the helpers that phrase their messages.

:class:`ConfigError` is raised for any input file (a search space, the detector scaling table ...);
:class:`SpecError`, its subclass, for feature-network specs. Both print as one line
``FILE:LINE:COL: what is wrong; how to fix it``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_QUOTED = 80
"""The longest a value echoed in a message gets (longer ones end in ``...``)."""


def quote(value: Any) -> str:
    """``value`` for a message, quoted with escapes (``repr``): ``'p4_td'``, ``'a\\nb'``, ``3``, ``True``.

    A newline, an ANSI escape or a NUL byte in user text shows as ``\\n``, ``\\x1b``, ``\\x00``, so it can
    neither start a second line nor reach the terminal raw. Long values are cut to ``MAX_QUOTED`` characters.
    """
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 3] + "..."


def escape(text: str) -> str:
    """``text`` with every character that is not printable (control characters, line and paragraph
    separators, ANSI escapes, NUL ...) written as a Python escape, so that it prints as one plain line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class Location:
    """A place in a spec file. ``line`` and ``column`` are 1-based; 0 means unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{escape(self.file)}:{self.line}:{self.column}"
        return escape(self.file)


class InputError(Exception):
    """Base of every error a user can cause with their input (a spec, a dataset, a checkpoint).

    The command line prints the message alone (no traceback) and exits with code 2.
    Subclasses phrase the message so that it names the file, the entry and how to fix it.
    """


class ConfigError(InputError, ValueError):
    """A YAML input file (a spec, a search space, the detector scaling table) breaks a rule of its schema.

    The message is one line: ``FILE:LINE:COL: what is wrong; how to fix it``. ``location`` (file, line,
    column), ``key`` (the dotted path of the offending entry, e.g. ``proxy.ema_decay``, or ``None``) and
    ``reason`` (the message without the location) are kept as attributes for programs that want them.
    """

    def __init__(self, message: str, location: Location | None = None, key: str | None = None):
        self.reason = message
        self.location = location
        self.key = key
        super().__init__(escape(f"{location}: {message}" if location else message))


class SpecError(ConfigError):
    """A spec breaks a rule of the spec language.

    The message is one line: ``FILE:LINE:COL: node 'ID': what is wrong; how to fix it``.
    ``location`` and ``node`` are kept as attributes for programs that want them.
    """

    def __init__(self, message: str, location: Location | None = None, node: str | None = None, key: str | None = None):
        super().__init__(f"node {quote(node)}: {message}" if node else message, location, key)
        self.reason = message
        self.node = node


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {quote(close[0])}?" if close else ""


def choices_text(choices: Iterable[str]) -> str:
    """Format the valid choices for an error message: ``(valid: a, b, c)``."""
    return "(valid: " + ", ".join(str(c) for c in choices) + ")"


def first_few(items: Sequence[str], limit: int = 5, sep: str = ", ") -> str:
    """The first ``limit`` items joined by ``sep``, then ``... (N more)`` for the rest: ``a, b, c, ... (7 more)``."""
    shown = sep.join(str(item) for item in items[:limit])
    return shown + (f"{sep}... ({len(items) - limit} more)" if len(items) > limit else "")
