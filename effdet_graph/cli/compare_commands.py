"""``compare``: topologies side by side with the same backbone and heads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from effdet_graph.builtin import resolve_spec_path
from effdet_graph.comparison.table import NOISE_RULE, CompareRow, ap_spread, compare_specs, rows_to_json, within_noise
from effdet_graph.device import DEVICE_HELP, resolve_device
from effdet_graph.errors import InputError
from effdet_graph.inference.evaluate import METRICS


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
        "--pretrained-backbone", action="store_true", help="--train-steps from timm's ImageNet backbone weights"
    )
    weights.add_argument(
        "--backbone-weights", type=Path, metavar="FILE", help="--train-steps from this backbone weights file (timm's)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    parser.add_argument("--plot", metavar="FILE", help="write a plot: AP (or params) against GMACs")
    parser.set_defaults(run=run_compare)


def _seed_columns(row: CompareRow, close: list[str]) -> str:
    """The ``AP sd``, ``AP min-max`` and ``within noise of`` cells of a row trained with several seeds."""
    spread = ap_spread(row)
    if spread is None:
        return f" {'':>6} {'':>11}  -"
    return f" {spread.std:>6.3f} {f'{spread.low:.3f}-{spread.high:.3f}':>11}  {', '.join(close) or '-'}"


def format_table(rows: list[CompareRow]) -> str:
    """The rows as a text table; with several training seeds, also each row's AP spread and the rows it is
    within noise of (:data:`~effdet_graph.comparison.table.NOISE_RULE`), explained below the table."""
    metric_names = [name for name in METRICS if any(name in row.metrics for row in rows)]
    seeds = max((len(row.seed_metrics) for row in rows), default=0)
    header = (
        f"{'spec':<18} {'width':>5} {'reps':>4} {'params':>11} {'GMACs':>7} {'FN params':>10} "
        f"{'FN GMACs':>8} {'latency ms':>10}" + "".join(f" {name:>6}" for name in metric_names)
    )
    if seeds > 1:
        header += f" {'AP sd':>6} {'AP min-max':>11}  within noise of"
    lines = [header, "-" * len(header)]
    noise = within_noise(rows)
    for row, close in zip(rows, noise):
        lines.append(
            f"{row.spec:<18} {row.width:>5} {row.repeats:>4} {row.params:>11,} {row.macs / 1e9:>7.2f} "
            f"{row.fpn_params:>10,} {row.fpn_macs / 1e9:>8.3f} {row.latency_ms:>10.1f}"
            + "".join(f" {row.metrics.get(name, float('nan')):>6.3f}" for name in metric_names)
            + (_seed_columns(row, [rows[j].spec for j in close]) if seeds > 1 else "")
        )
    device = rows[0].device if rows else "cpu"
    classes = rows[0].num_classes if rows else 0
    lines.append(
        f"\nsame backbone and heads ({classes} classes) for every row; FN = feature network; "
        f"latency: batch 1 on {device}"
    )
    if seeds > 1:
        lines.append(
            f"AP columns: mean over training seeds 0-{seeds - 1}; AP sd: sample standard deviation over the seeds; "
            f"within noise of: specs with {NOISE_RULE}"
        )
    return "\n".join(lines)


def run_compare(args: argparse.Namespace) -> int:
    paths = [resolve_spec_path(s) for s in args.specs]
    device = resolve_device(args.device)  # a bad --device fails before any data set is made
    train = None
    if args.train_steps is None and (args.pretrained_backbone or args.backbone_weights):
        raise InputError(
            "--pretrained-backbone and --backbone-weights set where --train-steps starts; add --train-steps N"
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
        match_params=resolve_spec_path(args.match_params) if args.match_params else None,
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
