"""Opening image files, with the error a user can act on when one is missing or unreadable."""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from effdet_graph.errors import DatasetError

__all__ = ["decode_image_size", "open_image"]

#: What PIL raises for a file it cannot identify or decode (truncated, corrupt, not an image, too large).
_DECODE_ERRORS = (
    OSError,
    UnidentifiedImageError,
    Image.DecompressionBombError,
    SyntaxError,
    EOFError,
    ValueError,
    struct.error,
    zlib.error,
)


def _reason(exc: BaseException) -> str:
    """Why PIL could not read a file, without the file name it repeats."""
    if isinstance(exc, UnidentifiedImageError):
        return "not in an image format PIL knows"
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """``path`` opened by PIL; a missing file, a directory or a decoding error inside the block raises
    :class:`DatasetError` naming the file."""
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise DatasetError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            yield im
    except _DECODE_ERRORS as exc:
        raise DatasetError(f"{path}: not a readable image ({_reason(exc)})") from None


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Read an image file whole, as RGB.

    The pixels are decoded here (not lazily), so a truncated or corrupt file fails now, with the
    file named, rather than later inside a data loader.

    Args:
        path: the image file; any format PIL reads.

    Returns:
        The RGB image, its file closed.

    Raises:
        DatasetError: the file does not exist, is a directory, or is not an image PIL can decode.
    """
    with _opened(Path(path)) as im:
        return im.convert("RGB")


def decode_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Decode an image file whole (so a truncated or corrupt one fails) without keeping or converting its
    pixels, and return its size.

    Args:
        path: the image file; any format PIL reads.

    Returns:
        ``(width, height)`` in pixels.

    Raises:
        DatasetError: the file does not exist, is a directory, or is not an image PIL can decode.
    """
    with _opened(Path(path)) as im:
        im.load()
        return im.size
