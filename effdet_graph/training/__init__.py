"""Training EfficientDet detectors: options (:mod:`.options`), the loop (:mod:`.loop`) and what it is made of
(data order :mod:`.data`, optimizer and schedule :mod:`.optim`, EMA :mod:`.ema`, BatchNorm :mod:`.batchnorm`,
seeding :mod:`.seeding`, logs :mod:`.step_log` and :mod:`.readout`, several processes :mod:`.distributed`, a
frozen backbone's cached features :mod:`.feature_cache`, model variants :mod:`.variant`), and a run trained then
evaluated (:mod:`.train_eval`)."""

from effdet_graph.training.batchnorm import BATCH_SIZE, recompute_bn_statistics
from effdet_graph.training.feature_cache import open_feature_cache
from effdet_graph.training.loop import CHECKPOINT_NAME, TrainResult, prepare_feature_cache, train
from effdet_graph.training.options import (
    DEFAULT_CACHED_VIEWS,
    DEFAULT_EPOCHS,
    LOG_KINDS,
    OptionError,
    TrainOptions,
    check_options,
)
from effdet_graph.training.train_eval import dataset_classes, dataset_folder, evaluate_run, train_and_evaluate

__all__ = [
    "TrainOptions",
    "OptionError",
    "check_options",
    "DEFAULT_EPOCHS",
    "DEFAULT_CACHED_VIEWS",
    "LOG_KINDS",
    "train",
    "TrainResult",
    "CHECKPOINT_NAME",
    "prepare_feature_cache",
    "open_feature_cache",
    "train_and_evaluate",
    "evaluate_run",
    "dataset_folder",
    "dataset_classes",
    "recompute_bn_statistics",
    "BATCH_SIZE",
]
