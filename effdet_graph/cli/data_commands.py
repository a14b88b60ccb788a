"""``make-dataset``: the synthetic shapes data set, in COCO format."""

from __future__ import annotations

import argparse

from effdet_graph.data.synthetic import make_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("make-dataset", help="write the synthetic shapes data set (COCO train/ and val/)")
    parser.add_argument("out", metavar="OUT", help="folder to create (must not exist, or be empty)")
    parser.add_argument(
        "--images", type=int, default=200, metavar="N", help="images in all; 20%% go to val (default 200)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same bytes (default 0)")
    parser.add_argument("--image-size", type=int, default=256, metavar="N", help="square image side (default 256)")
    parser.set_defaults(run=run_make_dataset)


def run_make_dataset(args: argparse.Namespace) -> int:
    summary = make_dataset(args.out, images=args.images, seed=args.seed, image_size=args.image_size)
    print(
        f"wrote {summary.path}: train {summary.train_images} images / {summary.train_objects} objects, "
        f"val {summary.val_images} images / {summary.val_objects} objects, {args.image_size}x{args.image_size}, "
        f"classes {', '.join(summary.classes)}"
    )
    return 0
