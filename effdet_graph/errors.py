"""Errors a user can cause with a data set or a checkpoint file, or meet writing an output.

Each derives from :class:`graphspec.errors.InputError`, so the command line prints the
message alone and exits with code 2. Messages name the file and the offending entry and,
where there is one, say how to fix it.
"""

from __future__ import annotations

from graphspec.errors import InputError

__all__ = ["InputError", "DatasetError", "CheckpointError", "OutputError"]


class DatasetError(InputError):
    """A data set on disk is missing, unreadable or inconsistent.

    Example message: ``data/val/instances.json: annotation id 17 (image 3 'img_0003.png'):
    box [10, 10, 0, 5] has zero area; fix or remove it``.
    """


class CheckpointError(InputError):
    """A checkpoint file is missing, unreadable, or does not fit the model it is loaded into.

    Example message: ``runs/a/best.pt: tensor 'head.cls.weight' has shape [90, 64], the
    model expects [5, 64]; train with the same spec and number of classes``.
    """


class OutputError(InputError):
    """An output could not be written: a full disk, a quota, a read-only or unwritable folder. What was there
    before is left as it was (:func:`effdet_graph.atomic.atomic_output`).

    Example message: ``no space left on device while writing runs/a/last.pt; free space on that device or
    choose another output folder``.
    """
