"""The Optuna sampler a space names, for every engine that samples with Optuna (Optuna itself, Ray Tune's
OptunaSearch): random, TPE for one objective, NSGA-II for several."""

from __future__ import annotations

import threading
from typing import Any

import optuna

from search.objective import Objective
from search.space.types import SearchSpace

_LOCKS = {type(threading.Lock()): "Lock", type(threading.RLock()): "RLock"}  # a lock's type -> its factory's name


class NSGAIISampler(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II, picklable again.

    Optuna 5.1 gave its genetic samplers a ``threading.Lock`` (``BaseGASampler._thread_lock``), which pickle
    refuses, and Ray Tune pickles its searcher, sampler included, into ``tuner.pkl`` when the experiment is made.
    A lock guards nothing across processes, so the pickle leaves it out and the copy gets a fresh one.
    """

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fresh_locks"] = {k: _LOCKS[type(v)] for k, v in state.items() if type(v) in _LOCKS}
        for key in state["_fresh_locks"]:
            del state[key]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        locks = state.pop("_fresh_locks", {})
        self.__dict__.update(state)
        for key, factory in locks.items():
            setattr(self, key, getattr(threading, factory)())


def make_sampler(space: SearchSpace, objective: Objective, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The space's sampler for ``objective``, seeded with ``seed`` (default: the space's ``sampler.seed``).
    Every sampler it returns pickles (Ray Tune stores it in its experiment state)."""
    seed = space.sampler.seed if seed is None else seed
    if space.sampler.name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if objective.multi:
        return NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)
