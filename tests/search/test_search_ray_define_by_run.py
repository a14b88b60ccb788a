"""Ray Tune's OptunaSearch (the installed version) drives ``sample_point`` through its define-by-run hook: it
hands the function a wrapper around an optuna trial, not the trial itself, which :class:`TrialLike` accepts."""

from __future__ import annotations

import optuna
import pytest

from search.sampling.rejection import Rejected
from search.sampling.sample import sample_point
from search.sampling.trial import TrialLike

OptunaSearch = pytest.importorskip("ray.tune.search.optuna").OptunaSearch
optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_optuna_search_define_by_run_gives_the_same_specs_as_optuna(fast_spaces):
    space = fast_spaces["nasfpn_cells"]
    seen: list[object] = []

    def define_by_run(trial: TrialLike) -> dict[str, str]:
        seen.append(trial)
        try:
            return {"spec_text": sample_point(space, trial).spec_text}
        except Rejected as rejection:
            return {"rejected": rejection.reason}

    searcher = OptunaSearch(
        space=define_by_run, metric="macs", mode="min", sampler=optuna.samplers.RandomSampler(seed=4)
    )
    configs = []
    for i in range(3):
        configs.append(searcher.suggest(f"trial_{i}"))
        searcher.on_trial_complete(f"trial_{i}", {"macs": 1.0})
    assert not isinstance(seen[0], optuna.Trial) and isinstance(seen[0], TrialLike)
    assert "c0.level" in configs[0]  # parameter names survive Tune's '/'-unflattening of the config

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=4))
    for config in configs:
        trial = study.ask()
        expected = define_by_run(trial)
        study.tell(trial, 1.0)
        assert {key: config[key] for key in expected} == expected
