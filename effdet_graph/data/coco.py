"""A COCO-format detection data set (image folder + instances JSON), checked up front.

Everything that can be checked without decoding images is checked when the data set is opened,
and the first problem raises :class:`~effdet_graph.errors.DatasetError` naming the file and the
entry: the folder or JSON missing, JSON unreadable or not COCO-shaped, duplicate ids, image files
missing on disk (the first few are listed), file names that lead out of the image folder
(``../../etc/passwd``, absolute paths), annotations on unknown images or categories, boxes
that are malformed, of zero or negative area, or outside the image (by more than
``BOX_TOLERANCE`` pixels; smaller overhangs, common in real COCO files, are clipped).

Category ids are mapped to contiguous labels ``0..K-1`` in ascending id order;
``label_to_category`` maps back. Crowd annotations (``iscrowd: 1``) are returned apart, as
``ignore_boxes``. Images without annotations are kept.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image
from pycocotools.coco import COCO
from torch import Tensor
from torch.utils.data import Dataset

from effdet_graph.data.images import decode_image_size, open_image
from effdet_graph.errors import DatasetError
from graphspec.errors import first_few

__all__ = ["BOX_TOLERANCE", "CocoDetection", "DetectionTransform", "load_coco"]

#: Boxes may overhang the image by this many pixels (they are clipped); more is an error.
BOX_TOLERANCE = 1.0


class DetectionTransform(Protocol):
    """``(image, target, rng) -> (image tensor, target)``; see :mod:`effdet_graph.data.transforms`."""

    def __call__(
        self, image: Image.Image, target: dict[str, Any], rng: random.Random
    ) -> tuple[Tensor, dict[str, Any]]: ...


def _fail(where: str, message: str) -> DatasetError:
    return DatasetError(f"{where}: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _fail(str(path), "annotation file does not exist; check the path (expected a COCO instances JSON)")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise _fail(f"{path}:{e.lineno}:{e.colno}", f"not valid JSON ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(str(path), f"cannot be read ({e})") from None
    if not isinstance(data, dict):
        raise _fail(
            str(path),
            f"expected a JSON object with 'images', 'annotations' and 'categories', found {type(data).__name__}",
        )
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise _fail(str(path), f"missing the list '{key}'; this is not a COCO instances file")
    data.setdefault("annotations", [])
    if not isinstance(data["annotations"], list):
        raise _fail(str(path), "'annotations' must be a list")
    return data


def _check_categories(path: Path, data: dict[str, Any]) -> None:
    seen: set[int] = set()
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not _is_id(cat.get("id")):
            raise _fail(str(path), f"category #{i} ({json.dumps(cat)[:80]}) has no integer 'id'")
        if cat["id"] in seen:
            raise _fail(str(path), f"category id {cat['id']} appears twice; ids must be unique")
        seen.add(cat["id"])
    if not seen:
        raise _fail(str(path), "'categories' is empty; a detection data set needs at least one")


def _escapes(file_name: str) -> bool:
    """Whether ``file_name``, taken relative to the image folder, names something outside it (decided on
    the text alone, so an image folder whose files are symbolic links elsewhere is fine)."""
    name = os.path.normpath(file_name.replace("\\", "/"))
    return os.path.isabs(name) or name == os.pardir or name.startswith(os.pardir + os.sep)


def _check_images(path: Path, image_dir: Path, data: dict[str, Any]) -> None:
    seen: set[int] = set()
    missing: list[str] = []
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not _is_id(img.get("id")):
            raise _fail(str(path), f"image #{i} ({json.dumps(img)[:80]}) has no integer 'id'")
        where = f"{path}: image id {img['id']}"
        if img["id"] in seen:
            raise DatasetError(f"{where}: id appears twice; image ids must be unique")
        seen.add(img["id"])
        if not isinstance(img.get("file_name"), str) or not img["file_name"]:
            raise DatasetError(f"{where}: no 'file_name'")
        for key in ("width", "height"):
            if not _is_id(img.get(key)) or img[key] <= 0:
                raise DatasetError(
                    f"{where} '{img['file_name']}': '{key}' must be a positive integer, got {img.get(key)!r}"
                )
        if "\x00" in img["file_name"]:
            raise DatasetError(f"{where} {img['file_name']!r}: the file name holds a NUL character")
        if _escapes(img["file_name"]):
            raise DatasetError(
                f"{where} '{img['file_name']}': the file name leads out of the image folder {image_dir}; "
                "file names must be relative paths inside it"
            )
        file = image_dir / img["file_name"]
        if file.is_dir():
            raise DatasetError(f"{file}: is a directory, not an image file (image id {img['id']} of {path})")
        if not file.is_file():
            missing.append(img["file_name"])
    if missing:
        listed = first_few([f"'{name}'" for name in missing])
        raise _fail(
            str(path),
            f"{len(missing)} of {len(data['images'])} listed images are missing "
            f"from {image_dir}: {listed}; copy them there or remove "
            "their entries",
        )


def _check_annotations(path: Path, data: dict[str, Any]) -> None:
    images = {img["id"]: img for img in data["images"]}
    categories = {cat["id"] for cat in data["categories"]}
    seen: set[int] = set()
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not _is_id(ann.get("id")):
            raise _fail(str(path), f"annotation #{i} ({json.dumps(ann)[:80]}) has no integer 'id'")
        where = f"{path}: annotation id {ann['id']}"
        if ann["id"] in seen:
            raise DatasetError(f"{where}: id appears twice; annotation ids must be unique")
        seen.add(ann["id"])
        img = images.get(ann.get("image_id"))
        if img is None:
            raise DatasetError(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
        where = f"{where} (image {img['id']} '{img['file_name']}')"
        if ann.get("category_id") not in categories:
            raise DatasetError(
                f"{where}: category_id {ann.get('category_id')!r} is not in 'categories' "
                f"(ids: {', '.join(str(c) for c in sorted(categories))}); fix or remove it"
            )
        box = ann.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
            raise DatasetError(f"{where}: 'bbox' must be [x, y, width, height], got {json.dumps(box)}")
        x, y, w, h = box
        if w <= 0 or h <= 0:
            kind = "zero" if w == 0 or h == 0 else "negative"
            raise DatasetError(f"{where}: box {json.dumps(box)} has {kind} area; fix or remove it")
        if (
            x < -BOX_TOLERANCE
            or y < -BOX_TOLERANCE
            or x + w > img["width"] + BOX_TOLERANCE
            or y + h > img["height"] + BOX_TOLERANCE
        ):
            raise DatasetError(
                f"{where}: box {json.dumps(box)} lies outside the {img['width']}x{img['height']} "
                "image; fix or remove it"
            )


def load_coco(image_dir: str | os.PathLike[str], annotation_file: str | os.PathLike[str]) -> COCO:
    """Check a COCO data set (see the module docstring) and return its pycocotools index.

    Raises:
        DatasetError: for the first problem found.
    """
    image_dir, path = Path(image_dir), Path(annotation_file)
    if not image_dir.is_dir():
        raise _fail(str(image_dir), "image folder does not exist; check the data set path")
    data = _read_json(path)
    _check_categories(path, data)
    _check_images(path, image_dir, data)
    _check_annotations(path, data)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


class CocoDetection(Dataset):
    """Images and boxes of a COCO-format data set.

    Args:
        image_dir: folder holding the images (``file_name`` is relative to it).
        annotation_file: COCO instances JSON.
        transform: ``(image, target, rng) -> (tensor, target)``, or ``None`` to get the PIL image
            and the target in original pixels.
        seed: with :meth:`set_epoch`, seeds the ``random.Random`` handed to ``transform``:
            item ``i`` of epoch ``e`` always gets the same random numbers, whatever the
            number of loader workers.

    An item is ``(image, target)`` with ``target``:

    * ``boxes``: ``FloatTensor[M, 4]`` xyxy pixels (original image unless transformed)
    * ``labels``: ``Int64Tensor[M]`` contiguous 0-based labels
    * ``ignore_boxes``: ``FloatTensor[C, 4]`` xyxy crowd regions
    * ``image_id``: ``int`` COCO image id
    * ``orig_size``: ``(height, width)`` of the original image
    """

    def __init__(
        self,
        image_dir: str | os.PathLike[str],
        annotation_file: str | os.PathLike[str],
        transform: DetectionTransform | Callable[..., tuple[Tensor, dict[str, Any]]] | None = None,
        seed: int = 0,
    ):
        self.image_dir = Path(image_dir)
        self.annotation_file = Path(annotation_file)
        self.coco = load_coco(self.image_dir, self.annotation_file)
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        #: ``None``: a fresh augmentation of each item every epoch; ``N``: one of ``N`` fixed views of it.
        self.views: int | None = None
        self.image_ids: list[int] = [img["id"] for img in self.coco.dataset["images"]]
        cats = sorted(self.coco.dataset["categories"], key=lambda c: c["id"])
        #: ``label_to_category[label]`` is the COCO category id of contiguous label ``label``.
        self.label_to_category: list[int] = [c["id"] for c in cats]
        self.category_to_label: dict[int, int] = {c: i for i, c in enumerate(self.label_to_category)}
        self.class_names: list[str] = [str(c.get("name", c["id"])) for c in cats]

    @classmethod
    def from_split(cls, split_dir: str | os.PathLike[str], transform: Any = None, seed: int = 0) -> CocoDetection:
        """Open ``split_dir/images`` + ``split_dir/instances.json`` (the layout
        :func:`effdet_graph.data.synthetic.make_dataset` writes).

        Raises:
            DatasetError: the folder is missing, or its data set is broken (see :func:`load_coco`).
        """
        split = Path(split_dir)
        if not split.is_dir():
            raise _fail(
                str(split),
                "data set folder does not exist; check the path (expected SPLIT/images/ and SPLIT/instances.json)",
            )
        return cls(split / "images", split / "instances.json", transform, seed)

    @property
    def num_classes(self) -> int:
        """Number of categories ``K``."""
        return len(self.label_to_category)

    def set_epoch(self, epoch: int) -> None:
        """Change the random numbers the transform gets (call before each training epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.image_ids)

    def load(self, index: int) -> tuple[Image.Image, dict[str, Any]]:
        """The RGB image and target of item ``index``, in original pixels.

        Raises:
            DatasetError: the image file is missing or unreadable, or its size is not the annotated one.
        """
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        file = self.image_dir / info["file_name"]
        image = open_image(file)
        self._check_size(index, image.size)
        w, h = info["width"], info["height"]
        boxes, labels, crowd = [], [], []
        for ann in self.coco.imgToAnns.get(image_id, []):
            x, y, bw, bh = ann["bbox"]
            box = [max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)]
            if ann.get("iscrowd", 0):
                crowd.append(box)
            else:
                boxes.append(box)
                labels.append(self.category_to_label[ann["category_id"]])
        target = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "ignore_boxes": torch.tensor(crowd, dtype=torch.float32).reshape(-1, 4),
            "image_id": image_id,
            "orig_size": (h, w),
        }
        return image, target

    def check(self, index: int) -> None:
        """Decode the image of item ``index`` (without keeping it) and compare its size with the annotated one.

        Raises:
            DatasetError: the image file is missing, a directory or unreadable (truncated, corrupt, not an
                image), or its size is not the annotated one.
        """
        file = self.image_dir / self.coco.imgs[self.image_ids[index]]["file_name"]
        self._check_size(index, decode_image_size(file))

    def _check_size(self, index: int, size: tuple[int, int]) -> None:
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        w, h = info["width"], info["height"]
        if size != (w, h):
            raise _fail(
                str(self.image_dir / info["file_name"]),
                f"image {image_id} is {size[0]}x{size[1]} but {self.annotation_file} says {w}x{h}; "
                "fix its width and height there",
            )

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        image, target = self.load(index)
        if self.transform is None:
            return image, target
        return self.transform(image, target, self.item_rng(index))

    def item_rng(self, index: int) -> random.Random:
        """The random numbers item ``index`` of this epoch is transformed with: its own each epoch, or with
        :attr:`views` one of that many fixed ones (:func:`view_rng`), picked anew each epoch."""
        if self.views is None:
            return random.Random(f"{self.seed}:{self.epoch}:{index}")
        return view_rng(index, view_of(self.seed, self.epoch, index, self.views))


def view_of(seed: int, epoch: int, index: int, views: int) -> int:
    """Which of ``views`` fixed views item ``index`` shows in epoch ``epoch`` of a run with data seed ``seed``."""
    return random.Random(f"{seed}:{epoch}:{index}").randrange(views)


def view_rng(index: int, view: int) -> random.Random:
    """The random numbers of view ``view`` of item ``index``: the same for every run, whatever its seed, so that
    runs share the views (and a feature cache of them)."""
    return random.Random(f"view:{view}:{index}")
