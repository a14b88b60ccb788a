"""The training split and its per-epoch loaders, reproducible and resumable mid-epoch.

Epoch ``e`` visits the images in a permutation drawn from ``(seed, e)``, in ``len // batch_size``
full batches (the remainder is left out, so every batch has ``batch_size`` images); the augmentation
of each item is seeded by ``(seed, e, index)`` (:class:`~effdet_graph.data.coco.CocoDetection`). A
loader can start at any batch of its epoch, so a run resumed at step ``k`` sees the batches an
uninterrupted run would have seen after step ``k``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader

from effdet_graph.data.coco import CocoDetection
from effdet_graph.data.transforms import collate_detection
from effdet_graph.training.feature_cache import CachedViews
from effdet_graph.training.seeding import derive_seed, seed_worker

__all__ = ["epoch_loader"]


def epoch_loader(
    dataset: CocoDetection | CachedViews,
    epoch: int,
    batch_size: int,
    seed: int,
    first_batch: int = 0,
    end_batch: int | None = None,
    workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
    collate: Callable[[list[Any]], Any] = collate_detection,
) -> DataLoader:
    """Batches ``first_batch .. end_batch - 1`` of epoch ``epoch`` (default: to the last full batch).

    ``batch_size`` is the global batch; with ``world_size`` processes this one (``rank``) loads its
    ``batch_size // world_size`` slice of every global batch, so the processes together see exactly the
    batches one process would.

    Returns:
        A loader of ``collate``'s batches of ``b = batch_size // world_size`` images (by default
        ``(images FloatTensor[b, 3, S, S], [target])``).
    """
    full_batches = len(dataset) // batch_size
    end = full_batches if end_batch is None else min(end_batch, full_batches)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(derive_seed(seed, epoch)))
    local = batch_size // world_size
    batches = order[first_batch * batch_size : end * batch_size].view(-1, world_size, local)  # (B, W, b)
    dataset.set_epoch(epoch)
    return DataLoader(
        dataset,
        batch_size=local,
        sampler=batches[:, rank].reshape(-1).tolist(),
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(derive_seed(seed, epoch, 1)),
        pin_memory=pin_memory,
    )
