"""Same seed and sampler, same sequence of sampled specs: Optuna's TPE and random samplers drive
``sample_point`` in an in-memory study (the objective is -MACs; rejected points are pruned, as an engine
would), twice."""

from __future__ import annotations

from collections.abc import Callable

import optuna
import pytest
from search_helpers import BUILTIN_SPACES

from search.sampling.rejection import Rejected
from search.sampling.sample import sample_point
from search.sampling.stats import SampleStats
from search.space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)
TRIALS = 20
SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


def run_study(space: SearchSpace, sampler: str, seed: int) -> tuple[list[str], SampleStats]:
    """One spec text (or the rejection) per trial, and the counts."""
    stats = SampleStats()
    outcomes: list[str] = []

    def objective(trial: optuna.Trial) -> float:
        try:
            candidate = sample_point(space, trial, stats)
        except Rejected as rejection:
            outcomes.append(f"{rejection.kind}: {rejection.reason}")
            raise optuna.TrialPruned(rejection.reason) from rejection
        outcomes.append(candidate.spec_text)
        return -candidate.cost.macs

    study = optuna.create_study(direction="maximize", sampler=SAMPLERS[sampler](seed))
    study.optimize(objective, n_trials=TRIALS)
    return outcomes, stats


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("name", BUILTIN_SPACES)
def test_same_seed_same_specs(fast_spaces, name, sampler):
    first, first_stats = run_study(fast_spaces[name], sampler, seed=11)
    second, second_stats = run_study(fast_spaces[name], sampler, seed=11)
    assert first == second and first_stats == second_stats
    assert first_stats.sampled == TRIALS and first_stats.accepted > 0
    assert len(set(first)) > TRIALS // 2  # the sampler explores: mostly distinct specs
    other, _ = run_study(fast_spaces[name], sampler, seed=12)
    assert other != first
