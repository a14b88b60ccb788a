"""The detector around a feature network: the backbone (:mod:`.backbone`, its weights :mod:`.backbone_weights`),
the class and box heads (:mod:`.heads`), anchors (:mod:`.anchors`), box codes, matching and targets
(:mod:`.box_coder`, :mod:`.matching`, :mod:`.padded_targets`, :mod:`.target_assignment`), the loss
(:mod:`.losses`), post-processing (:mod:`.postprocess`), EfficientDet itself (:mod:`.detector`), compound
scaling (:mod:`.scaling`) and its parameters and MACs (:mod:`.cost`)."""

from effdet_graph.model.anchors import AnchorConfig, Anchors, feature_map_sizes, flatten_level_outputs, generate_anchors
from effdet_graph.model.backbone import IMAGENET, create_backbone, feature_info, weights_source
from effdet_graph.model.backbone_weights import IMAGENET_MEAN, IMAGENET_STD
from effdet_graph.model.box_coder import EPS, decode_boxes, encode_boxes
from effdet_graph.model.cost import (
    backbone_channels,
    backbone_cost,
    clear_cost_caches,
    count_macs,
    count_params,
    detector_cost,
    detector_report,
    feature_network_cost,
    heads_cost,
    whole_detector_cost,
)
from effdet_graph.model.detector import (
    DetectorPredictor,
    DetectorTrainer,
    EfficientDet,
    FeatureNetworkFactory,
    build_detector,
)
from effdet_graph.model.losses import DetectionLoss
from effdet_graph.model.matching import BACKGROUND, IGNORE, MatchConfig
from effdet_graph.model.padded_targets import (
    DEFAULT_MAX_BOXES,
    DEFAULT_MAX_IGNORE_BOXES,
    Overflow,
    PaddedTargets,
    pad_targets,
)
from effdet_graph.model.postprocess import PostProcessConfig
from effdet_graph.model.scaling import (
    DetectorConfig,
    HeadConfig,
    ScalingTable,
    builtin_scaling,
    detector_config,
    load_scaling,
    scale_document,
    scale_spec,
)
from effdet_graph.model.target_assignment import AnchorTargets, assign_targets

__all__ = [
    # the detector and its scaling
    "EfficientDet",
    "build_detector",
    "FeatureNetworkFactory",
    "DetectorTrainer",
    "DetectorPredictor",
    "DetectorConfig",
    "HeadConfig",
    "ScalingTable",
    "builtin_scaling",
    "detector_config",
    "load_scaling",
    "scale_document",
    "scale_spec",
    # the backbone
    "IMAGENET",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "create_backbone",
    "feature_info",
    "weights_source",
    # anchors, box codes, matching, targets, loss, post-processing
    "AnchorConfig",
    "Anchors",
    "feature_map_sizes",
    "generate_anchors",
    "flatten_level_outputs",
    "EPS",
    "encode_boxes",
    "decode_boxes",
    "BACKGROUND",
    "IGNORE",
    "MatchConfig",
    "DEFAULT_MAX_BOXES",
    "DEFAULT_MAX_IGNORE_BOXES",
    "Overflow",
    "PaddedTargets",
    "pad_targets",
    "AnchorTargets",
    "assign_targets",
    "DetectionLoss",
    "PostProcessConfig",
    # parameters and MACs
    "detector_report",
    "detector_cost",
    "whole_detector_cost",
    "feature_network_cost",
    "backbone_cost",
    "backbone_channels",
    "heads_cost",
    "count_params",
    "count_macs",
    "clear_cost_caches",
]
