"""Write files so that a failure or a kill never leaves a half-written one behind, and so that a full disk or a
read-only folder is one line naming the file (:class:`~effdet_graph.errors.OutputError`), not a traceback.

The crash-consistency harness (``tests/faults/``) kills processes inside these writes: with the environment
variable :data:`CRASH_AT_WRITE` set to ``N``, the process kills itself (SIGKILL) in its ``N``-th atomic write,
after the temporary file is written and before it replaces the target. The variable is taken out of the
environment when this module is imported, so that one kill hits the process it was set for, not each of the
processes that one starts (a Ray search's workers).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from effdet_graph.errors import InputError, OutputError

__all__ = ["CRASH_AT_WRITE", "WRITE_ADVICE", "atomic_output", "check_output_folder"]


#: The environment variable of the fault-injection hook (see the module docstring); unset in normal use.
CRASH_AT_WRITE = "EFFDET_GRAPH_CRASH_AT_WRITE"

_RETRY_ELSEWHERE = "choose another output folder"
#: How to recover from each error a write meets on a healthy machine; any other error propagates unchanged.
WRITE_ADVICE = {
    errno.ENOSPC: f"free space on that device or {_RETRY_ELSEWHERE}",
    errno.EDQUOT: f"free space within your quota or {_RETRY_ELSEWHERE}",
    errno.EROFS: f"the file system is read-only; {_RETRY_ELSEWHERE}",
    errno.EACCES: f"make the folder writable or {_RETRY_ELSEWHERE}",
    errno.EPERM: f"make the folder writable or {_RETRY_ELSEWHERE}",
}
_writes = 0
_crash_at_write = os.environ.pop(CRASH_AT_WRITE, None)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    Raises:
        OutputError: the folder, the temporary file or the move failed for lack of space or permission
            (:data:`WRITE_ADVICE`): one line naming ``path``; ``path`` keeps its previous content, if any.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise _output_error(exc, path) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        _crash_here_if_asked()
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except Exception as exc:
        cause = _write_failure(exc)
        if cause is None:
            raise
        raise _output_error(cause, path) from None
    finally:
        with contextlib.suppress(OSError):  # a read-only folder may refuse this too; nothing more to do then
            os.unlink(tmp)


def _write_failure(exc: BaseException) -> OSError | None:
    """The OSError of :data:`WRITE_ADVICE` that ``exc`` is or arose from (a writer that meets one while
    unwinding may raise its own error: torch's zip writer raises a RuntimeError "unexpected pos"), else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in WRITE_ADVICE:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _output_error(exc: OSError, path: Path) -> OSError | OutputError:
    """The one-line error for ``exc`` met while writing ``path``; ``exc`` itself when no advice fits it."""
    if exc.errno not in WRITE_ADVICE:
        return exc
    reason = os.strerror(exc.errno).lower()
    return OutputError(f"{reason} while writing {path}; {WRITE_ADVICE[exc.errno]}")


def _crash_here_if_asked() -> None:
    """The fault-injection hook: SIGKILL this process in its ``$EFFDET_GRAPH_CRASH_AT_WRITE``-th atomic write."""
    global _writes
    if _crash_at_write is None:
        return
    _writes += 1
    if _writes == int(_crash_at_write):
        os.kill(os.getpid(), signal.SIGKILL)


def check_output_folder(folder: str | Path, name: str = "the output folder") -> None:
    """Check that ``folder`` is, or can be made, a folder: neither it nor a parent is an existing file.
    Call it before anything is written, so a bad ``--out`` stops a command at the door.

    Args:
        folder: the folder a command will write into.
        name: what to call it in the message (the flag: ``--out``).

    Raises:
        InputError: ``folder`` or one of its parents exists and is not a folder.
    """
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            return
        if candidate.exists() or candidate.is_symlink():
            if candidate == folder:
                raise InputError(f"{folder}: {name} names an existing file, not a folder; choose another")
            raise InputError(f"{folder}: {name} cannot be made: {candidate} is a file, not a folder")
