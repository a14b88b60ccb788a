"""A frozen backbone's features of a training split's augmented views, computed once and shared by every run.

With the backbone frozen (:meth:`~effdet_graph.model.detector.EfficientDet.freeze_backbone`), every candidate
of a search, every spec of a compare and every run of a benchmark sees the same backbone features of the same
images. Each training image gets ``views`` fixed augmentations (flip, scale jitter, crop:
:class:`~effdet_graph.data.transforms.TrainTransform` with the random numbers of
:func:`~effdet_graph.data.coco.view_rng`); their feature maps are computed once and stored beside the data set,
and each epoch a run picks one view of each image as :meth:`CocoDetection.item_rng` would (so a run on the
cache sees exactly what a run with the same ``views`` computing the backbone on the fly sees).

The cache is a folder ``SPLIT/feature_cache/<key>/`` holding one ``.npy`` array per level
(``[images * views, C_l, H_l, W_l]``, float16, memory-mapped when read), the views' targets (``targets.pt``) and
``meta.json``. Its key is a digest of everything that changes it: the split's annotations and image files (names,
sizes, times), the backbone's architecture and every tensor of its state, the input size, the augmentation and
the number of views; any change makes another cache. It is built in a temporary folder that is renamed into place
(a kill leaves no half cache), under a file lock (a second process waits for the first's and reads it).
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm import tqdm

from effdet_graph.data.coco import CocoDetection, view_of, view_rng
from effdet_graph.data.transforms import TrainTransform
from effdet_graph.errors import InputError

__all__ = ["CachedViews", "FeatureCache", "open_feature_cache"]

FORMAT = 1
FOLDER = "feature_cache"
TARGET_KEYS = ("boxes", "labels", "ignore_boxes")
BUILD_BATCH = 16


@dataclass(frozen=True)
class FeatureCache:
    """A built cache: ``levels[l]`` is a read-only ``[images * views, C_l, H_l, W_l]`` float16 array (view ``v`` of
    image ``i`` at row ``i * views + v``), ``targets`` the views' boxes, labels and crowd boxes in the same order."""

    path: Path
    views: int
    levels: list[np.ndarray]
    targets: list[dict[str, Tensor]]

    @classmethod
    def open(cls, path: Path) -> FeatureCache:
        """The cache built in ``path``.

        Raises:
            InputError: a file of it is missing or damaged (it is built whole and renamed into place, so only
                something else could have done that): one line naming the folder and how to rebuild it.
        """
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            levels = [np.load(path / f"level{i}.npy", mmap_mode="r") for i in range(meta["levels"])]
            targets = torch.load(path / "targets.pt", weights_only=True)
        except Exception as exc:  # what a damaged .npy, pickle or JSON raises varies
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise InputError(
                f"{path}: a damaged feature cache ({reason}); delete the folder and the next run builds it again"
            ) from None
        return cls(path, meta["views"], levels, targets)

    @property
    def bytes(self) -> int:
        """The size of the feature arrays on disk."""
        return sum(level.nbytes for level in self.levels)


class CachedViews(Dataset):
    """Training items from a :class:`FeatureCache`: item ``i`` of epoch ``e`` is the view of image ``i`` that
    :meth:`CocoDetection.item_rng` picks with the same seed, as ``(feature maps, target)``, the maps a tuple of
    float32 ``[C_l, H_l, W_l]`` finest first. ``set_epoch`` as :class:`CocoDetection`'s."""

    def __init__(self, cache: FeatureCache, seed: int):
        self.cache = cache
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cache.targets) // self.cache.views

    def __getitem__(self, index: int) -> tuple[tuple[Tensor, ...], dict[str, Any]]:
        row = index * self.cache.views + view_of(self.seed, self.epoch, index, self.cache.views)
        maps = tuple(torch.from_numpy(np.array(level[row], dtype=np.float32)) for level in self.cache.levels)
        return maps, dict(self.cache.targets[row])


def cache_key(
    dataset: CocoDetection, backbone: nn.Module, backbone_name: str, transform: TrainTransform, views: int
) -> str:
    """The digest of everything the cache of ``dataset``'s views through ``backbone`` depends on."""
    digest = hashlib.sha256()
    digest.update(dataset.annotation_file.read_bytes())
    for image in sorted(dataset.image_dir.iterdir()):
        stat = image.stat()
        digest.update(f"{image.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for key, tensor in backbone.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    settings = {"format": FORMAT, "backbone": backbone_name, "transform": asdict(transform), "views": views}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def open_feature_cache(
    dataset: CocoDetection,
    backbone: nn.Module,
    backbone_name: str,
    transform: TrainTransform,
    views: int,
    device: torch.device,
    progress: bool | None = None,
) -> FeatureCache:
    """The cache of ``views`` views of every image of ``dataset`` through the frozen ``backbone``: opened when it
    exists, else built (with a progress bar), then opened.

    Raises:
        InputError: the cache cannot be written (a read-only folder, a full disk): one line naming the file.
    """
    root = dataset.image_dir.parent / FOLDER
    key = cache_key(dataset, backbone, backbone_name, transform, views)
    final = root / key
    if not (final / "meta.json").is_file():
        try:
            root.mkdir(exist_ok=True)
            with _locked(root / f"{key}.lock"):
                if not (final / "meta.json").is_file():  # another process may have built it while this one waited
                    _build(dataset, backbone, transform, views, device, final, progress)
        except OSError as exc:  # a read-only folder, a full disk: nothing half-built is left (see _build)
            raise InputError(
                f"{exc.filename or root}: cannot write the feature cache ({exc.strerror}); make {root} writable "
                "or free space there"
            ) from None
    return FeatureCache.open(final)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing) while the block runs."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _views(dataset: CocoDetection, transform: TrainTransform, views: int) -> Iterator[tuple[Tensor, dict[str, Any]]]:
    """Every view of every image of ``dataset``, image by image: ``(pixels [3, S, S], target)``."""
    for index in range(len(dataset)):
        image, target = dataset.load(index)
        for view in range(views):
            yield transform(image, target, view_rng(index, view))


@torch.no_grad()
def _build(
    dataset: CocoDetection,
    backbone: nn.Module,
    transform: TrainTransform,
    views: int,
    device: torch.device,
    final: Path,
    progress: bool | None,
) -> None:
    """Compute every view's features into a temporary folder, then rename it to ``final``."""
    temporary = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    was_training = backbone.training
    backbone.eval()
    rows = len(dataset) * views
    arrays: list[np.memmap] = []
    targets: list[dict[str, Tensor]] = []
    items = _views(dataset, transform, views)
    try:
        bar = tqdm(total=rows, desc="feature cache", unit="view", disable=None if progress is None else not progress)
        while batch := list(itertools.islice(items, BUILD_BATCH)):
            pixels, viewed = zip(*batch)
            maps = backbone(torch.stack(pixels).to(device, memory_format=torch.channels_last))
            arrays = arrays or [
                np.lib.format.open_memmap(temporary / f"level{i}.npy", "w+", np.float16, (rows, *m.shape[1:]))
                for i, m in enumerate(maps)
            ]
            for array, m in zip(arrays, maps):
                array[len(targets) : len(targets) + len(batch)] = m.float().cpu().numpy()
            targets += [{key: target[key] for key in TARGET_KEYS} for target in viewed]
            bar.update(len(batch))
        bar.close()
        for array in arrays:
            array.flush()
        torch.save(targets, temporary / "targets.pt")
        meta = {"format": FORMAT, "views": views, "levels": len(arrays), "images": len(dataset)}
        (temporary / "meta.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
        os.replace(temporary, final)
    finally:
        backbone.train(was_training)
        shutil.rmtree(temporary, ignore_errors=True)
