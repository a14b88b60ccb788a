"""``make-dataset``: a synthetic data set (the shapes, context, surround, beacon or scales scene), in COCO format."""

from __future__ import annotations

import argparse

from effdet_graph.data.synthetic import SCENES, make_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("make-dataset", help="write a synthetic data set (COCO train/ and val/)")
    parser.add_argument("out", metavar="OUT", help="folder to create (must not exist, or be empty)")
    parser.add_argument("--images", type=int, default=200, metavar="N", help="images in all (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same bytes (default 0)")
    parser.add_argument("--image-size", type=int, default=256, metavar="N", help="square image side (default 256)")
    parser.add_argument(
        "--scene",
        choices=list(SCENES),
        default="shapes",
        help="shapes: five coloured shapes on clutter; context: classes told apart only by the image's frame, "
        "far from the objects; surround: classes told apart by the tint beyond a disc around each object, with "
        "a faint, often misleading cast inside it; beacon: classes told apart only by a tinted band along the image's "
        "far side; scales: objects from P3 to P6, small ones told apart by the tint beyond a disc around them, large "
        "ones by a thin cross at their centre (default shapes)",
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, metavar="F", help="share of the images in val (default 0.2)"
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="share of the images in a held-out test split, after val (default 0: no test split); "
        "evaluate on it with `eval --split test`",
    )
    parser.set_defaults(run=run_make_dataset)


def run_make_dataset(args: argparse.Namespace) -> int:
    summary = make_dataset(
        args.out,
        images=args.images,
        seed=args.seed,
        image_size=args.image_size,
        val_fraction=args.val_fraction,
        scene=args.scene,
        test_fraction=args.test_fraction,
    )
    test = f"test {summary.test_images} images / {summary.test_objects} objects, " if summary.test_images else ""
    print(
        f"wrote {summary.path}: train {summary.train_images} images / {summary.train_objects} objects, "
        f"val {summary.val_images} images / {summary.val_objects} objects, {test}"
        f"{args.image_size}x{args.image_size}, classes {', '.join(summary.classes)}"
    )
    return 0
