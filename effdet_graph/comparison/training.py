"""``compare --train-steps``: train every topology with one shared recipe and report its COCO AP."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from effdet_graph.data.synthetic import make_dataset
from effdet_graph.inference.predict import evaluate_checkpoint
from effdet_graph.training.loop import CHECKPOINT_NAME, train
from effdet_graph.training.options import TrainOptions

DEFAULT_DATA = Path("runs") / "compare" / "data"


def make_trainer(args: argparse.Namespace) -> Callable[[str | Path, dict[str, Any]], dict[str, float]]:
    """A function that trains one spec for ``args.train_steps`` steps on ``args.data`` (the built-in
    synthetic data set by default, made on first use) and returns its COCO metrics on val."""
    data = Path(args.data) if args.data else DEFAULT_DATA
    if args.data is None and not (data / "train" / "instances.json").is_file():
        make_dataset(data, images=200, seed=0)
    runs = data.parent / "runs"

    def train_and_evaluate(spec: str | Path, overrides: dict[str, Any]) -> dict[str, float]:
        out = runs / f"{Path(spec).stem}_d{args.phi}_{args.train_steps}steps"
        previous = out / CHECKPOINT_NAME
        options = TrainOptions(
            data=data,
            spec=Path(spec),
            phi=args.phi,
            out=out,
            steps=args.train_steps,
            image_size=args.input_size,
            backbone=args.backbone,
            overrides=overrides,
            resume=previous if previous.is_file() else None,
            device=args.device,
        )  # a killed compare continues
        return evaluate_checkpoint(train(options, progress=None).checkpoint, data, "val")

    return train_and_evaluate
