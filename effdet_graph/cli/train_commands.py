"""``train``, ``eval`` and ``predict``: detectors on data sets and images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from effdet_graph.device import DEVICE_HELP
from effdet_graph.inference.evaluate import METRICS
from effdet_graph.training.options import DEFAULT_EPOCHS, LOG_KINDS, TrainOptions
from graphspec import InputError, parse_assignments

SHOWN = 5  # detections listed per image by `predict`


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train an EfficientDet with a spec's feature network")
    train.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DIR",
        help="data set with train/images + train/instances.json (see make-dataset)",
    )
    train.add_argument("--spec", required=True, help="feature-network spec file or built-in name (e.g. bifpn)")
    train.add_argument("--phi", type=int, required=True, help="compound coefficient: 0-7 for D0-D7, 8 for D7x")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, metavar="N", help="optimizer steps in all")
    length.add_argument("--epochs", type=int, metavar="N", help=f"epochs in all (default {DEFAULT_EPOCHS})")
    train.add_argument("--batch-size", type=int, default=8, metavar="N", help="images per step (default 8)")
    train.add_argument("--lr", type=float, default=0.02, help="peak learning rate (default 0.02)")
    train.add_argument(
        "--warmup-steps", type=int, metavar="N", help="linear warmup (default 10%% of the steps, at most 1000)"
    )
    train.add_argument("--image-size", type=int, metavar="N", help="square input side (default: the phi's resolution)")
    train.add_argument("--backbone", help="timm backbone instead of the phi's EfficientNet (random weights)")
    train.add_argument(
        "--head-depth",
        type=int,
        metavar="N",
        help="conv layers of the class and box nets before the prediction (default: the phi's)",
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec parameter, e.g. --set width=48 (repeatable)",
    )
    train.add_argument(
        "--scale-range",
        default="0.1,2.0",
        metavar="LOW,HIGH",
        help="scale jitter of the training augmentation (default 0.1,2.0)",
    )
    train.add_argument(
        "--bn-images",
        type=int,
        default=512,
        metavar="N",
        help="train images to recompute the final BatchNorm statistics from (0: keep the running "
        "averages; default 512)",
    )
    train.add_argument(
        "--out",
        type=Path,
        default=Path("runs/train"),
        metavar="DIR",
        help="checkpoint (last.pt) and log folder (default runs/train)",
    )
    train.add_argument("--resume", type=Path, metavar="CKPT", help="continue the run of this checkpoint, exactly")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--ema-decay",
        type=float,
        default=0.9998,
        metavar="F",
        help="decay of the weight average (default 0.9998, warmed up from 0)",
    )
    train.add_argument("--log", choices=LOG_KINDS, default="csv", help="per-step log: OUT/log.csv or OUT/tensorboard")
    train.add_argument("--workers", type=int, default=0, metavar="N", help="data loading processes (default 0)")
    train.add_argument("--device", help=DEVICE_HELP)
    train.set_defaults(run=run_train)

    evaluate = subparsers.add_parser("eval", help="COCO AP of a checkpoint on a data set split")
    evaluate.add_argument("--data", type=Path, required=True, metavar="DIR")
    evaluate.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT")
    evaluate.add_argument("--split", default="val", help="folder under DIR (default val)")
    evaluate.add_argument("--nms", choices=("hard", "soft"), default="hard")
    evaluate.add_argument("--batch-size", type=int, default=8, metavar="N")
    evaluate.add_argument("--workers", type=int, default=0, metavar="N")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    evaluate.add_argument("--device", help=DEVICE_HELP)
    evaluate.set_defaults(run=run_eval)

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
        raise InputError(f"--scale-range expects LOW,HIGH like 0.5,1.5, got '{text}'") from None
    return low, high


def run_train(args: argparse.Namespace) -> int:
    from effdet_graph.training import train

    options = TrainOptions(
        data=args.data,
        spec=Path(args.spec),
        phi=args.phi,
        out=args.out,
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        image_size=args.image_size,
        backbone=args.backbone,
        head_depth=args.head_depth,
        overrides=parse_assignments(args.overrides),
        resume=args.resume,
        seed=args.seed,
        ema_decay=args.ema_decay,
        log=args.log,
        workers=args.workers,
        scale_range=_scale_range(args.scale_range),
        bn_images=args.bn_images,
        device=args.device,
    )
    result = train(options, progress=None)
    print(
        f"wrote {result.checkpoint}: step {result.total_steps} of {result.total_steps} ({result.steps_run} run now, "
        f"{result.images_per_s:.1f} images/s, last loss {result.final_loss:.4f})"
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from effdet_graph.device import resolve_device
    from effdet_graph.inference.predict import evaluate_checkpoint

    metrics = evaluate_checkpoint(
        args.checkpoint, args.data, args.split, args.nms, args.batch_size, args.workers, resolve_device(args.device)
    )
    if args.json:
        print(
            json.dumps(
                {"checkpoint": str(args.checkpoint), "data": str(args.data / args.split), "nms": args.nms, **metrics}
            )
        )
        return 0
    print(f"{args.checkpoint} on {args.data / args.split} ({args.nms} NMS)")
    print("  ".join(f"{name:>6}" for name in METRICS))
    print("  ".join(f"{metrics[name]:>6.3f}" for name in METRICS))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from effdet_graph.device import resolve_device
    from effdet_graph.inference.predict import predict_images

    if not 0.0 <= args.score_threshold <= 1.0:
        raise InputError(f"--score-threshold must be in [0, 1], got {args.score_threshold}")
    for found in predict_images(
        args.checkpoint, args.images, args.out, args.score_threshold, resolve_device(args.device)
    ):
        listed = ", ".join(f"{n} {s:.2f}" for n, s in zip(found.names[:SHOWN], found.scores.tolist()))
        more = ", ..." if len(found.names) > SHOWN else ""
        print(f"wrote {found.output}: {len(found.names)} detections" + (f" ({listed}{more})" if listed else ""))
    return 0
