"""Training EfficientDet detectors: options, data order, optimizer and schedule, logs, the loop."""

from effdet_graph.training.loop import CHECKPOINT_NAME, TrainResult, train
from effdet_graph.training.options import TrainOptions

__all__ = ["CHECKPOINT_NAME", "TrainOptions", "TrainResult", "train"]
