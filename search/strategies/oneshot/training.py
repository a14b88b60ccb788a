"""Supernet training: the supernet of a topology search space inside EfficientDet, trained by effdet-graph's
training loop (:func:`effdet_graph.training.loop.train`) with one candidate's path per step.

The run is ``effdet-graph train``'s: the same data sets, schedule, EMA, logs, progress bar, atomic checkpoints
at every epoch end and exact resumption. Its detector is the space's (backbone and heads as every candidate's),
its feature network the supernet (:class:`~search.strategies.oneshot.supernet.Supernet`); before each step the sampler
(:mod:`search.strategies.oneshot.sampling`, ``uniform`` or ``fair``) picks the candidate the step trains. The candidates
of step ``s`` depend on the run's seed and ``s`` alone, so a resumed run trains the ones an uninterrupted run does.

The checkpoint is a model variant's (:mod:`effdet_graph.training.variant`): its recipe is the union spec's (the
text written to ``OUT/<space>_union.yaml``), and its ``variant`` entry records the search space file (path and
text) and the sampling. :func:`search.strategies.oneshot.checkpoint.load_supernet` reads it back; plain detector loaders
refuse it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from torch import nn

from effdet_graph import EfficientDet, TrainOptions, TrainResult, train
from effdet_graph.atomic import atomic_output
from effdet_graph.training import OptionError
from graphspec import Spec
from search.space.types import SearchSpace, topology_choices
from search.strategies.oneshot.sampling import make_sampler
from search.strategies.oneshot.supernet import Supernet, supernet_factory
from search.strategies.oneshot.union import UnionSpec, union_spec

SUPERNET = "supernet"
"""The ``kind`` of a supernet checkpoint's ``variant`` entry."""
LOAD_WITH = "search.strategies.oneshot.checkpoint.load_supernet"


class SupernetVariant:
    """The :class:`~effdet_graph.training.variant.ModelVariant` of supernet training: ``space``'s supernet
    (``union`` made with ``overrides``), trained on the candidates of ``make_sampler(space, sampling, seed)``."""

    def __init__(self, space: SearchSpace, union: UnionSpec, overrides: Mapping[str, Any], sampling: str, seed: int):
        self.space = space
        self.space_text = Path(space.file).read_text(encoding="utf-8")
        self.sampling = sampling
        self.sampler = make_sampler(space, sampling, seed)
        self.build = supernet_factory(union, overrides)

    def entry(self) -> dict[str, Any]:
        return {
            "kind": SUPERNET,
            "load_with": LOAD_WITH,
            "space_file": self.space.file,
            "space_text": self.space_text,
            "sampling": self.sampling,
        }

    def feature_network(self, spec: Spec, in_channels: Sequence[int], reductions: Sequence[int]) -> nn.Module:
        return self.build(spec, in_channels, reductions)

    def before_step(self, model: EfficientDet, step: int) -> None:
        supernet = cast(Supernet, model.fpn)
        supernet.select(supernet.path(self.sampler.candidate(step)))


def check_supernet_options(space: SearchSpace, options: TrainOptions) -> None:
    """The options a supernet cannot train with.

    Raises:
        OptionError: ``phi`` is not the space's, ``bn_images`` is not 0 (recomputing BatchNorm statistics on one
            path resets every other path's), or ``compile`` is on (the path changes every step).
        ConfigError: the space searches no topology.
    """
    phi = topology_choices(space).detector.phi
    if options.phi != phi:
        raise OptionError(
            f"{{}} must be the phi of search space {space.name} ({phi}), whose candidates the supernet holds; "
            f"got {options.phi}",
            "phi",
        )
    if options.bn_images != 0:
        raise OptionError(
            "{} must be 0 for a supernet: its BatchNorm statistics are recomputed per candidate when one is "
            f"measured, and recomputing them on one path would reset every other; got {options.bn_images}",
            "bn_images",
        )
    if options.compile:
        raise OptionError("{} must be off for a supernet: the path it runs changes every step", "compile")


def train_supernet(
    space: SearchSpace, options: TrainOptions, sampling: str = "uniform", progress: bool | None = True
) -> TrainResult:
    """Train (or resume, with ``options.resume``) the supernet of ``space``; see the module docstring.

    Args:
        space: a ``bifpn_edges`` or ``nasfpn_cells`` search space.
        options: the run, as for ``effdet-graph train``; ``spec`` is replaced by the union spec (written to
            ``OUT/<space>_union.yaml``), ``phi`` must be the space's, ``backbone`` and ``head_depth`` default to
            the space's, ``overrides`` apply to the union and every candidate, ``seed`` also seeds the sampler.
        sampling: ``uniform`` (single path, SPOS) or ``fair`` (FairNAS), see :mod:`search.strategies.oneshot.sampling`.
        progress: show a progress bar (``None``: only when stderr is a terminal).

    Returns:
        What :func:`~effdet_graph.training.loop.train` returns.

    Raises:
        OptionError: options a supernet cannot train with (:func:`check_supernet_options`).
        InputError: an unknown ``sampling``; or as :func:`~effdet_graph.training.loop.train`, e.g. resuming from
            a checkpoint of another space, sampling or detector.
        ConfigError: the space searches no topology.
    """
    check_supernet_options(space, options)
    union = union_spec(space, options.overrides)
    variant = SupernetVariant(space, union, options.overrides, sampling, options.seed)
    union_file = options.out / f"{union.spec.name}.yaml"
    with atomic_output(union_file) as tmp:
        tmp.write_text(union.text, encoding="utf-8")
    detector = topology_choices(space).detector
    run = dataclasses.replace(
        options,
        spec=union_file,
        backbone=options.backbone or detector.backbone,
        head_depth=detector.head.depth if options.head_depth is None else options.head_depth,
    )
    return train(run, progress, variant=variant)
