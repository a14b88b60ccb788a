"""``convert``: a public effdet checkpoint into this project's checkpoint format."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from effdet_graph.builtin import resolve_spec_path
from effdet_graph.errors import DatasetError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert", help="turn an effdet (rwightman) checkpoint into one eval/predict read")
    parser.add_argument("checkpoint", type=Path, metavar="EFFDET_CKPT")
    parser.add_argument("--phi", type=int, required=True, help="the checkpoint's EfficientDet-D<phi> (8 for D7x)")
    parser.add_argument(
        "--spec", default="bifpn", help="feature-network spec file or built-in name (default: the built-in bifpn)"
    )
    parser.add_argument("--backbone", help="timm backbone (default: the phi's tf_efficientnet)")
    parser.add_argument(
        "--num-classes",
        type=int,
        default=90,
        metavar="N",
        help="class outputs; label i is category id i + 1 (default 90, COCO)",
    )
    parser.add_argument("--image-size", type=int, metavar="N", help="input side (default: the phi's resolution)")
    parser.add_argument(
        "--categories",
        type=Path,
        metavar="JSON",
        help="COCO instances file to take class names from (e.g. instances_val2017.json)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="OUT.pt")
    parser.set_defaults(run=run_convert)


def _class_names(path: Path | None, category_ids: list[int]) -> list[str]:
    """Names of ``category_ids`` from a COCO instances file; the id as text where it has none."""
    names: dict[int, str] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                categories = json.load(f)["categories"]
            names = {int(c["id"]): str(c["name"]) for c in categories}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}: cannot read category names from it ({type(exc).__name__}: {exc})") from None
    return [names.get(i, str(i)) for i in category_ids]


def run_convert(args: argparse.Namespace) -> int:
    from effdet_graph.io.checkpoint import save_checkpoint
    from effdet_graph.io.convert import load_effdet_checkpoint
    from effdet_graph.io.recipe import ModelRecipe

    category_ids = list(range(1, args.num_classes + 1))
    recipe = ModelRecipe.create(
        resolve_spec_path(args.spec),
        args.phi,
        args.image_size,
        category_ids,
        _class_names(args.categories, category_ids),
        backbone=args.backbone,
    )
    model = recipe.build()
    load_effdet_checkpoint(model, args.checkpoint)
    save_checkpoint(args.out, recipe, model.state_dict())
    print(
        f"wrote {args.out}: EfficientDet-{recipe.detector['name'].upper()} with {recipe.spec_file}, "
        f"{recipe.num_classes} classes, {recipe.image_size}x{recipe.image_size} input"
    )
    return 0
