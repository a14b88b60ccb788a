"""Data loader errors as one line: an input error raised in a loader worker process reaches the user as
the same one-line error it is when there are no workers.

torch re-raises a worker's exception in the main process with its type but a message made of the worker's
whole traceback (``Caught DatasetError in DataLoader worker process 0. Original Traceback ...``);
:func:`reraise_worker_errors` puts the original message back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from effdet_graph.errors import DatasetError
from graphspec import InputError

__all__ = ["reraise_worker_errors", "worker_error_message"]

T = TypeVar("T")

_WORKER = "in DataLoader worker process"


def worker_error_message(exc: BaseException) -> str | None:
    """The original message (its first line) of an exception torch re-raised from a loader worker.

    Args:
        exc: an exception raised while iterating a ``DataLoader``.

    Returns:
        The first line of the message the worker's exception had, or ``None`` when ``exc`` did not come
        from a worker (or its message cannot be found in the text).
    """
    text = str(exc)
    first, _, _ = text.partition("\n")
    if not first.startswith("Caught ") or _WORKER not in first:
        return None
    name = type(exc).__name__
    for line in reversed(text.splitlines()):  # the traceback's last line: "module.Type: message"
        head, sep, message = line.partition(": ")
        if sep and head.rsplit(".", 1)[-1] == name and " " not in head:
            return message
    return None


def reraise_worker_errors(batches: Iterable[T]) -> Iterator[T]:
    """Iterate ``batches`` (a ``DataLoader``); an :class:`InputError` re-raised from a worker process is
    raised again as the same type with the worker's message alone (no traceback text).

    Args:
        batches: the loader.

    Yields:
        Its batches.

    Raises:
        InputError: what a worker raised (typically :class:`~effdet_graph.errors.DatasetError`), one line.
    """
    try:
        yield from batches
    except InputError as exc:
        message = worker_error_message(exc)
        if message is None:
            raise
        try:
            clean = type(exc)(message)
        except Exception:  # a type that takes other arguments
            clean = DatasetError(message)
        raise clean from None
