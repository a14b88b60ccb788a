"""Every sampler a space can name survives pickling as Ray Tune's experiment state needs it (``tuner.pkl`` holds
the searcher with its sampler), and the unpickled copy draws what the original draws."""

from __future__ import annotations

import dataclasses
import pickle

import optuna
import pytest

from search.engines.samplers import make_sampler
from search.objective import OBJECTIVES
from search.space import SamplerSettings, SearchSpace

OptunaSearch = pytest.importorskip("ray.tune.search.optuna").OptunaSearch
optuna.logging.set_verbosity(optuna.logging.WARNING)


def define_by_run(trial: optuna.Trial) -> None:
    trial.suggest_int("x", 0, 100)
    trial.suggest_categorical("fusion", ["sum", "fast_attention", "softmax"])


@pytest.mark.parametrize(("sampler", "objective"), [("tpe", "ap"), ("tpe", "ap_macs"), ("random", "ap_macs")])
def test_the_searcher_with_the_spaces_sampler_pickles_and_its_copy_draws_the_same_points(
    spaces: dict[str, SearchSpace], sampler: str, objective: str
):
    space = dataclasses.replace(spaces["bifpn_edges"], sampler=SamplerSettings(sampler, seed=3))
    multi = OBJECTIVES[objective].multi
    metric, mode = (["AP", "macs"], ["max", "min"]) if multi else ("AP", "max")
    searcher = OptunaSearch(define_by_run, metric=metric, mode=mode, sampler=make_sampler(space, OBJECTIVES[objective]))
    copy = pickle.loads(pickle.dumps(searcher))
    result = {"AP": 0.5, "macs": 1.0} if multi else {"AP": 0.5}
    for i in range(12):  # past NSGA-II's and TPE's random start-up trials
        drawn = [s.suggest(f"trial_{i}") for s in (searcher, copy)]
        assert drawn[0] == drawn[1]
        for s in (searcher, copy):
            s.on_trial_complete(f"trial_{i}", {**result, "AP": i / 12})


def test_nsga2_pickles_without_its_lock_and_the_copy_gets_a_fresh_one(spaces: dict[str, SearchSpace]):
    sampler = make_sampler(spaces["bifpn_edges"], OBJECTIVES["ap_macs"])
    assert isinstance(sampler, optuna.samplers.NSGAIISampler)
    copy = pickle.loads(pickle.dumps(sampler))
    locks = [key for key, value in vars(sampler).items() if "lock" in type(value).__name__.lower()]
    for key in locks:  # Optuna >= 5.1 has one (BaseGASampler._thread_lock); earlier releases none
        assert getattr(copy, key) is not getattr(sampler, key)
        with getattr(copy, key):
            pass
