"""The one place that picks the device a command runs its model on (``--device``)."""

from __future__ import annotations

import re

import torch

from graphspec import InputError

__all__ = ["DEVICE_HELP", "resolve_device"]


DEVICE_HELP = "cpu, cuda or cuda:N (default: cuda when a GPU is present, else cpu)"
_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")


def resolve_device(name: str | None = None) -> torch.device:
    """``name`` as a :class:`torch.device`; ``None`` means ``cuda`` when a GPU is present, else ``cpu``.

    Raises:
        InputError: ``name`` is not ``cpu``, ``cuda`` or ``cuda:N``, or names a GPU this machine lacks.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not _DEVICE.fullmatch(name):
        raise InputError(f"--device {name!r} is not a device; use {DEVICE_HELP}")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = device.index or 0
        if index >= count:
            raise InputError(
                f"--device {name}: this machine has {count} CUDA device(s); use cpu"
                + (f" or cuda:0..cuda:{count - 1}" if count else "")
            )
    return device
