"""Ranking methods that need no training run of their own: parameter count, MACs and SynFlow of the feature
network a recipe trains, and the spec and detector a recipe trains for a topology."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.ranking.recipes import Recipe
from benchmarks.ranking.topologies import Topology

if TYPE_CHECKING:
    from effdet_graph import EfficientDet


@dataclass
class Context:
    """What a ranking method may use besides the topology: the recipe's backbone channels, image size, phi and
    spec ``overrides``."""

    in_channels: tuple[int, ...]
    image_size: int
    phi: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def spec(self, topology: Topology) -> Any:
        """``topology``'s spec as the recipe's runs train it (:func:`trained_spec`)."""
        return trained_spec(topology, self.phi, self.overrides)


#: A ranking method: (topology, context) -> score, higher meaning predicted better.
Method = Callable[[Topology, Context], float]


def _cost(topology: Topology, context: Context) -> Any:
    from graphspec.cost import estimate_cost

    return estimate_cost(context.spec(topology), context.in_channels, context.image_size).total


def params_score(topology: Topology, context: Context) -> float:
    """The feature network's parameter count (analytic)."""
    return float(_cost(topology, context).params)


def macs_score(topology: Topology, context: Context) -> float:
    """The feature network's MACs at the recipe's image size (analytic)."""
    return float(_cost(topology, context).macs)


def synflow(network: Any, inputs: Sequence[Any]) -> float:
    """SynFlow (Tanaka et al., NeurIPS 2020): sum over parameters of ``|theta * dL/dtheta|`` where ``L`` is the
    sum of the outputs of ``network`` with every weight replaced by its absolute value, BatchNorm in eval mode.
    The weights are restored afterwards. ``inputs``: the forward's argument (all ones, as the paper)."""
    import torch

    was_training = network.training
    network.eval()
    params = [p for p in network.parameters() if p.requires_grad]
    with torch.no_grad():
        signs = [torch.sign(p) for p in params]
        for p in params:
            p.abs_()
    try:
        network.zero_grad(set_to_none=True)
        outputs = network(list(inputs))
        loss = sum(out.sum() for out in outputs)
        loss.backward()
        score = sum(float((p.detach() * p.grad).abs().sum()) for p in params if p.grad is not None)
    finally:
        with torch.no_grad():
            for p, sign in zip(params, signs):
                p.mul_(sign)
        network.zero_grad(set_to_none=True)
        network.train(was_training)
    return score


def synflow_score(topology: Topology, context: Context) -> float:
    """SynFlow of the compiled feature network in float64 at the recipe's image size, all-ones inputs."""
    import torch

    from effdet_graph import compile_spec

    spec = context.spec(topology)
    torch.manual_seed(0)
    network = compile_spec(spec, context.in_channels).double()
    inputs = [
        torch.ones(1, c, context.image_size // 2**level, context.image_size // 2**level, dtype=torch.float64)
        for c, level in zip(context.in_channels, spec.backbone_levels)
    ]
    return synflow(network, inputs)


#: Ranking methods by name; add entries to evaluate more.
METHODS: dict[str, Method] = {"params": params_score, "macs": macs_score, "synflow": synflow_score}


def context_for(recipe: Recipe) -> Context:
    """The backbone channels, image size, phi and spec overrides of ``recipe``."""
    from effdet_graph.model import backbone_channels

    train = recipe.train
    channels = backbone_channels(train["backbone"], (3, 4, 5))
    return Context(channels, int(train["image_size"]), int(train["phi"]), recipe.overrides)


def trained_spec(topology: Topology, phi: int, overrides: Mapping[str, Any]) -> Any:
    """``topology``'s spec as a run with ``phi`` and spec ``overrides`` trains it: EfficientDet-D``phi``'s scaling
    of the spec's parameters, then the overrides (:func:`effdet_graph.model.scaling.scale_document`)."""
    from effdet_graph import detector_config
    from effdet_graph.model import scale_document
    from graphspec.parse import loads_spec_document

    return scale_document(
        loads_spec_document(topology.spec_text, f"{topology.name}.yaml"), detector_config(phi), overrides
    )


def recipe_detector(recipe: Recipe, spec: Path, num_classes: int) -> EfficientDet:
    """The detector ``recipe``'s runs train around ``spec`` (its phi, backbone, ``overrides`` and
    ``head_depth``), with fresh weights, in train mode: the :class:`~effdet_graph.io.recipe.ModelRecipe` that
    training makes, built (:func:`effdet_graph.build_detector` takes no head depth)."""
    from effdet_graph import ModelRecipe

    train = recipe.train
    classes = tuple(f"class{i}" for i in range(num_classes))
    return ModelRecipe.create(
        str(spec),
        train["phi"],
        train.get("image_size"),
        list(range(1, num_classes + 1)),
        classes,
        train.get("backbone"),
        recipe.overrides,
        train.get("head_depth"),
    ).build()
