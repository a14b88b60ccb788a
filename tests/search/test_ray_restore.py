"""A restored Ray search makes the trials a kill cut off: Tune saves its searcher's count of trials apart from
the trials, and ``SavedTrialsSearch`` sets the count back to the trials saved (found by the crash harness)."""

from __future__ import annotations

import json

import optuna
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from search.engines.ray_engine import SavedTrialsSearch


def generator() -> SavedTrialsSearch:
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    searcher = OptunaSearch(space, metric="AP", mode="max", seed=0)
    return SavedTrialsSearch(ConcurrencyLimiter(searcher, max_concurrent=2))


def restored_after(tmp_path, made: int, live: set[str], saved: list[str]) -> SavedTrialsSearch:
    """A search of 2 trials whose searcher had made ``made`` (``live`` of them running) when Tune last saved its
    count, and whose experiment saved the trials ``saved``, restored."""
    killed = generator()
    killed._counter, killed._total_samples, killed._finished = made, 2, made == 2
    killed.searcher.live_trials, killed.searcher.num_unfinished_live_trials = set(live), len(live)
    killed.save_to_dir(str(tmp_path), "session")
    state = {"trial_data": [[json.dumps({"trial_id": trial}), "{}"] for trial in saved]}
    (tmp_path / "experiment_state-session.json").write_text(json.dumps(state), encoding="utf-8")
    restored = generator()
    restored.restore_from_dir(str(tmp_path))
    return restored


def test_a_trial_made_but_not_saved_is_made_again_after_a_restore(tmp_path):
    """Killed after the searcher made trials a and b (its count saved: 2 of 2, finished) but before Tune saved
    trial b: restored, the count is 1, the search not finished, and only a holds a place of the concurrency
    limit."""
    restored = restored_after(tmp_path, 2, {"a", "b"}, ["a"])
    assert (restored._counter, restored.is_finished()) == (1, False)
    assert restored.searcher.live_trials == {"a"} and restored.searcher.num_unfinished_live_trials == 1


def test_a_restore_that_lost_nothing_keeps_the_count(tmp_path):
    restored = restored_after(tmp_path, 2, set(), ["a", "b"])
    assert (restored._counter, restored.is_finished()) == (2, True)
