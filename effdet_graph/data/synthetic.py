"""Synthetic data sets in real COCO format, for smoke tests, quick training runs and the ranking benchmark.

``make_dataset(out, scene=...)`` writes::

    out/train/images/img_00000.png ...   out/train/instances.json
    out/val/images/img_00160.png ...     out/val/instances.json
    out/test/...                         (with ``test_fraction``: a held-out split)

Five scenes (:data:`SCENES`):

``shapes`` (the default): a cluttered background (colour gradient, stripes at a random angle, pixel
noise, and unannotated grey-ish blobs and lines) and 0-12 objects of five classes, each with its own
shape and saturated colour: red circle, green square, blue triangle, yellow ring, magenta cross.
Object sizes are log-uniform from 6 px to 90% of the image side. About one image in ten is empty.

``context``: a scene in which a detector needs information from coarser levels. A grey, textured
interior with warm and cool clutter (decoys), inside a frame (a tenth of the side wide) that is warm
(red-orange) or cool (blue-cyan). 2-8 pale objects that do not overlap, circles or squares, 16 px to
30% of the side, of the same colours whatever the frame; their class is the frame's: ``warm`` or
``cool``. Objects keep a fifth of the side away from the frame, so a small object's neighbourhood
holds no hint of its class (the decoys nearby are warm or cool at random): it is meant to need
features that saw the whole image.

``surround``: a scene whose class is told only by an object's surroundings beyond a grey disc around it.
1-5 pale circles or squares, 12 px to a fifth of the side, that do not touch, each in a grey, textured disc
whose radius is the object's half-side plus a fifth of the image side; the rest of the image is the same
texture tinted warm or cool, and the tint is the class of every object (``warm`` or ``cool``). A detector sees
the class only with features that reach beyond the disc. It is the ranking benchmark's ground truth.

``beacon``: a scene whose class is told only by a beacon far from every object. Grey texture, with a band of
five sixteenths of the side along one side of the image tinted warm or cool (the class of every object:
``warm`` or ``cool``); pale circles or squares, 12 px to 16% of the side, that do not touch (4-9 tried, about
5 placed), lie in the strip of the far side, 28% of the side wide. At 128 px an object's centre is at least
58 px from the beacon: beyond the whole receptive field of P3 features that see only their own level in a
detector of one feature-network cell and one-layer heads (D0's widths,
``python -m benchmarks.bench_ranking --recipe beacon``), within reach of features fused from the coarse levels.

``scales``: a scene whose objects span the levels P3 to P6 (at 256 px), with a class that needs another level's
features at either end. Grey texture; 2-6 small pale circles or squares (16-48 px: P3 and P4) that do not touch,
each in a grey disc reaching 48 px beyond it, and beyond the discs a warm or cool tint (the class of every small
object: ``a`` warm, ``b`` cool), beyond the reach of the frozen ImageNet backbone's own P3 features; in four
images of five one large pale object (72-240 px: P4 to P6) whose class is told by a thin cross, 5-8 px, at its
centre (``a`` upright, ``b`` diagonal; the two have the same ink), whatever the tint. Both cues come in three
grades: the tint's share of a pixel (0.2, 0.35, 0.5) and how much darker than the object the cross is (40, 80, 140).

In ``shapes``, objects may overlap (later ones are drawn on top; boxes are the full, amodal shape).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from effdet_graph.errors import DatasetError

__all__ = ["CLASSES", "SCENES", "DatasetSummary", "Scene", "make_dataset", "render_image"]

#: The ``shapes`` scene's class names in category-id order (category ids are 1..5).
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
    test_images: int = 0
    test_objects: int = 0


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


def _draw_distractors(
    rng: np.random.Generator, image: Image.Image, palette: tuple[tuple[tuple[float, float], ...], ...] = ()
) -> None:
    """Unannotated clutter: polygons and lines, low-saturation, or of a random colour of ``palette`` (each
    colour three ``(low, high)`` channel ranges) when one is given."""
    size = image.size[0]
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 11))):
        if palette:
            ranges = palette[int(rng.integers(len(palette)))]
            colour = tuple(int(rng.uniform(*bounds)) for bounds in ranges)
        else:
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


Objects = list[tuple[int, list[int]]]  # (class index, [x, y, w, h] COCO pixels)


def _paste(image: Image.Image, mask: Image.Image, patch: np.ndarray, x: int, y: int) -> list[int] | None:
    """Paste ``patch`` (uint8 ``(h, w, 3)``) through ``mask`` at ``(x, y)``; the drawn pixels' box, or ``None``."""
    image.paste(Image.fromarray(patch), (x, y), mask)
    ys, xs = np.nonzero(np.asarray(mask))
    if len(xs) == 0:
        return None
    return [x + int(xs.min()), y + int(ys.min()), int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1]


def render_shapes(rng: np.random.Generator, size: int) -> tuple[Image.Image, Objects]:
    """Render one ``shapes`` image.

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
        box = _paste(image, mask, patch, x, y)
        if box is not None:
            objects.append((kind, box))
    return image, objects


_CONTEXT_SHAPES = ("circle", "square")
_FRAMES = ("warm", "cool")
_FRAME_COLOURS = {"warm": ((190, 250), (40, 140), (10, 60)), "cool": ((10, 60), (90, 180), (190, 250))}
_CONTEXT_MIN_OBJECT = 16
_PLACEMENT_TRIES = 20


def _free_spot(
    rng: np.random.Generator,
    side: int,
    taken: list[tuple[int, int, int]],
    low: tuple[int, int],
    high: tuple[int, int],
    gap: int = 0,
) -> tuple[int, int] | None:
    """The first of up to ``_PLACEMENT_TRIES`` random top-left corners ``(x, y)``, drawn in ``[low, high)``, at
    which a square of ``side`` keeps ``gap`` pixels from every ``(x, y, side)`` in ``taken``; ``None`` when none
    does."""
    for _ in range(_PLACEMENT_TRIES):
        x, y = (int(v) for v in rng.integers(low, high))
        if all(
            x + side + gap <= tx or tx + ts + gap <= x or y + side + gap <= ty or ty + ts + gap <= y
            for tx, ty, ts in taken
        ):
            return x, y
    return None


def _paste_pale_shape(
    rng: np.random.Generator, image: Image.Image, shape: int, x: int, y: int, side: int
) -> list[int] | None:
    """Paste a pale (near-white, noisy) ``_CONTEXT_SHAPES[shape]`` of ``side`` pixels at ``(x, y)``: the objects
    of the context and surround scenes, alike whatever their class. The drawn pixels' box, or ``None``."""
    mask = _shape_mask(CLASSES.index(_CONTEXT_SHAPES[shape]), side, side, rng)
    tone = rng.uniform(200, 250) + rng.uniform(-8, 8, 3)
    patch = np.clip(tone[None, None, :] + rng.normal(0, 6, (side, side, 3)), 0, 255).astype(np.uint8)
    return _paste(image, mask, patch, x, y)


def render_context(rng: np.random.Generator, size: int) -> tuple[Image.Image, Objects]:
    """Render one ``context`` image (see the module docstring).

    Returns:
        ``(image RGB size x size, [(class index: 0 warm frame, 1 cool, [x, y, w, h] COCO pixels)])``.
    """
    grey = _background(rng, size).mean(axis=2, keepdims=True)
    image = Image.fromarray(np.clip(grey + rng.normal(0, 3, (size, size, 3)), 0, 255).astype(np.uint8))
    _draw_distractors(rng, image, palette=tuple(_FRAME_COLOURS.values()))  # decoys: warm and cool alike
    frame = int(rng.integers(len(_FRAMES)))
    band = max(2, size // 10)
    colour = tuple(int(rng.uniform(*bounds)) for bounds in _FRAME_COLOURS[_FRAMES[frame]])
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in (
        (0, 0, size, band),
        (0, size - band, size, size),
        (0, 0, band, size),
        (size - band, 0, size, size),
    ):
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=colour)
    low = band + size // 5  # the region objects may cover: [low, size - low)
    room = size - 2 * low
    max_side = min(room, max(_CONTEXT_MIN_OBJECT, int(size * 0.3)))
    objects: Objects = []
    if room < _CONTEXT_MIN_OBJECT:
        return image, objects
    taken: list[tuple[int, int, int]] = []  # (x, y, side) of the objects placed
    for _ in range(int(rng.integers(2, 9))):
        shape = int(rng.integers(len(_CONTEXT_SHAPES)))
        side = math.exp(rng.uniform(math.log(_CONTEXT_MIN_OBJECT), math.log(max_side)))
        w = int(np.clip(round(side), _CONTEXT_MIN_OBJECT, max_side))
        spot = _free_spot(rng, w, taken, (low, low), (size - low - w + 1, size - low - w + 1))
        if spot is None:
            continue  # no free spot for this one
        x, y = spot
        taken.append((x, y, w))
        box = _paste_pale_shape(rng, image, shape, x, y, w)
        if box is not None:
            objects.append((frame, box))
    return image, objects


_SURROUND_MIN_OBJECT = 12
_SURROUND_GAP = 4  # pixels between objects
_TINT = 0.55  # the tint's share of a pixel outside the discs
_FAINT_TINT = 0.08  # the class's tint inside the discs, as a share of a pixel
_CAST = 0.08  # the standard deviation of a random warm (+) or cool (-) cast over the tint inside the discs


def render_surround(rng: np.random.Generator, size: int) -> tuple[Image.Image, Objects]:
    """Render one ``surround`` image (see the module docstring).

    Returns:
        ``(image RGB size x size, [(class index: 0 warm surroundings, 1 cool, [x, y, w, h] COCO pixels)])``.
    """
    grey = _background(rng, size).mean(axis=2, keepdims=True) + rng.normal(0, 3, (size, size, 1))
    tint = int(rng.integers(len(_FRAMES)))
    colour = np.array([rng.uniform(*bounds) for bounds in _FRAME_COLOURS[_FRAMES[tint]]], dtype=np.float32)
    tinted = (1 - _TINT) * grey + _TINT * colour
    margin = size // 5  # the disc's reach beyond the object
    max_side = max(_SURROUND_MIN_OBJECT, int(size * 0.2))
    yy, xx = np.mgrid[0:size, 0:size]
    hole = np.zeros((size, size), dtype=bool)
    taken: list[tuple[int, int, int]] = []
    for _ in range(int(rng.integers(1, 6))):
        side = math.exp(rng.uniform(math.log(_SURROUND_MIN_OBJECT), math.log(max_side)))
        w = int(np.clip(round(side), _SURROUND_MIN_OBJECT, max_side))
        spot = _free_spot(rng, w, taken, (0, 0), (size - w + 1, size - w + 1), _SURROUND_GAP)
        if spot is None:
            continue  # no free spot for this one
        x, y = spot
        taken.append((x, y, w))
        cx, cy = x + w / 2, y + w / 2
        hole |= (xx - cx) ** 2 + (yy - cy) ** 2 <= (w / 2 + margin) ** 2
    # Inside the discs a faint tint of the class, hidden under a random warm or cool cast of about its size.
    cast = _FAINT_TINT * (1 if tint == 0 else -1) + rng.normal(0, _CAST)
    inside = (1 - abs(cast)) * grey + abs(cast) * np.array(
        [rng.uniform(*bounds) for bounds in _FRAME_COLOURS[_FRAMES[0 if cast > 0 else 1]]], dtype=np.float32
    )
    pixels = np.where(hole[..., None], inside, tinted)
    image = Image.fromarray(np.clip(pixels + rng.normal(0, 3, (size, size, 3)), 0, 255).astype(np.uint8))
    objects: Objects = []
    for x, y, w in taken:
        box = _paste_pale_shape(rng, image, int(rng.integers(len(_CONTEXT_SHAPES))), x, y, w)
        if box is not None:
            objects.append((tint, box))
    return image, objects


_BEACON_BAND = 5 / 16  # the beacon's width, as a share of the side
_BEACON_REGION = 0.28  # the far strip the objects lie in, as a share of the side
_BEACON_OBJECTS = (4, 9)  # the fewest and most objects tried (each placed where it does not touch another)
_BEACON_MIN_OBJECT = 12
_BEACON_MAX_OBJECT = 0.16  # as a share of the side


def render_beacon(rng: np.random.Generator, size: int) -> tuple[Image.Image, Objects]:
    """Render one ``beacon`` image (see the module docstring).

    Drawn with the beacon on the left, then turned a random quarter turn, boxes with it.

    Returns:
        ``(image RGB size x size, [(class index: 0 warm beacon, 1 cool, [x, y, w, h] COCO pixels)])``.
    """
    grey = _background(rng, size).mean(axis=2, keepdims=True) + rng.normal(0, 3, (size, size, 1))
    tint = int(rng.integers(len(_FRAMES)))
    colour = np.array([rng.uniform(*bounds) for bounds in _FRAME_COLOURS[_FRAMES[tint]]], dtype=np.float32)
    band = max(2, round(size * _BEACON_BAND))
    pixels = np.repeat(grey, 3, axis=2)
    pixels[:, :band] = (1 - _TINT) * grey[:, :band] + _TINT * colour
    image = Image.fromarray(np.clip(pixels + rng.normal(0, 3, (size, size, 3)), 0, 255).astype(np.uint8))
    low = size - round(size * _BEACON_REGION)  # objects cover columns [low, size)
    max_side = max(_BEACON_MIN_OBJECT, int(size * _BEACON_MAX_OBJECT))
    boxes: list[list[int]] = []
    taken: list[tuple[int, int, int]] = []
    for _ in range(int(rng.integers(_BEACON_OBJECTS[0], _BEACON_OBJECTS[1] + 1))):
        side = math.exp(rng.uniform(math.log(_BEACON_MIN_OBJECT), math.log(max_side)))
        w = int(np.clip(round(side), _BEACON_MIN_OBJECT, max_side))
        spot = _free_spot(rng, w, taken, (low, 0), (size - w + 1, size - w + 1), _SURROUND_GAP)
        if spot is None:
            continue  # no free spot for this one
        x, y = spot
        taken.append((x, y, w))
        box = _paste_pale_shape(rng, image, int(rng.integers(len(_CONTEXT_SHAPES))), x, y, w)
        if box is not None:
            boxes.append(box)
    turns = int(rng.integers(4))  # counter-clockwise quarter turns: the beacon to the left, bottom, right, top
    for _ in range(turns):
        image = image.transpose(Image.Transpose.ROTATE_90)
        boxes = [[y, size - x - w, h, w] for x, y, w, h in boxes]
    return image, [(tint, box) for box in boxes]


_SCALES_CLASSES = ("a", "b")
_SCALES_TINTS = (0.2, 0.35, 0.5)  # the tint's share of a pixel beyond the discs: three grades of difficulty
_SCALES_MARGIN = 48  # at 256 px (scaled with the side): how far a small object's grey disc reaches beyond it
_SCALES_SMALL = (16, 48)  # small objects' sides in pixels at 256 px (scaled with the side): P3 and P4
_SCALES_LARGE = (72, 240)  # large objects' sides at 256 px: P4 to P6
_SCALES_LARGE_CHANCE = 0.8  # the chance that an image holds a large object
_SCALES_GLYPH_INK = (40, 80, 140)  # how much darker than the object a large object's glyph is: three grades
_SCALES_GLYPH = (5, 8)  # the glyph's side in pixels at 256 px (scaled with the side)


def _glyph(kind: int, side: int) -> Image.Image:
    """Binary ``L`` mask ``(side, side)`` of a thin cross: upright (``+``, ``kind`` 0) or diagonal (``x``, 1). The
    two have the same ink, so only features fine enough to resolve a stroke's direction tell them apart."""
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    end = side - 1
    if kind == 0:
        draw.line([(end / 2, 0), (end / 2, end)], fill=255)
        draw.line([(0, end / 2), (end, end / 2)], fill=255)
    else:
        draw.line([(0, 0), (end, end)], fill=255)
        draw.line([(0, end), (end, 0)], fill=255)
    return mask


def render_scales(rng: np.random.Generator, size: int) -> tuple[Image.Image, Objects]:
    """Render one ``scales`` image (see the module docstring).

    Returns:
        ``(image RGB size x size, [(class index 0 (a) or 1 (b), [x, y, w, h] COCO pixels)])``.
    """
    unit = size / 256
    grey = _background(rng, size).mean(axis=2, keepdims=True) + rng.normal(0, 3, (size, size, 1))
    tint = int(rng.integers(len(_FRAMES)))  # the class of the small objects: a warm, b cool
    taken: list[tuple[int, int, int]] = []
    large = None
    if rng.random() < _SCALES_LARGE_CHANCE:
        low, high = (round(v * unit) for v in _SCALES_LARGE)
        w = min(size, round(math.exp(rng.uniform(math.log(low), math.log(high)))))
        x, y = (int(v) for v in rng.integers(0, size - w + 1, 2))
        large = (x, y, w)
        taken.append(large)
    small: list[tuple[int, int, int]] = []
    low, high = (round(v * unit) for v in _SCALES_SMALL)
    for _ in range(int(rng.integers(2, 7))):
        w = round(math.exp(rng.uniform(math.log(low), math.log(high))))
        spot = _free_spot(rng, w, taken, (0, 0), (size - w + 1, size - w + 1), _SURROUND_GAP)
        if spot is not None:
            taken.append((*spot, w))
            small.append((*spot, w))
    yy, xx = np.mgrid[0:size, 0:size]
    hole = np.zeros((size, size), dtype=bool)
    margin = _SCALES_MARGIN * unit
    for x, y, w in small:
        hole |= (xx - x - w / 2) ** 2 + (yy - y - w / 2) ** 2 <= (w / 2 + margin) ** 2
    share = _SCALES_TINTS[int(rng.integers(len(_SCALES_TINTS)))]
    colour = np.array([rng.uniform(*bounds) for bounds in _FRAME_COLOURS[_FRAMES[tint]]], dtype=np.float32)
    pixels = np.where(hole[..., None], grey, (1 - share) * grey + share * colour)
    image = Image.fromarray(np.clip(pixels + rng.normal(0, 3, (size, size, 3)), 0, 255).astype(np.uint8))
    objects: Objects = []
    if large is not None:  # its class told by the cross at its centre
        x, y, w = large
        box = _paste_pale_shape(rng, image, int(rng.integers(len(_CONTEXT_SHAPES))), x, y, w)
        kind = int(rng.integers(2))
        side = round(rng.uniform(*_SCALES_GLYPH) * unit)
        ink = _SCALES_GLYPH_INK[int(rng.integers(len(_SCALES_GLYPH_INK)))]
        tone = np.asarray(image.crop((x, y, x + w, y + w)), dtype=np.float32).mean(axis=(0, 1))
        patch = np.full((side, side, 3), np.clip(tone - ink, 0, 255), dtype=np.uint8)
        image.paste(Image.fromarray(patch), (x + (w - side) // 2, y + (w - side) // 2), _glyph(kind, side))
        if box is not None:
            objects.append((kind, box))
    for x, y, w in small:  # their class told by the tint beyond their discs
        box = _paste_pale_shape(rng, image, int(rng.integers(len(_CONTEXT_SHAPES))), x, y, w)
        if box is not None:
            objects.append((tint, box))
    return image, objects


@dataclass(frozen=True)
class Scene:
    """A kind of synthetic image: its class names (category ids 1..N in this order) and its renderer."""

    classes: tuple[str, ...]
    render: Callable[[np.random.Generator, int], tuple[Image.Image, Objects]]
    min_size: int = 32


#: The scenes :func:`make_dataset` can write, by name.
SCENES: dict[str, Scene] = {
    "shapes": Scene(CLASSES, render_shapes),
    "context": Scene(_FRAMES, render_context, min_size=96),
    "surround": Scene(_FRAMES, render_surround, min_size=64),
    "beacon": Scene(_FRAMES, render_beacon, min_size=64),
    "scales": Scene(_SCALES_CLASSES, render_scales, min_size=128),
}


def render_image(rng: np.random.Generator, size: int, scene: str = "shapes") -> tuple[Image.Image, Objects]:
    """Render one image of ``scene`` (:data:`SCENES`): ``(image RGB size x size, [(class index, [x, y, w, h])])``."""
    return SCENES[scene].render(rng, size)


def _write_split(folder: Path, name: str, indices: range, seed: int, size: int, scene: str) -> int:
    """Render ``indices`` into ``folder/name``; return the number of objects."""
    image_dir = folder / name / "images"
    image_dir.mkdir(parents=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, index in enumerate(indices, start=1):
        rng = np.random.default_rng([seed, index])
        image, objects = render_image(rng, size, scene)
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
        "info": {"description": f"effdet-graph synthetic {scene} scene, split {name}, seed {seed}"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(SCENES[scene].classes)],
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
    scene: str = "shapes",
    test_fraction: float = 0.0,
) -> DatasetSummary:
    """Write a synthetic COCO-format data set with a ``train`` and a ``val`` split, and a ``test`` split when
    ``test_fraction`` is above 0 (held out to report a search's winners on data nothing was chosen on).

    Args:
        out_dir: folder to create; must not exist or be empty.
        images: total number of images (>= 2); ``round(images * val_fraction)`` (at least 1) go to ``val``,
            after them ``round(images * test_fraction)`` (at least 1 when asked for) to ``test``, and the first
            of them, the rest, to ``train``.
        seed: random seed; the same arguments give byte-identical files.
        image_size: side of the square images in pixels (>= 32).
        val_fraction: share of images in ``val``, in (0, 1).
        scene: what the images show, a name in :data:`SCENES`.
        test_fraction: share of images in ``test``, in [0, 1); 0 writes no ``test`` split.

    Raises:
        DatasetError: ``out_dir`` exists and is not an empty folder, or the arguments are invalid.
    """
    out = Path(out_dir)
    if images < 2:
        raise DatasetError(f"{out}: need at least 2 images (1 train, 1 val), got {images}")
    if scene not in SCENES:
        raise DatasetError(f"{out}: unknown scene {scene!r}; choose one of {', '.join(SCENES)}")
    if image_size < SCENES[scene].min_size:
        raise DatasetError(
            f"{out}: image size must be at least {SCENES[scene].min_size} pixels for the {scene} scene, "
            f"got {image_size}"
        )
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"{out}: val fraction must be between 0 and 1, got {val_fraction}")
    if not 0.0 <= test_fraction < 1.0 or val_fraction + test_fraction >= 1.0:
        raise DatasetError(
            f"{out}: test fraction must be at least 0 and leave images to train on beside the val fraction "
            f"{val_fraction}, got {test_fraction}"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out}: already exists and is not an empty folder; pick another path or delete it")
    num_test = max(1, round(images * test_fraction)) if test_fraction > 0 else 0
    num_val = min(images - 1 - num_test, max(1, round(images * val_fraction)))
    num_train = images - num_val - num_test
    if num_val < 1:
        raise DatasetError(
            f"{out}: {images} images are too few for a train image, a val image and {num_test} test images; "
            "make more images or lower the test fraction"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        train_objects = _write_split(tmp, "train", range(num_train), seed, image_size, scene)
        val_objects = _write_split(tmp, "val", range(num_train, num_train + num_val), seed, image_size, scene)
        test_range = range(num_train + num_val, images)
        test_objects = _write_split(tmp, "test", test_range, seed, image_size, scene) if num_test else 0
        if out.exists():
            out.rmdir()  # empty (checked above); rename cannot replace it on every platform
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DatasetSummary(
        out, num_train, num_val, train_objects, val_objects, SCENES[scene].classes, num_test, test_objects
    )
