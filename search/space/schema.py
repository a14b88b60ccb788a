"""The schema of a search-space file, declared once: each section's keys and whether they are required.

The file is read through :class:`graphspec.reader.Reader` (:func:`search.space.loader.load_search_space`); the
keys of each ``search`` kind are declared in its module (``search.space.kinds.<kind>.KEYS``).
"""

from __future__ import annotations

from graphspec.reader import Keys

COMMON_KEYS: Keys = {
    "search": True,
    "name": False,
    "description": False,
    "template": True,
    "dataset": False,
    "proxy": True,
    "budget": True,
    "sampler": False,
    "oneshot": False,
}
DATASET_KEYS: Keys = {
    "name": False,
    "path": False,
    "scene": False,
    "num_classes": False,
    "images": False,
    "image_size": False,
    "val_fraction": False,
}
PROXY_KEYS: Keys = {
    "steps": True,
    "batch_size": False,
    "image_size": False,
    "lr": False,
    "ema_decay": False,
    "reports": False,
    "scale_range": False,
    "pretrained_backbone": False,
    "backbone_weights": False,
    "freeze_backbone": False,
    "views": False,
    "feature_cache": False,
}
BUDGET_KEYS: Keys = {"scope": False, "max_params": False, "max_macs": False}
SAMPLER_KEYS: Keys = {"name": False, "seed": False}
ONESHOT_KEYS: Keys = {"steps": False, "sampling": False, "bn_batches": False, "val_images": False}
DETECTOR_KEYS: Keys = {"phi": False, "backbone": False}
OPTIONAL_EDGE_KEYS: Keys = {"from": True, "to": True}
CONSTRAINT_KEYS: Keys = {"product": True, "tolerance": True, "solve_for": False}
