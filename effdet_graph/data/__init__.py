"""Data sets and transforms: COCO-format data sets checked when opened (:mod:`.coco`, :mod:`.checks`), image
files (:mod:`.images`), loader errors as one line (:mod:`.loading`), synthetic data sets (:mod:`.synthetic`), and
resize / augment / collate (:mod:`.transforms`)."""

from effdet_graph.data.checks import check_split, open_split
from effdet_graph.data.coco import CocoDetection, view_of, view_rng
from effdet_graph.data.images import open_image
from effdet_graph.data.loading import reraise_worker_errors
from effdet_graph.data.synthetic import CLASSES, SCENES, make_dataset
from effdet_graph.data.transforms import PaddedCollate, ResizePad, TrainTransform, collate_detection

__all__ = [
    "make_dataset",
    "SCENES",
    "CLASSES",
    "CocoDetection",
    "open_split",
    "check_split",
    "view_of",
    "view_rng",
    "open_image",
    "reraise_worker_errors",
    "ResizePad",
    "TrainTransform",
    "collate_detection",
    "PaddedCollate",
]
