"""Opening image files, with the error a user can act on when one is missing or unreadable."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from effdet_graph.errors import DatasetError

__all__ = ["open_image"]


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Read an image file whole, as RGB.

    The pixels are decoded here (not lazily), so a truncated or corrupt file fails now, with the
    file named, rather than later inside a data loader.

    Args:
        path: the image file; any format PIL reads.

    Returns:
        The RGB image, its file closed.

    Raises:
        DatasetError: the file does not exist, or is not an image PIL can decode.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from None
