"""A data set split checked whole before a run writes anything: its annotations (as
:class:`~effdet_graph.data.coco.CocoDetection` checks them on opening) and every image file, decoded in
full and compared with the size the annotations give it.

Decoding costs about 3 ms per COCO-sized (640x480) JPEG per CPU core, spread over up to
:data:`MAX_THREADS` threads: some 20 s for COCO's 118k training images on 16 cores, a few minutes on 2.
``effdet-graph train --skip-data-check`` (``TrainOptions.check_data=False``) leaves it out; a broken
image then stops the run when the loader reaches it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from effdet_graph.data.coco import CocoDetection
from effdet_graph.errors import DatasetError

__all__ = ["MAX_THREADS", "check_images", "check_split", "open_split"]

#: Threads that decode images at once (PIL releases the GIL while decoding).
MAX_THREADS = 16


def open_split(data: str | Path, split: str, seed: int = 0) -> CocoDetection:
    """``data/split`` (``images/`` + ``instances.json``), checked; untransformed until a transform is set.

    Raises:
        DatasetError: ``data`` or the split is missing or broken, or the split has no images.
    """
    data = Path(data)
    if not data.is_dir():
        raise DatasetError(
            f"{data}: data set folder does not exist; create one with `effdet-graph make-dataset "
            f"{data}` or point --data at a folder with {split}/images and {split}/instances.json"
        )
    dataset = CocoDetection.from_split(data / split, seed=seed)
    if len(dataset) == 0:
        raise DatasetError(f"{dataset.annotation_file}: the {split} split lists no images")
    return dataset


def check_split(data: Path, split: str, progress: bool | None = None) -> CocoDetection:
    """Check ``data/split`` (``images/`` + ``instances.json``) whole: the annotations, then every image.

    Args:
        data: the data set folder.
        split: the split's folder under ``data`` (``train``, ``val``).
        progress: show a tqdm bar while the images are decoded (``None``: only when stderr is a terminal).

    Returns:
        The opened split (untransformed), for a caller that wants it.

    Raises:
        DatasetError: the first problem found: ``data`` or the split missing, the annotations broken or
            listing no image, a file name leading out of the image folder, an image missing, a directory,
            unreadable (truncated, corrupt, not an image) or of another size than annotated.
    """
    dataset = open_split(data, split)
    check_images(dataset, progress)
    return dataset


def check_images(dataset: CocoDetection, progress: bool | None = None, threads: int | None = None) -> None:
    """Decode every image of ``dataset`` (:meth:`CocoDetection.check`), in parallel; the first bad one in
    the data set's order is reported, and the images after it are not all decoded.

    Args:
        dataset: the opened data set.
        progress: show a tqdm bar (``None``: only when stderr is a terminal).
        threads: decoding threads (default: the CPU count, shared among the ``torchrun`` processes of the
            machine, at most :data:`MAX_THREADS`).

    Raises:
        DatasetError: an image is missing, a directory, unreadable or of another size than annotated.
    """
    if threads is None:  # under torchrun every process of the machine checks, each with its share of the cores
        sharing = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
        threads = max(1, min(MAX_THREADS, (os.cpu_count() or 1) // sharing))
    pool = ThreadPoolExecutor(threads, thread_name_prefix="check-images")
    try:
        results = pool.map(dataset.check, range(len(dataset)))
        bar = tqdm(
            results,
            total=len(dataset),
            desc=f"check {dataset.image_dir.parent.name}",
            unit="image",
            disable=None if progress is None else not progress,
            dynamic_ncols=True,
        )
        for _ in bar:  # raises the first error, in order
            pass
        bar.close()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
