"""Write files so that a failure or a kill never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from graphspec import InputError


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
