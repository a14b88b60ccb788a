"""BatchNorm statistics recomputed for the final weights ("precise BN").

The feature network and heads keep TensorFlow's BatchNorm momentum (0.01, i.e. decay 0.99): their
running statistics average over the last few hundred steps and start from mean 0, variance 1. In a
run of a few hundred or thousand steps they are still far from the statistics of the final weights
(a detector that is good in train mode predicts nothing in eval mode), and the EMA weights average
them once more. So at the end of training the EMA model's statistics are recomputed from scratch,
as an equal-weight average over batches of training images prepared like evaluation images
(``torch.optim.swa_utils.update_bn``).

The batches hold :data:`BATCH_SIZE` images whatever the training batch size: a batch's variance
leaves out the variance between batches, so small batches (8 images) give too small variances and
cost a third of the AP on the synthetic data set; from about 32 images on the result no longer
changes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader, Subset

from effdet_graph.data.coco import CocoDetection
from effdet_graph.data.loading import reraise_worker_errors
from effdet_graph.data.transforms import ResizePad, collate_detection

__all__ = ["BATCH_SIZE", "recompute_bn_statistics"]

BATCH_SIZE = 32


def recompute_bn_statistics(
    model: nn.Module, dataset: CocoDetection, image_size: int, images: int, workers: int, device: torch.device
) -> None:
    """Reset every BatchNorm's running statistics of ``model`` and recompute them from the first
    ``images`` images of ``dataset`` (resized and padded to ``image_size`` as for evaluation); a frozen
    backbone's (:meth:`~effdet_graph.model.detector.EfficientDet.freeze_backbone`) are kept."""
    resized = CocoDetection(dataset.image_dir, dataset.annotation_file, ResizePad(image_size))
    loader = DataLoader(
        Subset(resized, range(min(images, len(resized)))),
        batch_size=BATCH_SIZE,
        collate_fn=collate_detection,
        num_workers=workers,
    )
    update_bn(
        reraise_worker_errors(loader),
        _TrainedPart(model) if getattr(model, "backbone_frozen", False) else model,
        device,
    )


class _TrainedPart(nn.Module):
    """A detector with a frozen backbone as ``update_bn`` must see it: its ``modules()`` leave the backbone out
    (``update_bn`` resets every BatchNorm it finds), its forward is the whole detector's."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.trained = nn.ModuleList(module for name, module in detector.named_children() if name != "backbone")
        object.__setattr__(self, "detector", detector)  # not a submodule

    def forward(self, images: torch.Tensor) -> object:
        detector: nn.Module = self.__dict__["detector"]
        return detector(images)
