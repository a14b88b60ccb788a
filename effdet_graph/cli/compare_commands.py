"""``compare``: topologies side by side with the same backbone and heads."""

from __future__ import annotations

import argparse
import json

from effdet_graph.builtin import resolve_spec_path
from effdet_graph.comparison.table import CompareRow, compare_specs, rows_to_json
from effdet_graph.device import DEVICE_HELP, resolve_device
from effdet_graph.inference.evaluate import METRICS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="compare topologies inside the same EfficientDet")
    parser.add_argument("specs", nargs="+", metavar="SPEC")
    parser.add_argument("--phi", type=int, default=0, help="compound coefficient (default 0: D0)")
    parser.add_argument("--backbone", help="timm backbone instead of the phi's EfficientNet")
    parser.add_argument("--num-classes", type=int, help="classes (default 90, or the dataset's with --data)")
    parser.add_argument(
        "--match-params", metavar="SPEC", help="re-scale each topology's repeats to this spec's feature-network size"
    )
    parser.add_argument("--input-size", type=int, metavar="N", help="image size (default: the phi's resolution)")
    parser.add_argument("--train-steps", type=int, metavar="N", help="train each topology N steps and report AP")
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="COCO-format dataset for --train-steps (default: the built-in synthetic one, made on first use)",
    )
    parser.add_argument("--device", help=DEVICE_HELP)
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    parser.add_argument("--plot", metavar="FILE", help="write a plot: AP (or params) against GMACs")
    parser.set_defaults(run=run_compare)


def format_table(rows: list[CompareRow]) -> str:
    metric_names = [name for name in METRICS if any(name in row.metrics for row in rows)]
    header = (
        f"{'spec':<18} {'width':>5} {'reps':>4} {'params':>11} {'GMACs':>7} {'FN params':>10} "
        f"{'FN GMACs':>8} {'latency ms':>10}" + "".join(f" {name:>6}" for name in metric_names)
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.spec:<18} {row.width:>5} {row.repeats:>4} {row.params:>11,} {row.macs / 1e9:>7.2f} "
            f"{row.fpn_params:>10,} {row.fpn_macs / 1e9:>8.3f} {row.latency_ms:>10.1f}"
            + "".join(f" {row.metrics.get(name, float('nan')):>6.3f}" for name in metric_names)
        )
    device = rows[0].device if rows else "cpu"
    lines.append(f"\nsame backbone and heads for every row; FN = feature network; latency: batch 1 on {device}")
    return "\n".join(lines)


def run_compare(args: argparse.Namespace) -> int:
    paths = [resolve_spec_path(s) for s in args.specs]
    train = None
    if args.train_steps:
        from effdet_graph.comparison.training import make_trainer

        train = make_trainer(args)
    rows = compare_specs(
        paths,
        phi=args.phi,
        backbone=args.backbone,
        num_classes=args.num_classes,
        match_params=resolve_spec_path(args.match_params) if args.match_params else None,
        image_size=args.input_size,
        train=train,
        device=resolve_device(args.device),
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
