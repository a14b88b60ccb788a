"""Synthetic shapes data set: real COCO files, deterministic, varied, written atomically."""

from __future__ import annotations

import contextlib
import io
import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO

from effdet_graph.data import synthetic
from effdet_graph.data.synthetic import CLASSES, SCENES, make_dataset
from effdet_graph.errors import DatasetError, InputError

IMAGES, SIZE = 40, 128


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "shapes"
    summary = make_dataset(out, images=IMAGES, seed=7, image_size=SIZE)
    return out, summary


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_pycocotools(dataset):
    out, summary = dataset
    assert summary.train_images == 32 and summary.val_images == 8
    for split, count in (("train", 32), ("val", 8)):
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(out / split / "instances.json"))
        assert len(coco.getImgIds()) == count
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
        for img in coco.loadImgs(coco.getImgIds()):
            with Image.open(out / split / "images" / img["file_name"]) as im:
                assert im.size == (img["width"], img["height"]) == (SIZE, SIZE)
                assert im.mode == "RGB"
        for ann in coco.loadAnns(coco.getAnnIds()):
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= SIZE and y + h <= SIZE
            assert ann["iscrowd"] == 0


def test_variety(dataset):
    out, summary = dataset
    anns, per_image = [], {}
    for split in ("train", "val"):
        data = json.loads((out / split / "instances.json").read_text())
        anns += data["annotations"]
        for img in data["images"]:
            per_image[(split, img["id"])] = 0
        for a in data["annotations"]:
            per_image[(split, a["image_id"])] += 1
    assert summary.train_objects + summary.val_objects == len(anns)
    sides = [max(a["bbox"][2], a["bbox"][3]) for a in anns]
    assert min(sides) <= 10 and max(sides) >= 0.6 * SIZE
    assert 0 in per_image.values(), "some images must be empty"
    assert max(per_image.values()) >= 8
    assert {a["category_id"] for a in anns} == set(range(1, len(CLASSES) + 1))


def test_deterministic(dataset, tmp_path):
    out, _ = dataset
    again = tmp_path / "again"
    make_dataset(again, images=IMAGES, seed=7, image_size=SIZE)
    assert _files(again) == _files(out)
    other = tmp_path / "other"
    make_dataset(other, images=IMAGES, seed=8, image_size=SIZE)
    assert _files(other) != _files(out)


def test_refuses_non_empty_target(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match=r"taken: already exists .*pick another path or delete"):
        make_dataset(target, images=4, image_size=64)
    assert (target / "keep.txt").read_text() == "mine"
    assert isinstance(DatasetError("x"), InputError)
    empty = tmp_path / "empty"
    empty.mkdir()
    make_dataset(empty, images=4, image_size=64)
    assert (empty / "val" / "instances.json").is_file()


def test_atomic_on_failure(tmp_path, monkeypatch):
    real = synthetic._write_split

    def fail_on_val(folder, name, *args):
        if name == "val":
            raise KeyboardInterrupt
        return real(folder, name, *args)

    monkeypatch.setattr(synthetic, "_write_split", fail_on_val)
    with pytest.raises(KeyboardInterrupt):
        make_dataset(tmp_path / "ds", images=4, image_size=64)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs", [dict(images=1), dict(image_size=16), dict(val_fraction=1.0)])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(DatasetError):
        make_dataset(tmp_path / "x", **kwargs)


@pytest.fixture(scope="module")
def context_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "context"
    return out, make_dataset(out, images=IMAGES, seed=7, image_size=SIZE, scene="context")


def _frame_is_warm(image: Image.Image) -> bool:
    """Whether the frame's top-left corner is red-orange (else blue-cyan)."""
    r, _, b = image.getpixel((1, 1))
    return r > b


def test_context_scene_classes_follow_the_frame(context_dataset):
    out, summary = context_dataset
    assert summary.classes == SCENES["context"].classes == ("warm", "cool")
    band, margin = SIZE // 10, SIZE // 5
    seen = set()
    for split in ("train", "val"):
        data = json.loads((out / split / "instances.json").read_text())
        assert [c["name"] for c in data["categories"]] == list(summary.classes)
        files = {img["id"]: img["file_name"] for img in data["images"]}
        by_image: dict[int, list] = {}
        for a in data["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        assert len(by_image) == len(files), "every context image has objects"
        for image_id, anns in by_image.items():
            with Image.open(out / split / "images" / files[image_id]) as im:
                warm = _frame_is_warm(im.convert("RGB"))
            boxes = []
            for a in anns:
                name = summary.classes[a["category_id"] - 1]
                assert name == ("warm" if warm else "cool")
                x, y, w, h = a["bbox"]
                assert w >= 15 and h >= 15
                assert x >= band + margin and y >= band + margin
                assert x + w <= SIZE - band - margin and y + h <= SIZE - band - margin
                boxes.append((x, y, w, h))
                seen.add(name)
            for (x0, y0, w0, h0), (x1, y1, w1, h1) in itertools.combinations(boxes, 2):
                assert x0 + w0 <= x1 or x1 + w1 <= x0 or y0 + h0 <= y1 or y1 + h1 <= y0, "objects do not overlap"
    assert seen == set(summary.classes)


def test_context_scene_objects_look_alike_under_either_frame(context_dataset):
    """An object's own pixels say nothing about its class: warm and cool objects have the same colours."""
    out, summary = context_dataset
    data = json.loads((out / "train" / "instances.json").read_text())
    files = {img["id"]: img["file_name"] for img in data["images"]}
    means: dict[str, list] = {"warm": [], "cool": []}
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        with Image.open(out / "train" / "images" / files[a["image_id"]]) as im:
            centre = im.convert("RGB").getpixel((x + w // 2, y + h // 2))
        means[summary.classes[a["category_id"] - 1]].append(centre)
    warm, cool = (np.mean(means[k], axis=0) for k in ("warm", "cool"))
    assert np.abs(warm - cool).max() < 10 and warm.min() > 180


def test_context_scene_deterministic_and_checked(context_dataset, tmp_path):
    out, _ = context_dataset
    make_dataset(tmp_path / "again", images=IMAGES, seed=7, image_size=SIZE, scene="context")
    assert _files(tmp_path / "again") == _files(out)
    with pytest.raises(DatasetError, match="unknown scene 'kontext'; choose one of shapes, context, surround, beacon"):
        make_dataset(tmp_path / "x", images=4, scene="kontext")
    with pytest.raises(DatasetError, match="at least 96 pixels for the context scene, got 64"):
        make_dataset(tmp_path / "y", images=4, image_size=64, scene="context")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.fixture(scope="module")
def surround_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "surround"
    return out, make_dataset(out, images=IMAGES, seed=7, image_size=SIZE, scene="surround")


def _annotated_images(out, split):
    data = json.loads((out / split / "instances.json").read_text())
    by_image: dict[int, list] = {img["id"]: [] for img in data["images"]}
    for a in data["annotations"]:
        by_image[a["image_id"]].append(a)
    files = {img["id"]: img["file_name"] for img in data["images"]}
    return data, [(files[i], anns) for i, anns in by_image.items()]


def test_surround_scene_class_is_the_tint_beyond_a_disc_whose_own_cast_often_misleads(surround_dataset):
    """Outside every disc the image is strongly tinted with the class's colour (warm: red over blue, cool: blue
    over red); within a fifth of the side of an object only a faint cast, which points the wrong way in a good
    share of the images."""
    out, summary = surround_dataset
    assert summary.classes == SCENES["surround"].classes == ("warm", "cool")
    margin = SIZE // 5
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    seen, agreeing, images = set(), 0, 0
    for split in ("train", "val"):
        data, annotated = _annotated_images(out, split)
        assert [c["name"] for c in data["categories"]] == list(summary.classes)
        for file_name, anns in annotated:
            assert 1 <= len(anns) <= 5, "every surround image has 1-5 objects"
            names = {summary.classes[a["category_id"] - 1] for a in anns}
            assert len(names) == 1, "every object of an image has the image's class"
            sign = 1 if names == {"warm"} else -1
            pixels = np.asarray(Image.open(out / split / "images" / file_name).convert("RGB"), dtype=np.float32)
            near = np.zeros((SIZE, SIZE), dtype=bool)
            far = np.ones((SIZE, SIZE), dtype=bool)
            boxes = []
            for a in anns:
                x, y, w, h = a["bbox"]
                assert w == h and 12 <= w <= SIZE // 5
                distance = np.hypot(xx - (x + w / 2), yy - (y + h / 2))
                outside_box = (xx < x) | (xx >= x + w) | (yy < y) | (yy >= y + h)
                near |= outside_box & (distance < w / 2 + margin - 2)
                far &= distance > w / 2 + margin + 2
                boxes.append((x, y, w, h))
            cast = (pixels[near][:, 0] - pixels[near][:, 2]).mean()
            assert abs(cast) < 70, "inside the discs only a faint cast"
            if far.sum() > 20:
                assert sign * (pixels[far][:, 0] - pixels[far][:, 2]).mean() > 70, "outside, the class's tint"
            agreeing += sign * cast > 0
            images += 1
            for (x0, y0, w0, h0), (x1, y1, w1, h1) in itertools.combinations(boxes, 2):
                assert x0 + w0 <= x1 or x1 + w1 <= x0 or y0 + h0 <= y1 or y1 + h1 <= y0, "objects do not overlap"
            seen |= names
    assert seen == set(summary.classes)
    assert 0.6 < agreeing / images < 0.97, "the cast inside the discs tells the class often, not always"


@pytest.mark.parametrize("scene", ["surround", "beacon"])
def test_scene_deterministic_and_checked(scene, request, tmp_path):
    out, _ = request.getfixturevalue(f"{scene}_dataset")
    make_dataset(tmp_path / "again", images=IMAGES, seed=7, image_size=SIZE, scene=scene)
    assert _files(tmp_path / "again") == _files(out)
    with pytest.raises(DatasetError, match=f"at least 64 pixels for the {scene} scene, got 48"):
        make_dataset(tmp_path / "y", images=4, image_size=48, scene=scene)
    assert not (tmp_path / "y").exists()


@pytest.fixture(scope="module")
def beacon_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "beacon"
    return out, make_dataset(out, images=IMAGES, seed=7, image_size=SIZE, scene="beacon")


def test_beacon_scene_class_is_the_band_on_the_far_side(beacon_dataset):
    """Along one side of the image a band (40 px at 128 px) tinted with the class's colour (warm: red over blue,
    cool: blue over red); every object lies in the strip on the opposite side, its centre at least 58 px from the
    band, on grey texture with no cast; the band's side takes all four values."""
    out, summary = beacon_dataset
    assert summary.classes == SCENES["beacon"].classes == ("warm", "cool")
    band = SIZE * 5 // 16
    sides, seen, counts = set(), set(), []
    for split in ("train", "val"):
        data, annotated = _annotated_images(out, split)
        assert [c["name"] for c in data["categories"]] == list(summary.classes)
        for file_name, anns in annotated:
            assert 3 <= len(anns) <= 9, "every beacon image has 3-9 objects"
            counts.append(len(anns))
            names = {summary.classes[a["category_id"] - 1] for a in anns}
            assert len(names) == 1, "every object of an image has the image's class"
            sign = 1 if names == {"warm"} else -1
            pixels = np.asarray(Image.open(out / split / "images" / file_name).convert("RGB"), dtype=np.float32)
            strips = {
                "left": pixels[:, :band],
                "right": pixels[:, -band:],
                "top": pixels[:band],
                "bottom": pixels[-band:],
            }
            casts = {side: (strip[..., 0] - strip[..., 2]).mean() for side, strip in strips.items()}
            side = max(casts, key=lambda s: sign * casts[s])
            assert sign * casts[side] > 70, "the band has the class's tint"
            middle = pixels[band:-band, band:-band]
            assert abs((middle[..., 0] - middle[..., 2]).mean()) < 25, "the rest is grey, objects included"
            for a in anns:
                x, y, w, h = a["bbox"]
                assert w == h and 12 <= w <= int(SIZE * 0.16)
                centre = {"left": x + w / 2, "right": SIZE - x - w / 2, "top": y + h / 2, "bottom": SIZE - y - h / 2}
                assert centre[side] - band >= 58, "every object's centre is at least 58 px from the band"
            sides.add(side)
            seen |= names
    assert seen == set(summary.classes) and sides == {"left", "right", "top", "bottom"}
    assert 4 < np.mean(counts) < 6


@pytest.fixture(scope="module")
def scales_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "scales"
    return out, make_dataset(out, images=60, seed=7, image_size=256, scene="scales")


def test_scales_scene_gives_every_level_from_p3_to_p6_positives(scales_dataset):
    """Matched anchors per level (IoU >= 0.5 with a box, before the low-quality matches that give every box one)
    on the generated set: every level from P3 to P6 has positives of its own; P7's smallest anchor (362 px) is
    larger than the image."""
    from benchmarks.image_by_image import match_one_image
    from effdet_graph.model.anchors import AnchorConfig, feature_map_sizes, generate_anchors
    from effdet_graph.model.matching import MatchConfig

    out, _ = scales_dataset
    config = AnchorConfig()
    anchors = generate_anchors((256, 256), config)
    ends = np.cumsum([h * w * config.num_anchors for h, w in feature_map_sizes((256, 256), config)])
    per_level = np.zeros(config.num_levels, dtype=int)
    for split in ("train", "val"):
        for _, anns in _annotated_images(out, split)[1]:
            boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=torch.float)
            matched = match_one_image(anchors, boxes, MatchConfig(allow_low_quality_matches=False)) >= 0
            per_level += np.add.reduceat(matched.numpy().astype(int), np.r_[0, ends[:-1]])
    assert all(per_level[:4] > 0) and per_level[4] == 0, per_level


def test_scales_scene_small_objects_take_the_tint_beyond_their_discs_large_ones_their_glyphs(scales_dataset):
    """Small objects (16-48 px) have the class of the tint beyond grey discs reaching 48 px past them (a: warm,
    b: cool); a large object (72-240 px) has the class of the cross at its centre (a: upright, b: diagonal),
    whatever the tint; both kinds occur with both classes."""
    out, summary = scales_dataset
    assert summary.classes == SCENES["scales"].classes == ("a", "b")
    yy, xx = np.mgrid[0:256, 0:256]
    kinds = set()
    for split in ("train", "val"):
        data, annotated = _annotated_images(out, split)
        for file_name, anns in annotated:
            pixels = np.asarray(Image.open(out / split / "images" / file_name).convert("RGB"), dtype=np.float32)
            cast = pixels[..., 0] - pixels[..., 2]
            discs, objects = np.zeros((256, 256), bool), np.zeros((256, 256), bool)
            for a in anns:
                x, y, w, h = a["bbox"]
                assert w == h and (16 <= w <= 48 or 72 <= w <= 240)
                objects[y : y + h, x : x + w] = True
                if w <= 48:
                    discs |= (xx - x - w / 2) ** 2 + (yy - y - h / 2) ** 2 <= (w / 2 + 48) ** 2
            beyond, inside = ~discs & ~objects, discs & ~objects
            tint = 1 if cast[beyond].mean() > 0 else 2
            if beyond.sum() > 2000:
                assert abs(cast[beyond].mean()) > 20, "the tint beyond the discs"
            if inside.sum() > 2000:
                assert abs(cast[inside].mean()) < 12, "grey inside the discs"
            for a in anns:
                x, y, w, h = a["bbox"]
                if w <= 48:
                    kinds.add(("small", a["category_id"]))
                    if beyond.sum() > 2000:
                        assert a["category_id"] == tint, (file_name, a)
                else:
                    kinds.add(("large", a["category_id"]))
                    cx, cy = x + w // 2, y + h // 2
                    tone = np.median(pixels[cy - 12 : cy + 12, cx - 12 : cx + 12])
                    assert pixels[cy - 6 : cy + 6, cx - 6 : cx + 6].min() < tone - 30, "a dark glyph at the centre"
    assert kinds == {(k, c) for k in ("small", "large") for c in (1, 2)}


def test_scales_scene_deterministic_and_checked(scales_dataset, tmp_path):
    out, _ = scales_dataset
    make_dataset(tmp_path / "again", images=60, seed=7, image_size=256, scene="scales")
    assert _files(tmp_path / "again") == _files(out)
    with pytest.raises(DatasetError, match="at least 128 pixels for the scales scene, got 96"):
        make_dataset(tmp_path / "y", images=4, image_size=96, scene="scales")


def test_a_test_split_is_held_out_after_val_and_refused_when_nothing_is_left_to_train(tmp_path):
    summary = make_dataset(tmp_path / "held", images=20, seed=3, image_size=64, val_fraction=0.25, test_fraction=0.2)
    assert (summary.train_images, summary.val_images, summary.test_images) == (11, 5, 4)
    names = {
        split: [
            i["file_name"] for i in json.loads((tmp_path / "held" / split / "instances.json").read_text())["images"]
        ]
        for split in ("train", "val", "test")
    }
    assert names["test"] == [f"img_{i:05d}.png" for i in range(16, 20)]  # the last images, after val
    assert summary.test_objects == len(
        json.loads((tmp_path / "held" / "test" / "instances.json").read_text())["annotations"]
    )
    plain = make_dataset(tmp_path / "plain", images=20, seed=3, image_size=64, val_fraction=0.25)
    assert plain.test_images == 0 and not (tmp_path / "plain" / "test").exists()
    for fraction, message in ((0.8, "leave images to train on"), (-0.1, "test fraction must be at least 0")):
        with pytest.raises(DatasetError, match=message):
            make_dataset(tmp_path / "bad", images=20, val_fraction=0.25, test_fraction=fraction)
    with pytest.raises(DatasetError, match="3 images are too few for a train image, a val image and 2 test images"):
        make_dataset(tmp_path / "bad", images=3, val_fraction=0.25, test_fraction=0.5)
    assert not (tmp_path / "bad").exists()
