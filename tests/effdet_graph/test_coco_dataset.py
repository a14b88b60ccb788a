"""COCO data set checks (every DatasetError case), crowd handling, transforms and collate."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from effdet_graph.data.coco import CocoDetection
from effdet_graph.data.transforms import (
    ResizePad,
    TrainTransform,
    collate_detection,
    hflip,
)
from effdet_graph.errors import DatasetError
from effdet_graph.model.backbone_weights import IMAGENET_MEAN, IMAGENET_STD


def make_split(root, images=3, mutate=None):
    """A tiny split: 40x30 images, categories 3 ('a') and 7 ('b'), one crowd box, one empty image."""
    (root / "images").mkdir(parents=True)
    data = {
        "images": [{"id": i + 1, "file_name": f"img_{i:04d}.png", "width": 40, "height": 30} for i in range(images)],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 3, 10, 5], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 7, "bbox": [20, 10, 20, 20], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 7, "bbox": [0, 0, 15, 15], "iscrowd": 1},
            {"id": 4, "image_id": 2, "category_id": 3, "bbox": [-0.5, 0, 40.4, 30], "iscrowd": 0},
        ],
        "categories": [{"id": 7, "name": "b"}, {"id": 3, "name": "a"}],
    }
    for img in data["images"]:
        Image.new("RGB", (40, 30), (10, 20, 30)).save(root / "images" / img["file_name"])
    if mutate:
        mutate(data)
    (root / "instances.json").write_text(json.dumps(data))
    return root


def test_loads_and_maps_categories(tmp_path):
    ds = CocoDetection.from_split(make_split(tmp_path / "val"))
    assert len(ds) == 3  # image 3 has no annotation and is kept
    assert ds.label_to_category == [3, 7] and ds.class_names == ["a", "b"] and ds.num_classes == 2
    image, t = ds[0]
    assert image.size == (40, 30) and t["image_id"] == 1 and t["orig_size"] == (30, 40)
    torch.testing.assert_close(t["boxes"], torch.tensor([[2.0, 3, 12, 8], [20, 10, 40, 30]]))
    assert t["labels"].tolist() == [0, 1]
    torch.testing.assert_close(t["ignore_boxes"], torch.tensor([[0.0, 0, 15, 15]]))
    # within the 1 px tolerance: clipped to the image
    torch.testing.assert_close(ds[1][1]["boxes"], torch.tensor([[0.0, 0, 39.9, 30]]))
    empty = ds[2][1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    assert empty["ignore_boxes"].shape == (0, 4)


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere: data set folder does not exist"):
        CocoDetection.from_split(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"pics: image folder does not exist"):
        CocoDetection(tmp_path / "pics", tmp_path / "x.json")


def test_missing_json(tmp_path):
    split = make_split(tmp_path / "val")
    (split / "instances.json").unlink()
    with pytest.raises(DatasetError, match=r"val/instances.json: annotation file does not exist"):
        CocoDetection.from_split(split)


def test_unreadable_json(tmp_path):
    split = make_split(tmp_path / "val")
    (split / "instances.json").write_text('{"images": [\n  {"id": 1,,}]}')
    with pytest.raises(DatasetError, match=r"val/instances.json:2:12: not valid JSON"):
        CocoDetection.from_split(split)
    (split / "instances.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match=r"instances.json: expected a JSON object"):
        CocoDetection.from_split(split)
    (split / "instances.json").write_text('{"images": []}')
    with pytest.raises(DatasetError, match=r"instances.json: missing the list 'categories'"):
        CocoDetection.from_split(split)


def test_missing_images_listed_up_front(tmp_path):
    split = make_split(tmp_path / "val", images=9)
    for i in (1, 2, 4, 5, 6, 7, 8):
        (split / "images" / f"img_{i:04d}.png").unlink()
    with pytest.raises(DatasetError) as e:
        CocoDetection.from_split(split)
    msg = str(e.value)
    assert "val/instances.json: 7 of 9 listed images are missing from" in msg
    assert "'img_0001.png', 'img_0002.png', 'img_0004.png', 'img_0005.png', 'img_0006.png', ... (2 more)" in msg


@pytest.mark.parametrize(
    "bbox,expected",
    [
        ([10, 10, 0, 5], "box [10, 10, 0, 5] has zero area; fix or remove it"),
        ([10, 10, 5, -2], "box [10, 10, 5, -2] has negative area"),
        ([30, 10, 15, 5], "box [30, 10, 15, 5] lies outside the 40x30 image"),
        ([-3, 10, 5, 5], "box [-3, 10, 5, 5] lies outside"),
        ([1, 2, 3], "'bbox' must be [x, y, width, height], got [1, 2, 3]"),
    ],
)
def test_bad_boxes(tmp_path, bbox, expected):
    def mutate(d):
        d["annotations"].append({"id": 17, "image_id": 3, "category_id": 3, "bbox": bbox})

    split = make_split(tmp_path / "val", mutate=mutate)
    with pytest.raises(DatasetError) as e:
        CocoDetection.from_split(split)
    prefix = f"{split / 'instances.json'}: annotation id 17 (image 3 'img_0002.png'): "
    assert str(e.value).startswith(prefix)
    assert expected in str(e.value)


def test_unknown_category(tmp_path):
    def mutate(d):
        d["annotations"][1]["category_id"] = 5

    split = make_split(tmp_path / "val", mutate=mutate)
    with pytest.raises(
        DatasetError,
        match=r"instances.json: annotation id 2 \(image 1 'img_0000.png'\): "
        r"category_id 5 is not in 'categories' \(ids: 3, 7\)",
    ):
        CocoDetection.from_split(split)


def test_unknown_image_and_duplicates(tmp_path):
    def unknown_image(d):
        d["annotations"][0]["image_id"] = 99

    with pytest.raises(DatasetError, match=r"annotation id 1: image_id 99 is not in 'images'"):
        CocoDetection.from_split(make_split(tmp_path / "a", mutate=unknown_image))

    def duplicate(d):
        d["images"][1]["id"] = 1

    with pytest.raises(DatasetError, match=r"instances.json: image id 1: id appears twice"):
        CocoDetection.from_split(make_split(tmp_path / "b", mutate=duplicate))


def test_image_size_mismatch_reported_on_load(tmp_path):
    split = make_split(tmp_path / "val")
    Image.new("RGB", (41, 30)).save(split / "images" / "img_0001.png")
    ds = CocoDetection.from_split(split)
    with pytest.raises(DatasetError, match=r"img_0001.png: image 2 is 41x30 but .* says 40x30"):
        ds[1]
    with pytest.raises(DatasetError, match=r"img_0001.png: image 2 is 41x30 but .* says 40x30"):
        ds.check(1)  # the up-front check decodes without converting
    ds.check(0)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "sub/../../img_0000.png", ".."])
def test_file_names_leading_out_of_the_image_folder(tmp_path, name):
    def escape(d):
        d["images"][0]["file_name"] = name

    with pytest.raises(DatasetError, match=r"image id 1 .*: the file name leads out of the image folder"):
        CocoDetection.from_split(make_split(tmp_path / "val", mutate=escape))


def test_file_names_in_subfolders_are_fine(tmp_path):
    split = make_split(tmp_path / "val")
    (split / "images" / "sub").mkdir()
    (split / "images" / "img_0000.png").rename(split / "images" / "sub" / "img_0000.png")
    (split / "instances.json").write_text(
        (split / "instances.json").read_text().replace('"img_0000.png"', '"sub/../sub/img_0000.png"')
    )
    assert CocoDetection.from_split(split)[0][0].size == (40, 30)


# --- transforms ------------------------------------------------------------------------------


def _target(boxes, labels=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    labels = torch.arange(len(boxes)) if labels is None else torch.tensor(labels)
    return {
        "boxes": boxes,
        "labels": labels,
        "ignore_boxes": torch.tensor([[0.0, 0, 5, 5]]),
        "image_id": 1,
        "orig_size": (80, 100),
    }


def _rect_image(box, size=(100, 80)):
    img = np.zeros((size[1], size[0], 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return Image.fromarray(img)


def test_hflip_twice_is_identity():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), np.uint8))
    t = _target([[1, 2, 10, 20], [30, 0, 40, 30]])
    once_img, once = hflip(image, t)
    torch.testing.assert_close(once["boxes"], torch.tensor([[30.0, 2, 39, 20], [0, 0, 10, 30]]))
    twice_img, twice = hflip(once_img, once)
    assert np.array_equal(np.asarray(twice_img), np.asarray(image))
    torch.testing.assert_close(twice["boxes"], t["boxes"])
    torch.testing.assert_close(twice["ignore_boxes"], t["ignore_boxes"])


def test_resize_pad_scales_boxes():
    image = _rect_image((20, 10, 60, 50))
    x, t = ResizePad(64)(image, _target([[20, 10, 60, 50]]))
    assert x.shape == (3, 64, 64)
    assert t["scale"] == pytest.approx(0.64) and t["image_size"] == (51, 64)
    torch.testing.assert_close(t["boxes"], torch.tensor([[12.8, 6.4, 38.4, 32.0]]))
    assert (x[:, 51:, :] == 0).all()  # padding is the mean colour


def _white_extent(x):
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    white = (x * std + mean).mean(0) > 0.5
    ys, xs = torch.nonzero(white, as_tuple=True)
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)


def test_train_transform_boxes_follow_pixels():
    box = (20, 10, 60, 50)
    transform = TrainTransform(64, scale_range=(0.5, 2.0))
    checked = 0
    for seed in range(30):
        x, t = transform(_rect_image(box), _target([box]), random.Random(seed))
        assert x.shape == (3, 64, 64)
        h, w = t["image_size"]
        assert (t["boxes"][:, 0::2] <= w).all() and (t["boxes"][:, 1::2] <= h).all()
        if len(t["boxes"]) and (t["boxes"][0, 2:] - t["boxes"][0, :2]).min() > 4:
            torch.testing.assert_close(_white_extent(x), t["boxes"][0], atol=1.5, rtol=0)
            checked += 1
    assert checked > 10


def test_train_transform_reproducible_and_drops_vanished_boxes():
    transform = TrainTransform(64)
    image = _rect_image((20, 10, 60, 50))
    t = _target([[20, 10, 60, 50], [0, 0, 2, 2], [95, 70, 100, 80]], labels=[4, 5, 6])
    a = transform(image, t, random.Random(3))
    b = transform(image, t, random.Random(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1]["boxes"], b[1]["boxes"])
    # at the smallest scale the 2x2 box shrinks under a pixel and is dropped with its label
    tiny = TrainTransform(64, scale_range=(0.1, 0.1), flip_prob=0.0)(image, t, random.Random(0))[1]
    assert tiny["labels"].tolist() == [4] and tiny["scale"] == pytest.approx(0.064)
    assert tiny["image_size"] == (5, 6)


def test_dataset_with_transform_and_collate(tmp_path):
    ds = CocoDetection.from_split(make_split(tmp_path / "val"), transform=TrainTransform(32), seed=1)
    first = ds[0]
    assert torch.equal(first[0], ds[0][0])  # same epoch, same item -> same augmentation
    outs = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        outs.add(ds[0][1]["scale"])
    assert len(outs) > 1
    images, targets = collate_detection([ds[i] for i in range(3)])
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.float32
    assert [t["image_id"] for t in targets] == [1, 2, 3]
    assert all(t["boxes"].shape[1] == 4 and t["labels"].dtype == torch.int64 for t in targets)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_detection)
    assert next(iter(loader))[0].shape == (2, 3, 32, 32)
