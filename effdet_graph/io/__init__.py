"""Detectors on disk: the recipe that rebuilds one (:mod:`.recipe`), checkpoints that carry it with the weights
(:mod:`.checkpoint`), checked as data from outside when read (:mod:`.validation`), and the public ``effdet``
checkpoints converted (:mod:`.convert`)."""

from effdet_graph.io.checkpoint import (
    FORMAT,
    backbone_weights_of,
    load_checkpoint,
    load_model_state,
    read_checkpoint,
    save_checkpoint,
)
from effdet_graph.io.convert import convert_effdet_state_dict, load_effdet_checkpoint
from effdet_graph.io.recipe import ModelRecipe
from effdet_graph.io.validation import VARIANT_KEY

__all__ = [
    "ModelRecipe",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "load_model_state",
    "backbone_weights_of",
    "FORMAT",
    "VARIANT_KEY",
    "load_effdet_checkpoint",
    "convert_effdet_state_dict",
]
