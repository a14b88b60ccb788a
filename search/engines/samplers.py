"""The Optuna sampler a space names, for every engine that samples with Optuna (Optuna itself, Ray Tune's
OptunaSearch): random, TPE for one objective, NSGA-II for several."""

from __future__ import annotations

import optuna

from search.objective import Objective
from search.space import SearchSpace


def make_sampler(space: SearchSpace, objective: Objective, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The space's sampler for ``objective``, seeded with ``seed`` (default: the space's ``sampler.seed``)."""
    seed = space.sampler.seed if seed is None else seed
    if space.sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if objective.multi:
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)
