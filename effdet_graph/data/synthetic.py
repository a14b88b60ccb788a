"""A synthetic shapes data set in real COCO format, for smoke tests and quick training runs.

``make_dataset(out)`` writes::

    out/train/images/img_00000.png ...   out/train/instances.json
    out/val/images/img_00160.png ...     out/val/instances.json

Each image has a cluttered background (colour gradient, stripes at a random angle, pixel noise,
and unannotated grey-ish blobs and lines) and 0-12 objects of five classes, each with its own
shape and saturated colour: red circle, green square, blue triangle, yellow ring, magenta cross.
Object sizes are log-uniform from 6 px to 90% of the image side; objects may overlap (later ones
are drawn on top; boxes are the full, amodal shape). About one image in ten is empty.

Output depends only on the arguments: the same seed gives the same bytes. Everything is written
into a hidden temporary folder beside ``out`` and renamed to ``out`` at the end, so ``out`` never
holds a half-written data set (a killed run leaves only the hidden ``.NAME.*.tmp`` folder).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from effdet_graph.errors import DatasetError

__all__ = ["CLASSES", "DatasetSummary", "make_dataset", "render_image"]

#: Class names in category-id order (category ids are 1..5).
CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "ring", "cross")
_COLOURS = ((215, 40, 40), (40, 175, 60), (45, 80, 225), (235, 205, 35), (200, 50, 205))
_MIN_OBJECT = 6
_MAX_OBJECT_FRACTION = 0.9
_MAX_OBJECTS = 12
_EMPTY_FRACTION = 0.1


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`make_dataset` wrote."""

    path: Path
    train_images: int
    val_images: int
    train_objects: int
    val_objects: int
    classes: tuple[str, ...] = CLASSES


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``uint8 (size, size, 3)``: gradient + stripes + noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0 = rng.uniform(50, 200, 3)
    c1 = rng.uniform(50, 200, 3)
    angle = rng.uniform(0, math.pi)
    t = (xx * math.cos(angle) + yy * math.sin(angle) + 1) / 2.4
    img = c0 + (c1 - c0) * t[..., None]
    stripe_angle = rng.uniform(0, math.pi)
    period = rng.uniform(4, 40) / size
    phase = (xx * math.cos(stripe_angle) + yy * math.sin(stripe_angle)) / period
    img = img + np.sin(2 * math.pi * phase)[..., None] * rng.uniform(5, 35) * rng.uniform(0.3, 1, 3)
    img = img + rng.normal(0, rng.uniform(3, 18), (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_distractors(rng: np.random.Generator, image: Image.Image) -> None:
    """Unannotated clutter: low-saturation polygons and lines."""
    size = image.size[0]
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 11))):
        grey = rng.uniform(40, 210)
        colour = tuple(int(v) for v in np.clip(grey + rng.uniform(-25, 25, 3), 0, 255))
        cx, cy = rng.uniform(0, size, 2)
        radius = math.exp(rng.uniform(math.log(3), math.log(size * 0.25)))
        if rng.random() < 0.3:
            end = (cx + rng.uniform(-2, 2) * radius, cy + rng.uniform(-2, 2) * radius)
            draw.line([(cx, cy), end], fill=colour, width=int(rng.integers(1, 5)))
            continue
        n = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = radius * rng.uniform(0.4, 1.0, n)
        draw.polygon([(cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(angles, radii)], fill=colour)


def _shape_mask(kind: int, w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """Binary ``L`` mask ``(w, h)`` of one object of class ``kind``."""
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    name = CLASSES[kind]
    if name == "circle":
        draw.ellipse([0, 0, w - 1, h - 1], fill=255)
    elif name == "square":
        draw.rectangle([0, 0, w - 1, h - 1], fill=255)
    elif name == "triangle":
        if rng.random() < 0.5:
            draw.polygon([((w - 1) / 2, 0), (w - 1, h - 1), (0, h - 1)], fill=255)
        else:
            draw.polygon([(0, 0), (w - 1, 0), ((w - 1) / 2, h - 1)], fill=255)
    elif name == "ring":
        draw.ellipse([0, 0, w - 1, h - 1], outline=255, width=max(1, round(min(w, h) * 0.2)))
    else:  # cross
        tw, th = max(2, round(w * 0.3)), max(2, round(h * 0.3))
        draw.rectangle([(w - tw) // 2, 0, (w - tw) // 2 + tw - 1, h - 1], fill=255)
        draw.rectangle([0, (h - th) // 2, w - 1, (h - th) // 2 + th - 1], fill=255)
    return mask


def render_image(rng: np.random.Generator, size: int) -> tuple[Image.Image, list[tuple[int, list[int]]]]:
    """Render one image.

    Returns:
        ``(image RGB size x size, [(class index 0..4, [x, y, w, h] COCO pixels)])``.
    """
    image = Image.fromarray(_background(rng, size))
    _draw_distractors(rng, image)
    objects: list[tuple[int, list[int]]] = []
    count = 0 if rng.random() < _EMPTY_FRACTION else int(rng.integers(1, _MAX_OBJECTS + 1))
    max_side = max(_MIN_OBJECT, int(size * _MAX_OBJECT_FRACTION))
    for _ in range(count):
        kind = int(rng.integers(len(CLASSES)))
        side = math.exp(rng.uniform(math.log(_MIN_OBJECT), math.log(max_side)))
        ratio = math.exp(rng.uniform(-0.3, 0.3))
        w = int(np.clip(round(side * ratio), _MIN_OBJECT, max_side))
        h = int(np.clip(round(side / ratio), _MIN_OBJECT, max_side))
        x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        mask = _shape_mask(kind, w, h, rng)
        colour = np.clip(np.array(_COLOURS[kind]) + rng.uniform(-25, 25, 3), 0, 255)
        shade = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(1.0, 1.15), w, dtype=np.float32)
        patch = np.clip(colour[None, None, :] * shade[None, :, None] + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(
            np.uint8
        )
        image.paste(Image.fromarray(patch), (x, y), mask)
        ys, xs = np.nonzero(np.asarray(mask))
        if len(xs) == 0:
            continue
        objects.append(
            (kind, [x + int(xs.min()), y + int(ys.min()), int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1])
        )
    return image, objects


def _write_split(folder: Path, name: str, indices: range, seed: int, size: int) -> int:
    """Render ``indices`` into ``folder/name``; return the number of objects."""
    image_dir = folder / name / "images"
    image_dir.mkdir(parents=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, index in enumerate(indices, start=1):
        rng = np.random.default_rng([seed, index])
        image, objects = render_image(rng, size)
        file_name = f"img_{index:05d}.png"
        image.save(image_dir / file_name, format="PNG")
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
        for kind, box in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": kind + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    data = {
        "info": {"description": f"effdet-graph synthetic shapes, split {name}, seed {seed}"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(CLASSES)],
    }
    with open(folder / name / "instances.json", "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    return len(annotations)


def make_dataset(
    out_dir: str | os.PathLike[str],
    images: int = 200,
    seed: int = 0,
    image_size: int = 256,
    val_fraction: float = 0.2,
) -> DatasetSummary:
    """Write a synthetic COCO-format data set with a ``train`` and a ``val`` split.

    Args:
        out_dir: folder to create; must not exist or be empty.
        images: total number of images (>= 2); the last ``round(images * val_fraction)``
            (at least 1) go to ``val``.
        seed: random seed; the same arguments give byte-identical files.
        image_size: side of the square images in pixels (>= 32).
        val_fraction: share of images in ``val``, in (0, 1).

    Raises:
        DatasetError: ``out_dir`` exists and is not an empty folder, or the arguments are invalid.
    """
    out = Path(out_dir)
    if images < 2:
        raise DatasetError(f"{out}: need at least 2 images (1 train, 1 val), got {images}")
    if image_size < 32:
        raise DatasetError(f"{out}: image size must be at least 32 pixels, got {image_size}")
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"{out}: val fraction must be between 0 and 1, got {val_fraction}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out}: already exists and is not an empty folder; pick another path or delete it")
    num_val = min(images - 1, max(1, round(images * val_fraction)))
    num_train = images - num_val
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        train_objects = _write_split(tmp, "train", range(num_train), seed, image_size)
        val_objects = _write_split(tmp, "val", range(num_train, images), seed, image_size)
        if out.exists():
            out.rmdir()  # empty (checked above); rename cannot replace it on every platform
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DatasetSummary(out, num_train, num_val, train_objects, val_objects)
