"""A trained detector at work: COCO box AP of a checkpoint on a data set split and boxes drawn onto images
(:mod:`.predict`), the COCO evaluation itself (:mod:`.evaluate`) and its bootstrap confidence interval
(:mod:`.bootstrap`)."""

from effdet_graph.inference.bootstrap import CI_LEVEL, DEFAULT_RESAMPLES, ApInterval, bootstrap_ap
from effdet_graph.inference.evaluate import AGNOSTIC_KEY, CI_KEYS, METRICS, coco_evaluate
from effdet_graph.inference.predict import (
    Detections,
    evaluate_checkpoint,
    evaluate_predictor,
    load_predictor,
    predict_images,
)

__all__ = [
    "evaluate_checkpoint",
    "evaluate_predictor",
    "load_predictor",
    "predict_images",
    "Detections",
    "METRICS",
    "AGNOSTIC_KEY",
    "CI_KEYS",
    "coco_evaluate",
    "bootstrap_ap",
    "ApInterval",
    "CI_LEVEL",
    "DEFAULT_RESAMPLES",
]
