"""Training throughput with the ImageNet EfficientNet-Lite0 backbone trained, frozen, and frozen on the feature cache.

    python -m benchmarks.bench_frozen_backbone [--steps 40] [--sizes 128 256]

EfficientDet-D0's BiFPN and heads on ``efficientnet_lite0`` with its packaged ImageNet weights (the ``weights``
extra), batch 8, one CPU thread, the built-in synthetic shapes (made in a temporary folder), at each input size
(128 is the ranking recipe's). Three runs of the real ``effdet_graph.train`` loop side by side, each ``--steps``
timed steps after a warm-up run of the same configuration: the backbone trained (the default), frozen
(``--freeze-backbone``: computed every step without autograd), and frozen on the feature cache
(``--feature-cache``, 8 views per image). images/s is the loop's own measure (``TrainResult.images_per_s``). The
cache is built before its run, timed, and its size on disk is recorded. Target: the loop on the cache at least 4x
the trained backbone's images/s at 128 px.

Results go to ``benchmarks/results/frozen_backbone.json`` with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_train_loop import images_per_s
from benchmarks.ranking import RESULTS_DIR
from benchmarks.ranking.store import machine, write_results
from effdet_graph import TrainOptions, make_dataset
from effdet_graph.builtin import specs_dir
from effdet_graph.data import CocoDetection, TrainTransform
from effdet_graph.model import IMAGENET, create_backbone
from effdet_graph.training import DEFAULT_CACHED_VIEWS, open_feature_cache

RESULTS = RESULTS_DIR / "frozen_backbone.json"
THREADS = 1
TARGET = 4.0
RECIPE: dict[str, Any] = dict(
    phi=0, backbone="efficientnet_lite0", batch_size=8, lr=0.05, bn_images=0, pretrained_backbone=True
)
MODES: dict[str, dict[str, Any]] = {
    "trained": {},
    "frozen": {"freeze_backbone": True},
    "cached": {"freeze_backbone": True, "feature_cache": True},
}


def build_cache(data: Path, size: int) -> dict[str, float]:
    """Build the cached run's feature cache, timed; its build seconds and megabytes."""
    dataset = CocoDetection.from_split(data / "train")
    transform = TrainTransform(size, TrainOptions.scale_range)
    backbone = create_backbone("efficientnet_lite0", [3, 4, 5], IMAGENET).eval()
    start = time.perf_counter()
    cpu = torch.device("cpu")
    cache = open_feature_cache(dataset, backbone, "efficientnet_lite0", transform, DEFAULT_CACHED_VIEWS, cpu)
    seconds = time.perf_counter() - start
    return {"build_s": round(seconds, 1), "megabytes": round(cache.bytes / 2**20, 1), "views": DEFAULT_CACHED_VIEWS}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_frozen_backbone", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--steps", type=int, default=40, help="timed steps per configuration (default 40)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="input sizes (default 128 256)")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    results: dict[str, object] = {
        "machine": machine(),
        "recipe": {**RECIPE, "spec": "bifpn", "steps": args.steps, "threads": THREADS, "target": TARGET},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            data = Path(tmp) / f"shapes{size}"
            make_dataset(data, images=120, seed=0, image_size=size)
            base = TrainOptions(
                data=data, spec=specs_dir() / "bifpn.yaml", out=Path(tmp) / f"runs{size}", image_size=size,
                device="cpu", **RECIPE,
            )  # fmt: skip
            row: dict[str, object] = {"cache": build_cache(data, size)}
            for mode, settings in MODES.items():
                measured = images_per_s(replace(base, out=base.out / mode, **settings), args.steps)
                row[f"{mode}_images_per_s"] = round(measured, 2)
            trained = float(row["trained_images_per_s"])  # type: ignore[arg-type]
            for mode in ("frozen", "cached"):
                row[f"{mode}_ratio"] = round(float(row[f"{mode}_images_per_s"]) / trained, 2)  # type: ignore[arg-type]
            results[f"{size}px"] = row
            print(
                f"{size} px: trained {trained:.1f} images/s, frozen {row['frozen_images_per_s']} "
                f"({row['frozen_ratio']}x), frozen on the cache {row['cached_images_per_s']} ({row['cached_ratio']}x; "
                f"target {TARGET}x at 128 px); cache: {row['cache']}"
            )
    write_results(RESULTS, results)


if __name__ == "__main__":
    main()
