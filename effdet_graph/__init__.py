"""EfficientDet detectors around any feature network written in the spec language.

The public API, in the order of the pipeline (built-in specs by name; these lines run as a test)::

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
    >>> metrics = eg.evaluate(result.checkpoint, folder / "shapes", "val")  # COCO AP of a checkpoint
    >>> sorted(metrics) == sorted(eg.METRICS)
    True
    >>> model, recipe = eg.load_checkpoint(result.checkpoint)  # the detector, from the checkpoint alone
    >>> recipe.backbone
    'mobilenetv3_small_050'

Stages live in subpackages: :mod:`effdet_graph.fpn` (the compiler and its layers), :mod:`effdet_graph.model`
(backbone, heads, anchors, losses, post-processing, compound scaling), :mod:`effdet_graph.io` (checkpoints,
the model recipe, weight conversion), :mod:`effdet_graph.data`, :mod:`effdet_graph.training`,
:mod:`effdet_graph.inference`, :mod:`effdet_graph.comparison` and the command line, :mod:`effdet_graph.cli`.

Names are imported on first use, so ``import effdet_graph`` stays cheap for commands that never touch torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from effdet_graph.atomic import atomic_output
    from effdet_graph.builtin import builtin_specs as list_specs
    from effdet_graph.builtin import resolve_spec_path, specs_dir
    from effdet_graph.comparison.plots import pareto_front, scatter_plot
    from effdet_graph.comparison.table import compare_specs, measure_latency_ms
    from effdet_graph.data.synthetic import make_dataset
    from effdet_graph.device import resolve_device
    from effdet_graph.errors import CheckpointError, DatasetError, InputError
    from effdet_graph.fpn.compiler import FeatureNetwork, compile_spec
    from effdet_graph.inference.evaluate import METRICS
    from effdet_graph.inference.predict import evaluate_checkpoint as evaluate
    from effdet_graph.inference.predict import predict_images
    from effdet_graph.io.checkpoint import load_checkpoint as load_checkpoint
    from effdet_graph.io.checkpoint import save_checkpoint
    from effdet_graph.io.convert import load_effdet_checkpoint
    from effdet_graph.io.recipe import ModelRecipe
    from effdet_graph.model.backbone import create_backbone, feature_info
    from effdet_graph.model.cost import backbone_cost, detector_report, heads_cost
    from effdet_graph.model.detector import EfficientDet, build_detector
    from effdet_graph.model.scaling import DetectorConfig, detector_config, load_scaling, scale_spec
    from effdet_graph.training.loop import TrainResult, train
    from effdet_graph.training.options import TrainOptions

#: public name -> (module, attribute)
_EXPORTS: dict[str, tuple[str, str]] = {
    "CheckpointError": ("effdet_graph.errors", "CheckpointError"),
    "DatasetError": ("effdet_graph.errors", "DatasetError"),
    "DetectorConfig": ("effdet_graph.model.scaling", "DetectorConfig"),
    "EfficientDet": ("effdet_graph.model.detector", "EfficientDet"),
    "FeatureNetwork": ("effdet_graph.fpn.compiler", "FeatureNetwork"),
    "InputError": ("effdet_graph.errors", "InputError"),
    "METRICS": ("effdet_graph.inference.evaluate", "METRICS"),
    "ModelRecipe": ("effdet_graph.io.recipe", "ModelRecipe"),
    "TrainOptions": ("effdet_graph.training.options", "TrainOptions"),
    "TrainResult": ("effdet_graph.training.loop", "TrainResult"),
    "atomic_output": ("effdet_graph.atomic", "atomic_output"),
    "backbone_cost": ("effdet_graph.model.cost", "backbone_cost"),
    "build_detector": ("effdet_graph.model.detector", "build_detector"),
    "compare_specs": ("effdet_graph.comparison.table", "compare_specs"),
    "compile_spec": ("effdet_graph.fpn.compiler", "compile_spec"),
    "create_backbone": ("effdet_graph.model.backbone", "create_backbone"),
    "detector_config": ("effdet_graph.model.scaling", "detector_config"),
    "detector_report": ("effdet_graph.model.cost", "detector_report"),
    "evaluate": ("effdet_graph.inference.predict", "evaluate_checkpoint"),
    "feature_info": ("effdet_graph.model.backbone", "feature_info"),
    "heads_cost": ("effdet_graph.model.cost", "heads_cost"),
    "list_specs": ("effdet_graph.builtin", "builtin_specs"),
    "load_checkpoint": ("effdet_graph.io.checkpoint", "load_checkpoint"),
    "load_effdet_checkpoint": ("effdet_graph.io.convert", "load_effdet_checkpoint"),
    "load_scaling": ("effdet_graph.model.scaling", "load_scaling"),
    "make_dataset": ("effdet_graph.data.synthetic", "make_dataset"),
    "measure_latency_ms": ("effdet_graph.comparison.table", "measure_latency_ms"),
    "pareto_front": ("effdet_graph.comparison.plots", "pareto_front"),
    "predict_images": ("effdet_graph.inference.predict", "predict_images"),
    "resolve_device": ("effdet_graph.device", "resolve_device"),
    "resolve_spec_path": ("effdet_graph.builtin", "resolve_spec_path"),
    "save_checkpoint": ("effdet_graph.io.checkpoint", "save_checkpoint"),
    "scale_spec": ("effdet_graph.model.scaling", "scale_spec"),
    "scatter_plot": ("effdet_graph.comparison.plots", "scatter_plot"),
    "specs_dir": ("effdet_graph.builtin", "specs_dir"),
    "train": ("effdet_graph.training.loop", "train"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'effdet_graph' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
