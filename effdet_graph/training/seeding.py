"""Seeds and random-number states: everything a run draws from is seeded, and its state is saved in
checkpoints so that a resumed run draws the same numbers as an uninterrupted one."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["derive_seed", "kernel_settings", "restore_rng_state", "rng_state", "seed_everything", "seed_worker"]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from ``parts`` (e.g. the run's seed and an epoch)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def kernel_settings(deterministic: bool) -> Iterator[None]:
    """Inside the block: deterministic kernels (where a CUDA kernel has none, torch warns instead of
    failing) and no cuDNN autotuning when ``deterministic``, else cuDNN autotuning on (the fastest kernels
    for the fixed input shapes of training); the previous settings are restored after it."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = not deterministic, deterministic
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[2], before[3]


def seed_worker(worker_id: int) -> None:
    """``DataLoader`` ``worker_init_fn``: seed Python and NumPy from the worker's torch seed (which the
    loader derives from its seeded generator)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict[str, Any]:
    """The global generators' states as plain values and tensors (``weights_only`` loadable)."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            **numpy_state,
            "state": {**numpy_state["state"], "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))},
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`rng_state` (CUDA states only where the device count matches)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {**numpy_state["state"], "key": numpy_state["state"]["key"].numpy().astype(np.uint32)}
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
