"""EfficientDet detectors around any feature network written in the spec language.

The core API, in the order of the pipeline: specs, compile, detector and scaling, data, train, evaluate and
predict, checkpoints, compare (built-in specs by name; these lines run as a test)::

    >>> import tempfile
    >>> from pathlib import Path
    >>> import graphspec
    >>> import effdet_graph as eg
    >>> spec = graphspec.load_spec(eg.resolve_spec_path("bifpn"))
    >>> fpn = eg.compile_spec(spec, in_channels=[40, 112, 320])  # nn.Module: P3-P5 -> P3-P7
    >>> detector = eg.build_detector("bifpn", phi=0)  # EfficientDet-D0 around that spec
    >>> f"{sum(p.numel() for p in detector.parameters()):,}"
    '3,880,067'
    >>> folder = Path(tempfile.mkdtemp())
    >>> eg.make_dataset(folder / "shapes", images=16, image_size=128, seed=0).train_images
    13
    >>> options = eg.TrainOptions(data=folder / "shapes", spec="bifpn", phi=0, out=folder / "run", steps=2,
    ...                           backbone="mobilenetv3_small_050", image_size=128, batch_size=4,
    ...                           overrides={"width": 16, "repeats": 1})
    >>> result = eg.train(options, progress=False)
    >>> result.steps_run
    2
    >>> metrics = eg.evaluate_checkpoint(result.checkpoint, folder / "shapes", "val")  # COCO box AP
    >>> list(metrics)
    ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl']
    >>> model, recipe = eg.load_checkpoint(result.checkpoint)  # the detector, from the checkpoint alone
    >>> recipe.backbone
    'mobilenetv3_small_050'

Each name here is the function's or class's own. The stages live in subpackages, each naming its public API in
``__all__`` (helpers such as costs, plots and metric names are imported from there): :mod:`effdet_graph.fpn`
(the compiler and its layers), :mod:`effdet_graph.model` (backbone, heads, anchors, losses, post-processing,
compound scaling, costs), :mod:`effdet_graph.io` (checkpoints, the model recipe, weight conversion),
:mod:`effdet_graph.data`, :mod:`effdet_graph.training`, :mod:`effdet_graph.inference`,
:mod:`effdet_graph.comparison` and the command line, :mod:`effdet_graph.cli`; base utilities are modules of
their own (:mod:`effdet_graph.builtin`, :mod:`effdet_graph.device`, :mod:`effdet_graph.atomic`,
:mod:`effdet_graph.errors`).

Names are imported on first use, so ``import effdet_graph`` stays cheap for commands that never touch torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from effdet_graph.builtin import builtin_specs, resolve_spec_path
    from effdet_graph.comparison.table import compare_specs
    from effdet_graph.data.synthetic import make_dataset
    from effdet_graph.errors import CheckpointError, DatasetError, InputError, OutputError
    from effdet_graph.fpn.compiler import FeatureNetwork, compile_spec
    from effdet_graph.inference.predict import evaluate_checkpoint, predict_images
    from effdet_graph.io.checkpoint import load_checkpoint, save_checkpoint
    from effdet_graph.io.convert import load_effdet_checkpoint
    from effdet_graph.io.recipe import ModelRecipe
    from effdet_graph.model.detector import EfficientDet, build_detector
    from effdet_graph.model.scaling import DetectorConfig, detector_config, scale_spec
    from effdet_graph.training.loop import TrainResult, train
    from effdet_graph.training.options import TrainOptions

#: public name -> the module that defines it, in the order of the pipeline
_EXPORTS: dict[str, str] = {
    # specs
    "builtin_specs": "effdet_graph.builtin",
    "resolve_spec_path": "effdet_graph.builtin",
    # compile
    "compile_spec": "effdet_graph.fpn.compiler",
    "FeatureNetwork": "effdet_graph.fpn.compiler",
    # detector and compound scaling
    "build_detector": "effdet_graph.model.detector",
    "EfficientDet": "effdet_graph.model.detector",
    "detector_config": "effdet_graph.model.scaling",
    "DetectorConfig": "effdet_graph.model.scaling",
    "scale_spec": "effdet_graph.model.scaling",
    # data
    "make_dataset": "effdet_graph.data.synthetic",
    # train
    "TrainOptions": "effdet_graph.training.options",
    "train": "effdet_graph.training.loop",
    "TrainResult": "effdet_graph.training.loop",
    # evaluate and predict
    "evaluate_checkpoint": "effdet_graph.inference.predict",
    "predict_images": "effdet_graph.inference.predict",
    # checkpoints
    "ModelRecipe": "effdet_graph.io.recipe",
    "save_checkpoint": "effdet_graph.io.checkpoint",
    "load_checkpoint": "effdet_graph.io.checkpoint",
    "load_effdet_checkpoint": "effdet_graph.io.convert",
    # compare
    "compare_specs": "effdet_graph.comparison.table",
    # errors
    "InputError": "effdet_graph.errors",
    "DatasetError": "effdet_graph.errors",
    "CheckpointError": "effdet_graph.errors",
    "OutputError": "effdet_graph.errors",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'effdet_graph' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
