"""``build``, ``validate`` and ``list``: the spec-language commands."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from effdet_graph.builtin import builtin_specs, resolve_spec_path
from effdet_graph.fpn.compiler import check_channels
from effdet_graph.fpn.summary import BuildReport, build_and_run, random_features
from graphspec import InputError, Spec, SpecError, load_spec, parse_assignments
from graphspec.cost import estimate_cost
from graphspec.errors import escape, quote
from graphspec.limits import (
    DEFAULT_INPUT_SIZE,
    DEFAULT_MAX_ACTIVATION_MB,
    DEFAULT_MAX_PARAMS,
    ENV_MAX_ACTIVATION_MB,
    ENV_MAX_PARAMS,
    Limits,
    check_limits,
)

DEFAULT_IN_CHANNELS = "40,112,320"  # EfficientNet-B0 at strides 8, 16, 32 (timm feature_info)
B0_CHANNELS = {1: 16, 2: 24, 3: 40, 4: 112, 5: 320}  # EfficientNet-B0's channels by level (timm feature_info)


def register(subparsers: argparse._SubParsersAction) -> None:
    build = subparsers.add_parser("build", help="validate, compile, run and summarise a spec")
    build.add_argument("spec", help="spec file, or the name of a built-in spec (see `effdet-graph list`)")
    _add_spec_options(build, detector=True)
    build.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    build.add_argument("--draw", metavar="FILE", help="draw the cell (FILE.svg or FILE.png)")
    build.add_argument("--export", metavar="FILE", help="export the network (FILE.onnx or FILE.pt2)")
    detector = build.add_argument_group("detector", "report the whole EfficientDet detector around the spec")
    detector.add_argument(
        "--detector",
        action="store_true",
        help="build EfficientDet-D<phi> with this feature network (backbone + spec + heads)",
    )
    detector.add_argument("--phi", type=int, default=0, help="compound coefficient: 0-7 for D0-D7, 8 for D7x")
    detector.add_argument("--backbone", help="timm backbone instead of the phi's EfficientNet")
    detector.add_argument("--num-classes", type=int, help="classes (default 90, COCO)")
    build.set_defaults(run=run_build)

    validate = subparsers.add_parser("validate", help="check specs without building them (exit 0 or 2)")
    validate.add_argument("specs", nargs="+", metavar="SPEC")
    _add_spec_options(validate, detector=False)
    validate.set_defaults(run=run_validate)

    listing = subparsers.add_parser("list", help="the built-in specs, one line each")
    listing.add_argument(
        "--build",
        action="store_true",
        help="also compile each spec, run a forward pass and check it against the cost model",
    )
    listing.add_argument("--input-size", type=int, default=512, metavar="N")
    listing.set_defaults(run=run_list)


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    limits = parser.add_argument_group(
        "limits", "how large a network may be; checked with the cost model before anything is built"
    )
    limits.add_argument(
        "--max-params",
        type=int,
        metavar="N",
        help=f"most parameters (default {DEFAULT_MAX_PARAMS:,}, or ${ENV_MAX_PARAMS})",
    )
    limits.add_argument(
        "--max-activation-mb",
        type=float,
        metavar="MB",
        help=f"most MiB of activations for one image at the input size (default {DEFAULT_MAX_ACTIVATION_MB:,}, "
        f"or ${ENV_MAX_ACTIVATION_MB})",
    )


def _add_spec_options(parser: argparse.ArgumentParser, detector: bool) -> None:
    """The options ``build`` and ``validate`` share: parameters, input size, backbone channels, limits."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec parameter, e.g. --set width=160 (repeatable)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        metavar="N",
        help=f"square image size (default {DEFAULT_INPUT_SIZE}"
        + ("; with --detector, the phi's resolution)" if detector else ", as build)"),
    )
    parser.add_argument(
        "--in-channels",
        metavar="C3,C4,...",
        help=f"backbone channels per input level (default EfficientNet-B0's: {DEFAULT_IN_CHANNELS} for P3-P5; "
        "levels B0 lacks get the spec's width)",
    )
    _add_limit_options(parser)


def parse_channels(text: str) -> list[int]:
    try:
        channels = [int(c) for c in text.split(",")]
    except ValueError:
        raise InputError(f"--in-channels expects comma-separated integers like 40,112,320, got {quote(text)}") from None
    if any(c <= 0 for c in channels):
        raise InputError(f"--in-channels must be positive, got {quote(text)}")
    return channels


def default_channels(spec: Spec) -> list[int]:
    """EfficientNet-B0's channels for the spec's backbone levels (``40,112,320`` for P3-P5); a level B0 does
    not have gets the spec's width."""
    return [B0_CHANNELS.get(level, spec.width) for level in spec.backbone_levels]


def command_limits(args: argparse.Namespace) -> Limits:
    """The limits of ``build``/``validate``: the defaults (and environment), changed by ``--max-params`` and
    ``--max-activation-mb``, measured at ``--input-size``.

    Raises:
        InputError: A limit or the input size is not positive.
    """
    limits = Limits.from_env()
    if args.input_size is not None and args.input_size <= 0:
        raise InputError(f"--input-size must be positive, got {args.input_size}")
    if args.max_params is not None:
        if args.max_params <= 0:
            raise InputError(f"--max-params must be positive, got {args.max_params}")
        limits = replace(limits, max_params=args.max_params)
    if args.max_activation_mb is not None:
        if not 0 < args.max_activation_mb < float("inf"):
            raise InputError(f"--max-activation-mb must be a positive number, got {args.max_activation_mb}")
        limits = replace(limits, max_activation_mb=args.max_activation_mb)
    return limits.measured_at(args.input_size or DEFAULT_INPUT_SIZE, None)


def load_checked_spec(name: str, args: argparse.Namespace, limits: Limits) -> tuple[Spec, list[int]]:
    """Load the spec ``name`` as ``build`` builds it: parameters from ``--set``, the backbone channels of
    ``--in-channels`` (or :func:`default_channels`), and the size checked against ``limits`` with those
    channels. ``validate`` runs exactly this, so it accepts what ``build`` can build.

    Raises:
        InputError: The spec, an override, the channels or the size is wrong.
    """
    channels = parse_channels(args.in_channels) if args.in_channels else None
    spec = load_spec(resolve_spec_path(name), parse_assignments(args.overrides), limits.measured_at(None, channels))
    channels = channels or default_channels(spec)
    check_channels(spec, channels)
    check_limits(spec, limits.measured_at(None, channels))
    return spec, channels


def run_build(args: argparse.Namespace) -> int:
    if args.detector:
        if args.input_size is not None and args.input_size <= 0:
            raise InputError(f"--input-size must be positive, got {args.input_size}")
        return run_build_detector(args)
    limits = command_limits(args)
    args.input_size = args.input_size or DEFAULT_INPUT_SIZE
    for option, target, suffixes in (
        ("--draw", args.draw, (".svg", ".png")),
        ("--export", args.export, (".onnx", ".pt2")),
    ):
        if target and Path(target).suffix.lower() not in suffixes:
            raise InputError(f"{option} {target}: unsupported file type; use {' or '.join(suffixes)}")
    spec, channels = load_checked_spec(args.spec, args, limits)
    network, report = build_and_run(spec, channels, args.input_size)
    if args.draw:
        from effdet_graph.fpn.draw import draw_spec

        draw_spec(spec, args.draw)
    if args.export:
        from effdet_graph.fpn.export import export_network

        export_network(network, random_features(spec, channels, args.input_size), args.export)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(format_report(report))
        for label, target in (("drawing", args.draw), ("export", args.export)):
            if target:
                print(f"wrote {label} to {target}")
    return 0


def run_build_detector(args: argparse.Namespace) -> int:
    from effdet_graph.model.cost import detector_report

    if args.draw or args.export:
        raise InputError("--draw and --export apply to the feature network; drop --detector to use them")
    report = detector_report(
        resolve_spec_path(args.spec),
        args.phi,
        backbone=args.backbone,
        num_classes=args.num_classes,
        overrides=parse_assignments(args.overrides),
        image_size=args.input_size,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"EfficientDet-{report['detector'].upper()} with {report['spec']}: backbone {report['backbone']}, "
        f"width {report['width']}, {report['repeats']} repeats, head depth {report['head_depth']}, "
        f"{report['num_classes']} classes, levels {report['levels'][0]}-{report['levels'][-1]}, "
        f"{report['image_size']}x{report['image_size']} input\n"
    )
    print(f"{'part':<16} {'params':>12} {'GMACs':>9}")
    for name, part in report["parts"].items():
        print(f"{name:<16} {part['params']:>12,} {part['macs'] / 1e9:>9.3f}")
    print(f"{'total':<16} {report['params']:>12,} {report['macs'] / 1e9:>9.3f}")
    return 0


def format_report(report: BuildReport) -> str:
    header = f"{'node':<14} {'level':<5} {'merge':<24} {'params':>10} {'MMACs':>9}  inputs"
    lines = [
        f"{escape(report.name)} ({escape(report.file)}): width {report.width}, {report.repeats} repeats, "
        f"in_channels {report.in_channels}, {report.input_size}x{report.input_size} input",
        "",
        header,
        "-" * len(header),
    ]
    for row in report.nodes:
        lines.append(
            f"{row.id:<14} {row.level:<5} {row.merge:<24} {row.params:>10,} {row.macs / 1e6:>9.1f}  "
            f"{', '.join(row.inputs)}"
        )
    lines.append(f"(node params and MACs are summed over the {report.repeats} repeats)")
    shapes = "  ".join(f"{level}: {'x'.join(map(str, shape))}" for level, shape in report.outputs.items())
    lines += [
        "",
        f"params   {report.params:,}",
        f"GMACs    {report.macs / 1e9:.3f}",
        f"outputs  {shapes}",
        f"compile  {report.compile_ms:.1f} ms, forward {report.forward_ms:.1f} ms (CPU, batch 1)",
    ]
    return "\n".join(lines)


def run_validate(args: argparse.Namespace) -> int:
    parse_assignments(args.overrides)  # a malformed --set is wrong for every spec: report it once
    limits = command_limits(args)
    failed = 0
    for name in args.specs:
        try:
            spec, _ = load_checked_spec(name, args, limits)
        except SpecError as exc:
            print(f"error: {escape(str(exc))}", file=sys.stderr)
            failed += 1
        else:
            print(
                f"ok: {escape(spec.file)} ({escape(spec.name)}: {len(spec.nodes)} nodes, levels "
                f"P{spec.levels[0]}-P{spec.levels[-1]}, {spec.repeats} repeats)"
            )
    return 2 if failed else 0


def run_list(args: argparse.Namespace) -> int:
    channels = parse_channels(DEFAULT_IN_CHANNELS)
    header = f"{'spec':<18} {'nodes':>5} {'width':>5} {'reps':>4} {'params':>11} {'GMACs':>7}"
    if args.build:
        header += f" {'compile ms':>10} {'forward ms':>10}"
    print(header + "  description")
    print("-" * (len(header) + 13))
    for path in builtin_specs():
        spec = load_spec(path)
        line = f"{spec.name:<18} {len(spec.nodes):>5} {spec.width:>5} {spec.repeats:>4}"
        if args.build:
            _, report = build_and_run(spec, channels, args.input_size)
            if report.built_params != report.params:
                raise RuntimeError(
                    f"{path}: the built module has {report.built_params} parameters, the cost "
                    f"model says {report.params}"
                )
            line += (
                f" {report.params:>11,} {report.macs / 1e9:>7.2f} {report.compile_ms:>10.1f} {report.forward_ms:>10.1f}"
            )
        else:
            cost = estimate_cost(spec, channels, args.input_size).total
            line += f" {cost.params:>11,} {cost.macs / 1e9:>7.2f}"
        print(f"{line}  {spec.description}")
    print(
        f"\nfeature network only, EfficientNet-B0 channels {DEFAULT_IN_CHANNELS}, "
        f"{args.input_size}x{args.input_size} input; `effdet-graph build SPEC` for details"
    )
    return 0
