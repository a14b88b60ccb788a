"""The tiny training run the tests make, declared once: BiFPN at width 16 with one cell, on MobileNetV3-Small-0.5
at 128 px, as :class:`~effdet_graph.TrainOptions` values (:data:`TINY_TRAINING`) and as ``effdet-graph train``
flags (:func:`train_flags`). ``tests/`` is on ``sys.path`` (its ``conftest.py`` puts it there), so every test
folder imports it by name."""

from __future__ import annotations

from typing import Any

from effdet_graph.cli.train_commands import FLAGS

#: TrainOptions values of the tiny run (data, spec, out and its length aside).
TINY_TRAINING: dict[str, Any] = dict(
    phi=0,
    backbone="mobilenetv3_small_050",
    image_size=128,
    overrides={"width": 16, "repeats": 1},
    batch_size=4,
    lr=0.01,
    scale_range=(0.5, 1.5),
    log_every=1,  # a log row per step, which the tests compare
)


def train_flags(spec: str = "bifpn", **changes: Any) -> list[str]:
    """``effdet-graph train`` flags of the tiny run on ``spec``, with ``changes`` (TrainOptions values) applied."""
    flags = [FLAGS["spec"], spec]
    for name, value in {**TINY_TRAINING, **changes}.items():
        if name == "overrides":
            flags += [part for key, v in value.items() for part in (FLAGS[name], f"{key}={v}")]
        elif isinstance(value, tuple):
            flags += [FLAGS[name], ",".join(str(v) for v in value)]
        else:
            flags += [FLAGS[name], str(value)]
    return flags
