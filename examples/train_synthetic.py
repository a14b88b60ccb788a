"""Train a small EfficientDet with the BiFPN spec on the synthetic shapes data set, on a CPU, and
report its COCO AP on the held-out val split.

What it shows: the whole pipeline from data to AP through the Python API (the same steps as
``effdet-graph make-dataset``, ``train`` and ``eval``), and a recipe that learns from random weights
(no downloads) in minutes: EfficientDet-D0's BiFPN and heads at 256 x 256 on a light timm backbone
(MobileNetV3-Small), SGD with warmup and cosine decay, EMA weights, BatchNorm statistics recomputed
at the end.

What it needs: the installed project, about 100 MB of disk, and about 5 minutes on two CPU cores
(a GPU is used when there is one); the latest figures are in ``benchmarks/results/train_synthetic.json``
(written by ``--record``) and the README. The run is deterministic for a seed on a given machine and
thread count. If it is interrupted, running it again resumes from the last epoch checkpoint.

    python examples/train_synthetic.py [--out runs/synthetic] [--seed 0] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from effdet_graph import evaluate_checkpoint, make_dataset
from effdet_graph.builtin import specs_dir
from effdet_graph.training import CHECKPOINT_NAME, TrainOptions, train

IMAGES = 600  # 480 train, 120 val
RECORD = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "train_synthetic.json"
RECIPE = dict(
    phi=0, backbone="mobilenetv3_small_100", image_size=256, batch_size=8, lr=0.15, epochs=20, scale_range=(0.75, 1.33)
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic"), help="data, checkpoint and log folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--record", action="store_true", help=f"write the figures to {RECORD} (a run from a fresh --out only)"
    )
    args = parser.parse_args()
    started = time.perf_counter()

    data = args.out / "shapes"
    if not data.exists():
        summary = make_dataset(data, images=IMAGES, seed=args.seed, image_size=RECIPE["image_size"])
        print(f"made {data}: {summary.train_images} train / {summary.val_images} val images")
    run = args.out / "run"
    checkpoint = run / CHECKPOINT_NAME
    options = TrainOptions(
        data=data,
        spec=specs_dir() / "bifpn.yaml",
        out=run,
        seed=args.seed,
        resume=checkpoint if checkpoint.exists() else None,
        **RECIPE,
    )
    result = train(options)
    print(f"trained {result.total_steps} steps: {result.images_per_s:.1f} images/s, last loss {result.final_loss:.3f}")

    metrics = evaluate_checkpoint(result.checkpoint, data, "val")
    minutes = (time.perf_counter() - started) / 60
    print(
        f"val AP {metrics['AP']:.3f}  AP50 {metrics['AP50']:.3f}  AP75 {metrics['AP75']:.3f}  "
        f"({minutes:.1f} min in all)"
    )
    if args.record and result.steps_run == result.total_steps:  # a whole run, timed from the data set on
        figures = {
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__},
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "threads": torch.get_num_threads(),
            "recipe": {**RECIPE, "scale_range": list(RECIPE["scale_range"]), "images": IMAGES, "seed": args.seed},
            "steps": result.total_steps,
            "images_per_s": round(result.images_per_s, 1),
            "minutes": round(minutes, 1),
            **{name: round(metrics[name], 3) for name in ("AP", "AP50", "AP75")},
        }
        RECORD.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {RECORD}")


if __name__ == "__main__":
    main()
