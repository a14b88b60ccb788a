"""``compare``: topologies side by side with the same backbone and heads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from effdet_graph.builtin import resolve_spec_path
from effdet_graph.comparison.table import NOISE_RULE, compare_specs, rows_to_json
from effdet_graph.comparison.text import format_table
from effdet_graph.device import DEVICE_HELP, resolve_device
from effdet_graph.errors import InputError
from graphspec import load_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="compare topologies inside the same EfficientDet")
    parser.add_argument("specs", nargs="+", metavar="SPEC")
    parser.add_argument("--phi", type=int, default=0, help="compound coefficient (default 0: D0)")
    parser.add_argument("--backbone", help="timm backbone instead of the phi's EfficientNet")
    parser.add_argument(
        "--num-classes",
        type=int,
        metavar="N",
        help="classes of every detector (default 90, COCO's; with --train-steps the data set's, and another N is "
        "refused)",
    )
    parser.add_argument(
        "--match-params", metavar="SPEC", help="re-scale each topology's repeats to this spec's feature-network size"
    )
    parser.add_argument("--input-size", type=int, metavar="N", help="image size (default: the phi's resolution)")
    parser.add_argument(
        "--train-steps",
        type=int,
        metavar="N",
        help="train each topology N steps on --data (runs under runs/compare/runs, resumed if killed) and report "
        "its COCO AP on val",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="with --train-steps, train each topology N times, with training seeds 0 to N-1 (a run folder each), "
        "and report the mean AP over seeds, its sample standard deviation and min-max; with 2 or more seeds, "
        f"mark specs within noise of each other, those with {NOISE_RULE.replace('%', '%%')} (default 1: seed 0)",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="COCO-format data set for --train-steps (default: the built-in synthetic one, made in "
        "runs/compare/data on first use)",
    )
    parser.add_argument("--device", help=f"latency, training and evaluation device: {DEVICE_HELP}")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument(
        "--pretrained-backbone",
        action="store_true",
        help="--train-steps from ImageNet backbone weights (efficientnet_lite0: offline, from the weights extra)",
    )
    weights.add_argument(
        "--backbone-weights",
        type=Path,
        metavar="FILE",
        help="--train-steps from this backbone weights file (timm's or EfficientNet-PyTorch's layout)",
    )
    parser.add_argument(
        "--freeze-backbone",
        action="store_true",
        help="--train-steps trains the feature network and heads only, the backbone kept as it started",
    )
    parser.add_argument(
        "--views",
        type=int,
        metavar="N",
        help="--train-steps with N fixed augmentations per training image (default: a fresh one each epoch; 8 "
        "with --feature-cache)",
    )
    parser.add_argument(
        "--feature-cache",
        action="store_true",
        help="with --freeze-backbone: compute the backbone's features of the views once, for every spec",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    parser.add_argument("--plot", metavar="FILE", help="write a plot: AP (or params) against GMACs")
    parser.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    paths = [resolve_spec_path(s) for s in args.specs]
    match_params = resolve_spec_path(args.match_params) if args.match_params else None
    for path in [*paths, *([match_params] if match_params else [])]:
        load_spec(path)  # a broken spec fails here, before a data set is made or any spec trained
    device = resolve_device(args.device)  # a bad --device fails before any data set is made
    train = None
    if args.train_steps is None and any(
        (args.pretrained_backbone, args.backbone_weights, args.freeze_backbone, args.views, args.feature_cache)
    ):
        raise InputError(
            "--pretrained-backbone, --backbone-weights, --freeze-backbone, --views and --feature-cache set how "
            "--train-steps trains; add --train-steps N"
        )
    if args.seeds is not None:
        if args.train_steps is None:
            raise InputError("--seeds counts the trainings of --train-steps; give --train-steps N too")
        if args.seeds < 1:
            raise InputError(f"--seeds must be at least 1, got {args.seeds}")
    if args.train_steps is not None:
        from effdet_graph.comparison.training import CompareTraining, make_trainer

        if args.train_steps < 1:
            raise InputError(f"--train-steps must be at least 1, got {args.train_steps}")
        train = make_trainer(
            CompareTraining(
                steps=args.train_steps,
                phi=args.phi,
                data=Path(args.data) if args.data else None,
                image_size=args.input_size,
                backbone=args.backbone,
                device=args.device,
                pretrained_backbone=args.pretrained_backbone,
                backbone_weights=args.backbone_weights,
                freeze_backbone=args.freeze_backbone,
                views=args.views,
                feature_cache=args.feature_cache,
            )
        )
        if args.num_classes is not None and args.num_classes != train.num_classes:
            raise InputError(
                f"--num-classes {args.num_classes}: {train.data / 'train' / 'instances.json'} has "
                f"{train.num_classes} classes, and --train-steps trains on it; leave --num-classes out"
            )
    elif args.data:
        raise InputError("--data is the data set of --train-steps; give --train-steps N too")
    rows = compare_specs(
        paths,
        phi=args.phi,
        backbone=args.backbone,
        num_classes=args.num_classes,
        match_params=match_params,
        image_size=args.input_size,
        train=train,
        device=device,
        seeds=args.seeds or 1,
    )
    if args.plot:
        from effdet_graph.comparison.plots import scatter_plot

        with_ap = all("AP" in row.metrics for row in rows)
        scatter_plot(
            [row.macs / 1e9 for row in rows],
            [row.metrics["AP"] if with_ap else row.params / 1e6 for row in rows],
            [row.spec for row in rows],
            args.plot,
            xlabel="GMACs",
            ylabel="COCO AP" if with_ap else "parameters (M)",
            title=f"EfficientDet-D{args.phi} feature networks",
            pareto=with_ap,
        )
    print(json.dumps(rows_to_json(rows)) if args.json else format_table(rows))
    return 0
