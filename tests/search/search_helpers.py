"""Constants and helpers the search tests import (``conftest`` is not importable by name: another test
folder has one too)."""

from __future__ import annotations

from search.space import builtin_space

BUILTIN_SPACES = ("compound", "nasfpn_cells", "bifpn_edges")
B0_CHANNELS = [40, 112, 320]  # EfficientNet-B0 at strides 8, 16, 32 (timm feature_info)
#: The training options of the supernet tests' runs (with data, spec, out and steps): a tiny detector on 128 px.
TINY_TRAINING = dict(
    phi=0,
    backbone="mobilenetv3_small_050",
    image_size=128,
    overrides={"width": 16, "repeats": 1},
    batch_size=4,
    lr=0.01,
    scale_range=(0.5, 1.5),
    log_every=1,
    bn_images=0,
)


def variant_text(name: str, old: str, new: str) -> str:
    """The built-in space file ``name`` with the one occurrence of ``old`` replaced by ``new``."""
    text = builtin_space(name).read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {name}.yaml"
    return text.replace(old, new)
