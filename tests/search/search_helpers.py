"""Constants and helpers the search tests import (``conftest`` is not importable by name: another test
folder has one too)."""

from __future__ import annotations

from tiny_training import TINY_TRAINING as TINY

from search.space import builtin_space

BUILTIN_SPACES = ("compound", "nasfpn_cells", "bifpn_edges")
B0_CHANNELS = [40, 112, 320]  # EfficientNet-B0 at strides 8, 16, 32 (timm feature_info)
#: The training options of the supernet tests' runs (with data, spec, out and steps): the tests' tiny run,
#: without recomputing BatchNorm statistics.
TINY_TRAINING = {**TINY, "bn_images": 0}


def variant_text(name: str, old: str, new: str) -> str:
    """The built-in space file ``name`` with the one occurrence of ``old`` replaced by ``new``."""
    text = builtin_space(name).read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {name}.yaml"
    return text.replace(old, new)
