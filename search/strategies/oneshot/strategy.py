"""The one-shot search strategy (``effdet-graph search SPACE --strategy oneshot``): train the space's supernet once,
then let the engine's sampler score hundreds of candidates with the weights they inherit from it.

The supernet trains in ``RESULTS/supernet/`` with the space's ``proxy`` settings for ``oneshot.steps`` steps
(:func:`train_space_supernet`); a search run again resumes it from its last epoch checkpoint, or skips it when it
is finished. Each trial then measures its candidate with :class:`~search.strategies.oneshot.evaluation.InheritedWeights`
(BatchNorm statistics recomputed, AP on val): no trial trains.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from effdet_graph.training import CHECKPOINT_NAME
from search.objective import MakeEvaluate
from search.request import SearchRequest
from search.space.types import SearchSpace, topology_choices
from search.strategies.base import SearchStrategy
from search.strategies.oneshot.evaluation import InheritedWeights
from search.strategies.oneshot.training import train_supernet
from search.strategies.proxy import proxy_options

__all__ = ["SUPERNET_DIR", "OneShotStrategy", "train_space_supernet"]

SUPERNET_DIR = "supernet"
"""The results folder's subfolder the supernet trains in."""


def train_space_supernet(
    space: SearchSpace,
    data: Path,
    results_dir: Path,
    seed: int = 0,
    device: str | None = None,
    steps: int | None = None,
    progress: bool | None = True,
) -> Path:
    """Train the supernet of ``space`` (or resume it, or find it finished) in ``results_dir/supernet``.

    Args:
        space: a topology search space.
        data: the data set folder (train/ and val/).
        results_dir: the search's results folder.
        seed: seeds the weights, the data order and the path sampler.
        device: where it trains (default: CUDA when present).
        steps: training steps (default: the space's ``oneshot.steps``).
        progress: show a progress bar (``None``: only when stderr is a terminal).

    Returns:
        The supernet's final checkpoint.

    Raises:
        ConfigError: the space searches no topology.
        CheckpointError: a supernet checkpoint there is of other settings.
    """
    detector = topology_choices(space).detector
    out = results_dir / SUPERNET_DIR
    steps = steps or space.oneshot.steps
    checkpoint = out / CHECKPOINT_NAME  # an earlier run's: resumed, or found finished
    options = proxy_options(space, detector, data, Path(space.file), out, steps, seed, device)
    options = dataclasses.replace(options, bn_images=0, resume=checkpoint if checkpoint.exists() else None)
    return train_supernet(space, options, space.oneshot.sampling, progress).checkpoint


class OneShotStrategy(SearchStrategy):
    """The space's supernet trains once (:func:`train_space_supernet`); each trial scores a candidate with the
    weights it inherits (:class:`~search.strategies.oneshot.evaluation.InheritedWeights`). A trial costs an
    evaluation, not a training, so a search scores many candidates, AP against MACs (NSGA-II). Topology spaces
    only."""

    name = "oneshot"
    default_objective = "ap_macs"
    default_trials = 100
    results_suffix = "-oneshot"  # its trials are not the proxy's

    def check(self, space: SearchSpace) -> None:
        topology_choices(space)  # a supernet holds topology spaces only

    def with_steps(self, space: SearchSpace, steps: int) -> SearchSpace:
        return dataclasses.replace(space, oneshot=dataclasses.replace(space.oneshot, steps=steps))

    def prepare(self, space: SearchSpace, request: SearchRequest, data: Path, results_dir: Path) -> MakeEvaluate:
        supernet = train_space_supernet(
            space, data, results_dir, request.seed, request.device, progress=request.progress
        )
        latency = request.objective == "ap_latency"
        return functools.partial(
            InheritedWeights, space, supernet, data, measure_latency=latency, device=request.device
        )
